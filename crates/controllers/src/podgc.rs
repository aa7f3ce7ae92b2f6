//! The pod garbage collector's pure core (upstream `pkg/controller/podgc`): terminated pods over
//! the threshold (oldest first), pods bound to nodes that are gone (after a quarantine pass),
//! terminating pods never scheduled, and terminating pods on out-of-service nodes.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Node, Pod};

use crate::workload;

/// Upstream's default `--terminated-pod-gc-threshold`.
pub const DEFAULT_THRESHOLD: usize = 12_500;
/// The taint marking a node out of service.
pub const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

/// Why a pod is collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// More terminated pods than the threshold.
    Terminated,
    /// Bound to a node that no longer exists.
    Orphaned,
    /// Being deleted and never scheduled.
    Unscheduled,
    /// Being deleted on a node that is not ready and out of service.
    OutOfService,
}

impl Reason {
    /// The DisruptionTarget condition message upstream sets before deleting (when it does).
    pub fn condition_message(self) -> Option<&'static str> {
        match self {
            Reason::Orphaned => Some("PodGC: node no longer exists"),
            Reason::OutOfService => Some("PodGC: node is out of service"),
            Reason::Terminated | Reason::Unscheduled => None,
        }
    }
}

/// A pod to force-delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collect {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// Why.
    pub reason: Reason,
}

/// What one pass asks of the shell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GcPass {
    /// Pods to collect.
    pub collect: Vec<Collect>,
    /// Nodes found missing this pass: the next pass's quarantine.
    pub missing: BTreeSet<String>,
}

fn collect(pod: &Pod, reason: Reason) -> Collect {
    Collect {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        reason,
    }
}

/// One garbage-collection pass over all pods and nodes. `quarantined` are the nodes the
/// previous pass found missing: their pods go only when the node is still missing now.
pub fn reconcile(
    pods: &[Pod],
    nodes: &[Node],
    quarantined: &BTreeSet<String>,
    threshold: usize,
) -> GcPass {
    let mut pass = GcPass::default();
    let names: BTreeSet<&str> = nodes
        .iter()
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    let out_of_service: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| {
            let taints = n.spec.as_ref().and_then(|s| s.taints.as_ref());
            let tainted = taints.is_some_and(|ts| ts.iter().any(|t| t.key == OUT_OF_SERVICE_TAINT));
            let ready = n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True");
            tainted && !ready
        })
        .filter_map(|n| n.metadata.name.as_deref())
        .collect();
    let mut taken: BTreeSet<(String, String)> = BTreeSet::new();
    let mut push = |pass: &mut GcPass, pod: &Pod, reason: Reason| {
        let c = collect(pod, reason);
        if taken.insert((c.namespace.clone(), c.name.clone())) {
            pass.collect.push(c);
        }
    };

    // Terminated pods over the threshold, oldest first.
    if threshold > 0 {
        let mut terminated: Vec<&Pod> = pods
            .iter()
            .filter(|p| workload::is_terminal(p) && !workload::is_deleting(p))
            .collect();
        if terminated.len() > threshold {
            terminated.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
            let excess = terminated.len() - threshold;
            for p in terminated.into_iter().take(excess) {
                push(&mut pass, p, Reason::Terminated);
            }
        }
    }
    for pod in pods {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty());
        match node {
            Some(n) if !names.contains(n) => {
                pass.missing.insert(n.to_string());
                if quarantined.contains(n) {
                    push(&mut pass, pod, Reason::Orphaned);
                }
            }
            Some(n) if workload::is_deleting(pod) && out_of_service.contains(n) => {
                push(&mut pass, pod, Reason::OutOfService)
            }
            None if workload::is_deleting(pod) => push(&mut pass, pod, Reason::Unscheduled),
            _ => {}
        }
    }
    pass
}

/// How often the collector runs (upstream's `gcCheckPeriod`).
pub const PERIOD: std::time::Duration = std::time::Duration::from_secs(20);

/// The pod garbage collector: a periodic pass over the pod and node informers.
#[derive(Debug)]
pub struct PodGcController {
    ctx: crate::manager::Context,
    pods: crate::informer::Informer<Pod>,
    nodes: crate::informer::Informer<Node>,
    queue: crate::queue::WorkQueue<&'static str>,
    quarantine: parking_lot::Mutex<BTreeSet<String>>,
    threshold: usize,
}

impl PodGcController {
    /// Registers on the shared informers and schedules the first pass.
    pub fn new(ctx: &crate::manager::Context, threshold: usize) -> Self {
        let queue = crate::queue::WorkQueue::new();
        queue.add_after("podgc", PERIOD);
        PodGcController {
            ctx: ctx.clone(),
            pods: ctx.informers.typed::<Pod>(),
            nodes: ctx.informers.typed::<Node>(),
            queue,
            quarantine: parking_lot::Mutex::new(BTreeSet::new()),
            threshold,
        }
    }
}

impl crate::manager::Controller for PodGcController {
    type Key = &'static str;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "pod-garbage-collector"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    fn workers(&self) -> usize {
        1
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        use kube::api::{DeleteParams, Patch, PatchParams};
        let pods: Vec<Pod> = self.pods.list().into_iter().map(|p| (*p).clone()).collect();
        let nodes: Vec<Node> = self
            .nodes
            .list()
            .into_iter()
            .map(|n| (*n).clone())
            .collect();
        let quarantined = self.quarantine.lock().clone();
        let pass = reconcile(&pods, &nodes, &quarantined, self.threshold);
        *self.quarantine.lock() = pass.missing;
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(self.ctx.clock.now());
        for c in pass.collect {
            let api: kube::Api<Pod> = kube::Api::namespaced(self.ctx.client.clone(), &c.namespace);
            if let Some(message) = c.reason.condition_message() {
                let patch = serde_json::json!({"status": {"phase": "Failed", "conditions": [{
                    "type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                    "message": message, "lastTransitionTime": now
                }]}});
                if let Err(source) = api
                    .patch_status(&c.name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                    && !crate::shell::not_found(&source)
                {
                    return Err(crate::shell::ShellError::Write {
                        kind: "Pod",
                        name: c.name,
                        source,
                    });
                }
            }
            match api
                .delete(&c.name, &DeleteParams::default().grace_period(0))
                .await
            {
                Ok(_) => {}
                Err(e) if crate::shell::not_found(&e) => {}
                Err(source) => {
                    return Err(crate::shell::ShellError::Delete {
                        kind: "Pod",
                        name: c.name,
                        source,
                    });
                }
            }
        }
        self.queue.add_after(key, PERIOD);
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::workload::testing::{pod, ts};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn node(name: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn on(name: &str, phase: &str, node: Option<&str>) -> Pod {
        let mut p = pod(name, phase, false);
        p.spec.as_mut().unwrap().node_name = node.map(Into::into);
        p
    }

    #[test]
    fn orphans_go_after_a_quarantine_pass() {
        let pods = [
            on("a", "Running", Some("gone")),
            on("b", "Running", Some("n1")),
        ];
        let nodes = [node("n1")];
        let first = reconcile(&pods, &nodes, &BTreeSet::new(), DEFAULT_THRESHOLD);
        assert!(first.collect.is_empty());
        assert_eq!(first.missing, ["gone".to_string()].into());
        let second = reconcile(&pods, &nodes, &first.missing, DEFAULT_THRESHOLD);
        assert_eq!(second.collect.len(), 1);
        assert_eq!(second.collect[0].name, "a");
        assert_eq!(second.collect[0].reason, Reason::Orphaned);
        assert_eq!(
            Reason::Orphaned.condition_message(),
            Some("PodGC: node no longer exists")
        );
    }

    #[test]
    fn terminated_over_threshold_oldest_first_and_unscheduled_terminating() {
        let mut old = on("old", "Succeeded", Some("n1"));
        old.metadata.creation_timestamp = Some(Time(ts("2025-01-01T00:00:00Z")));
        let mut terminating = on("t", "Pending", None);
        terminating.metadata.deletion_timestamp = Some(Time(ts("2026-01-01T00:00:00Z")));
        let pods = [on("new", "Failed", Some("n1")), old, terminating];
        let pass = reconcile(&pods, &[node("n1")], &BTreeSet::new(), 1);
        let got: Vec<_> = pass
            .collect
            .iter()
            .map(|c| (c.name.as_str(), c.reason))
            .collect();
        assert_eq!(
            got,
            [("old", Reason::Terminated), ("t", Reason::Unscheduled)]
        );
    }
}
