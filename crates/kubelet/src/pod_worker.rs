//! One pod's worker: a state machine that syncs the pod (observe the runtime, let the pure core
//! decide, act, report the status when it changed) and then waits for a newer pod or its back-off
//! timer. When the pod is being deleted it stops everything and deletes the pod with grace 0.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodStatus, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::dns::{self, NodeDns};
use crate::env::{self, Sources};
use crate::pod_sync::{self, Action, Backoffs, HostFacts, Observed};
use crate::runtime::{
    ContainerConfig, ContainerState, PortMapping, Runtime, RuntimeError, SandboxConfig,
};

/// Rounds of decide → act per sync (sandbox, then containers, then a restart at most).
const MAX_ROUNDS: usize = 4;
/// How long a failed API write waits before the next try.
const RETRY: Duration = Duration::from_secs(1);

/// What a worker needs from its node.
#[derive(Clone)]
pub struct NodeHandle {
    pub client: Client,
    pub runtime: Arc<dyn Runtime>,
    pub facts: Arc<HostFacts>,
    /// The node's DNS settings pods' resolv.conf are made from.
    pub dns: Arc<NodeDns>,
    /// How often an idle worker looks at the runtime again (upstream's PLEG relist), to see
    /// containers that ended; `None` when the runtime never changes on its own schedule.
    pub relist: Option<Duration>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("runtime", &self.runtime)
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

/// A step of a sync that failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("runtime: {0}")]
    Runtime(#[source] RuntimeError),
    #[error("writing the status of pod {pod}")]
    Status {
        pod: String,
        #[source]
        source: kube::Error,
    },
    #[error("making the environment of pod {pod}")]
    Env {
        pod: String,
        #[source]
        source: env::EnvError,
    },
    #[error("reading {what} for pod {pod}")]
    Read {
        pod: String,
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("deleting pod {pod}")]
    Delete {
        pod: String,
        #[source]
        source: kube::Error,
    },
}

/// The newest version of a pod, `None` once it is gone from the API.
pub type PodFeed = watch::Receiver<Option<Arc<Pod>>>;

#[derive(Debug)]
enum State {
    Sync,
    Idle { wake_at: Option<Timestamp> },
    Done,
}

#[derive(Debug)]
struct Worker {
    node: NodeHandle,
    uid: String,
    feed: PodFeed,
    backoffs: Backoffs,
    last_sent: Option<PodStatus>,
}

/// What one sync ended with.
enum Synced {
    Wait(Option<Timestamp>),
    Deleted,
}

/// Runs the worker of pod `uid` until the pod is gone; spawn it.
pub async fn run(node: NodeHandle, uid: String, feed: PodFeed) {
    let worker = Worker {
        node,
        uid,
        feed,
        backoffs: Backoffs::new(),
        last_sent: None,
    };
    futures::stream::unfold((worker, State::Sync), |(worker, state)| async move {
        step(worker, state).await.map(|next| ((), next))
    })
    .for_each(|()| async {})
    .await;
}

async fn step(mut worker: Worker, state: State) -> Option<(Worker, State)> {
    let next = match state {
        State::Done => return None,
        State::Sync => {
            let pod = worker.feed.borrow_and_update().clone();
            match pod {
                None => {
                    forget(worker.node.runtime.as_ref(), &worker.uid).await;
                    State::Done
                }
                Some(pod) => match sync(&mut worker, &pod).await {
                    Ok(Synced::Deleted) => State::Done,
                    Ok(Synced::Wait(wake_at)) => State::Idle { wake_at },
                    Err(e) => {
                        tracing::warn!(uid = %worker.uid, error = %e, cause = ?std::error::Error::source(&e), "pod sync failed");
                        State::Idle {
                            wake_at: Some(later(RETRY)),
                        }
                    }
                },
            }
        }
        State::Idle { wake_at } => {
            let relist = worker.node.relist.map(later);
            let wake_at = match (wake_at, relist) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let timer = async {
                match wake_at {
                    Some(at) => tokio::time::sleep(until(at)).await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                changed = worker.feed.changed() => match changed {
                    Ok(()) => State::Sync,
                    // The node stopped feeding this pod: it is gone.
                    Err(_) => {
                        forget(worker.node.runtime.as_ref(), &worker.uid).await;
                        State::Done
                    }
                },
                () = timer => State::Sync,
            }
        }
    };
    Some((worker, next))
}

fn later(d: Duration) -> Timestamp {
    Timestamp::now()
        .checked_add(d)
        .unwrap_or_else(|_| Timestamp::now())
}

fn until(at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO)
}

async fn observe(runtime: &dyn Runtime, uid: &str) -> Observed {
    let sandbox = runtime.list_pod_sandboxes(uid).await.pop();
    let containers = match &sandbox {
        Some(s) => runtime.list_containers(&s.id).await,
        None => Vec::new(),
    };
    Observed {
        sandbox,
        containers,
    }
}

/// Stops and removes whatever the runtime still has of a pod that left the API.
async fn forget(runtime: &dyn Runtime, uid: &str) {
    for sandbox in runtime.list_pod_sandboxes(uid).await {
        // The sandbox is gone either way; nothing is left to report to.
        let _ = runtime.stop_pod_sandbox(&sandbox.id).await;
        let _ = runtime.remove_pod_sandbox(&sandbox.id).await;
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

fn grace(pod: &Pod) -> Duration {
    let secs = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// The pod's `hostPort`s, as CRI port mappings.
fn host_ports(pod: &Pod) -> Vec<PortMapping> {
    let specs = pod.spec.as_ref();
    let all = specs.into_iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    });
    all.flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            Some(PortMapping {
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                container_port: p.container_port,
                host_port: p.host_port.filter(|h| *h > 0)?,
                host_ip: p.host_ip.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads the ConfigMaps and Secrets a container's environment refers to (missing ones are left out).
async fn env_sources(client: &Client, pod: &Pod, spec: &Container) -> Result<Sources, SyncError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let (maps, secrets) = env::references(spec);
    let mut sources = Sources::default();
    let read_err = |what: String| {
        let pod = pod_key(pod);
        move |source| SyncError::Read { pod, what, source }
    };
    let map_api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    for name in maps {
        if let Some(cm) = map_api
            .get_opt(&name)
            .await
            .map_err(read_err(format!("configmap {name}")))?
        {
            sources
                .config_maps
                .insert(name, cm.data.unwrap_or_default());
        }
    }
    let secret_api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    for name in secrets {
        if let Some(secret) = secret_api
            .get_opt(&name)
            .await
            .map_err(read_err(format!("secret {name}")))?
        {
            let data = secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            sources.secrets.insert(name, data);
        }
    }
    Ok(sources)
}

async fn act(
    node: &NodeHandle,
    pod: &Pod,
    uid: &str,
    observed: &Observed,
    action: &Action,
) -> Result<(), SyncError> {
    let runtime = node.runtime.as_ref();
    match action {
        Action::RunSandbox => {
            let config = SandboxConfig {
                pod_uid: uid.into(),
                pod_name: pod.metadata.name.clone().unwrap_or_default(),
                pod_namespace: pod.metadata.namespace.clone().unwrap_or_default(),
                attempt: 0,
                hostname: pod.metadata.name.clone().unwrap_or_default(),
                ports: host_ports(pod),
                dns: dns::pod_dns(pod, &node.dns),
            };
            runtime
                .run_pod_sandbox(&config)
                .await
                .map_err(SyncError::Runtime)?;
        }
        Action::StartContainer { name, attempt } => {
            let (Some(sandbox), Some(spec)) = (
                &observed.sandbox,
                pod.spec
                    .as_ref()
                    .and_then(|s| s.containers.iter().find(|c| &c.name == name)),
            ) else {
                return Ok(());
            };
            let sources = env_sources(&node.client, pod, spec).await?;
            let env = env::resolve(
                pod,
                spec,
                &sources,
                sandbox.ip.as_deref().unwrap_or_default(),
                &node.facts.host_ip,
            )
            .map_err(|source| SyncError::Env {
                pod: pod_key(pod),
                source,
            })?;
            let (command, args) = env::expand_command(spec, &env);
            let config = ContainerConfig {
                name: name.clone(),
                attempt: *attempt,
                image: spec.image.clone().unwrap_or_default(),
                command,
                args,
                env,
                working_dir: spec.working_dir.clone(),
            };
            let id = runtime
                .create_container(&sandbox.id, &config)
                .await
                .map_err(SyncError::Runtime)?;
            runtime
                .start_container(&id)
                .await
                .map_err(SyncError::Runtime)?;
        }
        Action::RemoveContainer { id } => {
            runtime
                .remove_container(id)
                .await
                .map_err(SyncError::Runtime)?;
        }
        Action::KillPod => {
            for c in &observed.containers {
                if !matches!(c.state, ContainerState::Exited { .. }) {
                    runtime
                        .stop_container(&c.id, grace(pod))
                        .await
                        .map_err(SyncError::Runtime)?;
                }
            }
            if let Some(sandbox) = &observed.sandbox {
                runtime
                    .stop_pod_sandbox(&sandbox.id)
                    .await
                    .map_err(SyncError::Runtime)?;
            }
        }
        Action::FinishDeletion => {
            let api: Api<Pod> = Api::namespaced(
                node.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or("default"),
            );
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.into()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            match api.delete(name, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(source) => {
                    return Err(SyncError::Delete {
                        pod: pod_key(pod),
                        source,
                    });
                }
            }
            forget(runtime, uid).await;
        }
    }
    Ok(())
}

async fn sync(worker: &mut Worker, pod: &Pod) -> Result<Synced, SyncError> {
    let runtime = worker.node.runtime.clone();
    let mut wake_at = None;
    for _ in 0..MAX_ROUNDS {
        let observed = observe(runtime.as_ref(), &worker.uid).await;
        let plan = pod_sync::decide(pod, &observed, &worker.backoffs, Timestamp::now());
        worker.backoffs = plan.backoffs;
        wake_at = plan.wake_at;
        if plan.actions.is_empty() {
            break;
        }
        for action in &plan.actions {
            act(&worker.node, pod, &worker.uid, &observed, action).await?;
            if *action == Action::FinishDeletion {
                return Ok(Synced::Deleted);
            }
        }
        // With a sandbox up and containers still to start, show them ContainerCreating as upstream.
        if plan.actions.contains(&Action::RunSandbox) {
            report(worker, pod).await?;
        }
    }
    if pod.metadata.deletion_timestamp.is_none() {
        report(worker, pod).await?;
    }
    Ok(Synced::Wait(wake_at))
}

/// Patches the pod's status when it differs from what the API has and what was sent last.
async fn report(worker: &mut Worker, pod: &Pod) -> Result<(), SyncError> {
    let observed = observe(worker.node.runtime.as_ref(), &worker.uid).await;
    // What was sent last is newer than a pod the watch has not caught up with yet: times carry over.
    let caught_up;
    let base = match &worker.last_sent {
        Some(sent) if pod.status.as_ref() != Some(sent) => {
            caught_up = Pod {
                status: Some(sent.clone()),
                ..pod.clone()
            };
            &caught_up
        }
        _ => pod,
    };
    let status = pod_sync::pod_status(
        base,
        &observed,
        &worker.backoffs,
        &worker.node.facts,
        Timestamp::now(),
    );
    if pod.status.as_ref() == Some(&status) || worker.last_sent.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<Pod> = Api::namespaced(
        worker.node.client.clone(),
        pod.metadata.namespace.as_deref().unwrap_or("default"),
    );
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let patch = serde_json::json!({ "status": status });
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| SyncError::Status {
            pod: pod_key(pod),
            source,
        })?;
    worker.last_sent = Some(status);
    Ok(())
}
