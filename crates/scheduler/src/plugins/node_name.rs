//! NodeName: a pod that names its node (`spec.nodeName`) fits only that node.

use crate::cache::NodeInfo;
use crate::framework::{CycleState, Plugin, Status};
use crate::pod::PodInfo;

pub const NAME: &str = "NodeName";
/// Upstream `ErrReason`.
pub const REASON: &str = "node(s) didn't match the requested node name";

#[derive(Debug)]
pub struct NodeName;

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod.node_name.is_empty() || pod.node_name == node.name {
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
    fn only_the_named_node_fits() {
        for (p, ok) in [
            (pod("p").build_info(), true),
            (pod("p").node("n1").build_info(), true),
            (pod("p").node("n2").build_info(), false),
        ] {
            let n = NodeInfo::from_node(node("n1").build());
            assert_eq!(
                NodeName.filter(&CycleState::default(), &p, &n).is_success(),
                ok
            );
        }
    }
}
