//! The thin I/O the workload controllers' shells share: enqueueing an owner from its
//! dependents' changes, and the API calls (create, delete, status and metadata patches) with
//! one error type naming the failed step.

use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Api, Resource};
use serde_json::Value;

use crate::informer::{Change, ObjectKey};
use crate::queue::WorkQueue;
use crate::workload::Event;

/// A failed API call of a workload controller's sync.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// Creating an object failed.
    #[error("creating {kind} {name}")]
    Create {
        /// What was created.
        kind: &'static str,
        /// Its name (or generateName).
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Deleting an object failed.
    #[error("deleting {kind} {name}")]
    Delete {
        /// What was deleted.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing an object (status, metadata or whole) failed.
    #[error("writing {kind} {name}")]
    Write {
        /// What was written.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// Whether the API said 409 AlreadyExists/Conflict.
pub fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Whether the API said 404.
pub fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// The object a change is about (the new state for updates).
pub fn changed<K>(change: &Change<K>) -> &K {
    match change {
        Change::Added(o) | Change::Deleted(o) | Change::Updated(_, o) => o,
    }
}

/// Enqueues the controller of the changed object when it is a `kind`.
pub fn enqueue_controller<K: Resource>(
    change: &Change<K>,
    kind: &str,
    queue: &WorkQueue<ObjectKey>,
) {
    let mut metas = vec![changed(change).meta()];
    if let Change::Updated(old, _) = change {
        metas.push(old.meta());
    }
    for meta in metas {
        let owner = meta
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true) && r.kind == kind);
        if let Some(owner) = owner {
            queue.add(ObjectKey::new(
                meta.namespace.clone().unwrap_or_default(),
                owner.name.clone(),
            ));
        }
    }
}

/// Creates `obj` (409 counts as done); returns the created name.
pub async fn create<K>(
    api: &Api<K>,
    kind: &'static str,
    obj: &K,
) -> Result<Option<String>, ShellError>
where
    K: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(created) => Ok(created.meta().name.clone()),
        Err(e) if conflict(&e) => Ok(None),
        Err(source) => Err(ShellError::Create {
            kind,
            name: obj
                .meta()
                .name
                .clone()
                .or_else(|| obj.meta().generate_name.clone())
                .unwrap_or_default(),
            source,
        }),
    }
}

/// Deletes `name` with `propagation` (404 counts as done).
pub async fn delete<K>(
    api: &Api<K>,
    kind: &'static str,
    name: &str,
    propagation: Option<PropagationPolicy>,
) -> Result<(), ShellError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let params = DeleteParams {
        propagation_policy: propagation,
        ..Default::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(source) => Err(ShellError::Delete {
            kind,
            name: name.to_string(),
            source,
        }),
    }
}

/// Deletes the pods named in `delete`, then creates `create` under `expectations` (each create
/// the informer will not show — already exists or failed — is observed at once), recording
/// upstream's SuccessfulDelete / SuccessfulCreate events on `owner`.
pub async fn delete_then_create_pods<O: Resource<DynamicType = ()>>(
    api: &Api<k8s_openapi::api::core::v1::Pod>,
    recorder: &crate::events::Recorder,
    expectations: &crate::expectations::Expectations<ObjectKey>,
    key: &ObjectKey,
    owner: &O,
    delete: &[String],
    create: &[k8s_openapi::api::core::v1::Pod],
) -> Result<(), ShellError> {
    for name in delete {
        self::delete(api, "Pod", name, None).await?;
        recorder.publish(
            owner,
            "Normal",
            "SuccessfulDelete",
            format!("Deleted pod: {name}"),
        );
    }
    if !create.is_empty() {
        expectations.expect(key, i64::try_from(create.len()).unwrap_or(0), 0);
    }
    for pod in create {
        match self::create(api, "Pod", pod).await {
            Ok(Some(name)) => recorder.publish(
                owner,
                "Normal",
                "SuccessfulCreate",
                format!("Created pod: {name}"),
            ),
            Ok(None) => expectations.creation_observed(key),
            Err(e) => {
                expectations.creation_observed(key);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Merge-patches `name`'s status subresource with `status`; the object's new resourceVersion, or
/// `None` when it is gone.
pub async fn patch_status<K>(
    api: &Api<K>,
    kind: &'static str,
    name: &str,
    status: Value,
) -> Result<Option<String>, ShellError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let patch = serde_json::json!({ "status": status });
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(obj) => Ok(obj.meta().resource_version.clone()),
        Err(e) if not_found(&e) => Ok(None),
        Err(source) => Err(ShellError::Write {
            kind,
            name: name.to_string(),
            source,
        }),
    }
}

/// Merge-patches `name` with `patch`.
pub async fn patch<K>(
    api: &Api<K>,
    kind: &'static str,
    name: &str,
    patch: Value,
) -> Result<(), ShellError>
where
    K: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if not_found(&e) => Ok(()),
        Err(source) => Err(ShellError::Write {
            kind,
            name: name.to_string(),
            source,
        }),
    }
}

/// Publishes the core's events on `obj`.
pub fn publish<K: Resource<DynamicType = ()>>(
    recorder: &crate::events::Recorder,
    obj: &K,
    events: Vec<Event>,
) {
    for e in events {
        recorder.publish(obj, e.type_, e.reason, e.message);
    }
}
