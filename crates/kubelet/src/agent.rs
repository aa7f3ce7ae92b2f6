//! One real node's agent loop over any runtime: the node is registered already; this renews its
//! lease, re-posts its status, and runs a pod worker for every pod bound to it until shut down.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};

use crate::dispatch::{self, Dispatcher};
use crate::hollow::{LEASE_PERIOD, STATUS_PERIOD};
use crate::node::{self, NodeFacts};
use crate::pod_worker::NodeHandle;

/// Renews the node's lease once per [`LEASE_PERIOD`].
async fn leases(client: Client, name: String, uid: String) {
    let mut tick = tokio::time::interval(LEASE_PERIOD);
    loop {
        tick.tick().await;
        if let Err(e) = node::renew_lease(&client, &name, &uid).await {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "lease renewal failed");
        }
    }
}

/// Re-posts the node's status once per [`STATUS_PERIOD`] (after the registration's post).
async fn statuses(client: Client, facts: NodeFacts) {
    let api: Api<Node> = Api::all(client.clone());
    let mut tick = tokio::time::interval(STATUS_PERIOD);
    tick.tick().await;
    loop {
        tick.tick().await;
        let old = api.get_opt(&facts.name).await.ok().flatten();
        let old = old.as_ref().and_then(|n| n.status.as_ref());
        if let Err(e) = node::post_status(&client, &facts, old).await {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "node status post failed");
        }
    }
}

/// Runs the registered node `facts` (of uid `node_uid`) with `handle` until `shutdown` resolves.
/// Pods keep running in the runtime when the agent stops, as upstream's kubelet.
pub async fn run(
    handle: NodeHandle,
    facts: NodeFacts,
    node_uid: String,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let client = handle.client.clone();
    let fields = format!("spec.nodeName={}", facts.name);
    let dispatcher = Dispatcher::new(HashMap::from([(facts.name.clone(), handle)]));
    let tasks = [
        tokio::spawn(leases(client.clone(), facts.name.clone(), node_uid)),
        tokio::spawn(statuses(client.clone(), facts)),
        tokio::spawn(async move { dispatch::watch_pods(client, &fields, dispatcher).await }),
    ];
    shutdown.await;
    for t in tasks {
        t.abort();
    }
}
