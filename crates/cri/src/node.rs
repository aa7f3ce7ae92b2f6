//! A real node: brings up its containerd (or uses an existing CRI endpoint), imports the project's
//! pause image, registers the node with the host's facts, configures the pod network on the node's
//! pod CIDR, and runs the kubelet's agent over the CRI runtime until shut down.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};
use oxkube_kubelet::dns::NodeDns;
use oxkube_kubelet::log_server;
use oxkube_kubelet::node::{self as kubelet_node, NodeFacts};
use oxkube_kubelet::pod_sync::HostFacts;
use oxkube_kubelet::pod_worker::NodeHandle;
use oxkube_kubelet::runtime::Runtime;

use crate::containerd::{self, ContainerdError, Paths, Supervisor};
use crate::runtime::{ConnectError, CriRuntime};
use crate::{cni, host, image};

/// The sandbox image every node imports at start.
pub const PAUSE_IMAGE: &str = "oxkube.local/pause:3.10";

/// How often pod workers look at the runtime again (upstream's PLEG relist period).
const RELIST: std::time::Duration = std::time::Duration::from_secs(1);

/// How to run the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeOptions {
    pub data_dir: PathBuf,
    /// Default: the host name.
    pub node_name: Option<String>,
    /// An existing CRI socket to use instead of starting containerd.
    pub runtime_endpoint: Option<PathBuf>,
    /// The cluster DNS Service's address pods resolve with (kubelet's `--cluster-dns`).
    pub cluster_dns: Vec<String>,
    /// The cluster domain (kubelet's `--cluster-domain`).
    pub cluster_domain: String,
}

/// Where the host's resolvers and search domains are read from (kubelet's `--resolv-conf`).
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// A step of bringing up the node that failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("building the pause image")]
    PauseImage(#[source] image::ImageError),
    #[error("containerd")]
    Containerd(#[source] ContainerdError),
    #[error("connecting to the container runtime")]
    Connect(#[source] ConnectError),
    #[error("reading the host's facts")]
    Host(#[source] host::HostError),
    #[error("registering the node")]
    Register(#[source] kubelet_node::NodeError),
    #[error("the kubelet's log endpoint")]
    LogServer(#[source] oxkube_kubelet::log_server::LogServerError),
    #[error("listening on {addr}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading node {name}")]
    ReadNode {
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The host's resolv.conf settings; unreadable means none (pods with the Default policy get an
/// empty resolv.conf, as upstream's with `--resolv-conf` unreadable would fail to start).
fn host_dns() -> oxkube_kubelet::dns::DnsConfig {
    match std::fs::read_to_string(RESOLV_CONF) {
        Ok(text) => oxkube_kubelet::dns::parse_resolv_conf(&text),
        Err(e) => {
            tracing::warn!(error = %e, path = RESOLV_CONF, "cannot read the host's resolv.conf");
            Default::default()
        }
    }
}

/// Writes the pod network's config for `subnet`.
fn write_cni(paths: &Paths, data_dir: &Path, subnet: &str) -> Result<(), NodeError> {
    let text = cni::conflist(subnet, &cni::bridge_name(data_dir), &paths.ipam_dir);
    containerd::write_file(&paths.cni_conf_dir.join(cni::FILE_NAME), &text)
        .map_err(NodeError::Containerd)
}

/// Runs the node until `shutdown` resolves, then stops the containerd it started.
pub async fn run(
    client: Client,
    options: NodeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let paths = Paths::new(&options.data_dir);
    write_cni(&paths, &options.data_dir, cni::DEFAULT_POD_CIDR)?;
    let supervisor = match &options.runtime_endpoint {
        Some(_) => None,
        None => Some(
            Supervisor::start("containerd", &paths, PAUSE_IMAGE)
                .await
                .map_err(NodeError::Containerd)?,
        ),
    };
    let result = serve(client, &options, &paths, shutdown).await;
    if let Some(supervisor) = supervisor {
        supervisor.stop().await;
    }
    result
}

/// How long a new node waits for the controller-manager to give it a pod CIDR.
const POD_CIDR_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The node's `spec.podCIDR`, waiting for the node IPAM to assign it (a fresh node has none yet);
/// `None` if none comes in time.
async fn wait_for_pod_cidr(client: &Client, name: &str) -> Result<Option<String>, NodeError> {
    let nodes = Api::<Node>::all(client.clone());
    let deadline = tokio::time::Instant::now() + POD_CIDR_WAIT;
    loop {
        let node = nodes
            .get(name)
            .await
            .map_err(|source| NodeError::ReadNode {
                name: name.to_string(),
                source,
            })?;
        if let Some(cidr) = node.spec.and_then(|s| s.pod_cidr) {
            return Ok(Some(cidr));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn serve(
    client: Client,
    options: &NodeOptions,
    paths: &Paths,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), NodeError> {
    let socket = options
        .runtime_endpoint
        .clone()
        .unwrap_or_else(|| paths.socket.clone());
    let pause = image::pause_image(PAUSE_IMAGE).map_err(NodeError::PauseImage)?;
    let pause_file = options.data_dir.join("images/pause.tar");
    if let Some(dir) = pause_file.parent() {
        std::fs::create_dir_all(dir).map_err(|source| {
            NodeError::Containerd(ContainerdError::Dirs {
                path: dir.into(),
                source,
            })
        })?;
    }
    std::fs::write(&pause_file, pause).map_err(|source| {
        NodeError::Containerd(ContainerdError::Write {
            path: pause_file.clone(),
            source,
        })
    })?;
    containerd::import(&socket, &pause_file)
        .await
        .map_err(NodeError::Containerd)?;
    let runtime = CriRuntime::connect(&socket, &paths.pod_logs)
        .await
        .map_err(NodeError::Connect)?;
    let host = host::facts(options.node_name.clone()).map_err(NodeError::Host)?;
    let facts = NodeFacts {
        name: host.name.clone(),
        internal_ip: host.ip.clone(),
        pod_cidr: None,
        cpu: host.cpu.to_string(),
        memory: format!("{}Ki", host.memory_kib),
        ephemeral_storage: "100Gi".into(),
        runtime_version: runtime.version(),
    };
    let uid = kubelet_node::register(&client, &facts)
        .await
        .map_err(NodeError::Register)?;
    match wait_for_pod_cidr(&client, &facts.name).await? {
        Some(cidr) => write_cni(paths, &options.data_dir, &cidr)?,
        None => tracing::warn!(
            node = %facts.name,
            fallback = cni::DEFAULT_POD_CIDR,
            "no spec.podCIDR assigned; pods use the fallback range, which other nodes may share"
        ),
    }
    tracing::info!(node = %facts.name, runtime = %facts.runtime_version, "node registered");
    let runtime: Arc<dyn Runtime> = Arc::new(runtime);
    let tls = log_server::tls_config(&facts.name, &host.ip).map_err(NodeError::LogServer)?;
    let addr = format!("0.0.0.0:{}", log_server::PORT);
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|source| NodeError::Listen { addr, source })?;
    let logs = tokio::spawn(log_server::serve(
        listener,
        Arc::new(tls),
        log_server::LogFiles {
            pod_logs: paths.pod_logs.clone(),
            runtime: runtime.clone(),
        },
    ));
    let handle = NodeHandle {
        client,
        runtime,
        facts: Arc::new(HostFacts {
            host_ip: host.ip,
            runtime_scheme: "containerd".into(),
        }),
        dns: Arc::new(NodeDns {
            cluster_dns: options.cluster_dns.clone(),
            cluster_domain: options.cluster_domain.clone(),
            host: host_dns(),
        }),
        relist: Some(RELIST),
    };
    oxkube_kubelet::agent::run(handle, facts, uid, shutdown).await;
    logs.abort();
    Ok(())
}
