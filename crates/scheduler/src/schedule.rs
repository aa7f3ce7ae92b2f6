//! One scheduling cycle, pure: PreFilter, Filter across the nodes in parallel (stopping at
//! upstream's percentageOfNodesToScore), PreScore, Score, NormalizeScore and the pick; on failure
//! the diagnosis and upstream's "0/N nodes are available: …" message; and the full explanation
//! (every node, every plugin) that `oxkube why-pending` shows.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{Code, CycleState, Profile, Status};
use crate::pod::PodInfo;

/// Upstream `minFeasibleNodesToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_PERCENTAGE: usize = 5;
/// Below this many nodes, filtering runs on one thread (spawning costs more than it saves).
const PARALLEL_THRESHOLD: usize = 64;

/// Upstream `numFeasibleNodesToFind`: all nodes in small clusters, else a percentage that shrinks
/// as the cluster grows (50% − nodes/125, at least 5%), never under 100 nodes.
pub fn num_feasible_nodes_to_find(percentage: u32, all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND || percentage >= 100 {
        return all;
    }
    let pct = if percentage == 0 {
        50usize
            .saturating_sub(all / 125)
            .max(MIN_FEASIBLE_PERCENTAGE)
    } else {
        percentage as usize
    };
    (all * pct / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// Where the pod goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub node: String,
    pub evaluated: usize,
    pub feasible: usize,
}

/// Why the pod fits nowhere (upstream `FitError` and its `Diagnosis`).
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub num_all_nodes: usize,
    /// A PreFilter rejection, which applies to every node.
    pub pre_filter: Option<Status>,
    /// Per rejected node, the first plugin's status.
    pub statuses: BTreeMap<String, Status>,
    /// The PostFilter (preemption) outcome, appended to the message.
    pub post_filter: Option<String>,
}

impl Diagnosis {
    /// Upstream `FitError.Error()`: "0/N nodes are available: <count reason, sorted>." then
    /// the preemption outcome.
    pub fn message(&self) -> String {
        let mut msg = format!("0/{} nodes are available:", self.num_all_nodes);
        match &self.pre_filter {
            Some(s) => msg.push_str(&format!(" {s}.")),
            None => msg.push_str(&format!(" {}.", histogram(self.statuses.values()))),
        }
        if let Some(post) = &self.post_filter {
            msg.push(' ');
            msg.push_str(post);
        }
        msg
    }

    /// Whether any node's rejection could be lifted by removing pods (preemption might help).
    pub fn preemption_might_help(&self) -> bool {
        self.pre_filter.is_none()
            && self
                .statuses
                .values()
                .any(|s| s.code == Code::Unschedulable)
    }
}

/// Upstream `sortReasonsHistogram`: "<count> <reason>" for each reason, sorted as strings.
pub fn histogram<'a>(statuses: impl Iterator<Item = &'a Status>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in statuses {
        for r in &s.reasons {
            *counts.entry(r.as_str()).or_insert(0) += 1;
        }
    }
    let mut lines: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
    lines.sort();
    lines.join(", ")
}

/// Runs the pre-filters; a rejection ends the cycle.
pub fn pre_filter(profile: &Profile, pod: &PodInfo, cache: &Cache) -> (CycleState, Option<Status>) {
    let mut state = CycleState::default();
    for p in &profile.pre_filter {
        let s = p.pre_filter(&mut state, pod, cache);
        if !s.is_success() {
            return (state, Some(s));
        }
    }
    (state, None)
}

/// The first failing filter's status, or success.
pub fn run_filters(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
) -> Status {
    for p in &profile.filter {
        let s = p.filter(state, pod, node);
        if !s.is_success() {
            return s;
        }
    }
    Status::success()
}

/// Per feasible node, per score plugin: (raw, normalized) scores; and the weighted totals.
#[derive(Debug)]
pub struct Scores {
    pub per_plugin: Vec<(Vec<i64>, Vec<i64>)>,
    pub totals: Vec<i64>,
}

/// PreScore, Score and NormalizeScore over the feasible nodes.
pub fn score(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    cache: &Cache,
    feasible: &[&NodeInfo],
) -> Scores {
    for p in &profile.pre_score {
        p.pre_score(state, pod, cache, feasible);
    }
    let state = &*state;
    let mut per_plugin = Vec::with_capacity(profile.score.len());
    let mut totals = vec![0i64; feasible.len()];
    for scorer in &profile.score {
        let raw: Vec<i64> = if feasible.len() >= PARALLEL_THRESHOLD {
            feasible
                .par_iter()
                .with_min_len(32)
                .map(|n| scorer.plugin.score(state, pod, n))
                .collect()
        } else {
            feasible
                .iter()
                .map(|n| scorer.plugin.score(state, pod, n))
                .collect()
        };
        let mut normalized = raw.clone();
        scorer.plugin.normalize(state, pod, &mut normalized);
        for (t, s) in totals.iter_mut().zip(&normalized) {
            *t += s * scorer.weight;
        }
        per_plugin.push((raw, normalized));
    }
    Scores { per_plugin, totals }
}

/// The outcome of one cycle.
#[derive(Debug)]
pub enum Outcome {
    Placed(Placement),
    Unschedulable(Diagnosis, CycleState),
}

/// One scheduling cycle for `pod` over the cache. `start` is the rotating index filtering begins
/// at (advanced past the nodes looked at); `tie` breaks ties between equally scored nodes.
pub fn schedule(
    profile: &Profile,
    cache: &Cache,
    pod: &PodInfo,
    start: &mut usize,
    tie: u64,
) -> Outcome {
    let nodes: &[NodeInfo] = cache.nodes();
    let real = cache.node_count();
    let (mut state, rejected) = pre_filter(profile, pod, cache);
    if let Some(s) = rejected {
        return Outcome::Unschedulable(
            Diagnosis {
                num_all_nodes: real,
                pre_filter: Some(s),
                statuses: BTreeMap::new(),
                post_filter: None,
            },
            state,
        );
    }
    // A nominated node (from an earlier preemption) is tried first.
    if !pod.nominated_node.is_empty()
        && let Some(n) = cache.node(&pod.nominated_node)
        && n.node.is_some()
        && run_filters(profile, &state, pod, n).is_success()
    {
        return Outcome::Placed(Placement {
            node: n.name.clone(),
            evaluated: 1,
            feasible: 1,
        });
    }
    let want = num_feasible_nodes_to_find(profile.percentage_of_nodes_to_score, real);
    let total = nodes.len();
    let mut feasible: Vec<&NodeInfo> = Vec::with_capacity(want.min(total));
    let mut statuses = BTreeMap::new();
    let mut processed = 0usize;
    let begin = if total == 0 { 0 } else { *start % total };
    let chunk = want.max(PARALLEL_THRESHOLD);
    while processed < total && feasible.len() < want {
        let len = chunk.min(total - processed);
        let idx = |i: usize| (begin + processed + i) % total;
        let check = |i: usize| {
            let n = &nodes[idx(i)];
            n.node.as_ref()?;
            Some(run_filters(profile, &state, pod, n))
        };
        let results: Vec<Option<Status>> = if len >= PARALLEL_THRESHOLD {
            (0..len)
                .into_par_iter()
                .with_min_len(16)
                .map(check)
                .collect()
        } else {
            (0..len).map(check).collect()
        };
        let mut used = 0;
        for (i, r) in results.into_iter().enumerate() {
            used = i + 1;
            match r {
                None => {}
                Some(s) if s.is_success() => {
                    feasible.push(&nodes[idx(i)]);
                    if feasible.len() >= want {
                        break;
                    }
                }
                Some(s) => {
                    statuses.insert(nodes[idx(i)].name.clone(), s);
                }
            }
        }
        processed += used;
    }
    if total > 0 {
        *start = (begin + processed) % total;
    }
    if feasible.is_empty() {
        return Outcome::Unschedulable(
            Diagnosis {
                num_all_nodes: real,
                pre_filter: None,
                statuses,
                post_filter: None,
            },
            state,
        );
    }
    let evaluated = feasible.len() + statuses.len();
    if feasible.len() == 1 {
        return Outcome::Placed(Placement {
            node: feasible[0].name.clone(),
            evaluated,
            feasible: 1,
        });
    }
    let scores = score(profile, &mut state, pod, cache, &feasible);
    let best = scores.totals.iter().copied().max().unwrap_or(0);
    let ties: Vec<usize> = (0..feasible.len())
        .filter(|&i| scores.totals[i] == best)
        .collect();
    let pick = ties[(tie % ties.len() as u64) as usize];
    Outcome::Placed(Placement {
        node: feasible[pick].name.clone(),
        evaluated,
        feasible: feasible.len(),
    })
}

/// One plugin's part of a node's score.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PluginScore {
    pub plugin: String,
    pub raw: i64,
    pub normalized: i64,
    pub weight: i64,
}

/// A feasible node and how it scored.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct NodeScore {
    pub node: String,
    pub total: i64,
    pub scores: Vec<PluginScore>,
}

/// A node that was rejected, and by whom.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Rejection {
    pub node: String,
    pub plugin: String,
    pub reasons: Vec<String>,
}

/// Everything `oxkube why-pending` shows for one pod: all nodes, no percentage cut-off.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Explanation {
    pub pod: String,
    pub nodes: usize,
    /// Upstream's FailedScheduling message when it fits nowhere.
    pub message: Option<String>,
    pub rejected: Vec<Rejection>,
    /// Best first.
    pub feasible: Vec<NodeScore>,
}

/// Filters and scores the pod against every node and keeps every verdict.
pub fn explain(profile: &Profile, cache: &Cache, pod: &PodInfo) -> Explanation {
    let (mut state, rejected) = pre_filter(profile, pod, cache);
    let mut nodes: Vec<&NodeInfo> = cache.nodes().iter().filter(|n| n.node.is_some()).collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Explanation {
        pod: pod.key.clone(),
        nodes: nodes.len(),
        message: None,
        rejected: Vec::new(),
        feasible: Vec::new(),
    };
    if let Some(s) = rejected {
        out.rejected = nodes
            .iter()
            .map(|n| Rejection {
                node: n.name.clone(),
                plugin: s.plugin.to_string(),
                reasons: s.reasons.clone(),
            })
            .collect();
        out.message = Some(
            Diagnosis {
                num_all_nodes: nodes.len(),
                pre_filter: Some(s),
                statuses: BTreeMap::new(),
                post_filter: None,
            }
            .message(),
        );
        return out;
    }
    let verdicts: Vec<Status> = nodes
        .par_iter()
        .map(|n| run_filters(profile, &state, pod, n))
        .collect();
    let mut feasible = Vec::new();
    let mut statuses = BTreeMap::new();
    for (n, s) in nodes.iter().zip(verdicts) {
        if s.is_success() {
            feasible.push(*n);
        } else {
            out.rejected.push(Rejection {
                node: n.name.clone(),
                plugin: s.plugin.to_string(),
                reasons: s.reasons.clone(),
            });
            statuses.insert(n.name.clone(), s);
        }
    }
    if feasible.is_empty() {
        out.message = Some(
            Diagnosis {
                num_all_nodes: nodes.len(),
                pre_filter: None,
                statuses,
                post_filter: None,
            }
            .message(),
        );
        return out;
    }
    let scores = score(profile, &mut state, pod, cache, &feasible);
    for (i, n) in feasible.iter().enumerate() {
        out.feasible.push(NodeScore {
            node: n.name.clone(),
            total: scores.totals[i],
            scores: profile
                .score
                .iter()
                .zip(&scores.per_plugin)
                .map(|(s, (raw, norm))| PluginScore {
                    plugin: s.plugin.name().to_string(),
                    raw: raw[i],
                    normalized: norm[i],
                    weight: s.weight,
                })
                .collect(),
        });
    }
    out.feasible
        .sort_by(|a, b| b.total.cmp(&a.total).then(a.node.cmp(&b.node)));
    out
}

/// The explanation as text: the verdict, every rejected node with plugin and reason, then the
/// feasible nodes best first with each plugin's weighted part.
pub fn render(e: &Explanation) -> String {
    let mut out = String::new();
    match &e.message {
        Some(m) => out.push_str(&format!("Pod {} cannot be scheduled: {m}\n", e.pod)),
        None => out.push_str(&format!(
            "Pod {} fits {} of {} nodes.\n",
            e.pod,
            e.feasible.len(),
            e.nodes
        )),
    }
    if !e.rejected.is_empty() {
        out.push_str("\nRejected nodes:\n");
        let w = e
            .rejected
            .iter()
            .map(|r| r.node.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let pw = e
            .rejected
            .iter()
            .map(|r| r.plugin.len())
            .max()
            .unwrap_or(6)
            .max(6);
        out.push_str(&format!("  {:w$}  {:pw$}  REASON\n", "NODE", "PLUGIN"));
        for r in &e.rejected {
            out.push_str(&format!(
                "  {:w$}  {:pw$}  {}\n",
                r.node,
                r.plugin,
                r.reasons.join(", ")
            ));
        }
    }
    if !e.feasible.is_empty() {
        out.push_str("\nFeasible nodes, best first (plugin: normalized score × weight):\n");
        for n in &e.feasible {
            let parts: Vec<String> = n
                .scores
                .iter()
                .filter(|s| s.normalized != 0)
                .map(|s| format!("{} {}×{}", s.plugin, s.normalized, s.weight))
                .collect();
            out.push_str(&format!(
                "  {}  total {}  ({})\n",
                n.node,
                n.total,
                parts.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};
    use std::sync::Arc;

    #[test]
    fn feasible_nodes_to_find_follow_upstream() {
        let cases = [
            (0, 50, 50),
            (0, 99, 99),
            (0, 100, 100),
            (0, 1000, 420),
            (0, 5000, 500),
            (0, 10000, 500),
            (0, 6000, 300),
            (10, 5000, 500),
            (100, 5000, 5000),
            (1, 500, 100),
        ];
        for (pct, all, want) in cases {
            assert_eq!(
                num_feasible_nodes_to_find(pct, all),
                want,
                "{pct}% of {all}"
            );
        }
    }

    fn cluster() -> Cache {
        let mut cache = Cache::new();
        cache.upsert_node(Arc::new(node("n1").cpu("1").build()));
        cache.upsert_node(Arc::new(node("n2").cpu("1").build()));
        cache.upsert_node(Arc::new(
            node("n3")
                .cpu("8")
                .taint("gpu", "yes", "NoSchedule")
                .build(),
        ));
        cache.upsert_node(Arc::new(
            node("n4")
                .cpu("8")
                .taint("gpu", "yes", "NoSchedule")
                .build(),
        ));
        cache.upsert_node(Arc::new(
            node("n5")
                .cpu("8")
                .taint("dedicated", "", "NoSchedule")
                .build(),
        ));
        cache
    }

    #[test]
    fn failure_message_has_upstreams_shape() {
        let cache = cluster();
        let profile = Profile::default_profile();
        let p = pod("big").cpu("2").build_info();
        let Outcome::Unschedulable(d, _) = schedule(&profile, &cache, &p, &mut 0, 0) else {
            panic!("scheduled");
        };
        assert_eq!(
            d.message(),
            "0/5 nodes are available: 1 node(s) had untolerated taint {dedicated: }, 2 Insufficient cpu, 2 node(s) had untolerated taint {gpu: yes}."
        );
        assert!(d.preemption_might_help());
    }

    #[test]
    fn picks_the_best_scoring_feasible_node() {
        let mut cache = cluster();
        cache.upsert_node(Arc::new(node("n6").cpu("8").build()));
        let profile = Profile::default_profile();
        // n1/n2 fit 500m but are fuller afterwards than n6: LeastAllocated prefers n6.
        let p = pod("p").cpu("500m").memory("1Gi").build_info();
        let Outcome::Placed(pl) = schedule(&profile, &cache, &p, &mut 0, 0) else {
            panic!("unschedulable");
        };
        assert_eq!(pl.node, "n6");
        assert_eq!(pl.feasible, 3);
        let e = explain(&profile, &cache, &p);
        assert_eq!(e.feasible[0].node, "n6");
        assert_eq!(e.rejected.len(), 3);
        let text = render(&e);
        let n5 = text
            .lines()
            .find(|l| l.trim_start().starts_with("n5 "))
            .expect("n5 listed");
        assert!(
            n5.contains("TaintToleration")
                && n5.contains("node(s) had untolerated taint {dedicated: }"),
            "{text}"
        );
    }

    #[test]
    fn large_clusters_stop_at_the_percentage_and_rotate() {
        let mut cache = Cache::new();
        for i in 0..1000 {
            cache.upsert_node(Arc::new(node(&format!("n{i:04}")).build()));
        }
        let profile = Profile::default_profile();
        let p = pod("p").build_info();
        let mut start = 0;
        let Outcome::Placed(pl) = schedule(&profile, &cache, &p, &mut start, 0) else {
            panic!("unschedulable");
        };
        assert_eq!(pl.feasible, 420);
        assert_eq!(start, 420);
        schedule(&profile, &cache, &p, &mut start, 0);
        assert_eq!(start, 840);
    }
}
