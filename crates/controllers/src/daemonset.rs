//! The DaemonSet controller's pure core: one pod per eligible node (nodeSelector, required node
//! affinity, taints against the pod's and the default daemon tolerations), pinned to its node by
//! node affinity for the scheduler, RollingUpdate with maxUnavailable, ControllerRevisions and
//! upstream's status counts (`pkg/controller/daemon`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodTemplateSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::workload::{self, Event};

/// The label with the pod's revision hash.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The (deprecated, still set) label with the DaemonSet generation a pod was made from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

/// What one reconcile asks of the shell: create `revision`, delete and create pods, then write
/// `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSetSync {
    /// The update revision, when no ControllerRevision records it yet.
    pub revision: Option<ControllerRevision>,
    /// Pods to create (with `generateName`), one per node that lacks one.
    pub create: Vec<Pod>,
    /// Pods to delete.
    pub delete: Vec<String>,
    /// The status to write.
    pub status: DaemonSetStatus,
    /// Events to record on the DaemonSet.
    pub events: Vec<Event>,
}

fn toleration(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some(effect.to_string()),
        ..Default::default()
    }
}

/// The template with upstream's default daemon tolerations added (`AddOrUpdateDaemonPodTolerations`).
pub fn with_daemon_tolerations(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = template.clone();
    let spec = t.spec.get_or_insert_with(Default::default);
    let mut defaults = vec![
        toleration("node.kubernetes.io/not-ready", "NoExecute"),
        toleration("node.kubernetes.io/unreachable", "NoExecute"),
        toleration("node.kubernetes.io/disk-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/memory-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/pid-pressure", "NoSchedule"),
        toleration("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        defaults.push(toleration(
            "node.kubernetes.io/network-unavailable",
            "NoSchedule",
        ));
    }
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    for d in defaults {
        if !tolerations
            .iter()
            .any(|t| t.key == d.key && t.effect == d.effect)
        {
            tolerations.push(d);
        }
    }
    t
}

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = req.values.clone().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        op @ ("Gt" | "Lt") => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if op == "Gt" { v > bound } else { v < bound }
        }
        _ => false,
    }
}

/// Whether `node` satisfies a required node selector (terms ORed, requirements ANDed).
pub fn node_selector_matches(selector: &NodeSelector, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref();
    selector.node_selector_terms.iter().any(|term| {
        let exprs = term.match_expressions.iter().flatten();
        let fields = term.match_fields.iter().flatten();
        let nonempty = term
            .match_expressions
            .as_ref()
            .is_some_and(|e| !e.is_empty())
            || term.match_fields.as_ref().is_some_and(|f| !f.is_empty());
        nonempty
            && exprs
                .clone()
                .all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
            && fields
                .clone()
                .all(|r| requirement_matches(r, if r.key == "metadata.name" { name } else { None }))
    })
}

/// Upstream `NodeShouldRunDaemonPod`: (should run, should continue running).
pub fn should_run(template: &PodTemplateSpec, node: &Node) -> (bool, bool) {
    let spec = template.spec.clone().unwrap_or_default();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let affinity_ok = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_none_or(|sel| node_selector_matches(sel, node));
    if !selector_ok || !affinity_ok {
        return (false, false);
    }
    let tolerations = spec.tolerations.unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let untolerated = |effect: &str| {
        taints
            .iter()
            .any(|t| t.effect == effect && !workload::tolerated(&tolerations, t))
    };
    let no_execute = untolerated("NoExecute");
    (!no_execute && !untolerated("NoSchedule"), !no_execute)
}

/// The daemon pod for `node`: the template pinned to the node by required node affinity.
pub fn new_pod(ds: &DaemonSet, template: &PodTemplateSpec, hash: &str, node: &str) -> Pod {
    let ds_name = ds.metadata.name.clone().unwrap_or_default();
    let mut meta = template.metadata.clone().unwrap_or_default();
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(REVISION_LABEL.to_string(), hash.to_string());
    if let Some(generation) = ds.metadata.generation {
        labels.insert(
            TEMPLATE_GENERATION_LABEL.to_string(),
            generation.to_string(),
        );
    }
    meta.generate_name = Some(format!("{ds_name}-"));
    meta.name = None;
    meta.namespace = ds.metadata.namespace.clone();
    meta.owner_references = Some(vec![workload::controller_ref(
        "apps/v1",
        "DaemonSet",
        &ds.metadata,
    )]);
    let mut spec = template.spec.clone().unwrap_or_default();
    let field = NodeSelectorRequirement {
        key: "metadata.name".to_string(),
        operator: "In".to_string(),
        values: Some(vec![node.to_string()]),
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    let required = node_affinity
        .required_during_scheduling_ignored_during_execution
        .get_or_insert_with(NodeSelector::default);
    if required.node_selector_terms.is_empty() {
        required
            .node_selector_terms
            .push(NodeSelectorTerm::default());
    }
    for term in &mut required.node_selector_terms {
        term.match_fields = Some(vec![field.clone()]);
    }
    Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    }
}

/// The node a daemon pod is bound or pinned to.
pub fn pod_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(n) = spec.node_name.clone().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields
            .iter()
            .flatten()
            .find(|f| f.key == "metadata.name" && f.operator == "In")
            .and_then(|f| f.values.as_ref()?.first().cloned())
    })
}

fn scaled(value: Option<&IntOrString>, total: i32, default: i32) -> i32 {
    match value {
        None => default,
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let v = (pct * i64::from(total) + 99) / 100;
            i32::try_from(v).unwrap_or(default)
        }
    }
}

/// Reconciles `ds` against the cluster's nodes, its pods and revisions at `now`.
pub fn reconcile(
    ds: &DaemonSet,
    nodes: &[Node],
    pods: &[Pod],
    revisions: &[ControllerRevision],
    now: Timestamp,
) -> DaemonSetSync {
    let spec = ds.spec.clone();
    let old = ds.status.clone().unwrap_or_default();
    let next_number = revisions
        .iter()
        .filter_map(|r| r.revision)
        .max()
        .unwrap_or(0)
        + 1;
    let candidate = workload::revision_of(
        "apps/v1",
        "DaemonSet",
        &ds.metadata,
        &spec.template,
        old.collision_count,
        next_number,
    );
    let hash = workload::revision_hash(&candidate);
    let exists = revisions
        .iter()
        .any(|r| r.metadata.name == candidate.metadata.name);
    let template = with_daemon_tolerations(&spec.template);
    let mut sync = DaemonSetSync {
        revision: (!exists).then_some(candidate),
        create: Vec::new(),
        delete: Vec::new(),
        status: DaemonSetStatus::default(),
        events: Vec::new(),
    };
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let mut by_node: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
    for p in pods.iter().filter(|p| !workload::is_deleting(p)) {
        if let Some(n) = pod_node(p) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let is_updated = |p: &Pod| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(REVISION_LABEL))
            == Some(&hash)
    };
    let (mut desired, mut current, mut misscheduled, mut ready, mut updated, mut available) =
        (0, 0, 0, 0, 0, 0);
    let mut old_pods: Vec<(&Pod, bool)> = Vec::new();
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let (run, keep) = should_run(&template, node);
        let mut here = by_node.remove(&name).unwrap_or_default();
        here.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
        if run {
            desired += 1;
        }
        if !here.is_empty() {
            if run {
                current += 1;
            } else {
                misscheduled += 1;
            }
        }
        if run || keep {
            let (failed, live): (Vec<&Pod>, Vec<&Pod>) =
                here.iter().partition(|p| workload::phase(p) == "Failed");
            for p in &failed {
                let pname = p.metadata.name.clone().unwrap_or_default();
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                sync.events.push(Event::warning(
                    "FailedDaemonPod",
                    format!(
                        "Found failed daemon pod {ns}/{pname} on node {name}, will try to kill it"
                    ),
                ));
                sync.delete.push(pname);
            }
            if run && live.is_empty() {
                sync.create.push(new_pod(ds, &template, &hash, &name));
            }
            // Keep the oldest; delete duplicates.
            sync.delete
                .extend(live.iter().skip(1).filter_map(|p| p.metadata.name.clone()));
            if let Some(p) = live.first() {
                let ok = workload::is_available(p, min_ready, now);
                if workload::is_ready(p) {
                    ready += 1;
                }
                if ok {
                    available += 1;
                }
                if is_updated(p) {
                    updated += 1;
                } else if run {
                    old_pods.push((p, ok));
                }
            }
        } else {
            sync.delete
                .extend(here.iter().filter_map(|p| p.metadata.name.clone()));
        }
    }
    // Pods on nodes that no longer exist.
    for ps in by_node.values() {
        sync.delete
            .extend(ps.iter().filter_map(|p| p.metadata.name.clone()));
    }

    // Rolling update: old unavailable pods go at once, available ones within maxUnavailable.
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    if strategy.type_.as_deref() != Some("OnDelete") {
        let max_unavailable = scaled(
            strategy
                .rolling_update
                .as_ref()
                .and_then(|r| r.max_unavailable.as_ref()),
            desired,
            1,
        )
        .max(1);
        let mut unavailable = desired - available;
        for (p, ok) in &old_pods {
            if !ok {
                sync.delete.extend(p.metadata.name.clone());
            }
        }
        for (p, ok) in &old_pods {
            if *ok && unavailable < max_unavailable {
                sync.delete.extend(p.metadata.name.clone());
                unavailable += 1;
            }
        }
    }

    sync.status = DaemonSetStatus {
        collision_count: old.collision_count,
        conditions: old.conditions,
        current_number_scheduled: current,
        desired_number_scheduled: desired,
        number_available: Some(available),
        number_misscheduled: misscheduled,
        number_ready: ready,
        number_unavailable: Some(desired - available),
        observed_generation: ds.metadata.generation,
        updated_number_scheduled: Some(updated),
    };
    sync
}

/// The DaemonSet controller: the core behind informers of DaemonSets, nodes, pods and
/// ControllerRevisions.
#[derive(Debug)]
pub struct DaemonSetController {
    ctx: crate::manager::Context,
    sets: crate::informer::Informer<DaemonSet>,
    nodes: crate::informer::Informer<Node>,
    pods: crate::informer::Informer<Pod>,
    revisions: crate::informer::Informer<ControllerRevision>,
    queue: crate::queue::WorkQueue<crate::informer::ObjectKey>,
    expectations: crate::expectations::Expectations<crate::informer::ObjectKey>,
    recorder: crate::events::Recorder,
}

impl DaemonSetController {
    /// Registers on the shared informers.
    pub fn new(ctx: &crate::manager::Context) -> Self {
        let queue = crate::queue::WorkQueue::new();
        let sets = ctx.informers.typed::<DaemonSet>();
        let nodes = ctx.informers.typed::<Node>();
        let pods = ctx.informers.typed::<Pod>();
        let q = queue.clone();
        sets.on_change(move |c| q.add(crate::informer::ObjectKey::of(crate::shell::changed(c))));
        let expectations = crate::expectations::Expectations::new(ctx.clock.clone());
        let q = queue.clone();
        let exp = expectations.clone();
        pods.on_change(move |c| {
            if let crate::informer::Change::Added(p) = c
                && let Some(owner) =
                    crate::owner::controller_ref(&p.metadata).filter(|o| o.kind == "DaemonSet")
            {
                exp.creation_observed(&crate::informer::ObjectKey::new(
                    p.metadata.namespace.clone().unwrap_or_default(),
                    owner.name.clone(),
                ));
            }
            crate::shell::enqueue_controller(c, "DaemonSet", &q);
        });
        let q = queue.clone();
        let all = sets.clone();
        nodes.on_change(move |_| {
            for ds in all.list() {
                q.add(crate::informer::ObjectKey::of(&*ds));
            }
        });
        DaemonSetController {
            ctx: ctx.clone(),
            sets,
            nodes,
            pods,
            revisions: ctx.informers.typed::<ControllerRevision>(),
            queue,
            expectations,
            recorder: ctx.recorder.for_component("daemonset-controller"),
        }
    }
}

impl crate::manager::Controller for DaemonSetController {
    type Key = crate::informer::ObjectKey;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "daemonset"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        let Some(ds) = self.sets.get(&key.namespace, &key.name) else {
            self.expectations.delete(key);
            return Ok(());
        };
        if ds.metadata.deletion_timestamp.is_some() || !self.expectations.satisfied(key) {
            return Ok(());
        }
        let uid = ds.metadata.uid.clone().unwrap_or_default();
        let pods: Vec<Pod> = self
            .pods
            .by_owner(&uid)
            .into_iter()
            .filter(|p| workload::is_controlled_by(&p.metadata, &uid))
            .map(|p| (*p).clone())
            .collect();
        let revisions: Vec<ControllerRevision> = self
            .revisions
            .by_owner(&uid)
            .into_iter()
            .map(|r| (*r).clone())
            .collect();
        let nodes: Vec<Node> = self
            .nodes
            .list()
            .into_iter()
            .map(|n| (*n).clone())
            .collect();
        let sync = reconcile(&ds, &nodes, &pods, &revisions, self.ctx.clock.now());
        let client = self.ctx.client.clone();
        if let Some(rev) = &sync.revision {
            let api: kube::Api<ControllerRevision> =
                kube::Api::namespaced(client.clone(), &key.namespace);
            crate::shell::create(&api, "ControllerRevision", rev).await?;
        }
        let pod_api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &key.namespace);
        crate::shell::delete_then_create_pods(
            &pod_api,
            &self.recorder,
            &self.expectations,
            key,
            &*ds,
            &sync.delete,
            &sync.create,
        )
        .await?;
        crate::shell::publish(&self.recorder, &*ds, sync.events);
        if ds.status.as_ref() != Some(&sync.status) {
            let api: kube::Api<DaemonSet> = kube::Api::namespaced(client, &key.namespace);
            let status = serde_json::to_value(&sync.status).unwrap_or_default();
            crate::shell::patch_status(&api, "DaemonSet", &key.name, status).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::workload::testing::{pod, ts};
    use k8s_openapi::api::apps::v1::DaemonSetSpec;
    use k8s_openapi::api::core::v1::{NodeSpec, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, taints: Vec<Taint>) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([("kubernetes.io/os".to_string(), "linux".to_string())].into()),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                taints: Some(taints),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn taint(key: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: None,
            effect: effect.into(),
            time_added: None,
        }
    }

    fn ds() -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                name: Some("agent".into()),
                namespace: Some("default".into()),
                uid: Some("ds-uid".into()),
                generation: Some(1),
                ..Default::default()
            },
            spec: DaemonSetSpec::default(),
            status: None,
        }
    }

    #[test]
    fn one_pod_per_node_pinned_by_affinity_skipping_untolerated_taints() {
        let nodes = [
            node("n1", vec![]),
            node(
                "n2",
                vec![taint("node.kubernetes.io/unschedulable", "NoSchedule")],
            ),
            node("n3", vec![taint("dedicated", "NoSchedule")]),
        ];
        let sync = reconcile(&ds(), &nodes, &[], &[], ts("2026-01-01T00:00:00Z"));
        let targets: Vec<_> = sync.create.iter().filter_map(pod_node).collect();
        assert_eq!(
            targets,
            ["n1", "n2"],
            "the default tolerations cover unschedulable only"
        );
        assert_eq!(sync.status.desired_number_scheduled, 2);
        let p = &sync.create[0];
        assert_eq!(p.metadata.generate_name.as_deref(), Some("agent-"));
        let tolerations = p.spec.as_ref().unwrap().tolerations.as_ref().unwrap();
        assert!(
            tolerations
                .iter()
                .any(|t| t.key.as_deref() == Some("node.kubernetes.io/unreachable"))
        );
        assert!(
            p.metadata
                .labels
                .as_ref()
                .unwrap()
                .contains_key(REVISION_LABEL)
        );
    }

    #[test]
    fn status_counts_and_cleanup_of_misscheduled_and_duplicate_pods() {
        let d = ds();
        let nodes = [
            node("n1", vec![]),
            node("n2", vec![taint("x", "NoExecute")]),
        ];
        let first = reconcile(&d, &nodes, &[], &[], ts("2026-01-01T00:00:00Z"));
        let hash = workload::revision_hash(first.revision.as_ref().unwrap());
        let on = |name: &str, node: &str| {
            let mut p = pod(name, "Running", true);
            p.spec.as_mut().unwrap().node_name = Some(node.into());
            p.metadata.labels = Some([(REVISION_LABEL.to_string(), hash.clone())].into());
            p
        };
        let pods = [on("a", "n1"), on("b", "n1"), on("c", "n2"), on("d", "gone")];
        let sync = reconcile(&d, &nodes, &pods, &[], ts("2026-01-01T00:00:00Z"));
        assert!(sync.create.is_empty());
        let mut deleted = sync.delete.clone();
        deleted.sort();
        assert_eq!(deleted, ["b", "c", "d"]);
        assert_eq!(sync.status.desired_number_scheduled, 1);
        assert_eq!(sync.status.current_number_scheduled, 1);
        assert_eq!(sync.status.number_misscheduled, 1);
        assert_eq!(sync.status.number_ready, 1);
        assert_eq!(sync.status.updated_number_scheduled, Some(1));
    }

    #[test]
    fn rolling_update_replaces_within_max_unavailable() {
        let d = ds();
        let nodes = [node("n1", vec![]), node("n2", vec![])];
        let old = |name: &str, node: &str| {
            let mut p = pod(name, "Running", true);
            p.spec.as_mut().unwrap().node_name = Some(node.into());
            p.metadata.labels = Some([(REVISION_LABEL.to_string(), "old".to_string())].into());
            p
        };
        let sync = reconcile(
            &d,
            &nodes,
            &[old("a", "n1"), old("b", "n2")],
            &[],
            ts("2026-01-01T00:00:00Z"),
        );
        assert_eq!(sync.delete.len(), 1, "maxUnavailable 1");
    }

    #[test]
    fn node_affinity_terms_match_labels_and_fields() {
        let n = node("n1", vec![]);
        let sel = |key: &str, op: &str, v: &str, field: bool| {
            let req = NodeSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: Some(vec![v.into()]),
            };
            NodeSelector {
                node_selector_terms: vec![if field {
                    NodeSelectorTerm {
                        match_fields: Some(vec![req]),
                        ..Default::default()
                    }
                } else {
                    NodeSelectorTerm {
                        match_expressions: Some(vec![req]),
                        ..Default::default()
                    }
                }],
            }
        };
        assert!(node_selector_matches(
            &sel("kubernetes.io/os", "In", "linux", false),
            &n
        ));
        assert!(!node_selector_matches(
            &sel("kubernetes.io/os", "NotIn", "linux", false),
            &n
        ));
        assert!(node_selector_matches(
            &sel("metadata.name", "In", "n1", true),
            &n
        ));
        assert!(!node_selector_matches(
            &sel("metadata.name", "In", "n2", true),
            &n
        ));
    }
}
