//! `PodInfo`: everything the plugins read from a pod, computed once when the pod enters the
//! scheduler (requests, ports, tolerations, compiled selectors and affinity terms).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Toleration,
    TopologySpreadConstraint,
};
use oxkube_api::selector::LabelSelector;

use crate::resources::{Resource, requests_of};

/// The scheduler's own name; pods naming another scheduler are left alone.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// `namespace/name`.
pub type PodKey = String;

/// A host port a container asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    pub ip: String,
    pub protocol: String,
    pub port: i32,
}

/// One pod (anti-)affinity term, its selector compiled.
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    pub selector: LabelSelector,
    /// Namespaces the term looks in; empty with `all_namespaces == false` means the pod's own.
    pub namespaces: Vec<String>,
    /// A namespaceSelector was given and it selects everything (`{}`).
    pub all_namespaces: bool,
    pub topology_key: String,
    pub weight: i32,
}

impl AffinityTerm {
    fn compile(term: &PodAffinityTerm, own_ns: &str, weight: i32) -> Option<AffinityTerm> {
        let selector = match &term.label_selector {
            Some(s) => LabelSelector::from_meta(s).ok()?,
            // A nil selector matches nothing.
            None => return None,
        };
        let mut namespaces = term.namespaces.clone().unwrap_or_default();
        let all_namespaces = term.namespace_selector.as_ref().is_some_and(|s| {
            s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
        });
        if namespaces.is_empty() && term.namespace_selector.is_none() {
            namespaces.push(own_ns.to_string());
        }
        Some(AffinityTerm {
            selector,
            namespaces,
            all_namespaces,
            topology_key: term.topology_key.clone(),
            weight,
        })
    }

    /// Whether `pod` is one of the pods this term selects.
    pub fn matches(&self, pod: &PodInfo) -> bool {
        (self.all_namespaces || self.namespaces.contains(&pod.namespace))
            && self.selector.matches(&pod.labels)
    }
}

/// A topology spread constraint, its selector compiled.
#[derive(Debug, Clone)]
pub struct SpreadConstraint {
    pub max_skew: i32,
    pub topology_key: String,
    /// `DoNotSchedule` constraints filter; `ScheduleAnyway` ones only score.
    pub hard: bool,
    pub selector: LabelSelector,
    pub min_domains: i32,
    /// nodeAffinityPolicy Honor (default): only nodes the pod's node affinity allows count.
    pub honor_affinity: bool,
    /// nodeTaintsPolicy Honor: only nodes whose taints the pod tolerates count (default Ignore).
    pub honor_taints: bool,
}

impl SpreadConstraint {
    fn compile(c: &TopologySpreadConstraint, labels: &BTreeMap<String, String>) -> Self {
        let mut selector = c
            .label_selector
            .as_ref()
            .and_then(|s| LabelSelector::from_meta(s).ok());
        if let (Some(keys), Some(sel)) = (&c.match_label_keys, &c.label_selector) {
            let mut sel = sel.clone();
            let m = sel.match_labels.get_or_insert_with(BTreeMap::new);
            for k in keys {
                if let Some(v) = labels.get(k) {
                    m.insert(k.clone(), v.clone());
                }
            }
            selector = LabelSelector::from_meta(&sel).ok();
        }
        SpreadConstraint {
            max_skew: c.max_skew,
            topology_key: c.topology_key.clone(),
            hard: c.when_unsatisfiable == "DoNotSchedule",
            // No selector: counts no pods (upstream's labels.Nothing()).
            selector: selector.unwrap_or_else(|| {
                LabelSelector::parse("oxkube.internal/nothing,!oxkube.internal/nothing")
                    .unwrap_or_else(|_| LabelSelector::everything())
            }),
            min_domains: c.min_domains.unwrap_or(1),
            honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
            honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
        }
    }
}

/// What the plugins need from one pod, computed once.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub key: PodKey,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub priority: i32,
    pub preempt_never: bool,
    /// Creation time in seconds since the epoch (queue order among equal priorities).
    pub created: i64,
    pub node_name: String,
    pub nominated_node: String,
    pub requests: Resource,
    /// Requests with the scoring defaults for containers that request nothing.
    pub non_zero: Resource,
    pub host_ports: Vec<HostPort>,
    pub tolerations: Vec<Toleration>,
    pub node_selector: BTreeMap<String, String>,
    pub required_terms: Option<Vec<NodeSelectorTerm>>,
    /// Preferred node affinity: (weight, term).
    pub preferred_terms: Vec<(i32, NodeSelectorTerm)>,
    pub affinity: Vec<AffinityTerm>,
    pub anti_affinity: Vec<AffinityTerm>,
    pub preferred_affinity: Vec<AffinityTerm>,
    pub preferred_anti_affinity: Vec<AffinityTerm>,
    pub spread: Vec<SpreadConstraint>,
    pub images: Vec<String>,
    pub pvcs: Vec<String>,
    pub terminating: bool,
}

impl PodInfo {
    /// Computes the pod's scheduling view; `priority` comes from the spec (set by admission) or
    /// the caller's PriorityClass lookup.
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let meta = &pod.metadata;
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let labels = meta.labels.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let mut host_ports = Vec::new();
        let mut images = Vec::new();
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            if let Some(img) = &c.image {
                images.push(img.clone());
            }
            for p in c.ports.iter().flatten() {
                if let Some(hp) = p.host_port.filter(|p| *p > 0) {
                    host_ports.push(HostPort {
                        ip: p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                        protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        port: hp,
                    });
                }
            }
        }
        let aff = spec.affinity.clone().unwrap_or_default();
        let node_aff = aff.node_affinity.unwrap_or_default();
        let required_terms = node_aff
            .required_during_scheduling_ignored_during_execution
            .map(|s| s.node_selector_terms);
        let preferred_terms = node_aff
            .preferred_during_scheduling_ignored_during_execution
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.weight, p.preference))
            .collect();
        let pa = aff.pod_affinity.unwrap_or_default();
        let paa = aff.pod_anti_affinity.unwrap_or_default();
        let required = |terms: Option<Vec<PodAffinityTerm>>| -> Vec<AffinityTerm> {
            terms
                .unwrap_or_default()
                .iter()
                .filter_map(|t| AffinityTerm::compile(t, &namespace, 1))
                .collect()
        };
        let preferred = |terms: Option<
            Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>,
        >| {
            terms
                .unwrap_or_default()
                .iter()
                .filter_map(|t| AffinityTerm::compile(&t.pod_affinity_term, &namespace, t.weight))
                .collect::<Vec<_>>()
        };
        let spread = spec
            .topology_spread_constraints
            .iter()
            .flatten()
            .map(|c| SpreadConstraint::compile(c, &labels))
            .collect();
        let pvcs = spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name.clone())
            .collect();
        let status = pod.status.as_ref();
        PodInfo {
            key: format!("{namespace}/{name}"),
            uid: meta.uid.clone().unwrap_or_default(),
            created: meta
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or(0),
            priority: spec.priority.unwrap_or(0),
            preempt_never: spec.preemption_policy.as_deref() == Some("Never"),
            node_name: spec.node_name.clone().unwrap_or_default(),
            nominated_node: status
                .and_then(|s| s.nominated_node_name.clone())
                .unwrap_or_default(),
            requests: requests_of(&pod, false),
            non_zero: requests_of(&pod, true),
            host_ports,
            tolerations: spec.tolerations.clone().unwrap_or_default(),
            node_selector: spec.node_selector.clone().unwrap_or_default(),
            required_terms,
            preferred_terms,
            affinity: required(pa.required_during_scheduling_ignored_during_execution),
            anti_affinity: required(paa.required_during_scheduling_ignored_during_execution),
            preferred_affinity: preferred(pa.preferred_during_scheduling_ignored_during_execution),
            preferred_anti_affinity: preferred(
                paa.preferred_during_scheduling_ignored_during_execution,
            ),
            spread,
            images,
            pvcs,
            terminating: meta.deletion_timestamp.is_some(),
            labels,
            namespace,
            name,
            pod,
        }
    }

    /// Whether this scheduler should place the pod: unassigned, ours, not being deleted.
    pub fn wants_scheduling(pod: &Pod) -> bool {
        let spec = pod.spec.as_ref();
        spec.and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty)
            && spec
                .and_then(|s| s.scheduler_name.as_deref())
                .is_none_or(|n| n.is_empty() || n == SCHEDULER_NAME)
            && pod.metadata.deletion_timestamp.is_none()
            && spec
                .and_then(|s| s.scheduling_gates.as_ref())
                .is_none_or(|g| g.is_empty())
    }
}

/// Upstream's `v1helper.MatchNodeSelectorTerms`: any term whose requirements all hold.
pub fn match_node_selector_terms(
    terms: &[NodeSelectorTerm],
    node_name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    terms.iter().any(|t| match_term(t, node_name, labels))
}

/// One term: every matchExpression on labels and every matchField (only `metadata.name`). An
/// empty term matches nothing.
pub fn match_term(
    term: &NodeSelectorTerm,
    node_name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| match_requirement(r, labels.get(&r.key).map(String::as_str)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && match_requirement(r, Some(node_name)))
}

fn match_requirement(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(number),
                values.first().and_then(|s| number(s)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn node_selector_requirements_follow_upstream_operators() {
        let labels = BTreeMap::from([
            ("zone".to_string(), "a".to_string()),
            ("cores".to_string(), "8".to_string()),
        ]);
        let cases = [
            (req("zone", "In", &["a", "b"]), true),
            (req("zone", "In", &["b"]), false),
            (req("zone", "NotIn", &["b"]), true),
            (req("missing", "NotIn", &["b"]), true),
            (req("zone", "Exists", &[]), true),
            (req("zone", "DoesNotExist", &[]), false),
            (req("cores", "Gt", &["4"]), true),
            (req("cores", "Lt", &["4"]), false),
            (req("zone", "Gt", &["4"]), false),
        ];
        for (r, want) in cases {
            let term = NodeSelectorTerm {
                match_expressions: Some(vec![r.clone()]),
                match_fields: None,
            };
            assert_eq!(match_term(&term, "n1", &labels), want, "{r:?}");
        }
        let by_name = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
        };
        assert!(match_term(&by_name, "n1", &labels));
        assert!(!match_term(&by_name, "n2", &labels));
        assert!(!match_term(&NodeSelectorTerm::default(), "n1", &labels));
    }
}
