//! NodePorts: a pod's host ports must be free on the node (same protocol and port on an
//! overlapping IP conflicts; 0.0.0.0 overlaps every IP).

use crate::cache::NodeInfo;
use crate::framework::{CycleState, Plugin, Status};
use crate::pod::{HostPort, PodInfo};

pub const NAME: &str = "NodePorts";
/// Upstream `ErrReason`.
pub const REASON: &str = "node(s) didn't have free ports for the requested pod ports";

fn conflicts(a: &HostPort, b: &HostPort) -> bool {
    a.port == b.port
        && a.protocol == b.protocol
        && (a.ip == b.ip || a.ip == "0.0.0.0" || b.ip == "0.0.0.0")
}

#[derive(Debug)]
pub struct NodePorts;

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let clash = pod
            .host_ports
            .iter()
            .any(|want| node.used_ports.iter().any(|used| conflicts(want, used)));
        if clash {
            Status::unschedulable(NAME, REASON)
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};
    use std::sync::Arc;

    #[test]
    fn used_host_ports_conflict() {
        let hp = |ip: &str, proto: &str, port| HostPort {
            ip: ip.into(),
            protocol: proto.into(),
            port,
        };
        let cases = [
            (hp("0.0.0.0", "TCP", 80), hp("0.0.0.0", "TCP", 80), true),
            (hp("0.0.0.0", "TCP", 80), hp("0.0.0.0", "UDP", 80), false),
            (hp("10.0.0.1", "TCP", 80), hp("10.0.0.2", "TCP", 80), false),
            (hp("10.0.0.1", "TCP", 80), hp("0.0.0.0", "TCP", 80), true),
            (hp("0.0.0.0", "TCP", 80), hp("0.0.0.0", "TCP", 81), false),
        ];
        for (a, b, want) in cases {
            assert_eq!(conflicts(&a, &b), want, "{a:?} {b:?}");
        }
        let mut n = NodeInfo::from_node(node("n").build());
        n.add_pod(Arc::new(pod("old").host_port(8080).node("n").build_info()));
        let state = CycleState::default();
        assert!(
            !NodePorts
                .filter(&state, &pod("p").host_port(8080).build_info(), &n)
                .is_success()
        );
        assert!(
            NodePorts
                .filter(&state, &pod("p").host_port(8081).build_info(), &n)
                .is_success()
        );
        assert!(
            NodePorts
                .filter(&state, &pod("p").build_info(), &n)
                .is_success()
        );
    }
}
