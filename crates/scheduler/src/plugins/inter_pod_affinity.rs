//! InterPodAffinity: required pod affinity and anti-affinity of the incoming pod, and the
//! required anti-affinity of pods already placed, per topology domain (Filter); preferred terms
//! add or subtract their weights per domain (Score).

use std::collections::HashMap;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, MAX_NODE_SCORE, Plugin, Status};
use crate::pod::PodInfo;

pub const NAME: &str = "InterPodAffinity";
/// Upstream `ErrReasonAffinityRulesNotMatch`.
pub const AFFINITY: &str = "node(s) didn't match pod affinity rules";
/// Upstream `ErrReasonAntiAffinityRulesNotMatch`.
pub const ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";
/// Upstream `ErrReasonExistingAntiAffinityRulesNotMatch`.
pub const EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";

/// (topology key, value) → count.
type DomainCounts = HashMap<(String, String), i64>;

struct FilterState {
    /// Domains where an existing pod's anti-affinity term matches the incoming pod.
    existing_anti: DomainCounts,
    /// Per affinity term: domains with pods matching it.
    affinity: Vec<DomainCounts>,
    /// Per anti-affinity term: domains with pods matching it.
    anti: Vec<DomainCounts>,
    /// No pod anywhere matches all affinity terms.
    no_affinity_match: bool,
}

struct ScoreState(DomainCounts);

#[derive(Debug)]
pub struct InterPodAffinity;

impl Plugin for InterPodAffinity {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(&self, state: &mut CycleState, pod: &PodInfo, cache: &Cache) -> Status {
        let mut s = FilterState {
            existing_anti: HashMap::new(),
            affinity: vec![HashMap::new(); pod.affinity.len()],
            anti: vec![HashMap::new(); pod.anti_affinity.len()],
            no_affinity_match: true,
        };
        let own_terms = !pod.affinity.is_empty() || !pod.anti_affinity.is_empty();
        let mut any_existing = false;
        for node in cache.nodes() {
            if node.node.is_none() || (!own_terms && node.pods_with_anti_affinity == 0) {
                continue;
            }
            for existing in &node.pods {
                if existing.key == pod.key {
                    continue;
                }
                for term in &existing.anti_affinity {
                    if let Some(v) = node.labels.get(&term.topology_key)
                        && term.matches(pod)
                    {
                        any_existing = true;
                        *s.existing_anti
                            .entry((term.topology_key.clone(), v.clone()))
                            .or_insert(0) += 1;
                    }
                }
                if !pod.affinity.is_empty() && pod.affinity.iter().all(|t| t.matches(existing)) {
                    s.no_affinity_match = false;
                    for (term, counts) in pod.affinity.iter().zip(s.affinity.iter_mut()) {
                        if let Some(v) = node.labels.get(&term.topology_key) {
                            *counts
                                .entry((term.topology_key.clone(), v.clone()))
                                .or_insert(0) += 1;
                        }
                    }
                }
                for (term, counts) in pod.anti_affinity.iter().zip(s.anti.iter_mut()) {
                    if let Some(v) = node.labels.get(&term.topology_key)
                        && term.matches(existing)
                    {
                        *counts
                            .entry((term.topology_key.clone(), v.clone()))
                            .or_insert(0) += 1;
                    }
                }
            }
        }
        if own_terms || any_existing {
            state.write(NAME, s);
        }
        Status::success()
    }

    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<FilterState>(NAME) else {
            return Status::success();
        };
        let hit = |counts: &DomainCounts| {
            counts
                .iter()
                .any(|((k, v), n)| *n > 0 && node.labels.get(k) == Some(v))
        };
        for (term, counts) in pod.affinity.iter().zip(&s.affinity) {
            let ok = match node.labels.get(&term.topology_key) {
                None => false,
                Some(v) => counts
                    .get(&(term.topology_key.clone(), v.clone()))
                    .is_some_and(|n| *n > 0),
            };
            // The first pod of a group that selects itself may go anywhere with the key.
            let first_of_group = s.no_affinity_match
                && node.labels.contains_key(&term.topology_key)
                && pod.affinity.iter().all(|t| t.matches(pod));
            if !ok && !first_of_group {
                return Status::unresolvable(NAME, AFFINITY);
            }
        }
        for (term, counts) in pod.anti_affinity.iter().zip(&s.anti) {
            if let Some(v) = node.labels.get(&term.topology_key)
                && counts
                    .get(&(term.topology_key.clone(), v.clone()))
                    .is_some_and(|n| *n > 0)
            {
                return Status::unschedulable(NAME, ANTI_AFFINITY);
            }
        }
        // Upstream's order: the pod's affinity, its anti-affinity, then existing pods'.
        if hit(&s.existing_anti) {
            return Status::unschedulable(NAME, EXISTING_ANTI_AFFINITY);
        }
        Status::success()
    }

    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, cache: &Cache, _: &[&NodeInfo]) {
        if pod.preferred_affinity.is_empty() && pod.preferred_anti_affinity.is_empty() {
            return;
        }
        let mut scores: DomainCounts = HashMap::new();
        for node in cache.nodes() {
            for existing in &node.pods {
                for (terms, sign) in [
                    (&pod.preferred_affinity, 1),
                    (&pod.preferred_anti_affinity, -1),
                ] {
                    for t in terms.iter() {
                        if let Some(v) = node.labels.get(&t.topology_key)
                            && t.matches(existing)
                        {
                            *scores
                                .entry((t.topology_key.clone(), v.clone()))
                                .or_insert(0) += sign * i64::from(t.weight);
                        }
                    }
                }
            }
        }
        state.write(NAME, ScoreState(scores));
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let Some(ScoreState(scores)) = state.read::<ScoreState>(NAME) else {
            return 0;
        };
        scores
            .iter()
            .filter(|((k, v), _)| node.labels.get(k) == Some(v))
            .map(|(_, s)| *s)
            .sum()
    }

    fn normalize(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        if state.read::<ScoreState>(NAME).is_none() {
            return;
        }
        let max = scores.iter().copied().max().unwrap_or(0);
        let min = scores.iter().copied().min().unwrap_or(0);
        for s in scores.iter_mut() {
            *s = if max > min {
                MAX_NODE_SCORE * (*s - min) / (max - min)
            } else {
                0
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{PodBuilder, node, pod};
    use std::sync::Arc;

    const HOST: &str = "kubernetes.io/hostname";
    const ZONE: &str = "topology.kubernetes.io/zone";

    fn cluster(placed: Vec<(&str, PodBuilder)>) -> Cache {
        let mut cache = Cache::new();
        for (n, z) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            cache.upsert_node(Arc::new(node(n).label(ZONE, z).build()));
        }
        for (n, p) in placed {
            cache.upsert_pod(Arc::new(p.node(n).build_info()));
        }
        cache
    }

    fn verdicts(cache: &Cache, p: PodBuilder) -> Vec<Option<String>> {
        let p = p.build_info();
        let mut state = CycleState::default();
        InterPodAffinity.pre_filter(&mut state, &p, cache);
        let mut nodes: Vec<&NodeInfo> = cache.nodes().iter().collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        nodes
            .iter()
            .map(|n| {
                InterPodAffinity
                    .filter(&state, &p, n)
                    .reasons
                    .first()
                    .cloned()
            })
            .collect()
    }

    #[test]
    fn required_terms_per_topology_domain() {
        let anti = Some(ANTI_AFFINITY.to_string());
        let aff = Some(AFFINITY.to_string());
        let existing = Some(EXISTING_ANTI_AFFINITY.to_string());
        type Case<'a> = (
            &'a str,
            Vec<(&'a str, PodBuilder)>,
            PodBuilder,
            Vec<Option<String>>,
        );
        let cases: Vec<Case> = vec![
            ("no terms", vec![], pod("p"), vec![None, None, None]),
            (
                "anti-affinity per host",
                vec![("a1", pod("w0").label("app", "web"))],
                pod("p")
                    .label("app", "web")
                    .anti_affinity("app", "web", HOST),
                vec![anti.clone(), None, None],
            ),
            (
                "anti-affinity per zone",
                vec![("a1", pod("w0").label("app", "web"))],
                pod("p").anti_affinity("app", "web", ZONE),
                vec![anti.clone(), anti, None],
            ),
            (
                "affinity to a zone with the pod",
                vec![("b1", pod("db").label("app", "db"))],
                pod("p").affinity("app", "db", ZONE),
                vec![aff.clone(), aff.clone(), None],
            ),
            (
                "affinity with no match anywhere and not self-matching",
                vec![],
                pod("p").affinity("app", "db", ZONE),
                vec![aff.clone(), aff.clone(), aff],
            ),
            (
                "first pod of a self-affine group",
                vec![],
                pod("p").label("app", "db").affinity("app", "db", ZONE),
                vec![None, None, None],
            ),
            (
                "existing pod's anti-affinity",
                vec![("a2", pod("lonely").anti_affinity("app", "web", HOST))],
                pod("p").label("app", "web"),
                vec![None, existing, None],
            ),
        ];
        for (name, placed, p, want) in cases {
            assert_eq!(verdicts(&cluster(placed), p), want, "{name}");
        }
    }

    #[test]
    fn preferred_anti_affinity_scores_away_from_matches() {
        let cache = cluster(vec![("a1", pod("w0").label("app", "web"))]);
        let p = pod("p")
            .prefer_anti_affinity(10, "app", "web", ZONE)
            .build_info();
        let mut state = CycleState::default();
        let mut nodes: Vec<&NodeInfo> = cache.nodes().iter().collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        InterPodAffinity.pre_score(&mut state, &p, &cache, &nodes);
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| InterPodAffinity.score(&state, &p, n))
            .collect();
        InterPodAffinity.normalize(&state, &p, &mut scores);
        assert_eq!(scores, [0, 0, 100]);
    }
}
