//! NodeResourcesFit: the pod's requests must fit the node's allocatable minus what is placed
//! there (Filter), and nodes score by one of upstream's strategies: LeastAllocated (default),
//! MostAllocated, RequestedToCapacityRatio.

use crate::cache::NodeInfo;
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Status};
use crate::pod::PodInfo;

pub const NAME: &str = "NodeResourcesFit";

/// How nodes are scored.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    /// Spread: the emptier node wins.
    LeastAllocated,
    /// Pack: the fuller node wins.
    MostAllocated,
    /// Piecewise-linear shape over utilization (0–100) → score (0–10), as upstream.
    RequestedToCapacityRatio { shape: Vec<(i64, i64)> },
}

/// The plugin with its scoring strategy and the (resource, weight) pairs it scores.
#[derive(Debug, Clone)]
pub struct NodeResourcesFit {
    pub strategy: Strategy,
    pub resources: Vec<(String, i64)>,
}

impl Default for NodeResourcesFit {
    fn default() -> Self {
        NodeResourcesFit {
            strategy: Strategy::LeastAllocated,
            resources: vec![("cpu".into(), 1), ("memory".into(), 1)],
        }
    }
}

/// Upstream `fitsRequest`: every resource the pod lacks, as "Insufficient <name>" (or "Too many
/// pods").
pub fn insufficient(pod: &PodInfo, node: &NodeInfo) -> Vec<String> {
    let mut out = Vec::new();
    if node.pods.len() as i64 + 1 > node.allocatable.pods {
        out.push("Too many pods".to_string());
    }
    let want = &pod.requests;
    let free = |name: &str| node.allocatable.get(name) - node.requested.get(name);
    for (name, asked) in [
        ("cpu", want.milli_cpu),
        ("memory", want.memory),
        ("ephemeral-storage", want.ephemeral_storage),
    ] {
        if asked > 0 && asked > free(name) {
            out.push(format!("Insufficient {name}"));
        }
    }
    for (name, asked) in &want.scalar {
        if *asked > 0 && *asked > free(name) {
            out.push(format!("Insufficient {name}"));
        }
    }
    out
}

/// Upstream's piecewise-linear function over the shape points.
fn shape_score(shape: &[(i64, i64)], utilization: i64) -> i64 {
    let Some(first) = shape.first() else {
        return 0;
    };
    if utilization <= first.0 {
        return first.1;
    }
    for w in shape.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if utilization <= x1 {
            return y0 + (y1 - y0) * (utilization - x0) / (x1 - x0).max(1);
        }
    }
    shape.last().map(|p| p.1).unwrap_or(0)
}

impl NodeResourcesFit {
    fn resource_score(&self, requested: i64, capacity: i64) -> i64 {
        if capacity == 0 {
            return 0;
        }
        match &self.strategy {
            Strategy::LeastAllocated => {
                if requested > capacity {
                    0
                } else {
                    (capacity - requested) * MAX_NODE_SCORE / capacity
                }
            }
            Strategy::MostAllocated => requested.min(capacity) * MAX_NODE_SCORE / capacity,
            Strategy::RequestedToCapacityRatio { shape } => {
                let scaled: Vec<(i64, i64)> = shape
                    .iter()
                    .map(|(u, s)| (*u, s * MAX_NODE_SCORE / 10))
                    .collect();
                shape_score(&scaled, requested.min(capacity) * 100 / capacity)
            }
        }
    }
}

impl Plugin for NodeResourcesFit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let reasons = insufficient(pod, node);
        if reasons.is_empty() {
            Status::success()
        } else {
            Status {
                code: crate::framework::Code::Unschedulable,
                reasons,
                plugin: NAME,
            }
        }
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let mut total = 0;
        let mut weights = 0;
        for (name, weight) in &self.resources {
            let capacity = node.allocatable.get(name);
            let requested = node.non_zero_requested.get(name) + pod.non_zero.get(name);
            total += self.resource_score(requested, capacity) * weight;
            weights += weight;
        }
        if weights == 0 { 0 } else { total / weights }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};
    use std::sync::Arc;

    fn with_pods(n: NodeInfo, pods: &[&str]) -> NodeInfo {
        let mut n = n;
        for (i, cpu) in pods.iter().enumerate() {
            n.add_pod(Arc::new(
                pod(&format!("old{i}"))
                    .cpu(cpu)
                    .memory("1Gi")
                    .node(&n.name.clone())
                    .build_info(),
            ));
        }
        n
    }

    #[test]
    fn filter_lists_every_missing_resource() {
        let cases: Vec<(&str, NodeInfo, crate::testing::PodBuilder, Vec<&str>)> = vec![
            (
                "fits",
                NodeInfo::from_node(node("n").cpu("2").build()),
                pod("p").cpu("1"),
                vec![],
            ),
            (
                "cpu",
                with_pods(NodeInfo::from_node(node("n").cpu("2").build()), &["1500m"]),
                pod("p").cpu("1"),
                vec!["Insufficient cpu"],
            ),
            (
                "memory",
                NodeInfo::from_node(node("n").memory("1Gi").build()),
                pod("p").memory("2Gi"),
                vec!["Insufficient memory"],
            ),
            (
                "both",
                NodeInfo::from_node(node("n").cpu("1").memory("1Gi").build()),
                pod("p").cpu("2").memory("2Gi"),
                vec!["Insufficient cpu", "Insufficient memory"],
            ),
            (
                "extended",
                NodeInfo::from_node(node("n").resource("example.com/gpu", "1").build()),
                pod("p").resource("example.com/gpu", "2"),
                vec!["Insufficient example.com/gpu"],
            ),
            (
                "pods",
                with_pods(
                    NodeInfo::from_node(node("n").resource("pods", "1").build()),
                    &["1m"],
                ),
                pod("p"),
                vec!["Too many pods"],
            ),
            (
                "zero request always fits cpu",
                with_pods(NodeInfo::from_node(node("n").cpu("1").build()), &["1"]),
                pod("p"),
                vec![],
            ),
        ];
        for (name, n, p, want) in cases {
            let status =
                NodeResourcesFit::default().filter(&CycleState::default(), &p.build_info(), &n);
            assert_eq!(status.reasons, want, "{name}");
        }
    }

    #[test]
    fn strategies_score_as_upstream() {
        // 4 CPUs / 16 GiB; 1 CPU + 1 GiB already placed; the pod asks 1 CPU + 3 GiB.
        let n = with_pods(NodeInfo::from_node(node("n").build()), &["1"]);
        let p = pod("p").cpu("1").memory("3Gi").build_info();
        let state = CycleState::default();
        let least = NodeResourcesFit::default();
        // cpu: (4000-2000)*100/4000 = 50; memory: (16-4)*100/16 = 75 → 62.
        assert_eq!(least.score(&state, &p, &n), 62);
        let most = NodeResourcesFit {
            strategy: Strategy::MostAllocated,
            ..NodeResourcesFit::default()
        };
        assert_eq!(most.score(&state, &p, &n), 37);
        let ratio = NodeResourcesFit {
            strategy: Strategy::RequestedToCapacityRatio {
                shape: vec![(0, 0), (100, 10)],
            },
            ..NodeResourcesFit::default()
        };
        assert_eq!(ratio.score(&state, &p, &n), 37);
        assert_eq!(shape_score(&[(0, 100), (50, 0), (100, 100)], 25), 50);
    }
}
