//! The namespace controller: a namespace being deleted (phase Terminating, `kubernetes` in
//! `spec.finalizers`) has every namespaced object of every served resource deleted; its status carries
//! upstream's five deletion conditions; once nothing is left the `kubernetes` finalizer is removed
//! through `/finalize` and the API server removes the namespace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::informer::{Change, Informer};
use crate::manager::{Context, Controller};
use crate::queue::WorkQueue;
use crate::resources::{Catalogue, Served};

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";
/// How long to wait before looking again while content remains (deletions also wake it).
pub const RECHECK: Duration = Duration::from_secs(2);

/// What deleting the content found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Content {
    /// Resources whose deletion failed (`resource.group`).
    pub failed: Vec<String>,
    /// Objects left per `resource.group`.
    pub remaining: BTreeMap<String, usize>,
    /// Objects left per finalizer.
    pub finalizers: BTreeMap<String, usize>,
}

fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: Timestamp,
) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(Time(now)),
    }
}

/// Upstream's deletion conditions for `content`, keeping the transition time of unchanged ones.
pub fn conditions(
    content: &Content,
    previous: &[NamespaceCondition],
    now: Timestamp,
) -> Vec<NamespaceCondition> {
    let content_failure = if content.failed.is_empty() {
        condition(
            "NamespaceDeletionContentFailure",
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization".into(),
            now,
        )
    } else {
        condition(
            "NamespaceDeletionContentFailure",
            "True",
            "ContentDeletionFailed",
            format!(
                "Failed to delete all resource types, {} remaining: {}",
                content.failed.len(),
                content.failed.join(", ")
            ),
            now,
        )
    };
    let remaining = if content.remaining.is_empty() {
        condition(
            "NamespaceContentRemaining",
            "False",
            "ContentRemoved",
            "All content successfully removed".into(),
            now,
        )
    } else {
        let list: Vec<String> = content
            .remaining
            .iter()
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        condition(
            "NamespaceContentRemaining",
            "True",
            "SomeResourcesRemain",
            format!("Some resources are remaining: {}", list.join(", ")),
            now,
        )
    };
    let finalizers = if content.finalizers.is_empty() {
        condition(
            "NamespaceFinalizersRemaining",
            "False",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished".into(),
            now,
        )
    } else {
        let list: Vec<String> = content
            .finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        condition(
            "NamespaceFinalizersRemaining",
            "True",
            "SomeFinalizersRemain",
            format!(
                "Some content in the namespace has finalizers remaining: {}",
                list.join(", ")
            ),
            now,
        )
    };
    let fresh = [
        condition(
            "NamespaceDeletionDiscoveryFailure",
            "False",
            "ResourcesDiscovered",
            "All resources successfully discovered".into(),
            now,
        ),
        condition(
            "NamespaceDeletionGroupVersionParsingFailure",
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed".into(),
            now,
        ),
        content_failure,
        remaining,
        finalizers,
    ];
    fresh
        .into_iter()
        .map(|c| match previous.iter().find(|p| p.type_ == c.type_) {
            Some(p) if p.status == c.status && p.reason == c.reason && p.message == c.message => {
                p.clone()
            }
            _ => c,
        })
        .collect()
}

/// What to do with a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Not being deleted, or not ours to finish.
    Skip,
    /// Delete its content.
    DeleteContent,
}

/// The pure first decision.
pub fn step(ns: &Namespace) -> Step {
    let ours = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    if ns.metadata.deletion_timestamp.is_some() && ours {
        Step::DeleteContent
    } else {
        Step::Skip
    }
}

/// Failures of one namespace's sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Writing the namespace status failed.
    #[error("updating the status of namespace {0}")]
    Status(String, #[source] kube::Error),
    /// Removing the finalizer failed.
    #[error("finalizing namespace {0}")]
    Finalize(String, #[source] kube::Error),
    /// Content remains; look again later.
    #[error("namespace {0} still has content")]
    Remaining(String),
}

/// The namespace controller, keyed by namespace name.
#[derive(Debug)]
pub struct NamespaceController {
    ctx: Context,
    queue: WorkQueue<String>,
    namespaces: Informer<Namespace>,
    resources: Vec<Served>,
}

impl NamespaceController {
    /// Watches namespaces, and deletions of namespaced content to finish promptly.
    pub fn new(ctx: &Context, catalogue: &Catalogue) -> Self {
        let queue: WorkQueue<String> = WorkQueue::new();
        let namespaces = ctx.informers.typed::<Namespace>();
        let q = queue.clone();
        namespaces.on_change(move |c| match c {
            Change::Added(ns) | Change::Updated(_, ns) => {
                if ns.metadata.deletion_timestamp.is_some() {
                    q.add(ns.metadata.name.clone().unwrap_or_default());
                }
            }
            Change::Deleted(_) => {}
        });
        let resources: Vec<Served> = catalogue
            .all()
            .iter()
            .filter(|s| s.namespaced && s.can("list") && s.can("delete"))
            .cloned()
            .collect();
        for served in resources.iter().filter(|s| s.can("watch")) {
            let q = queue.clone();
            let nss = namespaces.clone();
            ctx.informers.meta(&served.resource).on_meta_change(
                Arc::new(
                    move |old: Option<
                        &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                    >,
                          new: Option<
                        &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
                    >| {
                        if let (Some(o), None) = (old, new) {
                            let ns = o.namespace.clone().unwrap_or_default();
                            if nss
                                .get("", &ns)
                                .is_some_and(|n| n.metadata.deletion_timestamp.is_some())
                            {
                                q.add(ns);
                            }
                        }
                    },
                ),
            );
        }
        NamespaceController {
            ctx: ctx.clone(),
            queue,
            namespaces,
            resources,
        }
    }

    /// Deletes everything in `namespace`; reports what is left.
    async fn delete_content(&self, namespace: &str) -> Content {
        let mut content = Content::default();
        for served in &self.resources {
            let label = format!("{}.{}", served.resource.plural, served.resource.group);
            let api = served.api(&self.ctx.client, namespace);
            let params = DeleteParams::background();
            let deleted = if served.can("deletecollection") {
                api.delete_collection(&params, &ListParams::default())
                    .await
                    .map(|_| ())
            } else {
                match api.list(&ListParams::default()).await {
                    Ok(list) => {
                        let mut result = Ok(());
                        for item in list.items {
                            let name = item.metadata.name.clone().unwrap_or_default();
                            if let Err(e) = api.delete(&name, &params).await
                                && !matches!(&e, kube::Error::Api(s) if s.code == 404)
                            {
                                result = Err(e);
                            }
                        }
                        result
                    }
                    Err(e) => Err(e),
                }
            };
            if let Err(e) = deleted {
                tracing::debug!(namespace, resource = %label, error = %e, "namespace content deletion failed");
                content.failed.push(label.clone());
            }
            match api.list(&ListParams::default()).await {
                Ok(list) if !list.items.is_empty() => {
                    content.remaining.insert(label, list.items.len());
                    for item in &list.items {
                        for f in item.metadata.finalizers.iter().flatten() {
                            *content.finalizers.entry(f.clone()).or_default() += 1;
                        }
                    }
                }
                Ok(_) => {}
                Err(_) => content.failed.push(label),
            }
        }
        content.failed.dedup();
        content
    }
}

impl Controller for NamespaceController {
    type Key = String;
    type Error = SyncError;

    fn name(&self) -> &'static str {
        "namespace"
    }

    fn queue(&self) -> &WorkQueue<String> {
        &self.queue
    }

    fn workers(&self) -> usize {
        10
    }

    fn max_retries(&self) -> u32 {
        u32::MAX
    }

    async fn sync(&self, name: &String) -> Result<(), SyncError> {
        let Some(ns) = self.namespaces.get("", name) else {
            return Ok(());
        };
        if step(&ns) == Step::Skip {
            return Ok(());
        }
        let content = self.delete_content(name).await;
        let api: Api<Namespace> = Api::all(self.ctx.client.clone());
        let previous = ns
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let conds = conditions(&content, &previous, self.ctx.clock.now());
        if conds != previous {
            let patch = json!({"status": {"phase": "Terminating", "conditions": conds}});
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(e) => return Err(SyncError::Status(name.clone(), e)),
            }
        }
        if !content.remaining.is_empty() || !content.failed.is_empty() {
            self.queue.add_after(name.clone(), RECHECK);
            return Ok(());
        }
        // Nothing left: drop our finalizer through /finalize.
        let mut fresh = match api.get_opt(name).await {
            Ok(Some(ns)) => ns,
            Ok(None) => return Ok(()),
            Err(e) => return Err(SyncError::Finalize(name.clone(), e)),
        };
        if let Some(spec) = fresh.spec.as_mut() {
            spec.finalizers = Some(
                spec.finalizers
                    .iter()
                    .flatten()
                    .filter(|f| *f != FINALIZER)
                    .cloned()
                    .collect(),
            );
        }
        let body = serde_json::to_vec(&fresh).unwrap_or_default();
        match api
            .replace_subresource("finalize", name, &PostParams::default(), body)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Err(SyncError::Remaining(name.clone())),
            Err(e) => Err(SyncError::Finalize(name.clone(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceSpec;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().expect("time")
    }

    #[test]
    fn remaining_content_and_finalizers_are_reported_as_upstream() {
        let content = Content {
            failed: vec![],
            remaining: BTreeMap::from([("pods.".to_string(), 2)]),
            finalizers: BTreeMap::from([("example.com/keep".to_string(), 1)]),
        };
        let conds = conditions(&content, &[], now());
        let types: Vec<&str> = conds.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            types,
            [
                "NamespaceDeletionDiscoveryFailure",
                "NamespaceDeletionGroupVersionParsingFailure",
                "NamespaceDeletionContentFailure",
                "NamespaceContentRemaining",
                "NamespaceFinalizersRemaining"
            ]
        );
        assert_eq!(conds[3].status, "True");
        assert_eq!(
            conds[3].message.as_deref(),
            Some("Some resources are remaining: pods. has 2 resource instances")
        );
        assert_eq!(
            conds[4].message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/keep in 1 resource instances"
            )
        );
    }

    #[test]
    fn unchanged_conditions_keep_their_transition_time() {
        let first = conditions(&Content::default(), &[], now());
        let later: Timestamp = "2026-01-01T00:05:00Z".parse().expect("time");
        let again = conditions(&Content::default(), &first, later);
        assert_eq!(first, again);
        assert_eq!(again[3].reason.as_deref(), Some("ContentRemoved"));
    }

    #[test]
    fn only_deleting_namespaces_with_our_finalizer_are_processed() {
        let mut ns = Namespace {
            spec: Some(NamespaceSpec {
                finalizers: Some(vec![FINALIZER.into()]),
            }),
            ..Default::default()
        };
        assert_eq!(step(&ns), Step::Skip);
        ns.metadata.deletion_timestamp = Some(Time(now()));
        assert_eq!(step(&ns), Step::DeleteContent);
        ns.spec = None;
        assert_eq!(step(&ns), Step::Skip);
    }
}
