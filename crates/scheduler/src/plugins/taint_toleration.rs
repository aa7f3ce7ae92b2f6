//! TaintToleration: a node's NoSchedule/NoExecute taints must be tolerated (Filter); fewer
//! untolerated PreferNoSchedule taints score higher (Score).

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::cache::{Cache, NodeInfo};
use crate::framework::{CycleState, Plugin, Status};
use crate::pod::PodInfo;

pub const NAME: &str = "TaintToleration";

/// Upstream `Toleration.ToleratesTaint`.
pub fn tolerated(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            !key.is_empty()
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// The first NoSchedule/NoExecute taint no toleration covers.
pub fn untolerated<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|taint| {
        (taint.effect == "NoSchedule" || taint.effect == "NoExecute")
            && !tolerations.iter().any(|t| tolerated(t, taint))
    })
}

#[derive(Debug)]
pub struct TaintToleration;

/// PreScore data: the tolerations that count for PreferNoSchedule.
struct Prefer(Vec<Toleration>);

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        match untolerated(&node.taints, &pod.tolerations) {
            None => Status::success(),
            Some(t) => Status::unresolvable(
                NAME,
                format!(
                    "node(s) had untolerated taint {{{}: {}}}",
                    t.key,
                    t.value.as_deref().unwrap_or("")
                ),
            ),
        }
    }

    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &Cache, _: &[&NodeInfo]) {
        let prefer = pod
            .tolerations
            .iter()
            .filter(|t| {
                t.effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
            })
            .cloned()
            .collect();
        state.write(NAME, Prefer(prefer));
    }

    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> i64 {
        let empty = Prefer(Vec::new());
        let prefer = state.read::<Prefer>(NAME).unwrap_or(&empty);
        node.taints
            .iter()
            .filter(|t| {
                t.effect == "PreferNoSchedule" && !prefer.0.iter().any(|tol| tolerated(tol, t))
            })
            .count() as i64
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [i64]) {
        super::default_normalize(scores, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    #[test]
    fn filter_needs_every_hard_taint_tolerated() {
        let cases = [
            (node("n").build(), pod("p"), None),
            (
                node("n").taint("dedicated", "gpu", "NoSchedule").build(),
                pod("p"),
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                node("n").taint("dedicated", "gpu", "NoSchedule").build(),
                pod("p").toleration("dedicated", "Equal", "gpu", "NoSchedule"),
                None,
            ),
            (
                node("n").taint("dedicated", "gpu", "NoSchedule").build(),
                pod("p").toleration("dedicated", "Equal", "cpu", "NoSchedule"),
                Some("node(s) had untolerated taint {dedicated: gpu}"),
            ),
            (
                node("n").taint("dedicated", "", "NoExecute").build(),
                pod("p").toleration("dedicated", "Exists", "", ""),
                None,
            ),
            (
                node("n").taint("x", "", "NoExecute").build(),
                pod("p").toleration("", "Exists", "", ""),
                None,
            ),
            (
                node("n").taint("x", "", "NoSchedule").build(),
                pod("p").toleration("x", "Exists", "", "NoExecute"),
                Some("node(s) had untolerated taint {x: }"),
            ),
            (
                node("n").taint("soft", "", "PreferNoSchedule").build(),
                pod("p"),
                None,
            ),
        ];
        for (i, (n, p, want)) in cases.into_iter().enumerate() {
            let status = TaintToleration.filter(
                &CycleState::default(),
                &p.build_info(),
                &NodeInfo::from_node(n),
            );
            assert_eq!(status.reasons.first().map(String::as_str), want, "case {i}");
        }
    }

    #[test]
    fn score_prefers_fewer_untolerated_soft_taints() {
        let nodes = [
            NodeInfo::from_node(node("a").build()),
            NodeInfo::from_node(node("b").taint("s", "", "PreferNoSchedule").build()),
            NodeInfo::from_node(
                node("c")
                    .taint("s", "", "PreferNoSchedule")
                    .taint("t", "", "PreferNoSchedule")
                    .build(),
            ),
        ];
        let p = pod("p").build_info();
        let mut state = CycleState::default();
        TaintToleration.pre_score(&mut state, &p, &Cache::new(), &[]);
        let mut scores: Vec<i64> = nodes
            .iter()
            .map(|n| TaintToleration.score(&state, &p, n))
            .collect();
        TaintToleration.normalize(&state, &p, &mut scores);
        assert_eq!(scores, [100, 50, 0]);
    }
}
