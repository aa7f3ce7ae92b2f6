//! The Deployment controller: owns ReplicaSets named `<deployment>-<pod-template-hash>` and rolls pods
//! from old templates to the new one — RollingUpdate bounded by maxSurge/maxUnavailable (absolute or
//! %), Recreate, proportional scaling of every active ReplicaSet when replicas change mid-rollout,
//! revision annotations (rollback is `kubectl rollout undo` rewriting the template), paused
//! deployments, revisionHistoryLimit cleanup and the Progressing/Available conditions with upstream's
//! reasons and messages. The decisions are the pure functions below; [`DeploymentController`] executes
//! them one step per sync, as upstream does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector as MetaSelector, ObjectMeta, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use oxkube_api::selector::LabelSelector;
use serde_json::{Value, json};

use crate::events::{NORMAL, Recorder, WARNING};
use crate::informer::{Change, Informer, ObjectKey};
use crate::manager::{Context, Controller};
use crate::owner::{self, Claim};
use crate::queue::WorkQueue;

/// The label (and RS name suffix) identifying a template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// Revision of a ReplicaSet / the Deployment's current one.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// Earlier revisions a ReplicaSet held (after rollbacks).
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The Deployment's replicas when the ReplicaSet was last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// The Deployment's replicas + maxSurge when the ReplicaSet was last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// Annotations never copied from a Deployment to its ReplicaSets.
const SKIP_ANNOTATIONS: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    "deprecated.deployment.rollback.to",
];

/// Progressing reasons (upstream's `deploymentutil` constants).
pub const REASON_NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
/// Progressing: the new ReplicaSet is being scaled.
pub const REASON_RS_UPDATED: &str = "ReplicaSetUpdated";
/// Progressing: the deadline passed.
pub const REASON_TIMED_OUT: &str = "ProgressDeadlineExceeded";
/// Progressing: a new ReplicaSet was created.
pub const REASON_NEW_RS_CREATED: &str = "NewReplicaSetCreated";
/// Progressing: an existing ReplicaSet became the new one.
pub const REASON_FOUND_NEW_RS: &str = "FoundNewReplicaSet";
/// Progressing: paused.
pub const REASON_PAUSED: &str = "DeploymentPaused";
/// Progressing: resumed.
pub const REASON_RESUMED: &str = "DeploymentResumed";
/// Progressing: the new ReplicaSet could not be created.
pub const REASON_RS_CREATE_ERROR: &str = "ReplicaSetCreateError";

// ---------------------------------------------------------------- pure helpers

fn replicas_of(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map(|s| s.replicas).unwrap_or(0)
}

fn available_of(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

fn ready_of(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

fn desired(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// A ReplicaSet's revision (0 when unset or unparsable).
pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(&rs.metadata, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Whether the Deployment rolls with the RollingUpdate strategy (the default).
pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

/// An int-or-percent scaled against `total` (upstream's `GetScaledValueFromIntOrPercent`).
pub fn scaled_value(value: &IntOrString, total: i32, round_up: bool) -> i32 {
    match value {
        IntOrString::Int(n) => *n,
        IntOrString::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            let num = pct * i64::from(total);
            let v = if round_up {
                (num + 99).div_euclid(100)
            } else {
                num.div_euclid(100)
            };
            v as i32
        }
    }
}

/// (maxSurge, maxUnavailable) resolved against `replicas` (upstream's `ResolveFenceposts`).
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let replicas = desired(d);
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let quarter = IntOrString::String("25%".into());
    let surge = rolling
        .and_then(|r| r.max_surge.as_ref())
        .unwrap_or(&quarter);
    let unavailable = rolling
        .and_then(|r| r.max_unavailable.as_ref())
        .unwrap_or(&quarter);
    let surge = scaled_value(surge, replicas, true);
    let unavailable = scaled_value(unavailable, replicas, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// maxSurge (0 unless rolling).
pub fn max_surge(d: &Deployment) -> i32 {
    if is_rolling(d) { fenceposts(d).0 } else { 0 }
}

/// maxUnavailable (0 unless rolling, at most replicas).
pub fn max_unavailable(d: &Deployment) -> i32 {
    let replicas = desired(d);
    if !is_rolling(d) || replicas == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas)
}

/// FNV-1a, 32 bits.
fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Upstream's `rand.SafeEncodeString` alphabet (no vowels, no confusable digits).
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The pod-template-hash of `template` with `collision_count` (FNV-1a over its canonical JSON, encoded
/// as upstream encodes its hash).
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(c) = collision_count {
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    fnv32a(&bytes)
        .to_string()
        .bytes()
        .map(|b| SAFE_ALPHABET[usize::from(b) % SAFE_ALPHABET.len()] as char)
        .collect()
}

fn without_hash(template: &PodTemplateSpec) -> Value {
    let mut v = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(POD_TEMPLATE_HASH);
        if labels.is_empty()
            && let Some(m) = v.pointer_mut("/metadata").and_then(Value::as_object_mut)
        {
            m.remove("labels");
        }
    }
    v
}

/// Templates equal apart from the pod-template-hash label (upstream's `EqualIgnoreHash`).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

fn created(rs: &ReplicaSet) -> (Option<Timestamp>, String) {
    (
        rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        rs.name_any(),
    )
}

/// The new ReplicaSet (oldest whose template matches) and the others.
pub fn split_new_old(
    d: &Deployment,
    all: &[Arc<ReplicaSet>],
) -> (Option<Arc<ReplicaSet>>, Vec<Arc<ReplicaSet>>) {
    let mut sorted = all.to_vec();
    sorted.sort_by_key(|rs| created(rs));
    let template = d.spec.as_ref().map(|s| &s.template);
    let new = sorted
        .iter()
        .find(|rs| {
            let t = rs.spec.as_ref().and_then(|s| s.template.as_ref());
            matches!((t, template), (Some(a), Some(b)) if equal_ignore_hash(a, b))
        })
        .cloned();
    let old = sorted
        .into_iter()
        .filter(|rs| {
            new.as_ref()
                .is_none_or(|n| n.metadata.uid != rs.metadata.uid)
        })
        .collect();
    (new, old)
}

/// The replicas the new ReplicaSet may have now (upstream's `NewRSNewReplicas`).
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_replicas: i32) -> i32 {
    let replicas = desired(d);
    if !is_rolling(d) {
        return replicas;
    }
    let current: i32 = all.iter().map(|rs| replicas_of(rs)).sum();
    let max_total = replicas + max_surge(d);
    if current >= max_total {
        return new_replicas;
    }
    let up = (max_total - current).min(replicas - new_replicas);
    new_replicas + up
}

/// Annotations a ReplicaSet should carry (upstream's `SetNewReplicaSetAnnotations`); `None` = unchanged.
pub fn new_rs_annotations(
    d: &Deployment,
    rs_annotations: &BTreeMap<String, String>,
    new_revision: i64,
    exists: bool,
) -> Option<BTreeMap<String, String>> {
    let mut out = rs_annotations.clone();
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if !SKIP_ANNOTATIONS.contains(&k.as_str()) {
            out.insert(k.clone(), v.clone());
        }
    }
    let old_revision = rs_annotations.get(REVISION).cloned().unwrap_or_default();
    let old_num: i64 = old_revision.parse().unwrap_or(0);
    if old_revision.is_empty() || old_num < new_revision {
        out.insert(REVISION.into(), new_revision.to_string());
        if !old_revision.is_empty() {
            let history = match out.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old_revision}"),
                _ => old_revision.clone(),
            };
            out.insert(REVISION_HISTORY.into(), history);
        }
    }
    if !exists {
        out.insert(DESIRED_REPLICAS.into(), desired(d).to_string());
        out.insert(MAX_REPLICAS.into(), (desired(d) + max_surge(d)).to_string());
    }
    (out != *rs_annotations).then_some(out)
}

/// Whether any active ReplicaSet was scaled for another replica count (upstream's `isScalingEvent`).
pub fn is_scaling_event(d: &Deployment, all: &[Arc<ReplicaSet>]) -> bool {
    all.iter()
        .filter(|rs| replicas_of(rs) > 0)
        .filter_map(|rs| {
            annotation(&rs.metadata, DESIRED_REPLICAS)?
                .parse::<i32>()
                .ok()
        })
        .any(|want| want != desired(d))
}

/// One ReplicaSet scale the controller issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    /// The ReplicaSet.
    pub name: String,
    /// Its new `spec.replicas`.
    pub replicas: i32,
}

/// Proportional scaling (upstream's `scale`): which ReplicaSets to resize when replicas changed.
pub fn proportional_scale(
    d: &Deployment,
    new: Option<&ReplicaSet>,
    old: &[&ReplicaSet],
) -> Vec<Scale> {
    let replicas = desired(d);
    let mut all: Vec<&ReplicaSet> = old.iter().copied().chain(new).collect();
    let active: Vec<&ReplicaSet> = all
        .iter()
        .copied()
        .filter(|rs| replicas_of(rs) > 0)
        .collect();
    // One active (or the latest) ReplicaSet takes the whole count.
    let only = match active.len() {
        0 => new.or_else(|| all.iter().copied().max_by_key(|rs| created(rs))),
        1 => Some(active[0]),
        _ => None,
    };
    if let Some(rs) = only {
        return if replicas_of(rs) == replicas {
            Vec::new()
        } else {
            vec![Scale {
                name: rs.name_any(),
                replicas,
            }]
        };
    }
    // Saturated new ReplicaSet: the old ones go to zero.
    if let Some(n) = new
        && replicas_of(n) == replicas
        && annotation(&n.metadata, DESIRED_REPLICAS).and_then(|v| v.parse::<i32>().ok())
            == Some(replicas)
        && available_of(n) == replicas
    {
        return old
            .iter()
            .filter(|rs| replicas_of(rs) > 0)
            .map(|rs| Scale {
                name: rs.name_any(),
                replicas: 0,
            })
            .collect();
    }
    if !is_rolling(d) {
        return Vec::new();
    }
    all.retain(|rs| replicas_of(rs) > 0);
    let total: i32 = all.iter().map(|rs| replicas_of(rs)).sum();
    let allowed = if replicas > 0 {
        replicas + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - total;
    if to_add > 0 {
        // Larger first, newer first on ties.
        all.sort_by(|a, b| {
            replicas_of(b)
                .cmp(&replicas_of(a))
                .then(created(b).cmp(&created(a)))
        });
    } else if to_add < 0 {
        // Larger first, older first on ties.
        all.sort_by(|a, b| {
            replicas_of(b)
                .cmp(&replicas_of(a))
                .then(created(a).cmp(&created(b)))
        });
    }
    let deployment_replicas = replicas + max_surge(d);
    let mut added = 0;
    let mut sizes: Vec<(String, i32, i32)> = Vec::new();
    for rs in &all {
        let current = replicas_of(rs);
        let mut size = current;
        if to_add != 0 && current != 0 && to_add != added {
            let fraction = if replicas == 0 {
                -current
            } else {
                let annotated = annotation(&rs.metadata, MAX_REPLICAS)
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
                if annotated == 0 {
                    0
                } else {
                    let scaled =
                        f64::from(current) * f64::from(deployment_replicas) / f64::from(annotated);
                    scaled.round() as i32 - current
                }
            };
            let allowed_left = to_add - added;
            let proportion = if to_add > 0 {
                fraction.min(allowed_left)
            } else {
                fraction.max(allowed_left)
            };
            size += proportion;
            added += proportion;
        }
        sizes.push((rs.name_any(), current, size));
    }
    if added != to_add
        && let Some(first) = sizes.first_mut()
    {
        first.2 = (first.2 + to_add - added).max(0);
    }
    sizes
        .into_iter()
        .filter(|(_, current, size)| current != size)
        .map(|(name, _, replicas)| Scale { name, replicas })
        .collect()
}

/// Rolling update, scale-down step (upstream's `reconcileOldReplicaSets`): the old ReplicaSets' new sizes.
pub fn scale_down_old(d: &Deployment, new: &ReplicaSet, old: &[&ReplicaSet]) -> Vec<Scale> {
    let old_pods: i32 = old.iter().map(|rs| replicas_of(rs)).sum();
    if old_pods == 0 {
        return Vec::new();
    }
    let all_pods = old_pods + replicas_of(new);
    let min_available = desired(d) - max_unavailable(d);
    let new_unavailable = replicas_of(new) - available_of(new);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return Vec::new();
    }
    let mut sorted: Vec<&ReplicaSet> = old.to_vec();
    sorted.sort_by_key(|rs| created(rs));
    let mut sizes: Vec<(String, i32, i32, i32)> = sorted
        .iter()
        .map(|rs| {
            (
                rs.name_any(),
                replicas_of(rs),
                replicas_of(rs),
                available_of(rs),
            )
        })
        .collect();
    // First the unhealthy replicas.
    let mut cleaned = 0;
    for (_, _, size, available) in sizes.iter_mut() {
        if cleaned >= max_scaled_down {
            break;
        }
        if *size == 0 || *size == *available {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(*size - *available);
        *size -= down;
        cleaned += down;
    }
    // Then healthy ones, keeping minAvailable.
    let available: i32 = old.iter().map(|rs| available_of(rs)).sum::<i32>() + available_of(new);
    if available > min_available {
        let total = available - min_available;
        let mut scaled = 0;
        for (_, _, size, _) in sizes.iter_mut() {
            if scaled >= total {
                break;
            }
            if *size == 0 {
                continue;
            }
            let down = (*size).min(total - scaled);
            *size -= down;
            scaled += down;
        }
    }
    sizes
        .into_iter()
        .filter(|(_, current, size, _)| current != size)
        .map(|(name, _, replicas, _)| Scale { name, replicas })
        .collect()
}

/// The old ReplicaSets `revisionHistoryLimit` lets go (upstream's `cleanupDeployment`).
pub fn history_to_delete(d: &Deployment, old: &[&ReplicaSet]) -> Vec<String> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    let mut alive: Vec<&ReplicaSet> = old
        .iter()
        .copied()
        .filter(|rs| rs.metadata.deletion_timestamp.is_none())
        .collect();
    let diff = alive.len() as i64 - i64::from(limit);
    if diff <= 0 {
        return Vec::new();
    }
    alive.sort_by(|a, b| {
        revision(a)
            .cmp(&revision(b))
            .then(created(a).cmp(&created(b)))
    });
    alive
        .into_iter()
        .take(diff as usize)
        .filter(|rs| {
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            status_replicas(rs) == 0
                && replicas_of(rs) == 0
                && rs.metadata.generation.unwrap_or(0) <= observed
        })
        .map(|rs| rs.name_any())
        .collect()
}

fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// Sets `cond` as upstream's `SetDeploymentCondition` (no-op when status and reason are unchanged).
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    let conditions = status.conditions.get_or_insert_default();
    conditions.retain(|c| c.type_ != cond.type_);
    conditions.push(cond);
}

fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(c) = status.conditions.as_mut() {
        c.retain(|c| c.type_ != type_);
        if c.is_empty() {
            status.conditions = None;
        }
    }
}

fn nz(n: i32) -> Option<i32> {
    (n != 0).then_some(n)
}

/// The counts and Available condition (upstream's `calculateStatus`).
pub fn calculate_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: Timestamp,
) -> DeploymentStatus {
    let available: i32 = all.iter().map(|rs| available_of(rs)).sum();
    let total: i32 = all.iter().map(|rs| replicas_of(rs)).sum();
    let current = d.status.clone().unwrap_or_default();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: nz(all.iter().map(|rs| status_replicas(rs)).sum()),
        updated_replicas: nz(new.map(status_replicas).unwrap_or(0)),
        ready_replicas: nz(all.iter().map(|rs| ready_of(rs)).sum()),
        available_replicas: nz(available),
        unavailable_replicas: nz((total - available).max(0)),
        collision_count: current.collision_count,
        conditions: current.conditions.clone(),
        terminating_replicas: None,
    };
    let cond = if available >= desired(d) - max_unavailable(d) {
        new_condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        new_condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set_condition(&mut status, cond);
    status
}

/// The progress deadline, if the Deployment has one.
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

/// Upstream's `DeploymentComplete`.
pub fn is_complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let want = desired(d);
    s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
        && s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream's `DeploymentProgressing`.
fn is_progressing(d: &Deployment, s: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = old.replicas.unwrap_or(0) - old.updated_replicas.unwrap_or(0);
    let new_old = s.replicas.unwrap_or(0) - s.updated_replicas.unwrap_or(0);
    s.updated_replicas.unwrap_or(0) > old.updated_replicas.unwrap_or(0)
        || new_old < old_old
        || s.ready_replicas.unwrap_or(0) > old.ready_replicas.unwrap_or(0)
        || s.available_replicas.unwrap_or(0) > old.available_replicas.unwrap_or(0)
}

fn deadline_of(cond: &DeploymentCondition, deadline: i32) -> Option<Timestamp> {
    let from = cond.last_update_time.as_ref()?.0;
    from.checked_add(SignedDuration::from_secs(i64::from(deadline)))
        .ok()
}

/// Upstream's `DeploymentTimedOut`.
fn is_timed_out(d: &Deployment, s: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(cond) = condition(s, "Progressing") else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(REASON_NEW_RS_AVAILABLE) => false,
        Some(REASON_TIMED_OUT) => true,
        _ => deadline_of(cond, deadline).is_some_and(|at| at < now),
    }
}

/// The rollout status (upstream's `syncRolloutStatus` without the write): the new status and, when the
/// rollout is stuck short of its deadline, when to look again.
pub fn rollout_status(
    d: &Deployment,
    all: &[&ReplicaSet],
    new: Option<&ReplicaSet>,
    now: Timestamp,
) -> (DeploymentStatus, Option<Duration>) {
    let mut s = calculate_status(d, all, new, now);
    let deadline = progress_deadline(d);
    if deadline.is_none() {
        remove_condition(&mut s, "Progressing");
    }
    let current = condition(&s, "Progressing").cloned();
    let complete_already = s.replicas == s.updated_replicas
        && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(REASON_NEW_RS_AVAILABLE);
    if deadline.is_some() && !complete_already {
        let rs_name = new.map(|rs| rs.name_any());
        if is_complete(d, &s) {
            let msg = match &rs_name {
                Some(n) => format!("ReplicaSet \"{n}\" has successfully progressed."),
                None => "Deployment has successfully progressed.".into(),
            };
            set_condition(
                &mut s,
                new_condition("Progressing", "True", REASON_NEW_RS_AVAILABLE, msg, now),
            );
        } else if is_progressing(d, &s) {
            let msg = match &rs_name {
                Some(n) => format!("ReplicaSet \"{n}\" is progressing."),
                None => "Deployment is progressing.".into(),
            };
            let mut cond = new_condition("Progressing", "True", REASON_RS_UPDATED, msg, now);
            if let Some(c) = &current
                && c.status == "True"
            {
                cond.last_transition_time = c.last_transition_time.clone();
            }
            remove_condition(&mut s, "Progressing");
            set_condition(&mut s, cond);
        } else if is_timed_out(d, &s, now) {
            let msg = match &rs_name {
                Some(n) => format!("ReplicaSet \"{n}\" has timed out progressing."),
                None => "Deployment has timed out progressing.".into(),
            };
            set_condition(
                &mut s,
                new_condition("Progressing", "False", REASON_TIMED_OUT, msg, now),
            );
        }
    }
    // ReplicaFailure mirrors the ReplicaSets'.
    let failure = all.iter().find_map(|rs| {
        rs.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "ReplicaFailure")
            .cloned()
    });
    match failure {
        Some(f) => set_condition(
            &mut s,
            DeploymentCondition {
                type_: "ReplicaFailure".into(),
                status: f.status,
                reason: f.reason,
                message: f.message,
                last_update_time: Some(Time(now)),
                last_transition_time: f.last_transition_time,
            },
        ),
        None => remove_condition(&mut s, "ReplicaFailure"),
    }
    // Requeue a stuck rollout for its deadline (upstream's `requeueStuckDeployment`).
    let requeue = match (deadline, condition(&s, "Progressing")) {
        (Some(deadline), Some(c))
            if c.reason.as_deref() != Some(REASON_NEW_RS_AVAILABLE)
                && c.reason.as_deref() != Some(REASON_TIMED_OUT)
                && !is_complete(d, &s) =>
        {
            deadline_of(c, deadline).map(|at| {
                let left = at.duration_since(now);
                if left < SignedDuration::from_secs(1) {
                    Duration::ZERO
                } else {
                    Duration::try_from(left).unwrap_or(Duration::ZERO)
                }
            })
        }
        _ => None,
    };
    (s, requeue)
}

/// The Paused/Resumed Progressing condition (upstream's `checkPausedConditions`).
pub fn paused_condition(d: &Deployment, now: Timestamp) -> Option<DeploymentCondition> {
    progress_deadline(d)?;
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    let status = d.status.clone().unwrap_or_default();
    let reason = condition(&status, "Progressing").and_then(|c| c.reason.as_deref());
    if paused && reason != Some(REASON_PAUSED) {
        Some(new_condition(
            "Progressing",
            "Unknown",
            REASON_PAUSED,
            "Deployment is paused".into(),
            now,
        ))
    } else if !paused && reason == Some(REASON_PAUSED) {
        Some(new_condition(
            "Progressing",
            "Unknown",
            REASON_RESUMED,
            "Deployment is resumed".into(),
            now,
        ))
    } else {
        None
    }
}

/// The new ReplicaSet for `d` (upstream's `getNewReplicaSet`, creation branch).
pub fn new_replica_set(d: &Deployment, hash: &str, replicas: i32, revision: i64) -> ReplicaSet {
    let spec = d.spec.clone().unwrap_or_default();
    let mut template = spec.template.clone();
    template
        .metadata
        .get_or_insert_default()
        .labels
        .get_or_insert_default()
        .insert(POD_TEMPLATE_HASH.into(), hash.into());
    let mut selector: MetaSelector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_default()
        .insert(POD_TEMPLATE_HASH.into(), hash.into());
    let name = format!("{}-{hash}", d.name_any());
    let mut rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: d.metadata.namespace.clone(),
            labels: template.metadata.as_ref().and_then(|m| m.labels.clone()),
            owner_references: Some(vec![owner::new_controller_ref(d)]),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            min_ready_seconds: spec.min_ready_seconds,
            selector,
            template: Some(template),
        }),
        status: None,
    };
    rs.metadata.annotations = new_rs_annotations(d, &BTreeMap::new(), revision, false);
    rs
}

// ---------------------------------------------------------------- the shell

/// Failures of one Deployment's sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Adopting or releasing a ReplicaSet failed.
    #[error("claiming replica set {name}")]
    Claim {
        /// The ReplicaSet.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Creating the new ReplicaSet failed.
    #[error("creating replica set {name}")]
    Create {
        /// The ReplicaSet.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The new ReplicaSet's name is taken by another template.
    #[error("hash collision on replica set {name}")]
    Collision {
        /// The ReplicaSet.
        name: String,
    },
    /// Updating a ReplicaSet failed.
    #[error("updating replica set {name}")]
    UpdateReplicaSet {
        /// The ReplicaSet.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Deleting an old ReplicaSet failed.
    #[error("deleting replica set {name}")]
    Delete {
        /// The ReplicaSet.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the Deployment failed.
    #[error("updating the deployment")]
    Update(#[source] kube::Error),
}

/// The Deployment controller, keyed by Deployment.
#[derive(Debug)]
pub struct DeploymentController {
    ctx: Context,
    queue: WorkQueue<ObjectKey>,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    recorder: Recorder,
}

fn deployment_key_of_rs(rs: &ReplicaSet) -> Option<ObjectKey> {
    let r = owner::controller_ref(&rs.metadata)?;
    (r.kind == "Deployment").then(|| {
        ObjectKey::new(
            rs.metadata.namespace.clone().unwrap_or_default(),
            r.name.clone(),
        )
    })
}

fn selector_of(d: &Deployment) -> Option<LabelSelector> {
    let sel = &d.spec.as_ref()?.selector;
    if sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
    {
        return None;
    }
    LabelSelector::from_meta(sel).ok()
}

fn ok_or_gone(r: Result<(), kube::Error>) -> Result<(), kube::Error> {
    match r {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other,
    }
}

/// The status as a merge patch: absent counts become null so stale values are cleared.
fn status_patch(s: &DeploymentStatus) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        for k in [
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
            "conditions",
            "collisionCount",
        ] {
            m.entry(k).or_insert(Value::Null);
        }
    }
    json!({ "status": v })
}

impl DeploymentController {
    /// Registers on the Deployment, ReplicaSet and pod informers.
    pub fn new(ctx: &Context) -> Self {
        let queue: WorkQueue<ObjectKey> = WorkQueue::new();
        let deployments = ctx.informers.typed::<Deployment>();
        let replica_sets = ctx.informers.typed::<ReplicaSet>();
        let pods = ctx.informers.typed::<Pod>();
        let q = queue.clone();
        deployments.on_change(move |c| match c {
            Change::Added(d) | Change::Updated(_, d) | Change::Deleted(d) => {
                q.add(ObjectKey::of(d.as_ref()))
            }
        });
        let q = queue.clone();
        let ds = deployments.clone();
        replica_sets.on_change(move |c| {
            let (old, new) = match c {
                Change::Added(rs) => (None, Some(rs)),
                Change::Updated(o, n) => (Some(o), Some(n)),
                Change::Deleted(rs) => (Some(rs), None),
            };
            let mut keys: Vec<ObjectKey> = old
                .iter()
                .chain(new.iter())
                .filter_map(|rs| deployment_key_of_rs(rs))
                .collect();
            if let Some(rs) = new
                && owner::controller_ref(&rs.metadata).is_none()
                && rs.metadata.deletion_timestamp.is_none()
            {
                let labels = rs.metadata.labels.clone().unwrap_or_default();
                for d in ds.by_namespace(rs.metadata.namespace.as_deref().unwrap_or_default()) {
                    if selector_of(&d).is_some_and(|s| s.matches(&labels)) {
                        keys.push(ObjectKey::of(d.as_ref()));
                    }
                }
            }
            keys.dedup();
            for k in keys {
                q.add(k);
            }
        });
        // Recreate waits for old pods to be gone.
        let q = queue.clone();
        let rss = replica_sets.clone();
        pods.on_change(move |c| {
            if let Change::Deleted(pod) = c
                && let Some(r) = owner::controller_ref(&pod.metadata)
                && r.kind == "ReplicaSet"
                && let Some(rs) = rss.get(
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                    &r.name,
                )
                && let Some(key) = deployment_key_of_rs(&rs)
            {
                q.add(key);
            }
        });
        DeploymentController {
            ctx: ctx.clone(),
            queue,
            deployments,
            replica_sets,
            pods,
            recorder: ctx.recorder.for_component("deployment-controller"),
        }
    }

    fn rs_api(&self, namespace: &str) -> Api<ReplicaSet> {
        Api::namespaced(self.ctx.client.clone(), namespace)
    }

    /// Adopts/releases ReplicaSets; returns the ones this Deployment controls.
    async fn claim(&self, d: &Deployment) -> Result<Vec<Arc<ReplicaSet>>, SyncError> {
        let namespace = d.namespace().unwrap_or_default();
        let uid = d.metadata.uid.clone().unwrap_or_default();
        let selector = selector_of(d);
        let deleting = d.metadata.deletion_timestamp.is_some();
        let api = self.rs_api(&namespace);
        let mut owned = Vec::new();
        for rs in self.replica_sets.by_namespace(&namespace) {
            let labels = rs.metadata.labels.clone().unwrap_or_default();
            let matches = selector.as_ref().is_some_and(|s| s.matches(&labels));
            let name = rs.name_any();
            let patch = match owner::claim(&uid, deleting, matches, &rs.metadata) {
                Claim::Owned => {
                    owned.push(rs);
                    continue;
                }
                Claim::Ignore => continue,
                Claim::Adopt => owner::adopt_patch(&rs.metadata, &owner::new_controller_ref(d)),
                Claim::Release => owner::release_patch(&rs.metadata, &uid),
            };
            let adopting = patch["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid.as_str()));
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(rs) if adopting => owned.push(Arc::new(rs)),
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(source) => return Err(SyncError::Claim { name, source }),
            }
        }
        Ok(owned)
    }

    /// Scales `rs` (and refreshes its replica annotations), recording upstream's event.
    async fn scale(&self, d: &Deployment, rs: &ReplicaSet, replicas: i32) -> Result<(), SyncError> {
        let current = replicas_of(rs);
        let want_desired = desired(d).to_string();
        let want_max = (desired(d) + max_surge(d)).to_string();
        let annotations_ok = annotation(&rs.metadata, DESIRED_REPLICAS)
            == Some(want_desired.as_str())
            && annotation(&rs.metadata, MAX_REPLICAS) == Some(want_max.as_str());
        if current == replicas && annotations_ok {
            return Ok(());
        }
        let patch = json!({
            "metadata": {
                "resourceVersion": rs.metadata.resource_version,
                "annotations": {DESIRED_REPLICAS: want_desired, MAX_REPLICAS: want_max},
            },
            "spec": {"replicas": replicas},
        });
        let name = rs.name_any();
        self.rs_api(&rs.namespace().unwrap_or_default())
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|source| SyncError::UpdateReplicaSet {
                name: name.clone(),
                source,
            })?;
        if current != replicas {
            let op = if current < replicas { "up" } else { "down" };
            self.recorder.publish(
                d,
                NORMAL,
                "ScalingReplicaSet",
                format!("Scaled {op} replica set {name} from {current} to {replicas}"),
            );
        }
        Ok(())
    }

    async fn apply_scales(
        &self,
        d: &Deployment,
        all: &[Arc<ReplicaSet>],
        scales: Vec<Scale>,
    ) -> Result<bool, SyncError> {
        let mut any = false;
        for s in scales {
            if let Some(rs) = all.iter().find(|rs| rs.name_any() == s.name) {
                self.scale(d, rs, s.replicas).await?;
                any = true;
            }
        }
        Ok(any)
    }

    async fn write_status(
        &self,
        d: &Deployment,
        status: &DeploymentStatus,
    ) -> Result<(), SyncError> {
        if d.status.as_ref() == Some(status) {
            return Ok(());
        }
        let api: Api<Deployment> =
            Api::namespaced(self.ctx.client.clone(), &d.namespace().unwrap_or_default());
        ok_or_gone(
            api.patch_status(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&status_patch(status)),
            )
            .await
            .map(|_| ()),
        )
        .map_err(SyncError::Update)
    }

    async fn set_deployment_revision(
        &self,
        d: &Deployment,
        revision: &str,
    ) -> Result<(), SyncError> {
        if annotation(&d.metadata, REVISION) == Some(revision) {
            return Ok(());
        }
        let api: Api<Deployment> =
            Api::namespaced(self.ctx.client.clone(), &d.namespace().unwrap_or_default());
        let patch = json!({"metadata": {"annotations": {REVISION: revision}}});
        ok_or_gone(
            api.patch(
                &d.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ()),
        )
        .map_err(SyncError::Update)
    }

    /// Upstream's `getNewReplicaSet`: syncs the existing new ReplicaSet's annotations or creates it.
    async fn new_rs(
        &self,
        d: &Deployment,
        all: &[Arc<ReplicaSet>],
        create: bool,
    ) -> Result<Option<Arc<ReplicaSet>>, SyncError> {
        let (existing, old) = split_new_old(d, all);
        let max_old = old.iter().map(|rs| revision(rs)).max().unwrap_or(0);
        let new_revision = max_old + 1;
        let now = self.ctx.clock.now();
        if let Some(rs) = existing {
            let annotations = rs.metadata.annotations.clone().unwrap_or_default();
            let updated = new_rs_annotations(d, &annotations, new_revision, true);
            let min_ready = d.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let rs_min_ready = rs.spec.as_ref().and_then(|s| s.min_ready_seconds);
            let rs = if updated.is_some() || min_ready.unwrap_or(0) != rs_min_ready.unwrap_or(0) {
                let patch = json!({
                    "metadata": {"resourceVersion": rs.metadata.resource_version, "annotations": updated.unwrap_or(annotations)},
                    "spec": {"minReadySeconds": min_ready},
                });
                let name = rs.name_any();
                Arc::new(
                    self.rs_api(&rs.namespace().unwrap_or_default())
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(|source| SyncError::UpdateReplicaSet { name, source })?,
                )
            } else {
                rs
            };
            let rev = annotation(&rs.metadata, REVISION)
                .unwrap_or_default()
                .to_string();
            self.set_deployment_revision(d, &rev).await?;
            let mut status = d.status.clone().unwrap_or_default();
            if progress_deadline(d).is_some() && condition(&status, "Progressing").is_none() {
                set_condition(
                    &mut status,
                    new_condition(
                        "Progressing",
                        "True",
                        REASON_FOUND_NEW_RS,
                        format!("Found new replica set \"{}\"", rs.name_any()),
                        now,
                    ),
                );
                self.write_status(d, &status).await?;
            }
            return Ok(Some(rs));
        }
        if !create {
            return Ok(None);
        }
        let spec = d.spec.clone().unwrap_or_default();
        let collision = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&spec.template, collision);
        let mut rs = new_replica_set(d, &hash, 0, new_revision);
        let refs: Vec<&ReplicaSet> = old
            .iter()
            .map(|r| r.as_ref())
            .chain(std::iter::once(&rs))
            .collect();
        let replicas = new_rs_new_replicas(d, &refs, 0);
        if let Some(s) = rs.spec.as_mut() {
            s.replicas = Some(replicas);
        }
        let name = rs.name_any();
        let namespace = d.namespace().unwrap_or_default();
        match self
            .rs_api(&namespace)
            .create(&PostParams::default(), &rs)
            .await
        {
            Ok(created) => {
                if replicas > 0 {
                    self.recorder.publish(
                        d,
                        NORMAL,
                        "ScalingReplicaSet",
                        format!("Scaled up replica set {name} from 0 to {replicas}"),
                    );
                }
                self.set_deployment_revision(d, &new_revision.to_string())
                    .await?;
                if progress_deadline(d).is_some() {
                    let mut status = d.status.clone().unwrap_or_default();
                    set_condition(
                        &mut status,
                        new_condition(
                            "Progressing",
                            "True",
                            REASON_NEW_RS_CREATED,
                            format!("Created new replica set \"{name}\""),
                            now,
                        ),
                    );
                    self.write_status(d, &status).await?;
                }
                Ok(Some(Arc::new(created)))
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Ours already (a stale cache)? Else a hash collision: bump collisionCount.
                let existing = self.rs_api(&namespace).get(&name).await.ok();
                let ours = existing.as_ref().is_some_and(|e| {
                    owner::controller_ref(&e.metadata).map(|r| r.uid.as_str())
                        == d.metadata.uid.as_deref()
                        && e.spec
                            .as_ref()
                            .and_then(|s| s.template.as_ref())
                            .is_some_and(|t| equal_ignore_hash(t, &spec.template))
                });
                if ours {
                    return Ok(existing.map(Arc::new));
                }
                let mut status = d.status.clone().unwrap_or_default();
                status.collision_count = Some(collision.unwrap_or(0) + 1);
                self.write_status(d, &status).await?;
                Err(SyncError::Collision { name })
            }
            Err(source) => {
                let msg = format!("Failed to create new replica set \"{name}\": {source}");
                self.recorder
                    .publish(d, WARNING, "FailedCreate", msg.clone());
                if progress_deadline(d).is_some() {
                    let mut status = d.status.clone().unwrap_or_default();
                    set_condition(
                        &mut status,
                        new_condition("Progressing", "False", REASON_RS_CREATE_ERROR, msg, now),
                    );
                    self.write_status(d, &status).await?;
                }
                Err(SyncError::Create { name, source })
            }
        }
    }

    async fn cleanup(&self, d: &Deployment, old: &[Arc<ReplicaSet>]) -> Result<(), SyncError> {
        let refs: Vec<&ReplicaSet> = old.iter().map(|r| r.as_ref()).collect();
        for name in history_to_delete(d, &refs) {
            ok_or_gone(
                self.rs_api(&d.namespace().unwrap_or_default())
                    .delete(&name, &DeleteParams::background())
                    .await
                    .map(|_| ()),
            )
            .map_err(|source| SyncError::Delete { name, source })?;
        }
        Ok(())
    }

    async fn sync_rollout_status(
        &self,
        key: &ObjectKey,
        d: &Deployment,
        all: &[Arc<ReplicaSet>],
        new: Option<&ReplicaSet>,
    ) -> Result<(), SyncError> {
        let refs: Vec<&ReplicaSet> = all.iter().map(|r| r.as_ref()).collect();
        let (status, requeue) = rollout_status(d, &refs, new, self.ctx.clock.now());
        self.write_status(d, &status).await?;
        if let Some(after) = requeue {
            self.queue.add_after(key.clone(), after);
        }
        Ok(())
    }

    /// Scale-only sync (paused deployments and scaling events).
    async fn sync_scale(&self, d: &Deployment, rss: &[Arc<ReplicaSet>]) -> Result<(), SyncError> {
        let new = self.new_rs(d, rss, false).await?;
        let (_, old) = split_new_old(d, rss);
        let old_refs: Vec<&ReplicaSet> = old.iter().map(|r| r.as_ref()).collect();
        let scales = proportional_scale(d, new.as_deref(), &old_refs);
        self.apply_scales(d, rss, scales).await?;
        if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
            self.cleanup(d, &old).await?;
        }
        let all: Vec<&ReplicaSet> = old_refs.iter().copied().chain(new.as_deref()).collect();
        let status = calculate_status(d, &all, new.as_deref(), self.ctx.clock.now());
        self.write_status(d, &status).await
    }

    async fn rollout_rolling(
        &self,
        key: &ObjectKey,
        d: &Deployment,
        rss: &[Arc<ReplicaSet>],
    ) -> Result<(), SyncError> {
        let new = self.new_rs(d, rss, true).await?;
        let (_, old) = split_new_old(d, rss);
        let mut all: Vec<Arc<ReplicaSet>> = old.clone();
        all.extend(new.iter().cloned());
        let all_refs: Vec<&ReplicaSet> = all.iter().map(|r| r.as_ref()).collect();
        if let Some(new) = &new {
            let want = desired(d);
            let current = replicas_of(new);
            let target = if current > want {
                want
            } else {
                new_rs_new_replicas(d, &all_refs, current)
            };
            if target != current {
                self.scale(d, new, target).await?;
                return self
                    .sync_rollout_status(key, d, &all, Some(new.as_ref()))
                    .await;
            }
            let old_refs: Vec<&ReplicaSet> = old
                .iter()
                .map(|r| r.as_ref())
                .filter(|rs| replicas_of(rs) > 0)
                .collect();
            let scales = scale_down_old(d, new, &old_refs);
            if self.apply_scales(d, &all, scales).await? {
                return self
                    .sync_rollout_status(key, d, &all, Some(new.as_ref()))
                    .await;
            }
        }
        if d.status.as_ref().is_some_and(|s| is_complete(d, s)) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(key, d, &all, new.as_deref()).await
    }

    async fn rollout_recreate(
        &self,
        key: &ObjectKey,
        d: &Deployment,
        rss: &[Arc<ReplicaSet>],
    ) -> Result<(), SyncError> {
        let new = self.new_rs(d, rss, false).await?;
        let (_, old) = split_new_old(d, rss);
        let mut all: Vec<Arc<ReplicaSet>> = old.clone();
        all.extend(new.iter().cloned());
        let scales: Vec<Scale> = old
            .iter()
            .filter(|rs| replicas_of(rs) > 0)
            .map(|rs| Scale {
                name: rs.name_any(),
                replicas: 0,
            })
            .collect();
        if self.apply_scales(d, &all, scales).await? {
            return self.sync_rollout_status(key, d, &all, new.as_deref()).await;
        }
        // Old pods still running (or terminating)?
        let old_running = old.iter().any(|rs| status_replicas(rs) > 0)
            || old.iter().any(|rs| {
                let uid = rs.metadata.uid.clone().unwrap_or_default();
                self.pods.by_owner(&uid).iter().any(|p| {
                    !matches!(
                        p.status.as_ref().and_then(|s| s.phase.as_deref()),
                        Some("Succeeded" | "Failed")
                    )
                })
            });
        if old_running {
            return self.sync_rollout_status(key, d, &all, new.as_deref()).await;
        }
        let new = match new {
            Some(n) => Some(n),
            None => self.new_rs(d, rss, true).await?,
        };
        let mut all: Vec<Arc<ReplicaSet>> = old.clone();
        all.extend(new.iter().cloned());
        if let Some(n) = &new {
            self.scale(d, n, desired(d)).await?;
        }
        if d.status.as_ref().is_some_and(|s| is_complete(d, s)) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(key, d, &all, new.as_deref()).await
    }
}

impl Controller for DeploymentController {
    type Key = ObjectKey;
    type Error = SyncError;

    fn name(&self) -> &'static str {
        "deployment"
    }

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let Some(d) = self.deployments.get(&key.namespace, &key.name) else {
            return Ok(());
        };
        let now = self.ctx.clock.now();
        if selector_of(&d).is_none() {
            self.recorder.publish(
                d.as_ref(),
                WARNING,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            );
            let mut status = d.status.clone().unwrap_or_default();
            status.observed_generation = d.metadata.generation;
            return self.write_status(&d, &status).await;
        }
        let rss = self.claim(&d).await?;
        if d.metadata.deletion_timestamp.is_some() {
            let new = self.new_rs(&d, &rss, false).await?;
            let refs: Vec<&ReplicaSet> = rss.iter().map(|r| r.as_ref()).collect();
            let status = calculate_status(&d, &refs, new.as_deref(), now);
            return self.write_status(&d, &status).await;
        }
        let mut d = (*d).clone();
        if let Some(cond) = paused_condition(&d, now) {
            let mut status = d.status.clone().unwrap_or_default();
            set_condition(&mut status, cond);
            self.write_status(&d, &status).await?;
            d.status = Some(status);
        }
        if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) || is_scaling_event(&d, &rss) {
            return self.sync_scale(&d, &rss).await;
        }
        if is_rolling(&d) {
            self.rollout_rolling(key, &d, &rss).await
        } else {
            self.rollout_recreate(key, &d, &rss).await
        }
    }
}
