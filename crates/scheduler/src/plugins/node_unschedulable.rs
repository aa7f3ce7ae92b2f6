//! NodeUnschedulable: a cordoned node (`spec.unschedulable`) takes only pods that tolerate the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint.

use k8s_openapi::api::core::v1::Taint;

use crate::cache::NodeInfo;
use crate::framework::{CycleState, Plugin, Status};
use crate::plugins::taint_toleration::tolerated;
use crate::pod::PodInfo;

pub const NAME: &str = "NodeUnschedulable";
/// Upstream `ErrReasonUnschedulable`.
pub const REASON: &str = "node(s) were unschedulable";

#[derive(Debug)]
pub struct NodeUnschedulable;

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !node.unschedulable {
            return Status::success();
        }
        let taint = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        if pod.tolerations.iter().any(|t| tolerated(t, &taint)) {
            Status::success()
        } else {
            Status::unresolvable(NAME, REASON)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn cordoned_nodes_take_only_tolerating_pods() {
        let cases = [
            (node("n").build(), pod("p").build_info(), true),
            (
                node("n").unschedulable().build(),
                pod("p").build_info(),
                false,
            ),
            (
                node("n").unschedulable().build(),
                pod("p")
                    .toleration(
                        "node.kubernetes.io/unschedulable",
                        "Exists",
                        "",
                        "NoSchedule",
                    )
                    .build_info(),
                true,
            ),
        ];
        for (i, (n, p, ok)) in cases.into_iter().enumerate() {
            let status =
                NodeUnschedulable.filter(&CycleState::default(), &p, &NodeInfo::from_node(n));
            assert_eq!(status.is_success(), ok, "case {i}");
            if !ok {
                assert_eq!(status.reasons, [REASON]);
            }
        }
    }
}
