//! DefaultPreemption (PostFilter), pure: for a pod that fits nowhere, find the node where removing
//! the fewest, least important lower-priority pods makes it fit, and which pods those are.
//! The shell sets the pod's nominatedNodeName and deletes the victims.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cache::{Cache, NodeInfo};
use crate::framework::{Code, CycleState, Profile, Status};
use crate::pod::PodInfo;
use crate::schedule::{Diagnosis, histogram, run_filters};

pub const NAME: &str = "DefaultPreemption";
/// Upstream's status for nodes where only unresolvable plugins rejected the pod.
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// Upstream's status for nodes where even removing every lower-priority pod is not enough.
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// The chosen node and the pods to evict from it.
#[derive(Debug, Clone)]
pub struct Preemption {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Upstream `PodEligibleToPreemptOthers`: the policy allows it, and no lower-priority pod is
/// still terminating on the node an earlier preemption nominated.
pub fn eligible(pod: &PodInfo, cache: &Cache) -> Result<(), String> {
    if pod.preempt_never {
        return Err("preemption: not eligible due to preemptionPolicy=Never.".into());
    }
    if let Some(n) = cache.node(&pod.nominated_node)
        && n.pods
            .iter()
            .any(|p| p.terminating && p.priority < pod.priority)
    {
        return Err(
            "preemption: not eligible due to a terminating pod on the nominated node.".into(),
        );
    }
    Ok(())
}

/// Victims on one node, or why there are none: remove every lower-priority pod, check the pod
/// fits, then give back the most important ones while it still fits.
fn select_victims(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
) -> Option<Vec<Arc<PodInfo>>> {
    let mut sim = node.clone();
    let mut lower: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if lower.is_empty() {
        return None;
    }
    for p in &lower {
        sim.remove_pod(&p.key);
    }
    if !run_filters(profile, state, pod, &sim).is_success() {
        return None;
    }
    // Most important first: higher priority, then the older pod.
    lower.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.created.cmp(&b.created)));
    let mut victims = Vec::new();
    for p in lower {
        sim.add_pod(p.clone());
        if !run_filters(profile, state, pod, &sim).is_success() {
            sim.remove_pod(&p.key);
            victims.push(p);
        }
    }
    Some(victims)
}

/// Upstream `pickOneNodeForPreemption`, its first criteria: the lowest highest-victim priority,
/// then the smallest priority sum, then the fewest victims.
fn better(a: &[Arc<PodInfo>], b: &[Arc<PodInfo>]) -> bool {
    let key = |v: &[Arc<PodInfo>]| {
        (
            v.iter().map(|p| p.priority).max().unwrap_or(i32::MIN),
            v.iter()
                .map(|p| i64::from(p.priority) + i64::from(i32::MAX) + 1)
                .sum::<i64>(),
            v.len(),
        )
    };
    key(a) < key(b)
}

/// Runs preemption for a pod the cycle could not place; on failure returns upstream's
/// "preemption: …" message for the FailedScheduling event.
pub fn preempt(
    profile: &Profile,
    state: &CycleState,
    pod: &PodInfo,
    cache: &Cache,
    diagnosis: &Diagnosis,
) -> Result<Preemption, String> {
    eligible(pod, cache)?;
    let mut statuses: BTreeMap<String, Status> = BTreeMap::new();
    let mut best: Option<Preemption> = None;
    for node in cache.nodes().iter().filter(|n| n.node.is_some()) {
        let helpful = diagnosis.pre_filter.is_none()
            && diagnosis
                .statuses
                .get(&node.name)
                .is_none_or(|s| s.code == Code::Unschedulable);
        if !helpful {
            statuses.insert(node.name.clone(), Status::unresolvable(NAME, NOT_HELPFUL));
            continue;
        }
        match select_victims(profile, state, pod, node) {
            None => {
                statuses.insert(node.name.clone(), Status::unschedulable(NAME, NO_VICTIMS));
            }
            Some(victims) => {
                if best.as_ref().is_none_or(|b| better(&victims, &b.victims)) {
                    best = Some(Preemption {
                        node: node.name.clone(),
                        victims,
                    });
                }
            }
        }
    }
    best.ok_or_else(|| {
        format!(
            "preemption: 0/{} nodes are available: {}.",
            cache.node_count(),
            histogram(statuses.values())
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{Outcome, schedule};
    use crate::testing::{node, pod};

    fn unschedulable(cache: &Cache, p: &PodInfo) -> (Diagnosis, CycleState) {
        match schedule(&Profile::default_profile(), cache, p, &mut 0, 0) {
            Outcome::Unschedulable(d, s) => (d, s),
            Outcome::Placed(pl) => panic!("placed on {}", pl.node),
        }
    }

    #[test]
    fn evicts_the_fewest_least_important_pods() {
        let mut cache = Cache::new();
        cache.upsert_node(Arc::new(node("n1").cpu("2").build()));
        cache.upsert_node(Arc::new(node("n2").cpu("2").build()));
        cache.upsert_node(Arc::new(
            node("tainted")
                .cpu("2")
                .taint("x", "", "NoSchedule")
                .build(),
        ));
        for (name, n, cpu, prio) in [
            ("a", "n1", "1", 5),
            ("b", "n1", "1", 5),
            ("c", "n2", "1", 1),
            ("d", "n2", "1", 100),
        ] {
            cache.upsert_pod(Arc::new(
                pod(name).cpu(cpu).priority(prio).node(n).build_info(),
            ));
        }
        let p = pod("p").cpu("1").priority(10).build_info();
        let (d, state) = unschedulable(&cache, &p);
        let got = preempt(&Profile::default_profile(), &state, &p, &cache, &d).expect("preempts");
        assert_eq!(got.node, "n2");
        let names: Vec<&str> = got.victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["c"]);
    }

    #[test]
    fn explains_why_preemption_cannot_help() {
        let mut cache = Cache::new();
        cache.upsert_node(Arc::new(node("n1").cpu("1").build()));
        cache.upsert_node(Arc::new(
            node("tainted")
                .cpu("1")
                .taint("x", "", "NoSchedule")
                .build(),
        ));
        cache.upsert_pod(Arc::new(
            pod("same").cpu("1").priority(10).node("n1").build_info(),
        ));
        let p = pod("p").cpu("1").priority(10).build_info();
        let (d, state) = unschedulable(&cache, &p);
        let err =
            preempt(&Profile::default_profile(), &state, &p, &cache, &d).expect_err("no victims");
        assert_eq!(
            err,
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
        let never = PodInfo {
            preempt_never: true,
            ..p
        };
        let err =
            preempt(&Profile::default_profile(), &state, &never, &cache, &d).expect_err("never");
        assert_eq!(
            err,
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }
}
