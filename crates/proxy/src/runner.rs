//! The proxy's I/O shell: reflectors over Services, EndpointSlices, Nodes, and (for
//! NetworkPolicy) Pods, Namespaces and NetworkPolicies (one writer each,
//! cheap readers), and a sync loop — an explicit state machine — that, after a change has settled
//! for a moment, computes the rule set and the routes to other nodes' pods and hands the kernel
//! only the difference; a failed apply is retried with a full rewrite.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;

use crate::model::{self, Endpoint, ServicePort};
use crate::nft::{self, Netfilter};
use crate::routes::{self, Routes};
use crate::rules::{self, NodeContext, Ruleset};

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// This node's name (its local endpoints, its pod CIDR).
    pub node_name: String,
    /// How long a change may settle before the rules are written (changes arriving meanwhile
    /// share one write).
    pub settle: Duration,
}

/// The kernel boundaries the proxy writes to, each behind its trait (real or fake).
#[derive(Debug, Clone)]
pub struct Kernel {
    pub netfilter: Arc<dyn Netfilter>,
    /// Routes to other nodes' pod CIDRs (host-gw); `None` leaves routing alone.
    pub routes: Option<Arc<dyn Routes>>,
    /// Stale UDP flows; `None` leaves conntrack alone.
    pub conntrack: Option<Arc<dyn crate::conntrack::Conntrack>>,
}

impl Kernel {
    /// This network namespace's nftables, routing table and conntrack, through their tools.
    pub fn host() -> Kernel {
        Kernel {
            netfilter: Arc::new(crate::nft::Nft::default()),
            routes: Some(Arc::new(crate::routes::IpRoutes)),
            conntrack: Some(Arc::new(crate::conntrack::ConntrackTool)),
        }
    }
}

/// What the proxy failed at.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("the caches never filled")]
    CachesClosed,
}

/// The caches the proxy reads.
#[derive(Clone)]
struct Caches {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
    pods: Store<Pod>,
    namespaces: Store<Namespace>,
    policies: Store<NetworkPolicy>,
}

/// Starts a reflector for `api` whose every event bumps `changed`; returns its reader.
fn reflect<K>(api: Api<K>, changed: watch::Sender<u64>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::debug!(error = %e, "proxy watch error; retrying");
                continue;
            }
            changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    });
    reader
}

/// A snapshot of the inputs, turned into the rule set and routes (pure given the snapshot).
fn desired(caches: &Caches, node_name: &str) -> (Ruleset, Vec<routes::Route>) {
    let services = caches.services.state();
    let slices = caches.slices.state();
    let nodes = caches.nodes.state();
    let endpoints = model::endpoints_by_port(slices.iter().map(|s| s.as_ref()));
    let ports: Vec<ServicePort> = services
        .iter()
        .flat_map(|s| model::service_ports(s))
        .collect();
    let empty: Vec<Endpoint> = Vec::new();
    let pairs = ports.iter().map(|p| {
        (
            p,
            endpoints
                .get(&p.id)
                .map_or(empty.as_slice(), |e| e.as_slice()),
        )
    });
    let facts: Vec<routes::NodeFacts> = nodes.iter().filter_map(|n| routes::facts(n)).collect();
    let node = NodeContext {
        name: node_name.to_string(),
        pod_cidr: facts
            .iter()
            .find(|f| f.name == node_name)
            .map(|f| f.pod_cidr.clone()),
        cluster_pod_cidrs: facts.iter().map(|f| f.pod_cidr.clone()).collect(),
    };
    let mut rules = rules::compute(&node, pairs);
    let pods = caches.pods.state();
    let namespaces = caches.namespaces.state();
    let policies = caches.policies.state();
    crate::policy::add(
        &mut rules,
        node_name,
        &pods.iter().map(|p| p.as_ref()).collect::<Vec<_>>(),
        &namespaces.iter().map(|n| n.as_ref()).collect::<Vec<_>>(),
        &policies.iter().map(|p| p.as_ref()).collect::<Vec<_>>(),
    );
    (rules, routes::desired(node_name, &facts))
}

/// Where the sync loop is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a change.
    Idle,
    /// A change came; waiting for it to settle.
    Settling,
    /// The last write failed; waiting to rewrite everything.
    Backoff(Duration),
}

/// The loop's memory between writes.
struct Syncer {
    kernel: Kernel,
    /// What the kernel holds, when known.
    applied: Option<Ruleset>,
}

impl Syncer {
    /// Writes `(rules, routes)`; the difference when the kernel's state is known, else everything.
    fn sync(&mut self, rules: Ruleset, wanted_routes: &[routes::Route]) -> Result<(), String> {
        let script = match &self.applied {
            Some(old) => nft::diff(old, &rules),
            None => nft::full(&rules),
        };
        if !script.is_empty()
            && let Err(e) = self.kernel.netfilter.apply(&script)
        {
            self.applied = None;
            return Err(format!("{e}"));
        }
        if let (Some(old), Some(ct)) = (&self.applied, &self.kernel.conntrack) {
            let stale = crate::conntrack::stale(old, &rules);
            if !stale.is_empty()
                && let Err(e) = ct.delete(&stale)
            {
                tracing::warn!(error = %e, "deleting stale UDP flows failed");
            }
        }
        self.applied = Some(rules);
        if let Some(r) = &self.kernel.routes {
            r.sync(wanted_routes).map_err(|e| format!("{e}"))?;
        }
        Ok(())
    }
}

/// Runs the proxy until `shutdown` resolves. The table stays in the kernel afterwards (as
/// upstream's), so a restart does not interrupt Services.
pub async fn run(
    client: Client,
    options: Options,
    kernel: Kernel,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProxyError> {
    let (changed, mut changes) = watch::channel(0u64);
    let caches = Caches {
        services: reflect(Api::<Service>::all(client.clone()), changed.clone()),
        slices: reflect(Api::<EndpointSlice>::all(client.clone()), changed.clone()),
        nodes: reflect(Api::<Node>::all(client.clone()), changed.clone()),
        pods: reflect(Api::<Pod>::all(client.clone()), changed.clone()),
        namespaces: reflect(Api::<Namespace>::all(client.clone()), changed.clone()),
        policies: reflect(Api::<NetworkPolicy>::all(client), changed),
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let ready = async {
        caches.services.wait_until_ready().await?;
        caches.slices.wait_until_ready().await?;
        caches.nodes.wait_until_ready().await?;
        caches.pods.wait_until_ready().await?;
        caches.namespaces.wait_until_ready().await?;
        caches.policies.wait_until_ready().await
    };
    tokio::select! {
        r = ready => r.map_err(|_| ProxyError::CachesClosed)?,
        () = &mut shutdown => return Ok(()),
    }
    let mut syncer = Syncer {
        kernel,
        applied: None,
    };
    let mut state = State::Settling;
    loop {
        let wait = match state {
            State::Idle => None,
            State::Settling => Some(options.settle),
            State::Backoff(d) => Some(d),
        };
        let event = async {
            match wait {
                Some(d) => {
                    tokio::time::sleep(d).await;
                    true
                }
                None => changes.changed().await.is_ok(),
            }
        };
        let timer_or_change = tokio::select! {
            alive = event => alive,
            () = &mut shutdown => return Ok(()),
        };
        if !timer_or_change {
            return Ok(());
        }
        state = match state {
            State::Idle => State::Settling,
            State::Settling | State::Backoff(_) => {
                changes.mark_unchanged();
                let (rules, wanted_routes) = desired(&caches, &options.node_name);
                match syncer.sync(rules, &wanted_routes) {
                    Ok(()) => State::Idle,
                    Err(e) => {
                        tracing::warn!(error = %e, "programming services failed; retrying");
                        let next = match state {
                            State::Backoff(d) => (d * 2).min(Duration::from_secs(30)),
                            _ => Duration::from_secs(1),
                        };
                        State::Backoff(next)
                    }
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nft::Recorder;
    use crate::rules::compute;

    fn node() -> NodeContext {
        NodeContext {
            name: "n1".into(),
            pod_cidr: None,
            cluster_pod_cidrs: Vec::new(),
        }
    }

    #[test]
    fn the_first_sync_writes_everything_then_only_differences_and_a_failure_rewrites() {
        let recorder = Recorder::default();
        let mut syncer = Syncer {
            kernel: Kernel {
                netfilter: Arc::new(recorder.clone()),
                routes: None,
                conntrack: None,
            },
            applied: None,
        };
        let empty = compute(&node(), std::iter::empty());
        syncer.sync(empty.clone(), &[]).expect("first");
        syncer.sync(empty.clone(), &[]).expect("again");
        let scripts = recorder.scripts();
        assert_eq!(scripts.len(), 1, "an unchanged rule set writes nothing");
        assert!(scripts[0].contains("delete table ip oxkube-proxy"));
        recorder
            .fail_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut changed = empty.clone();
        changed
            .chains
            .insert("extra".into(), rules::Chain::default());
        assert!(syncer.sync(changed.clone(), &[]).is_err());
        syncer.sync(changed, &[]).expect("retry");
        let scripts = recorder.scripts();
        assert_eq!(scripts.len(), 2);
        assert!(
            scripts[1].contains("delete table"),
            "after a failure the kernel's state is unknown: a full rewrite"
        );
    }
}
