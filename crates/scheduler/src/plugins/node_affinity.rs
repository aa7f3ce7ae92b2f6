//! NodeAffinity: `spec.nodeSelector` and required node affinity filter nodes; preferred node
//! affinity terms add their weights to the score.

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::pod::{PodInfo, match_node_selector_terms, match_term};

pub const NAME: &str = "NodeAffinity";
/// Upstream `ErrReasonPod`.
pub const REASON: &str = "node(s) didn't match Pod's node affinity/selector";

/// Whether the node passes the pod's nodeSelector and required node affinity (also used by
/// PodTopologySpread's nodeAffinityPolicy).
pub fn required_match(pod: &PodInfo, node: &NodeInfo) -> bool {
    pod.node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
        && pod
            .required_terms
            .as_ref()
            .is_none_or(|terms| match_node_selector_terms(terms, &node.name, &node.labels))
}

#[derive(Debug)]
pub struct NodeAffinity;

impl Plugin for NodeAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if required_match(pod, node) {
            Status::success()
        } else {
            Status::unresolvable(NAME, REASON)
        }
    }

    fn pre_score(&self, _: &mut CycleState, _: &PodInfo, _: &Cache, _: &[&NodeInfo]) {}

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        pod.preferred_terms
            .iter()
            .filter(|(w, t)| *w != 0 && match_term(t, &node.name, &node.labels))
            .map(|(w, _)| i64::from(*w))
            .sum()
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        super::default_normalize(scores, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn selector_and_required_affinity_filter() {
        let n = NodeInfo::from_node(node("n1").label("disk", "ssd").label("zone", "a").build());
        let cases = [
            (pod("p"), true),
            (pod("p").node_selector("disk", "ssd"), true),
            (pod("p").node_selector("disk", "hdd"), false),
            (pod("p").require_node("zone", &["a", "b"]), true),
            (pod("p").require_node("zone", &["c"]), false),
            (
                pod("p")
                    .node_selector("disk", "ssd")
                    .require_node("zone", &["c"]),
                false,
            ),
            (
                pod("p")
                    .require_node("zone", &["c"])
                    .require_node("disk", &["ssd"]),
                true,
            ),
        ];
        for (i, (p, ok)) in cases.into_iter().enumerate() {
            let status = NodeAffinity.filter(&CycleState::default(), &p.build_info(), &n);
            assert_eq!(status.is_success(), ok, "case {i}");
        }
    }

    #[test]
    fn preferred_terms_add_weights_then_normalize() {
        let nodes = [
            NodeInfo::from_node(node("a").label("zone", "a").build()),
            NodeInfo::from_node(node("b").label("zone", "b").label("disk", "ssd").build()),
            NodeInfo::from_node(node("c").build()),
        ];
        let p = pod("p")
            .prefer_node(10, "zone", "b")
            .prefer_node(30, "disk", "ssd")
            .build_info();
        let state = CycleState::default();
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| NodeAffinity.score(&state, &p, n))
            .collect();
        assert_eq!(scores, [0, 40, 0]);
        NodeAffinity.normalize(&state, &p, &mut scores);
        assert_eq!(scores, [0, 100, 0]);
    }
}
