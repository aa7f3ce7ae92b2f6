//! Hollow nodes (upstream's kubemark): many simulated nodes in one process, each the real node and
//! pod-worker code over its own in-memory runtime. They share one client and ONE pod watch (pods with
//! a node, dispatched by `spec.nodeName`); lease renewals and status re-posts are spread evenly over
//! their periods so thousands of nodes make a steady trickle of requests, not bursts.

use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::{Api, Client};
use tokio::time::Instant;

use crate::dispatch::{self, Dispatcher};
use crate::dns::NodeDns;

use crate::fake::FakeRuntime;
use crate::node::{self, NodeError, NodeFacts};
use crate::pod_sync::HostFacts;
use crate::pod_worker::NodeHandle;
use crate::runtime::Runtime;

/// Upstream's lease renewal period (`nodeLeaseRenewIntervalFraction` × 40 s).
pub const LEASE_PERIOD: Duration = Duration::from_secs(10);
/// Upstream's `nodeStatusReportFrequency`.
pub const STATUS_PERIOD: Duration = Duration::from_secs(300);
/// Requests of one kind in flight at once.
const CONCURRENCY: usize = 64;
/// The most hollow nodes one process runs (each gets its own /24 of pod addresses).
pub const MAX_NODES: usize = 32_768;

/// What the hollow nodes are.
#[derive(Debug, Clone)]
pub struct HollowConfig {
    /// Nodes are named `<prefix>-hollow-<i>`.
    pub prefix: String,
    pub count: usize,
    /// How long a fake container takes to start.
    pub start_delay: Duration,
}

/// Why the hollow nodes stopped.
#[derive(Debug, thiserror::Error)]
pub enum HollowError {
    #[error("{count} hollow nodes: at most {MAX_NODES}")]
    TooMany { count: usize },
    #[error("registering the hollow nodes")]
    Register(#[source] NodeError),
}

/// One hollow node.
#[derive(Debug)]
struct Hollow {
    facts: NodeFacts,
    uid: String,
    handle: NodeHandle,
}

fn hollow(config: &HollowConfig, client: &Client, i: usize) -> Hollow {
    let name = format!("{}-hollow-{i}", config.prefix);
    let n = i + 1;
    let internal_ip = format!("10.64.{}.{}", n / 256, n % 256);
    // 10.128.0.0/9 split in /24s: node i has 10.(128 + i/256).(i%256).0/24.
    let hi = u8::try_from(128 + i / 256).unwrap_or(u8::MAX);
    let lo = u8::try_from(i % 256).unwrap_or(0);
    let runtime: Arc<dyn Runtime> = Arc::new(FakeRuntime::new(config.start_delay, [10, hi, lo]));
    let facts = NodeFacts {
        name,
        internal_ip: internal_ip.clone(),
        pod_cidr: None,
        cpu: "4".into(),
        memory: "16Gi".into(),
        ephemeral_storage: "100Gi".into(),
        runtime_version: runtime.version(),
    };
    let handle = NodeHandle {
        client: client.clone(),
        runtime,
        facts: Arc::new(HostFacts {
            host_ip: internal_ip,
            runtime_scheme: "fake".into(),
        }),
        dns: Arc::new(NodeDns::default()),
        relist: None,
    };
    Hollow {
        facts,
        uid: String::new(),
        handle,
    }
}

/// Registers the nodes, retrying each a few times.
async fn register(client: &Client, nodes: &mut [Hollow]) -> Result<(), HollowError> {
    let uids: Vec<Result<String, NodeError>> = futures::stream::iter(nodes.iter())
        .map(|n| async move {
            let mut tries = 0;
            loop {
                match node::register(client, &n.facts).await {
                    Ok(uid) => return Ok(uid),
                    Err(e) if tries < 5 => {
                        tries += 1;
                        tracing::warn!(error = %e, "node registration failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;
    for (n, uid) in nodes.iter_mut().zip(uids) {
        n.uid = uid.map_err(HollowError::Register)?;
    }
    Ok(())
}

/// The index of the node whose turn it is, at evenly spread slots of `period`, forever.
fn schedule(count: usize, period: Duration) -> impl Stream<Item = usize> {
    let slot = period / u32::try_from(count.max(1)).unwrap_or(u32::MAX);
    let start = Instant::now();
    futures::stream::unfold((0usize, start), move |(i, at)| async move {
        tokio::time::sleep_until(at).await;
        Some((i, ((i + 1) % count.max(1), at + slot)))
    })
}

/// Renews every node's lease once per [`LEASE_PERIOD`].
async fn leases(client: Client, nodes: Arc<Vec<Hollow>>) {
    schedule(nodes.len(), LEASE_PERIOD)
        .for_each_concurrent(CONCURRENCY, |i| {
            let (client, nodes) = (client.clone(), nodes.clone());
            async move {
                let n = &nodes[i];
                if let Err(e) = node::renew_lease(&client, &n.facts.name, &n.uid).await {
                    tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "lease renewal failed");
                }
            }
        })
        .await;
}

/// Re-posts every node's status once per [`STATUS_PERIOD`] (after the registration's post).
async fn statuses(client: Client, nodes: Arc<Vec<Hollow>>) {
    tokio::time::sleep(STATUS_PERIOD).await;
    schedule(nodes.len(), STATUS_PERIOD)
        .for_each_concurrent(CONCURRENCY, |i| {
            let (client, nodes) = (client.clone(), nodes.clone());
            async move {
                let n = &nodes[i];
                let api: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
                let old = api.get_opt(&n.facts.name).await.ok().flatten();
                let old = old.as_ref().and_then(|n| n.status.as_ref());
                if let Err(e) = node::post_status(&client, &n.facts, old).await {
                    tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "node status post failed");
                }
            }
        })
        .await;
}

/// Watches every bound pod once and feeds the workers of the hollow nodes.
async fn pods(client: Client, nodes: Arc<Vec<Hollow>>) {
    let handles = nodes
        .iter()
        .map(|n| (n.facts.name.clone(), n.handle.clone()))
        .collect();
    dispatch::watch_pods(client, "spec.nodeName!=", Dispatcher::new(handles)).await;
}

/// Registers `config.count` hollow nodes and runs them until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: HollowConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), HollowError> {
    if config.count > MAX_NODES {
        return Err(HollowError::TooMany {
            count: config.count,
        });
    }
    let mut nodes: Vec<Hollow> = (0..config.count)
        .map(|i| hollow(&config, &client, i))
        .collect();
    let started = Instant::now();
    register(&client, &mut nodes).await?;
    tracing::info!(
        nodes = nodes.len(),
        seconds = started.elapsed().as_secs_f64(),
        "hollow nodes registered"
    );
    let nodes = Arc::new(nodes);
    let tasks = [
        tokio::spawn(leases(client.clone(), nodes.clone())),
        tokio::spawn(statuses(client.clone(), nodes.clone())),
        tokio::spawn(pods(client, nodes)),
    ];
    shutdown.await;
    for t in tasks {
        t.abort();
    }
    Ok(())
}
