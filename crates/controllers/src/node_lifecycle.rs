//! The node lifecycle controller's pure core: node health from Lease renewals and status
//! heartbeats (conditions to Unknown after the grace period), the condition taints
//! (NoExecute not-ready/unreachable, NoSchedule for conditions and unschedulable), taint-based
//! eviction of pods after their tolerationSeconds, and node IPAM (a /24 per node from the
//! cluster CIDR) — upstream `pkg/controller/nodelifecycle`, `tainteviction` and `nodeipam`.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::workload::{self, Event};

/// Upstream's default `--node-monitor-grace-period`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(40);
/// The NoExecute/NoSchedule taint of a node whose Ready condition is False.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// The NoExecute/NoSchedule taint of a node whose Ready condition is Unknown.
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
/// The conditions the controller turns Unknown when the kubelet goes quiet.
const WATCHED: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// Why a cluster CIDR cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CidrError {
    /// Not `a.b.c.d/n` IPv4 with n ≤ 24.
    #[error("invalid cluster CIDR {0:?}: want an IPv4 a.b.c.d/n with n <= 24")]
    Invalid(String),
}

/// What one node reconcile asks of the shell.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeSync {
    /// New conditions to write to the node's status.
    pub conditions: Option<Vec<NodeCondition>>,
    /// New spec.taints to write.
    pub taints: Option<Vec<Taint>>,
    /// Pods on the node whose Ready condition must turn False.
    pub mark_not_ready: Vec<(String, String)>,
    /// Events to record on the node.
    pub events: Vec<Event>,
    /// When to look again (the grace period ending).
    pub requeue_after: Option<Duration>,
}

fn cond<'a>(conditions: &'a [NodeCondition], type_: &str) -> Option<&'a NodeCondition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// When the node last showed life: the later of its Lease renewal and its Ready heartbeat (its
/// creation when it never reported).
pub fn last_heartbeat(node: &Node, lease: Option<&Lease>) -> Option<Timestamp> {
    let renew = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0);
    let heartbeat = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| cond(c, "Ready"))
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0);
    renew
        .max(heartbeat)
        .or_else(|| node.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// The taints the node's conditions and spec call for (the controller's own keys only).
fn wanted_taints(node: &Node, conditions: &[NodeCondition]) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    let status = |t: &str| cond(conditions, t).map(|c| c.status.as_str());
    match status("Ready") {
        Some("False") => {
            out.push((NOT_READY_TAINT.to_string(), "NoExecute"));
            out.push((NOT_READY_TAINT.to_string(), "NoSchedule"));
        }
        Some("Unknown") | None => {
            out.push((UNREACHABLE_TAINT.to_string(), "NoExecute"));
            out.push((UNREACHABLE_TAINT.to_string(), "NoSchedule"));
        }
        _ => {}
    }
    for (c, key) in [
        ("MemoryPressure", "node.kubernetes.io/memory-pressure"),
        ("DiskPressure", "node.kubernetes.io/disk-pressure"),
        ("PIDPressure", "node.kubernetes.io/pid-pressure"),
        (
            "NetworkUnavailable",
            "node.kubernetes.io/network-unavailable",
        ),
    ] {
        if status(c) == Some("True") {
            out.push((key.to_string(), "NoSchedule"));
        }
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        out.push(("node.kubernetes.io/unschedulable".to_string(), "NoSchedule"));
    }
    out
}

const MANAGED_KEYS: [&str; 7] = [
    NOT_READY_TAINT,
    UNREACHABLE_TAINT,
    "node.kubernetes.io/memory-pressure",
    "node.kubernetes.io/disk-pressure",
    "node.kubernetes.io/pid-pressure",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/unschedulable",
];

/// Reconciles one node's health and taints at `now`.
pub fn reconcile(
    node: &Node,
    lease: Option<&Lease>,
    pods: &[Pod],
    now: Timestamp,
    grace: Duration,
) -> NodeSync {
    let mut sync = NodeSync::default();
    let name = node.metadata.name.clone().unwrap_or_default();
    let old = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut conditions = old.clone();
    let grace_secs = i64::try_from(grace.as_secs()).unwrap_or(40);
    let last = last_heartbeat(node, lease).unwrap_or(now);
    let silent_for = now.as_second() - last.as_second();
    let was_ready = cond(&old, "Ready").map(|c| c.status.clone());
    if silent_for > grace_secs {
        for type_ in WATCHED {
            match conditions.iter_mut().find(|c| c.type_ == type_) {
                Some(c) if c.status == "Unknown" => {}
                Some(c) => {
                    c.status = "Unknown".to_string();
                    c.reason = Some("NodeStatusUnknown".to_string());
                    c.message = Some("Kubelet stopped posting node status.".to_string());
                    c.last_transition_time = Some(Time(now));
                }
                None => conditions.push(NodeCondition {
                    type_: type_.to_string(),
                    status: "Unknown".to_string(),
                    reason: Some("NodeStatusNeverUpdated".to_string()),
                    message: Some("Kubelet never posted node status.".to_string()),
                    last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                    last_transition_time: Some(Time(now)),
                }),
            }
        }
    } else {
        sync.requeue_after = Some(Duration::from_secs(
            u64::try_from(grace_secs - silent_for + 1).unwrap_or(1),
        ));
    }
    let ready_now = cond(&conditions, "Ready").map(|c| c.status.clone());
    if conditions != old {
        if was_ready.as_deref() == Some("True") && ready_now.as_deref() != Some("True") {
            sync.events.push(Event::normal(
                "NodeNotReady",
                format!("Node {name} status is now: NodeNotReady"),
            ));
        }
        sync.conditions = Some(conditions.clone());
    }
    if ready_now.as_deref() != Some("True") {
        for p in pods
            .iter()
            .filter(|p| workload::is_ready(p) && !workload::is_terminal(p))
        {
            sync.mark_not_ready.push((
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            ));
        }
    }

    // Taints: keep foreign ones and current ones still wanted; add the missing.
    let old_taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let wanted = if ready_now.is_none() && old.is_empty() && silent_for <= grace_secs {
        // A node that never reported is left to its kubelet's registration taints.
        Vec::new()
    } else {
        wanted_taints(node, &conditions)
    };
    let mut taints: Vec<Taint> = old_taints
        .iter()
        .filter(|t| {
            !MANAGED_KEYS.contains(&t.key.as_str())
                || wanted.iter().any(|(k, e)| *k == t.key && *e == t.effect)
        })
        .cloned()
        .collect();
    for (key, effect) in &wanted {
        if !taints.iter().any(|t| t.key == *key && t.effect == *effect) {
            taints.push(Taint {
                key: key.clone(),
                value: None,
                effect: (*effect).to_string(),
                time_added: (*effect == "NoExecute").then_some(Time(now)),
            });
        }
    }
    if taints != old_taints {
        sync.taints = Some(taints);
    }
    sync
}

/// What taint-based eviction asks for one node's pods.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evictions {
    /// Pods (namespace, name) to delete now.
    pub evict: Vec<(String, String)>,
    /// When the next toleration runs out.
    pub requeue_after: Option<Duration>,
}

/// Upstream's taint eviction: pods on a node with NoExecute taints go when a taint is not
/// tolerated, or when the shortest tolerationSeconds of the tolerations in use has passed since
/// the taint was added.
pub fn evictions(node: &Node, pods: &[Pod], now: Timestamp) -> Evictions {
    let mut out = Evictions::default();
    let taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.effect == "NoExecute")
        .collect();
    if taints.is_empty() {
        return out;
    }
    for pod in pods
        .iter()
        .filter(|p| !workload::is_deleting(p) && !workload::is_terminal(p))
    {
        let tolerations = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.clone())
            .unwrap_or_default();
        let key = (
            pod.metadata.namespace.clone().unwrap_or_default(),
            pod.metadata.name.clone().unwrap_or_default(),
        );
        let mut used: Vec<&k8s_openapi::api::core::v1::Toleration> = Vec::new();
        let mut untolerated = false;
        for taint in &taints {
            let matching: Vec<_> = tolerations
                .iter()
                .filter(|t| workload::tolerates(t, taint))
                .collect();
            untolerated |= matching.is_empty();
            used.extend(matching);
        }
        let since = taints
            .iter()
            .map(|t| t.time_added.as_ref().map_or(now, |t| t.0))
            .min()
            .unwrap_or(now);
        let due = used
            .iter()
            .filter_map(|t| t.toleration_seconds)
            .min()
            .map(|s| since.as_second() + s.max(0));
        if untolerated || due.is_some_and(|d| d <= now.as_second()) {
            out.evict.push(key);
        } else if let Some(d) = due {
            let wait = Duration::from_secs(u64::try_from(d - now.as_second()).unwrap_or(1));
            out.requeue_after = Some(out.requeue_after.map_or(wait, |w| w.min(wait)));
        }
    }
    out
}

/// Parses the cluster CIDR into its network and prefix length.
pub fn parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u8), CidrError> {
    let err = || CidrError::Invalid(cidr.to_string());
    let (ip, len) = cidr.split_once('/').ok_or_else(err)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| err())?;
    let len: u8 = len.parse().map_err(|_| err())?;
    if len > 24 {
        return Err(err());
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    Ok((Ipv4Addr::from(u32::from(ip) & mask), len))
}

/// The /24 pod CIDRs to give nodes without one: the lowest free blocks of the cluster CIDR,
/// nodes in name order. Nodes that find no free block are left out.
pub fn allocate_cidrs(cluster: (Ipv4Addr, u8), nodes: &[Node]) -> Vec<(String, String)> {
    let (base, len) = cluster;
    let blocks = 1u32 << (24 - u32::from(len));
    let block = |i: u32| format!("{}/24", Ipv4Addr::from(u32::from(base) + (i << 8)));
    let used: BTreeSet<String> = nodes
        .iter()
        .filter_map(|n| n.spec.as_ref()?.pod_cidr.clone())
        .collect();
    let mut free = (0..blocks).map(block).filter(|b| !used.contains(b));
    let mut wanting: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_none())
        .collect();
    wanting.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    wanting
        .into_iter()
        .filter_map(|n| Some((n.metadata.name.clone()?, free.next()?)))
        .collect()
}

/// The node lifecycle controller (health, taints, taint eviction, IPAM) over node, Lease and
/// pod informers; one worker, so CIDR allocation never races.
#[derive(Debug)]
pub struct NodeLifecycleController {
    ctx: crate::manager::Context,
    nodes: crate::informer::Informer<Node>,
    leases: crate::informer::Informer<Lease>,
    pods: crate::informer::Informer<Pod>,
    queue: crate::queue::WorkQueue<String>,
    grace: Duration,
    cluster: (Ipv4Addr, u8),
    /// CIDRs handed out whose node update the cache may not show yet.
    allocated: parking_lot::Mutex<std::collections::BTreeMap<String, String>>,
    recorder: crate::events::Recorder,
    evictions: crate::events::Recorder,
}

impl NodeLifecycleController {
    /// Registers on the shared informers; `grace` is `--node-monitor-grace-period`, `cluster`
    /// the parsed `--cluster-cidr`.
    pub fn new(ctx: &crate::manager::Context, grace: Duration, cluster: (Ipv4Addr, u8)) -> Self {
        let queue = crate::queue::WorkQueue::new();
        let nodes = ctx.informers.typed::<Node>();
        let leases = ctx.informers.typed::<Lease>();
        let pods = ctx.informers.typed::<Pod>();
        let q = queue.clone();
        nodes.on_change(move |c| {
            if let Some(n) = crate::shell::changed(c).metadata.name.clone() {
                q.add(n);
            }
        });
        let q = queue.clone();
        leases.on_change(move |c| {
            let l = crate::shell::changed(c);
            if l.metadata.namespace.as_deref() == Some("kube-node-lease")
                && let Some(n) = l.metadata.name.clone()
            {
                q.add(n);
            }
        });
        NodeLifecycleController {
            ctx: ctx.clone(),
            nodes,
            leases,
            pods,
            queue,
            grace,
            cluster,
            allocated: parking_lot::Mutex::new(std::collections::BTreeMap::new()),
            recorder: ctx.recorder.for_component("node-controller"),
            evictions: ctx.recorder.for_component("taint-eviction-controller"),
        }
    }
}

impl crate::manager::Controller for NodeLifecycleController {
    type Key = String;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "node-lifecycle"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    fn workers(&self) -> usize {
        1
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        use kube::api::{Patch, PatchParams};
        let Some(node) = self.nodes.get("", key) else {
            return Ok(());
        };
        let client = self.ctx.client.clone();
        let node_api: kube::Api<Node> = kube::Api::all(client.clone());
        let now = self.ctx.clock.now();
        // IPAM.
        if node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_ref())
            .is_none()
        {
            let mut all: Vec<Node> = self
                .nodes
                .list()
                .into_iter()
                .map(|n| (*n).clone())
                .collect();
            let handed = self.allocated.lock().clone();
            for n in &mut all {
                let name = n.metadata.name.clone().unwrap_or_default();
                if let Some(cidr) = handed.get(&name) {
                    n.spec.get_or_insert_with(Default::default).pod_cidr = Some(cidr.clone());
                }
            }
            if let Some((_, cidr)) = allocate_cidrs(self.cluster, &all)
                .into_iter()
                .find(|(n, _)| n == key)
            {
                self.allocated.lock().insert(key.clone(), cidr.clone());
                let patch = serde_json::json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
                crate::shell::patch(&node_api, "Node", key, patch).await?;
            }
        }
        let lease = self.leases.get("kube-node-lease", key);
        let pods: Vec<Pod> = self
            .pods
            .by_node(key)
            .into_iter()
            .map(|p| (*p).clone())
            .collect();
        let sync = reconcile(&node, lease.as_deref(), &pods, now, self.grace);
        if let Some(conditions) = &sync.conditions {
            let status = serde_json::json!({ "conditions": conditions });
            crate::shell::patch_status(&node_api, "Node", key, status).await?;
        }
        let mut effective = (*node).clone();
        if let Some(taints) = &sync.taints {
            let patch = serde_json::json!({"spec": {"taints": taints}});
            crate::shell::patch(&node_api, "Node", key, patch).await?;
            effective.spec.get_or_insert_with(Default::default).taints = Some(taints.clone());
        }
        crate::shell::publish(&self.recorder, &*node, sync.events);
        let stamp = Time(now);
        for (ns, name) in &sync.mark_not_ready {
            let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), ns);
            let patch = serde_json::json!({"status": {"conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": stamp}
            ]}});
            if let Err(source) = api
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
                && !crate::shell::not_found(&source)
            {
                return Err(crate::shell::ShellError::Write {
                    kind: "Pod",
                    name: name.clone(),
                    source,
                });
            }
        }
        let evict = evictions(&effective, &pods, now);
        for (ns, name) in &evict.evict {
            let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), ns);
            let patch = serde_json::json!({"status": {"conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": stamp
            }]}});
            if let Err(source) = api
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
                && !crate::shell::not_found(&source)
            {
                return Err(crate::shell::ShellError::Write {
                    kind: "Pod",
                    name: name.clone(),
                    source,
                });
            }
            if let Some(pod) = pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(name.as_str()))
            {
                self.evictions.publish(
                    pod,
                    "Normal",
                    "TaintManagerEviction",
                    format!("Marking for deletion Pod {ns}/{name}"),
                );
            }
            crate::shell::delete(&api, "Pod", name, None).await?;
        }
        let next = [sync.requeue_after, evict.requeue_after]
            .into_iter()
            .flatten()
            .min();
        if let Some(after) = next {
            self.queue.add_after(key.clone(), after);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::workload::testing::{pod, ts};
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::api::core::v1::{NodeSpec, NodeStatus, Toleration};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

    fn node(heartbeat: &str) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                conditions: Some(vec![NodeCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    reason: Some("KubeletReady".into()),
                    last_heartbeat_time: Some(Time(ts(heartbeat))),
                    last_transition_time: Some(Time(ts(heartbeat))),
                    message: None,
                }]),
                ..Default::default()
            }),
        }
    }

    fn lease(renew: &str) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                renew_time: Some(MicroTime(ts(renew))),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_fresh_lease_keeps_the_node_healthy() {
        let n = node("2026-01-01T00:00:00Z");
        let sync = reconcile(
            &n,
            Some(&lease("2026-01-01T00:00:50Z")),
            &[],
            ts("2026-01-01T00:01:00Z"),
            DEFAULT_GRACE,
        );
        assert!(sync.conditions.is_none());
        assert!(sync.taints.is_none());
        assert_eq!(sync.requeue_after, Some(Duration::from_secs(31)));
    }

    #[test]
    fn silence_past_the_grace_period_turns_ready_unknown_and_taints() {
        let n = node("2026-01-01T00:00:00Z");
        let now = ts("2026-01-01T00:01:00Z");
        let running = pod("a", "Running", true);
        let sync = reconcile(
            &n,
            Some(&lease("2026-01-01T00:00:10Z")),
            &[running],
            now,
            DEFAULT_GRACE,
        );
        let conds = sync.conditions.unwrap();
        let ready = cond(&conds, "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        assert_eq!(
            cond(&conds, "MemoryPressure").unwrap().reason.as_deref(),
            Some("NodeStatusNeverUpdated")
        );
        let taints = sync.taints.unwrap();
        let keys: Vec<_> = taints
            .iter()
            .map(|t| (t.key.as_str(), t.effect.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                (UNREACHABLE_TAINT, "NoExecute"),
                (UNREACHABLE_TAINT, "NoSchedule")
            ]
        );
        assert_eq!(taints[0].time_added, Some(Time(now)));
        assert_eq!(
            sync.mark_not_ready,
            vec![("default".to_string(), "a".to_string())]
        );
        assert_eq!(sync.events[0].reason, "NodeNotReady");
    }

    #[test]
    fn recovery_removes_the_controller_taints_but_keeps_others() {
        let mut n = node("2026-01-01T00:00:55Z");
        n.spec.as_mut().unwrap().taints = Some(vec![
            Taint {
                key: UNREACHABLE_TAINT.into(),
                value: None,
                effect: "NoExecute".into(),
                time_added: None,
            },
            Taint {
                key: "dedicated".into(),
                value: Some("x".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            },
        ]);
        let sync = reconcile(&n, None, &[], ts("2026-01-01T00:01:00Z"), DEFAULT_GRACE);
        let taints = sync.taints.unwrap();
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "dedicated");
    }

    #[test]
    fn eviction_honours_toleration_seconds() {
        let mut n = node("2026-01-01T00:00:00Z");
        n.spec.as_mut().unwrap().taints = Some(vec![Taint {
            key: UNREACHABLE_TAINT.into(),
            value: None,
            effect: "NoExecute".into(),
            time_added: Some(Time(ts("2026-01-01T00:01:00Z"))),
        }]);
        let tolerating = |name: &str, secs: Option<i64>| {
            let mut p = pod(name, "Running", false);
            p.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
                key: Some(UNREACHABLE_TAINT.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: secs,
                ..Default::default()
            }]);
            p
        };
        let pods = [
            pod("bare", "Running", false),
            tolerating("short", Some(5)),
            tolerating("long", Some(300)),
            tolerating("forever", None),
        ];
        let e = evictions(&n, &pods, ts("2026-01-01T00:01:10Z"));
        let names: Vec<_> = e.evict.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["bare", "short"]);
        assert_eq!(e.requeue_after, Some(Duration::from_secs(290)));
    }

    #[test]
    fn ipam_hands_out_the_lowest_free_24s() {
        let cluster = parse_cidr("10.42.0.0/16").unwrap();
        let mut taken = node("2026-01-01T00:00:00Z");
        taken.spec.as_mut().unwrap().pod_cidr = Some("10.42.0.0/24".into());
        let mut b = node("2026-01-01T00:00:00Z");
        b.metadata.name = Some("b".into());
        let mut a = b.clone();
        a.metadata.name = Some("a".into());
        let out = allocate_cidrs(cluster, &[taken, b, a]);
        assert_eq!(
            out,
            [
                ("a".to_string(), "10.42.1.0/24".to_string()),
                ("b".to_string(), "10.42.2.0/24".to_string())
            ]
        );
        assert!(parse_cidr("10.42.0.0/25").is_err());
        let tiny = parse_cidr("10.9.9.0/24").unwrap();
        assert_eq!(tiny.0.to_string(), "10.9.9.0");
    }
}
