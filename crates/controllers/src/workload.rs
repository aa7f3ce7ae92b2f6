//! Pure helpers the workload cores share: pod state (ready, available, terminal), controller
//! owner references, taint toleration, label selection and upstream's template hashing.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use oxkube_api::selector;

/// An event a core asks its shell to record on the object it reconciles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// The upstream reason (`SuccessfulCreate`, ...).
    pub reason: &'static str,
    /// The upstream message.
    pub message: String,
}

impl Event {
    /// A `Normal` event.
    pub fn normal(reason: &'static str, message: String) -> Self {
        Event {
            type_: "Normal",
            reason,
            message,
        }
    }

    /// A `Warning` event.
    pub fn warning(reason: &'static str, message: String) -> Self {
        Event {
            type_: "Warning",
            reason,
            message,
        }
    }
}

/// The pod's phase (`Pending` when unset).
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Whether the pod reached `Succeeded` or `Failed`.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Whether the pod carries a deletion timestamp.
pub fn is_deleting(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Whether neither terminal nor being deleted (upstream `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    !is_terminal(pod) && !is_deleting(pod)
}

/// The pod's condition `type_`, if reported.
fn condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Whether the pod's `Ready` condition is `True`.
pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

/// Whether the pod has been ready for at least `min_ready_seconds` at `now` (upstream
/// `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    let Some(c) = condition(pod, "Ready").filter(|c| c.status == "True") else {
        return false;
    };
    if min_ready_seconds <= 0 {
        return true;
    }
    c.last_transition_time
        .as_ref()
        .is_some_and(|t| t.0.as_second() + i64::from(min_ready_seconds) <= now.as_second())
}

/// The controller owner reference upstream puts on objects a controller creates.
pub fn controller_ref(api_version: &str, kind: &str, meta: &ObjectMeta) -> OwnerReference {
    OwnerReference {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `meta` names the object with `uid` as its controller.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.uid == uid)
}

/// Whether `selector` (absent or invalid: nothing) selects `labels`.
pub fn selects(sel: Option<&LabelSelector>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(sel) = sel else { return false };
    match selector::LabelSelector::from_meta(sel) {
        Ok(s) if !s.is_everything() => s.matches(labels.unwrap_or(&BTreeMap::new())),
        _ => false,
    }
}

/// Whether `toleration` tolerates `taint` (upstream `Toleration.ToleratesTaint`).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    if let Some(key) = toleration.key.as_deref()
        && !key.is_empty()
        && key != taint.key
    {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// Whether any of `tolerations` tolerates `taint`.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// 32-bit FNV-1a, the hash upstream's controllers use for revision names.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// Upstream `rand.SafeEncodeString` of the decimal hash: each digit mapped to a consonant or
/// digit that cannot spell words.
pub fn safe_encode(hash: u32) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// The hash naming a revision of `data` (upstream `controller.ComputeHash`: the object's
/// hash, mixed with the collision count when there is one).
pub fn compute_hash(data: &serde_json::Value, collision_count: Option<i32>) -> String {
    let mut bytes = serde_json::to_vec(data).unwrap_or_default();
    if let Some(c) = collision_count.filter(|c| *c > 0) {
        bytes.extend_from_slice(&c.to_le_bytes());
    }
    safe_encode(fnv32a(&bytes))
}

/// A short random-looking suffix derived from `seed`, as `generateName` would give (five
/// characters of the safe alphabet).
pub fn name_suffix(seed: &str) -> String {
    let mut s = safe_encode(fnv32a(seed.as_bytes()));
    s.truncate(5);
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_reference_vectors() {
        assert_eq!(fnv32a(b""), 0x811c_9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_maps_digits_like_upstream() {
        // '1' is byte 49: 49 % 27 = 22 → '5'; '0' → 48 % 27 = 21 → '4'.
        assert_eq!(safe_encode(10), "54");
    }

    #[test]
    fn tolerations_follow_upstream_matching() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        };
        let exists = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(tolerates(&exists, &taint));
        let wrong_value = Toleration {
            key: Some("k".into()),
            value: Some("w".into()),
            ..Default::default()
        };
        assert!(!tolerates(&wrong_value, &taint));
        let wrong_effect = Toleration {
            key: Some("k".into()),
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        };
        assert!(!tolerates(&wrong_effect, &taint));
    }
}

/// The label a ControllerRevision carries with its hash.
pub const REVISION_HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The revision of `template` a StatefulSet or DaemonSet records (upstream: the patch
/// `{"spec":{"template":{…,"$patch":"replace"}}}`, named `<owner>-<hash>`, labelled with the
/// template's labels and the hash).
pub fn revision_of(
    api_version: &str,
    kind: &str,
    owner: &ObjectMeta,
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    collision_count: Option<i32>,
    number: i64,
) -> k8s_openapi::api::apps::v1::ControllerRevision {
    let mut tpl = serde_json::to_value(template).unwrap_or_default();
    if let Some(obj) = tpl.as_object_mut() {
        obj.insert("$patch".to_string(), serde_json::Value::from("replace"));
    }
    let data = serde_json::json!({ "spec": { "template": tpl } });
    let hash = compute_hash(&data, collision_count);
    let owner_name = owner.name.clone().unwrap_or_default();
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_string(), hash.clone());
    k8s_openapi::api::apps::v1::ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{owner_name}-{hash}")),
            namespace: owner.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref(api_version, kind, owner)]),
            ..Default::default()
        },
        data: k8s_openapi::apimachinery::pkg::runtime::RawExtension(data),
        revision: Some(number),
    }
}

/// The pod template a revision recorded.
pub fn template_of(
    revision: &k8s_openapi::api::apps::v1::ControllerRevision,
) -> Option<k8s_openapi::api::core::v1::PodTemplateSpec> {
    let mut tpl = revision.data.0.get("spec")?.get("template")?.clone();
    if let Some(obj) = tpl.as_object_mut() {
        obj.remove("$patch");
    }
    serde_json::from_value(tpl).ok()
}

/// The hash label of a revision (its name's suffix after the owner's name when unlabelled).
pub fn revision_hash(revision: &k8s_openapi::api::apps::v1::ControllerRevision) -> String {
    revision
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_HASH_LABEL).cloned())
        .or_else(|| {
            let name = revision.metadata.name.as_deref()?;
            Some(name.rsplit_once('-')?.1.to_string())
        })
        .unwrap_or_default()
}

/// Builders the cores' unit tests share.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    use jiff::Timestamp;
    use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    /// A timestamp from RFC 3339.
    pub fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A pod `name` (uid = name) in `default` with `phase`, Ready as given, created at `t`.
    pub fn pod(name: &str, phase: &str, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(name.into()),
                creation_timestamp: Some(Time(ts("2026-01-01T00:00:00Z"))),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                pod_ip: Some(format!("10.42.0.{}", name.len())),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(ts("2026-01-01T00:00:00Z"))),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }
}
