//! PodTopologySpread: `DoNotSchedule` constraints reject nodes where placing the pod would put
//! its domain more than maxSkew above the emptiest domain (Filter, honouring minDomains and the
//! node affinity/taint inclusion policies); `ScheduleAnyway` constraints prefer emptier domains.

use std::collections::HashMap;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Status};
use crate::plugins::node_affinity::required_match;
use crate::plugins::taint_toleration::untolerated;
use crate::pod::{PodInfo, SpreadConstraint};

pub const NAME: &str = "PodTopologySpread";
/// Upstream `ErrReasonConstraintsNotMatch`.
pub const REASON: &str = "node(s) didn't match pod topology spread constraints";
/// Upstream `ErrReasonNodeLabelNotMatch`.
pub const MISSING_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

/// Matching pods per domain value, for one constraint.
#[derive(Debug, Default, Clone)]
struct Counts {
    per_domain: HashMap<String, i64>,
}

impl Counts {
    /// The emptiest domain's count; 0 when fewer domains than minDomains exist.
    fn global_min(&self, min_domains: i32) -> i64 {
        if (self.per_domain.len() as i32) < min_domains {
            return 0;
        }
        self.per_domain.values().copied().min().unwrap_or(0)
    }
}

/// Whether the node counts for the constraint (inclusion policies) and has its key.
fn eligible(c: &SpreadConstraint, pod: &PodInfo, node: &NodeInfo) -> bool {
    node.node.is_some()
        && node.labels.contains_key(&c.topology_key)
        && (!c.honor_affinity || required_match(pod, node))
        && (!c.honor_taints || untolerated(&node.taints, &pod.tolerations).is_none())
}

fn count(constraints: &[&SpreadConstraint], pod: &PodInfo, cache: &Cache) -> Vec<Counts> {
    let mut out = vec![Counts::default(); constraints.len()];
    for node in cache.nodes() {
        for (c, counts) in constraints.iter().zip(out.iter_mut()) {
            if !eligible(c, pod, node) {
                continue;
            }
            let Some(domain) = node.labels.get(&c.topology_key) else {
                continue;
            };
            let n = node
                .pods
                .iter()
                .filter(|p| {
                    !p.terminating && p.namespace == pod.namespace && c.selector.matches(&p.labels)
                })
                .count() as i64;
            *counts.per_domain.entry(domain.clone()).or_insert(0) += n;
        }
    }
    out
}

struct FilterState(Vec<Counts>);
struct ScoreState(Vec<Counts>);

#[derive(Debug)]
pub struct PodTopologySpread;

impl Plugin for PodTopologySpread {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, cache: &Cache) -> Status {
        let hard: Vec<&SpreadConstraint> = pod.spread.iter().filter(|c| c.hard).collect();
        if !hard.is_empty() {
            state.write(NAME, FilterState(count(&hard, pod, cache)));
        }
        Status::success()
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(FilterState(counts)) = state.read::<FilterState>(NAME) else {
            return Status::success();
        };
        let hard = pod.spread.iter().filter(|c| c.hard);
        for (c, counts) in hard.zip(counts) {
            let Some(domain) = node.labels.get(&c.topology_key) else {
                return Status::unresolvable(NAME, MISSING_LABEL);
            };
            let self_match = i64::from(c.selector.matches(&pod.labels));
            let here = counts.per_domain.get(domain).copied().unwrap_or(0);
            let skew = here + self_match - counts.global_min(c.min_domains);
            if skew > i64::from(c.max_skew) {
                return Status::unschedulable(NAME, REASON);
            }
        }
        Status::success()
    }

    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, cache: &Cache, _: &[&NodeInfo]) {
        let soft: Vec<&SpreadConstraint> = pod.spread.iter().filter(|c| !c.hard).collect();
        if !soft.is_empty() {
            state.write(NAME, ScoreState(count(&soft, pod, cache)));
        }
    }

    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(ScoreState(counts)) = state.read::<ScoreState>(NAME) else {
            return 0;
        };
        let soft = pod.spread.iter().filter(|c| !c.hard);
        let mut score = 0.0;
        for (c, counts) in soft.zip(counts) {
            let Some(domain) = node.labels.get(&c.topology_key) else {
                continue;
            };
            // Upstream weights each constraint by log(domains + 2) so keys with many domains
            // do not drown the others.
            let weight = ((counts.per_domain.len() + 2) as f64).ln();
            let here = counts.per_domain.get(domain).copied().unwrap_or(0) as f64;
            score += here * weight + f64::from(c.max_skew - 1);
        }
        score.round() as i64
    }

    fn normalize(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        if state.read::<ScoreState>(NAME).is_none() {
            return;
        }
        let max = scores.iter().copied().max().unwrap_or(0);
        let min = scores.iter().copied().min().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if max == 0 {
                MAX_NODE_SCORE
            } else {
                MAX_NODE_SCORE * (max + min - *s) / max
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};
    use std::sync::Arc;

    const ZONE: &str = "topology.kubernetes.io/zone";

    fn cluster(placed: &[(&str, &str)]) -> Cache {
        let mut cache = Cache::new();
        for (n, z) in [("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")] {
            cache.upsert_node(Arc::new(node(n).label(ZONE, z).build()));
        }
        cache.upsert_node(Arc::new(node("nolabel").build()));
        for (i, (n, app)) in placed.iter().enumerate() {
            cache.upsert_pod(Arc::new(
                pod(&format!("old{i}"))
                    .label("app", app)
                    .node(n)
                    .build_info(),
            ));
        }
        cache
    }

    fn feasible(cache: &Cache, p: &PodInfo) -> Vec<(String, Option<String>)> {
        let mut state = CycleState::default();
        PodTopologySpread.pre_filter(&mut state, p, cache);
        let mut out: Vec<_> = cache
            .nodes()
            .iter()
            .map(|n| {
                (
                    n.name.clone(),
                    PodTopologySpread
                        .filter(&state, p, n)
                        .reasons
                        .first()
                        .cloned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn hard_constraints_keep_skew_within_max() {
        let p = pod("p")
            .label("app", "web")
            .spread(1, ZONE, true, "app", "web")
            .build_info();
        // a has 2, b has 1, c has 0 → min 0: only c fits (a: 3-0 > 1, b: 2-0 > 1).
        let cache = cluster(&[("a1", "web"), ("a2", "web"), ("b1", "web"), ("c1", "db")]);
        let got = feasible(&cache, &p);
        let skew = Some(REASON.to_string());
        let want = vec![
            ("a1".to_string(), skew.clone()),
            ("a2".to_string(), skew.clone()),
            ("b1".to_string(), skew),
            ("c1".to_string(), None),
            ("nolabel".to_string(), Some(MISSING_LABEL.to_string())),
        ];
        assert_eq!(got, want);
        // Empty cluster: every labelled node fits.
        let got = feasible(&cluster(&[]), &p);
        assert_eq!(got.iter().filter(|(_, r)| r.is_none()).count(), 4);
    }

    #[test]
    fn soft_constraints_prefer_emptier_domains() {
        let p = pod("p")
            .label("app", "web")
            .spread(1, ZONE, false, "app", "web")
            .build_info();
        let cache = cluster(&[("a1", "web"), ("a2", "web"), ("b1", "web")]);
        let mut state = CycleState::default();
        let nodes: Vec<&NodeInfo> = cache
            .nodes()
            .iter()
            .filter(|n| n.name != "nolabel")
            .collect();
        PodTopologySpread.pre_score(&mut state, &p, &cache, &nodes);
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| PodTopologySpread.score(&state, &p, n))
            .collect();
        PodTopologySpread.normalize(&state, &p, &mut scores);
        let by_name: HashMap<&str, i64> =
            nodes.iter().map(|n| n.name.as_str()).zip(scores).collect();
        assert!(
            by_name["c1"] > by_name["b1"] && by_name["b1"] > by_name["a1"],
            "{by_name:?}"
        );
    }
}
