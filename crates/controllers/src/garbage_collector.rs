//! The garbage collector: the ownerReferences graph over every served resource (read through the shared
//! informers' owner-UID indexes). Dependents whose owners are all gone are deleted (background
//! propagation); owners deleted with `propagationPolicy=Foreground` keep the `foregroundDeletion`
//! finalizer until no dependent with `blockOwnerDeletion` is left; owners deleted with `Orphan` keep the
//! `orphan` finalizer until their dependents' references to them are removed.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use serde_json::json;

use crate::informer::MetaInformer;
use crate::manager::{Context, Controller};
use crate::queue::WorkQueue;
use crate::resources::{Catalogue, Served};

/// The finalizer of foreground deletion.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of orphan deletion.
pub const ORPHAN: &str = "orphan";

/// A node of the graph: one object (or an owner reference to one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Item {
    /// `apiVersion` as in owner references.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (the dependent's for owner references; ignored for cluster-scoped kinds).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} {}/{} ({})",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// What the queue carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// Look at this object (as owner in deletion, or as dependent).
    Object(Item),
    /// The object with this UID is gone: look at its dependents.
    Gone(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Object(item) => item.fmt(f),
            Key::Gone(uid) => write!(f, "gone {uid}"),
        }
    }
}

/// How an owner reference resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists and is not waiting for its dependents.
    Solid,
    /// The owner is gone (or replaced by another object of the same name).
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
}

/// What to do with a dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DependentAction {
    /// Nothing.
    Keep,
    /// Remove the references to these owner UIDs.
    RemoveRefs(Vec<String>),
    /// Delete it with this propagation.
    Delete(&'static str),
}

fn has_finalizer(meta: &ObjectMeta, finalizer: &str) -> bool {
    meta.finalizers.iter().flatten().any(|f| f == finalizer)
}

/// The pure decision for one dependent (upstream's `attemptToDeleteItem`).
pub fn dependent_action(
    meta: &ObjectMeta,
    owners: &[(String, OwnerState)],
    has_dependents: bool,
) -> DependentAction {
    if owners.is_empty() || meta.deletion_timestamp.is_some() {
        return DependentAction::Keep;
    }
    let of = |state| {
        owners
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(u, _)| u.clone())
            .collect::<Vec<_>>()
    };
    let (solid, dangling, waiting) = (
        of(OwnerState::Solid),
        of(OwnerState::Dangling),
        of(OwnerState::Waiting),
    );
    if !solid.is_empty() {
        let remove: Vec<String> = dangling.into_iter().chain(waiting).collect();
        return if remove.is_empty() {
            DependentAction::Keep
        } else {
            DependentAction::RemoveRefs(remove)
        };
    }
    if !waiting.is_empty() && has_dependents {
        return DependentAction::Delete("Foreground");
    }
    if has_finalizer(meta, ORPHAN) {
        DependentAction::Delete("Orphan")
    } else if has_finalizer(meta, FOREGROUND) {
        DependentAction::Delete("Foreground")
    } else {
        DependentAction::Delete("Background")
    }
}

/// Whether `dependent` blocks the foreground deletion of `owner_uid`.
pub fn blocks(dependent: &ObjectMeta, owner_uid: &str) -> bool {
    dependent
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.uid == owner_uid && r.block_owner_deletion == Some(true))
}

/// `finalizers` without `finalizer`.
pub fn without(meta: &ObjectMeta, finalizer: &str) -> Vec<String> {
    meta.finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect()
}

/// Failures of one graph item's sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Reading an owner failed.
    #[error("looking up owner {owner}")]
    Lookup {
        /// The owner.
        owner: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Patching an object failed.
    #[error("updating {item}")]
    Patch {
        /// The object.
        item: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Deleting a dependent failed.
    #[error("deleting {item}")]
    Delete {
        /// The dependent.
        item: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// The garbage collector.
pub struct GarbageCollector {
    ctx: Context,
    queue: WorkQueue<Key>,
    catalogue: Catalogue,
    metas: HashMap<(String, String), Arc<dyn MetaInformer>>,
}

impl fmt::Debug for GarbageCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GarbageCollector")
            .field("resources", &self.metas.len())
            .finish_non_exhaustive()
    }
}

fn group_of(api_version: &str) -> String {
    api_version
        .rsplit_once('/')
        .map(|(g, _)| g.to_string())
        .unwrap_or_default()
}

fn item_of(served: &Served, meta: &ObjectMeta) -> Item {
    Item {
        api_version: served.resource.api_version.clone(),
        kind: served.resource.kind.clone(),
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
    }
}

fn owner_item(r: &OwnerReference, namespace: &str) -> Item {
    Item {
        api_version: r.api_version.clone(),
        kind: r.kind.clone(),
        namespace: namespace.to_string(),
        name: r.name.clone(),
        uid: r.uid.clone(),
    }
}

fn gone(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404 || s.code == 409)
}

impl GarbageCollector {
    /// Watches every listable, deletable resource except events (as upstream).
    pub fn new(ctx: &Context, catalogue: &Catalogue) -> Self {
        let queue: WorkQueue<Key> = WorkQueue::new();
        let mut metas = HashMap::new();
        for served in catalogue.all() {
            let ignored = served.resource.kind == "Event";
            if ignored || !(served.can("list") && served.can("watch") && served.can("delete")) {
                continue;
            }
            let meta = ctx.informers.meta(&served.resource);
            let q = queue.clone();
            let s = served.clone();
            meta.on_meta_change(Arc::new(
                move |old: Option<&ObjectMeta>, new: Option<&ObjectMeta>| match (old, new) {
                    (_, Some(n)) => {
                        let deleting = n.deletion_timestamp.is_some()
                            && (has_finalizer(n, FOREGROUND) || has_finalizer(n, ORPHAN));
                        let refs_changed =
                            old.is_none_or(|o| o.owner_references != n.owner_references);
                        let has_refs = n.owner_references.as_ref().is_some_and(|r| !r.is_empty());
                        if deleting || (has_refs && refs_changed) {
                            q.add(Key::Object(item_of(&s, n)));
                        }
                        // A dependent starting its deletion may unblock a foreground owner later; when it
                        // goes, the Gone/owner path below runs.
                    }
                    (Some(o), None) => {
                        q.add(Key::Gone(o.uid.clone().unwrap_or_default()));
                        for r in o.owner_references.iter().flatten() {
                            q.add(Key::Object(owner_item(
                                r,
                                o.namespace.as_deref().unwrap_or_default(),
                            )));
                        }
                    }
                    (None, None) => {}
                },
            ));
            metas.insert(
                (served.resource.group.clone(), served.resource.kind.clone()),
                meta,
            );
        }
        GarbageCollector {
            ctx: ctx.clone(),
            queue,
            catalogue: catalogue.clone(),
            metas,
        }
    }

    fn served(&self, api_version: &str, kind: &str) -> Option<(&Served, &Arc<dyn MetaInformer>)> {
        let served = self.catalogue.by_kind(api_version, kind)?;
        let meta = self.metas.get(&(group_of(api_version), kind.to_string()))?;
        Some((served, meta))
    }

    fn dependents(&self, uid: &str) -> Vec<(&Served, ObjectMeta)> {
        self.metas
            .values()
            .flat_map(|m| {
                let served = self
                    .catalogue
                    .by_kind(&m.resource().api_version, &m.resource().kind);
                m.owned_by(uid)
                    .into_iter()
                    .filter_map(move |d| served.map(|s| (s, d)))
            })
            .collect()
    }

    /// The object behind `item`, from the cache (None if gone or replaced).
    fn current(&self, item: &Item) -> Option<(&Served, ObjectMeta)> {
        let (served, meta) = self.served(&item.api_version, &item.kind)?;
        let ns = if served.namespaced {
            item.namespace.as_str()
        } else {
            ""
        };
        let current = meta.get_meta(ns, &item.name)?;
        (current.uid.as_deref() == Some(item.uid.as_str())).then_some((served, current))
    }

    async fn owner_state(
        &self,
        r: &OwnerReference,
        namespace: &str,
    ) -> Result<OwnerState, SyncError> {
        let item = owner_item(r, namespace);
        let Some((served, _)) = self.served(&r.api_version, &r.kind) else {
            // A kind this server does not serve: never delete on its account.
            return Ok(OwnerState::Solid);
        };
        let meta = match self.current(&item) {
            Some((_, meta)) => meta,
            None => {
                // Absent from the cache: confirm with the API server (the caches of different types are
                // not in step with each other).
                match served
                    .api(&self.ctx.client, namespace)
                    .get_opt(&r.name)
                    .await
                {
                    Ok(Some(obj)) if obj.metadata.uid.as_deref() == Some(r.uid.as_str()) => {
                        obj.metadata
                    }
                    Ok(_) => return Ok(OwnerState::Dangling),
                    Err(source) => {
                        return Err(SyncError::Lookup {
                            owner: item.to_string(),
                            source,
                        });
                    }
                }
            }
        };
        Ok(
            if meta.deletion_timestamp.is_some() && has_finalizer(&meta, FOREGROUND) {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            },
        )
    }

    async fn remove_finalizer(
        &self,
        served: &Served,
        meta: &ObjectMeta,
        finalizer: &str,
    ) -> Result<(), SyncError> {
        let patch = json!({"metadata": {"finalizers": without(meta, finalizer), "resourceVersion": meta.resource_version}});
        let name = meta.name.clone().unwrap_or_default();
        match served
            .api(
                &self.ctx.client,
                meta.namespace.as_deref().unwrap_or_default(),
            )
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(&e, kube::Error::Api(s) if s.code == 404) => Ok(()),
            Err(source) => Err(SyncError::Patch { item: name, source }),
        }
    }

    async fn remove_refs(
        &self,
        served: &Served,
        meta: &ObjectMeta,
        uids: &[String],
    ) -> Result<(), SyncError> {
        let refs: Vec<&OwnerReference> = meta
            .owner_references
            .iter()
            .flatten()
            .filter(|r| !uids.contains(&r.uid))
            .collect();
        let refs = if refs.is_empty() {
            json!(null)
        } else {
            json!(refs)
        };
        let patch = json!({"metadata": {"ownerReferences": refs, "resourceVersion": meta.resource_version}});
        let name = meta.name.clone().unwrap_or_default();
        match served
            .api(
                &self.ctx.client,
                meta.namespace.as_deref().unwrap_or_default(),
            )
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(&e, kube::Error::Api(s) if s.code == 404) => Ok(()),
            Err(source) => Err(SyncError::Patch { item: name, source }),
        }
    }

    async fn sync_object(&self, item: &Item) -> Result<(), SyncError> {
        let Some((served, meta)) = self.current(item) else {
            return Ok(());
        };
        if meta.deletion_timestamp.is_some() {
            if has_finalizer(&meta, ORPHAN) {
                for (dep_served, dep) in self.dependents(&item.uid) {
                    self.remove_refs(dep_served, &dep, std::slice::from_ref(&item.uid))
                        .await?;
                }
                return self.remove_finalizer(served, &meta, ORPHAN).await;
            }
            if has_finalizer(&meta, FOREGROUND) {
                let dependents = self.dependents(&item.uid);
                let blocking = dependents
                    .iter()
                    .filter(|(_, d)| blocks(d, &item.uid))
                    .count();
                for (dep_served, dep) in &dependents {
                    if dep.deletion_timestamp.is_none() {
                        self.queue.add(Key::Object(item_of(dep_served, dep)));
                    }
                }
                if blocking == 0 {
                    return self.remove_finalizer(served, &meta, FOREGROUND).await;
                }
            }
            return Ok(());
        }
        let namespace = meta.namespace.clone().unwrap_or_default();
        let mut owners = Vec::new();
        for r in meta.owner_references.iter().flatten() {
            owners.push((r.uid.clone(), self.owner_state(r, &namespace).await?));
        }
        let has_dependents = !self.dependents(&item.uid).is_empty();
        match dependent_action(&meta, &owners, has_dependents) {
            DependentAction::Keep => Ok(()),
            DependentAction::RemoveRefs(uids) => self.remove_refs(served, &meta, &uids).await,
            DependentAction::Delete(policy) => {
                let params = DeleteParams {
                    propagation_policy: Some(match policy {
                        "Foreground" => PropagationPolicy::Foreground,
                        "Orphan" => PropagationPolicy::Orphan,
                        _ => PropagationPolicy::Background,
                    }),
                    preconditions: Some(Preconditions {
                        uid: meta.uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match served
                    .api(&self.ctx.client, &namespace)
                    .delete(&item.name, &params)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if gone(&e) => Ok(()),
                    Err(source) => Err(SyncError::Delete {
                        item: item.to_string(),
                        source,
                    }),
                }
            }
        }
    }
}

impl Controller for GarbageCollector {
    type Key = Key;
    type Error = SyncError;

    fn name(&self) -> &'static str {
        "garbagecollector"
    }

    fn queue(&self) -> &WorkQueue<Key> {
        &self.queue
    }

    fn workers(&self) -> usize {
        20
    }

    async fn sync(&self, key: &Key) -> Result<(), SyncError> {
        match key {
            Key::Gone(uid) => {
                for (served, dep) in self.dependents(uid) {
                    self.queue.add(Key::Object(item_of(served, &dep)));
                }
                Ok(())
            }
            Key::Object(item) => self.sync_object(item).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(finalizers: &[&str]) -> ObjectMeta {
        ObjectMeta {
            name: Some("dep".into()),
            uid: Some("d".into()),
            finalizers: Some(finalizers.iter().map(|f| f.to_string()).collect()),
            ..Default::default()
        }
    }

    fn owners(states: &[(&str, OwnerState)]) -> Vec<(String, OwnerState)> {
        states.iter().map(|(u, s)| (u.to_string(), *s)).collect()
    }

    #[test]
    fn dependents_of_gone_owners_are_deleted_in_the_background() {
        assert_eq!(
            dependent_action(&meta(&[]), &owners(&[("a", OwnerState::Dangling)]), false),
            DependentAction::Delete("Background")
        );
        assert_eq!(
            dependent_action(
                &meta(&[ORPHAN]),
                &owners(&[("a", OwnerState::Dangling)]),
                false
            ),
            DependentAction::Delete("Orphan")
        );
    }

    #[test]
    fn a_solid_owner_keeps_the_dependent_and_stale_refs_are_dropped() {
        assert_eq!(
            dependent_action(&meta(&[]), &owners(&[("a", OwnerState::Solid)]), false),
            DependentAction::Keep
        );
        assert_eq!(
            dependent_action(
                &meta(&[]),
                &owners(&[
                    ("a", OwnerState::Solid),
                    ("b", OwnerState::Dangling),
                    ("c", OwnerState::Waiting)
                ]),
                false
            ),
            DependentAction::RemoveRefs(vec!["b".into(), "c".into()])
        );
    }

    #[test]
    fn foreground_owners_cascade_foreground_through_dependents_with_dependents() {
        assert_eq!(
            dependent_action(&meta(&[]), &owners(&[("a", OwnerState::Waiting)]), true),
            DependentAction::Delete("Foreground")
        );
        assert_eq!(
            dependent_action(&meta(&[]), &owners(&[("a", OwnerState::Waiting)]), false),
            DependentAction::Delete("Background")
        );
    }

    #[test]
    fn blocking_and_finalizer_helpers() {
        let mut dep = meta(&[ORPHAN, "x"]);
        dep.owner_references = Some(vec![OwnerReference {
            uid: "a".into(),
            block_owner_deletion: Some(true),
            ..Default::default()
        }]);
        assert!(blocks(&dep, "a"));
        assert!(!blocks(&dep, "b"));
        assert_eq!(without(&dep, ORPHAN), vec!["x".to_string()]);
        assert_eq!(
            dependent_action(&ObjectMeta::default(), &[], false),
            DependentAction::Keep
        );
    }
}
