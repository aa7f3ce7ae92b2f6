//! Owner references: finding an object's controller, making a controllerRef, and the pure adopt/release
//! decision upstream's `ControllerRefManager` takes for each candidate dependent.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde_json::{Value, json};

/// The owner reference with `controller: true`, if any.
pub fn controller_ref(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// A controllerRef to `owner` (controller and blockOwnerDeletion set, as upstream's controllers make).
pub fn new_controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// What a controller does with one candidate dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Owned by this controller and still matching: it counts.
    Owned,
    /// Orphan that matches: take it (then it counts).
    Adopt,
    /// Owned but no longer matching: drop the controllerRef.
    Release,
    /// Not ours.
    Ignore,
}

/// Upstream's `ClaimObject` decision for one dependent.
pub fn claim(
    owner_uid: &str,
    owner_deleting: bool,
    matches: bool,
    dependent: &ObjectMeta,
) -> Claim {
    match controller_ref(dependent) {
        Some(r) if r.uid != owner_uid => Claim::Ignore,
        Some(_) if matches => Claim::Owned,
        // Owned but not matching: keep it while the owner is going away, else let it go.
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if owner_deleting || !matches || dependent.deletion_timestamp.is_some() => {
            Claim::Ignore
        }
        None => Claim::Adopt,
    }
}

/// A merge patch that adds `owner` as controller of the dependent `meta` (guarded by its uid).
pub fn adopt_patch(meta: &ObjectMeta, owner: &OwnerReference) -> Value {
    let mut refs: Vec<OwnerReference> = meta.owner_references.clone().unwrap_or_default();
    refs.retain(|r| r.uid != owner.uid);
    refs.push(owner.clone());
    json!({"metadata": {"ownerReferences": refs, "uid": meta.uid, "resourceVersion": meta.resource_version}})
}

/// A merge patch that removes the owner reference to `owner_uid` from `meta` (guarded by its uid).
pub fn release_patch(meta: &ObjectMeta, owner_uid: &str) -> Value {
    let refs: Vec<OwnerReference> = meta
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.uid != owner_uid)
        .cloned()
        .collect();
    let refs = if refs.is_empty() {
        Value::Null
    } else {
        json!(refs)
    };
    json!({"metadata": {"ownerReferences": refs, "uid": meta.uid, "resourceVersion": meta.resource_version}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned_by(uid: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            uid: Some("dep".into()),
            owner_references: uid.map(|u| {
                vec![OwnerReference {
                    uid: u.into(),
                    controller: Some(true),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn claims_follow_upstream() {
        assert_eq!(
            claim("me", false, true, &owned_by(Some("me"))),
            Claim::Owned
        );
        assert_eq!(
            claim("me", false, false, &owned_by(Some("me"))),
            Claim::Release
        );
        assert_eq!(
            claim("me", true, false, &owned_by(Some("me"))),
            Claim::Ignore
        );
        assert_eq!(
            claim("me", false, true, &owned_by(Some("other"))),
            Claim::Ignore
        );
        assert_eq!(claim("me", false, true, &owned_by(None)), Claim::Adopt);
        assert_eq!(claim("me", true, true, &owned_by(None)), Claim::Ignore);
        assert_eq!(claim("me", false, false, &owned_by(None)), Claim::Ignore);
    }

    #[test]
    fn release_drops_only_that_owner() {
        let mut meta = owned_by(Some("me"));
        meta.owner_references
            .get_or_insert_default()
            .push(OwnerReference {
                uid: "keep".into(),
                ..Default::default()
            });
        let patch = release_patch(&meta, "me");
        assert_eq!(patch["metadata"]["ownerReferences"][0]["uid"], "keep");
        assert_eq!(
            release_patch(&owned_by(Some("me")), "me")["metadata"]["ownerReferences"],
            Value::Null
        );
    }
}
