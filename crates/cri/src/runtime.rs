//! The kubelet's runtime seam over CRI v1 (gRPC on a unix socket): sandboxes and containers as
//! upstream's kubelet asks for them (labels, log paths `<pod dir>/<container>/<attempt>.log`, own PID
//! namespace per container, host ports), images pulled only when missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use k8s_cri::v1 as cri;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use oxkube_kubelet::runtime::{
    ContainerConfig, ContainerState, ContainerStatus, Runtime, RuntimeError, SandboxConfig,
    SandboxStatus,
};
use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint, Uri};

/// Labels upstream's kubelet puts on sandboxes and containers.
const POD_UID: &str = "io.kubernetes.pod.uid";
const POD_NAME: &str = "io.kubernetes.pod.name";
const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
const CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// Connecting to the runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("the endpoint URI")]
    Endpoint(#[source] tonic::transport::Error),
    #[error("asking the runtime at {socket} for its version")]
    Version {
        socket: PathBuf,
        #[source]
        source: tonic::Status,
    },
}

/// A CRI runtime (containerd) on a unix socket.
#[derive(Debug, Clone)]
pub struct CriRuntime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    version: String,
    pod_logs: PathBuf,
    /// The config of each sandbox made here, which CreateContainer needs again.
    sandboxes: Arc<Mutex<HashMap<String, cri::PodSandboxConfig>>>,
}

fn call(call: &'static str) -> impl FnOnce(tonic::Status) -> RuntimeError {
    move |status| RuntimeError::Call {
        call,
        source: Box::new(status),
    }
}

fn timestamp(nanos: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(nanos)).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The CRI protocol of a Kubernetes protocol name.
fn protocol(name: &str) -> i32 {
    match name {
        "UDP" => cri::Protocol::Udp as i32,
        "SCTP" => cri::Protocol::Sctp as i32,
        _ => cri::Protocol::Tcp as i32,
    }
}

/// The CRI sandbox config of a kubelet sandbox config, logging under `pod_logs`.
pub fn sandbox_config(config: &SandboxConfig, pod_logs: &Path) -> cri::PodSandboxConfig {
    let labels = HashMap::from([
        (POD_UID.to_string(), config.pod_uid.clone()),
        (POD_NAME.to_string(), config.pod_name.clone()),
        (POD_NAMESPACE.to_string(), config.pod_namespace.clone()),
    ]);
    cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: config.pod_name.clone(),
            uid: config.pod_uid.clone(),
            namespace: config.pod_namespace.clone(),
            attempt: config.attempt,
        }),
        hostname: config.hostname.clone(),
        dns_config: Some(cri::DnsConfig {
            servers: config.dns.servers.clone(),
            searches: config.dns.searches.clone(),
            options: config.dns.options.clone(),
        }),
        log_directory: pod_logs
            .join(format!(
                "{}_{}_{}",
                config.pod_namespace, config.pod_name, config.pod_uid
            ))
            .to_string_lossy()
            .into_owned(),
        port_mappings: config
            .ports
            .iter()
            .map(|p| cri::PortMapping {
                protocol: protocol(&p.protocol),
                container_port: p.container_port,
                host_port: p.host_port,
                host_ip: p.host_ip.clone(),
            })
            .collect(),
        labels,
        linux: Some(cri::LinuxPodSandboxConfig {
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(cri::NamespaceOption {
                    network: cri::NamespaceMode::Pod as i32,
                    pid: cri::NamespaceMode::Container as i32,
                    ipc: cri::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The CRI container config of a kubelet container config in a sandbox of pod `pod_uid`.
pub fn container_config(
    config: &ContainerConfig,
    sandbox: &cri::PodSandboxConfig,
) -> cri::ContainerConfig {
    let mut labels = sandbox.labels.clone();
    labels.insert(CONTAINER_NAME.into(), config.name.clone());
    cri::ContainerConfig {
        metadata: Some(cri::ContainerMetadata {
            name: config.name.clone(),
            attempt: config.attempt,
        }),
        image: Some(cri::ImageSpec {
            image: config.image.clone(),
            user_specified_image: config.image.clone(),
            ..Default::default()
        }),
        command: config.command.clone(),
        args: config.args.clone(),
        working_dir: config.working_dir.clone().unwrap_or_default(),
        envs: config
            .env
            .iter()
            .map(|(key, value)| cri::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        labels,
        log_path: format!("{}/{}.log", config.name, config.attempt),
        linux: Some(cri::LinuxContainerConfig::default()),
        ..Default::default()
    }
}

impl CriRuntime {
    /// Connects to the runtime at `socket` (lazily: calls reconnect after a runtime restart).
    pub async fn connect(socket: &Path, pod_logs: &Path) -> Result<Self, ConnectError> {
        let path = socket.to_path_buf();
        let channel = Endpoint::try_from("http://[::]:50051")
            .map_err(ConnectError::Endpoint)?
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        let mut runtime = RuntimeServiceClient::new(channel.clone());
        let version = runtime
            .version(cri::VersionRequest::default())
            .await
            .map_err(|source| ConnectError::Version {
                socket: socket.into(),
                source,
            })?
            .into_inner();
        Ok(CriRuntime {
            runtime,
            images: ImageServiceClient::new(channel),
            version: format!("{}://{}", version.runtime_name, version.runtime_version),
            pod_logs: pod_logs.into(),
            sandboxes: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Pulls the image unless the runtime has it.
    async fn ensure_image(
        &self,
        image: &str,
        sandbox: &cri::PodSandboxConfig,
    ) -> Result<(), RuntimeError> {
        let spec = cri::ImageSpec {
            image: image.into(),
            ..Default::default()
        };
        let status = self
            .images
            .clone()
            .image_status(cri::ImageStatusRequest {
                image: Some(spec.clone()),
                verbose: false,
            })
            .await
            .map_err(call("ImageStatus"))?
            .into_inner();
        if status.image.is_some() {
            return Ok(());
        }
        self.images
            .clone()
            .pull_image(cri::PullImageRequest {
                image: Some(spec),
                auth: None,
                sandbox_config: Some(sandbox.clone()),
            })
            .await
            .map_err(call("PullImage"))?;
        Ok(())
    }

    /// The config a sandbox was made with, rebuilt from its status when made by an earlier agent.
    async fn sandbox_config_of(
        &self,
        sandbox_id: &str,
    ) -> Result<cri::PodSandboxConfig, RuntimeError> {
        if let Some(config) = self.sandboxes.lock().get(sandbox_id) {
            return Ok(config.clone());
        }
        let status = self
            .runtime
            .clone()
            .pod_sandbox_status(cri::PodSandboxStatusRequest {
                pod_sandbox_id: sandbox_id.into(),
                verbose: false,
            })
            .await
            .map_err(call("PodSandboxStatus"))?
            .into_inner()
            .status
            .ok_or_else(|| RuntimeError::NoSandbox(sandbox_id.into()))?;
        let meta = status.metadata.unwrap_or_default();
        let config = sandbox_config(
            &SandboxConfig {
                pod_uid: meta.uid,
                pod_name: meta.name.clone(),
                pod_namespace: meta.namespace,
                attempt: meta.attempt,
                hostname: meta.name,
                ports: Vec::new(),
                dns: Default::default(),
            },
            &self.pod_logs,
        );
        self.sandboxes
            .lock()
            .insert(sandbox_id.into(), config.clone());
        Ok(config)
    }
}

#[async_trait]
impl Runtime for CriRuntime {
    fn version(&self) -> String {
        self.version.clone()
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String, RuntimeError> {
        let config = sandbox_config(config, &self.pod_logs);
        let id = self
            .runtime
            .clone()
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .map_err(call("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id;
        self.sandboxes.lock().insert(id.clone(), config);
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, sandbox_id: &str) -> Result<(), RuntimeError> {
        self.runtime
            .clone()
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: sandbox_id.into(),
            })
            .await
            .map_err(call("StopPodSandbox"))?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<(), RuntimeError> {
        self.runtime
            .clone()
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox_id.into(),
            })
            .await
            .map_err(call("RemovePodSandbox"))?;
        self.sandboxes.lock().remove(sandbox_id);
        Ok(())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let sandbox = self.sandbox_config_of(sandbox_id).await?;
        self.ensure_image(&config.image, &sandbox).await?;
        let request = cri::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(container_config(config, &sandbox)),
            sandbox_config: Some(sandbox),
        };
        Ok(self
            .runtime
            .clone()
            .create_container(request)
            .await
            .map_err(call("CreateContainer"))?
            .into_inner()
            .container_id)
    }

    async fn start_container(&self, container_id: &str) -> Result<(), RuntimeError> {
        self.runtime
            .clone()
            .start_container(cri::StartContainerRequest {
                container_id: container_id.into(),
            })
            .await
            .map_err(call("StartContainer"))?;
        Ok(())
    }

    async fn stop_container(
        &self,
        container_id: &str,
        grace: Duration,
    ) -> Result<(), RuntimeError> {
        self.runtime
            .clone()
            .stop_container(cri::StopContainerRequest {
                container_id: container_id.into(),
                timeout: i64::try_from(grace.as_secs()).unwrap_or(i64::MAX),
            })
            .await
            .map_err(call("StopContainer"))?;
        Ok(())
    }

    async fn remove_container(&self, container_id: &str) -> Result<(), RuntimeError> {
        self.runtime
            .clone()
            .remove_container(cri::RemoveContainerRequest {
                container_id: container_id.into(),
            })
            .await
            .map_err(call("RemoveContainer"))?;
        Ok(())
    }

    async fn list_pod_sandboxes(&self, pod_uid: &str) -> Vec<SandboxStatus> {
        let filter = cri::PodSandboxFilter {
            label_selector: HashMap::from([(POD_UID.to_string(), pod_uid.to_string())]),
            ..Default::default()
        };
        let listed = match self
            .runtime
            .clone()
            .list_pod_sandbox(cri::ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await
        {
            Ok(r) => r.into_inner().items,
            Err(e) => {
                tracing::warn!(error = %e, "ListPodSandbox failed");
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(listed.len());
        for s in listed {
            let ready = s.state == cri::PodSandboxState::SandboxReady as i32;
            let ip = if ready {
                self.runtime
                    .clone()
                    .pod_sandbox_status(cri::PodSandboxStatusRequest {
                        pod_sandbox_id: s.id.clone(),
                        verbose: false,
                    })
                    .await
                    .ok()
                    .and_then(|r| r.into_inner().status)
                    .and_then(|st| st.network)
                    .map(|n| n.ip)
                    .filter(|ip| !ip.is_empty())
            } else {
                None
            };
            out.push(SandboxStatus {
                id: s.id,
                pod_uid: pod_uid.into(),
                ready,
                ip,
                created_at: timestamp(s.created_at),
            });
        }
        out.sort_by_key(|s| s.created_at);
        out
    }

    async fn list_containers(&self, sandbox_id: &str) -> Vec<ContainerStatus> {
        let filter = cri::ContainerFilter {
            pod_sandbox_id: sandbox_id.into(),
            ..Default::default()
        };
        let listed = match self
            .runtime
            .clone()
            .list_containers(cri::ListContainersRequest {
                filter: Some(filter),
            })
            .await
        {
            Ok(r) => r.into_inner().containers,
            Err(e) => {
                tracing::warn!(error = %e, "ListContainers failed");
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(listed.len());
        for c in listed {
            let Ok(status) = self
                .runtime
                .clone()
                .container_status(cri::ContainerStatusRequest {
                    container_id: c.id.clone(),
                    verbose: false,
                })
                .await
            else {
                continue;
            };
            let Some(s) = status.into_inner().status else {
                continue;
            };
            let state = match cri::ContainerState::try_from(s.state) {
                Ok(cri::ContainerState::ContainerRunning) => ContainerState::Running {
                    started_at: timestamp(s.started_at),
                },
                Ok(cri::ContainerState::ContainerExited) => ContainerState::Exited {
                    started_at: timestamp(s.started_at.max(s.created_at)),
                    finished_at: timestamp(s.finished_at),
                    exit_code: s.exit_code,
                },
                Ok(cri::ContainerState::ContainerCreated) => ContainerState::Created,
                // Unknown: upstream treats it as exited.
                _ => ContainerState::Exited {
                    started_at: timestamp(s.started_at),
                    finished_at: timestamp(s.finished_at.max(s.started_at)),
                    exit_code: s.exit_code,
                },
            };
            let meta = s.metadata.unwrap_or_default();
            out.push(ContainerStatus {
                id: s.id,
                sandbox_id: sandbox_id.into(),
                name: meta.name,
                attempt: meta.attempt,
                image: s.image.map(|i| i.image).unwrap_or_default(),
                image_ref: s.image_ref,
                state,
            });
        }
        out.sort_by_key(|c| (c.attempt, c.name.clone()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxkube_kubelet::runtime::PortMapping;

    #[test]
    fn configs_carry_the_labels_log_paths_and_ports_upstream_uses() {
        let sandbox = sandbox_config(
            &SandboxConfig {
                pod_uid: "u1".into(),
                pod_name: "web".into(),
                pod_namespace: "ns".into(),
                attempt: 0,
                hostname: "web".into(),
                ports: vec![PortMapping {
                    protocol: "UDP".into(),
                    container_port: 53,
                    host_port: 5353,
                    host_ip: String::new(),
                }],
                dns: oxkube_kubelet::dns::DnsConfig {
                    servers: vec!["10.96.0.10".into()],
                    searches: vec!["ns.svc.cluster.local".into()],
                    options: vec!["ndots:5".into()],
                },
            },
            Path::new("/d/pods"),
        );
        assert_eq!(sandbox.log_directory, "/d/pods/ns_web_u1");
        assert_eq!(sandbox.labels[POD_UID], "u1");
        assert_eq!(sandbox.port_mappings[0].protocol, cri::Protocol::Udp as i32);
        let dns = sandbox.dns_config.as_ref().expect("dns");
        assert_eq!(dns.servers, vec!["10.96.0.10"]);
        assert_eq!(dns.searches, vec!["ns.svc.cluster.local"]);
        assert_eq!(dns.options, vec!["ndots:5"]);
        let container = container_config(
            &ContainerConfig {
                name: "c".into(),
                attempt: 2,
                image: "oxkube.local/busybox:1".into(),
                command: vec!["sh".into()],
                args: vec![],
                env: vec![("A".into(), "1".into())],
                working_dir: None,
            },
            &sandbox,
        );
        assert_eq!(container.log_path, "c/2.log");
        assert_eq!(container.labels[CONTAINER_NAME], "c");
        assert_eq!(container.labels[POD_UID], "u1");
        assert_eq!(container.envs[0].key, "A");
    }
}
