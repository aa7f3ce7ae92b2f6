//! NodeResourcesBalancedAllocation: nodes whose CPU and memory would be used in similar
//! fractions score higher (1 − standard deviation of the fractions).

use crate::cache::NodeInfo;
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin};
use crate::pod::PodInfo;

pub const NAME: &str = "NodeResourcesBalancedAllocation";

#[derive(Debug)]
pub struct BalancedAllocation;

/// The score for these used fractions (each capped at 1).
pub fn balance_score(fractions: &[f64]) -> i64 {
    if fractions.is_empty() {
        return MAX_NODE_SCORE;
    }
    let n = fractions.len() as f64;
    let mean = fractions.iter().sum::<f64>() / n;
    let var = fractions.iter().map(|f| (f - mean).powi(2)).sum::<f64>() / n;
    ((1.0 - var.sqrt()) * MAX_NODE_SCORE as f64) as i64
}

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn score(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let mut fractions = Vec::with_capacity(2);
        for name in ["cpu", "memory"] {
            let cap = node.allocatable.get(name);
            if cap == 0 {
                continue;
            }
            let used = node.non_zero_requested.get(name) + pod.non_zero.get(name);
            fractions.push((used as f64 / cap as f64).min(1.0));
        }
        balance_score(&fractions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn even_use_scores_higher() {
        let cases = [
            (vec![0.5, 0.5], 100),
            (vec![0.0, 1.0], 50),
            (vec![0.25, 0.75], 75),
        ];
        for (f, want) in cases {
            assert_eq!(balance_score(&f), want, "{f:?}");
        }
        let n = NodeInfo::from_node(node("n").cpu("4").memory("4Gi").build());
        let state = CycleState::default();
        let even =
            BalancedAllocation.score(&state, &pod("p").cpu("2").memory("2Gi").build_info(), &n);
        let skewed =
            BalancedAllocation.score(&state, &pod("p").cpu("4").memory("1Mi").build_info(), &n);
        assert!(even > skewed, "{even} vs {skewed}");
    }
}
