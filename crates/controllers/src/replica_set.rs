//! The ReplicaSet and ReplicationController controllers (one generic loop over [`ReplicaOwner`]): claim
//! pods by selector and controllerRef, create or delete pods to match `spec.replicas` (at most 500 a
//! sync, in slow-start batches, guarded by expectations, deleting the least useful pods first as
//! upstream ranks them) and report `status` (replicas, fullyLabeledReplicas, readyReplicas,
//! availableReplicas after minReadySeconds, observedGeneration, the ReplicaFailure condition).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use oxkube_api::selector::LabelSelector;
use serde_json::{Value, json};

use crate::events::{NORMAL, Recorder, WARNING};
use crate::expectations::Expectations;
use crate::informer::{Change, Informer, Object, ObjectKey};
use crate::manager::{Context, Controller};
use crate::owner::{self, Claim};
use crate::queue::WorkQueue;

/// Most pods one sync creates or deletes (upstream's `BurstReplicas`).
pub const BURST_REPLICAS: usize = 500;

/// What the generic loop needs from a ReplicaSet or a ReplicationController.
pub trait ReplicaOwner: Object + Resource<DynamicType = ()> {
    /// The controller's name (`replicaset`, `replicationcontroller`).
    const CONTROLLER: &'static str;
    /// Its events' `source.component`.
    const COMPONENT: &'static str;
    /// `spec.replicas` (default 1).
    fn desired(&self) -> i32;
    /// The pod selector; `None` when missing or invalid (selects nothing).
    fn selector(&self) -> Option<LabelSelector>;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
    /// `spec.minReadySeconds`.
    fn min_ready_seconds(&self) -> i32;
    /// The current `status` as JSON (to skip no-op writes).
    fn status_value(&self) -> Value;
}

impl ReplicaOwner for ReplicaSet {
    const CONTROLLER: &'static str = "replicaset";
    const COMPONENT: &'static str = "replicaset-controller";
    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selector(&self) -> Option<LabelSelector> {
        let sel = &self.spec.as_ref()?.selector;
        if sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
        {
            return None;
        }
        LabelSelector::from_meta(sel).ok()
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn status_value(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

impl ReplicaOwner for ReplicationController {
    const CONTROLLER: &'static str = "replicationcontroller";
    const COMPONENT: &'static str = "replication-controller";
    fn desired(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn selector(&self) -> Option<LabelSelector> {
        let labels = self.spec.as_ref()?.selector.as_ref()?;
        if labels.is_empty() {
            return None;
        }
        LabelSelector::from_meta(
            &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: Some(labels.clone()),
                match_expressions: None,
            },
        )
        .ok()
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }
    fn status_value(&self) -> Value {
        serde_json::to_value(&self.status).unwrap_or(Value::Null)
    }
}

/// Whether a pod still counts (upstream's `IsPodActive`).
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// When the pod's Ready condition turned True, if it is ready.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map(|t| t.0)
                .unwrap_or(Timestamp::UNIX_EPOCH)
        })
}

/// Ready for at least `min_ready_seconds` at `now` (upstream's `IsPodAvailable`).
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds == 0 => true,
        Some(since) => since
            .checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds)))
            .is_ok_and(|t| t <= now),
    }
}

/// How many pods to create (positive) or delete (negative), capped at the burst size.
pub fn replica_diff(active: usize, desired: i32) -> i64 {
    let diff = i64::from(desired.max(0)) - active as i64;
    diff.clamp(-(BURST_REPLICAS as i64), BURST_REPLICAS as i64)
}

/// Upstream's slow-start batch sizes for `count` creates: 1, 2, 4, … until all are issued.
pub fn slow_start_batches(count: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let mut size = 1;
    let mut left = count;
    while left > 0 {
        let batch = size.min(left);
        batches.push(batch);
        left -= batch;
        size *= 2;
    }
    batches
}

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") | None => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("controller.kubernetes.io/pod-deletion-cost"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

/// Orders pods so the ones to delete come first (upstream's `ActivePodsWithRanks`):
/// unassigned, then Pending < Unknown < Running, not ready, lower deletion cost, more pods of the same
/// owner on its node, more recently ready, more restarts, newer.
pub fn deletion_order(a: &Pod, b: &Pod, colocated: &HashMap<String, usize>) -> Ordering {
    let assigned = |p: &Pod| !node_of(p).is_empty();
    let rank = |p: &Pod| colocated.get(node_of(p)).copied().unwrap_or(0);
    assigned(a)
        .cmp(&assigned(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(ready_since(a).is_some().cmp(&ready_since(b).is_some()))
        .then(deletion_cost(a).cmp(&deletion_cost(b)))
        .then(rank(b).cmp(&rank(a)))
        .then(match (ready_since(a), ready_since(b)) {
            (Some(x), Some(y)) => y.cmp(&x),
            _ => Ordering::Equal,
        })
        .then(restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(b).cmp(&created(a))
        })
}

/// The `n` pods to delete from `pods`.
pub fn pods_to_delete(pods: &[Arc<Pod>], n: usize) -> Vec<Arc<Pod>> {
    let mut colocated: HashMap<String, usize> = HashMap::new();
    for p in pods {
        *colocated.entry(node_of(p).to_string()).or_default() += 1;
    }
    let mut sorted = pods.to_vec();
    sorted.sort_by(|a, b| deletion_order(a, b, &colocated));
    sorted.truncate(n);
    sorted
}

/// The status upstream computes (`calculateStatus`); zero counts are omitted as upstream's omitempty.
pub fn compute_status(
    owner_generation: Option<i64>,
    template_labels: &BTreeMap<String, String>,
    pods: &[Arc<Pod>],
    min_ready_seconds: i32,
    now: Timestamp,
    failure: Option<&str>,
    previous_conditions: &Value,
) -> Value {
    let labelled = pods
        .iter()
        .filter(|p| {
            let labels = p.metadata.labels.clone().unwrap_or_default();
            template_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        })
        .count();
    let ready = pods.iter().filter(|p| ready_since(p).is_some()).count();
    let available = pods
        .iter()
        .filter(|p| is_available(p, min_ready_seconds, now))
        .count();
    let nonzero = |n: usize| if n == 0 { Value::Null } else { json!(n) };
    let mut conditions: Vec<Value> = previous_conditions
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["type"] != "ReplicaFailure")
        .collect();
    if let Some(message) = failure {
        let previous = previous_conditions
            .as_array()
            .and_then(|a| a.iter().find(|c| c["type"] == "ReplicaFailure"));
        let since = previous
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or_else(|| json!(crate::clock::format_time(now)));
        conditions.push(json!({
            "type": "ReplicaFailure", "status": "True", "reason": "FailedCreate",
            "message": message, "lastTransitionTime": since,
        }));
    }
    json!({
        "replicas": pods.len(),
        "fullyLabeledReplicas": nonzero(labelled),
        "readyReplicas": nonzero(ready),
        "availableReplicas": nonzero(available),
        "observedGeneration": owner_generation,
        "conditions": if conditions.is_empty() { Value::Null } else { json!(conditions) },
    })
}

/// Whether `current` (the stored status) already says what `want` says (nulls = absent).
pub fn status_matches(current: &Value, want: &Value) -> bool {
    let Some(want) = want.as_object() else {
        return false;
    };
    want.iter().all(|(k, v)| {
        let have = current.get(k).unwrap_or(&Value::Null);
        match (have, v) {
            (Value::Null, Value::Null) => true,
            (Value::Array(a), Value::Null) => a.is_empty(),
            (h, w) => h == w,
        }
    })
}

/// The pod an owner creates from its template.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    owner_name: &str,
    controller_ref: OwnerReference,
) -> Pod {
    let meta = template.metadata.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{owner_name}-")),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref]),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    }
}

/// Failures of one owner's sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Adopting or releasing a pod failed.
    #[error("claiming pod {pod}")]
    Claim {
        /// The pod.
        pod: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Creating pods failed.
    #[error("creating pods")]
    Create(#[source] kube::Error),
    /// Deleting a pod failed.
    #[error("deleting pod {pod}")]
    Delete {
        /// The pod.
        pod: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("updating status")]
    Status(#[source] kube::Error),
}

/// The generic replica controller, keyed by owner.
pub struct ReplicaController<T: ReplicaOwner> {
    ctx: Context,
    queue: WorkQueue<ObjectKey>,
    owners: Informer<T>,
    pods: Informer<Pod>,
    expectations: Expectations<ObjectKey>,
    recorder: Recorder,
}

impl<T: ReplicaOwner> std::fmt::Debug for ReplicaController<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaController")
            .field("kind", &T::CONTROLLER)
            .finish_non_exhaustive()
    }
}

/// The ReplicaSet controller.
pub type ReplicaSetController = ReplicaController<ReplicaSet>;
/// The ReplicationController controller.
pub type ReplicationManager = ReplicaController<ReplicationController>;

/// The owners of kind `T` whose selector matches `pod` (for orphans waiting to be adopted).
fn matching_owners<T: ReplicaOwner>(owners: &Informer<T>, pod: &Pod) -> Vec<ObjectKey> {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    owners
        .by_namespace(pod.metadata.namespace.as_deref().unwrap_or_default())
        .iter()
        .filter(|o| o.selector().is_some_and(|s| s.matches(&labels)))
        .map(|o| ObjectKey::of(o.as_ref()))
        .collect()
}

/// The key of `pod`'s controller when it is a `T`.
fn owner_key<T: ReplicaOwner>(pod: &Pod) -> Option<ObjectKey> {
    let r = owner::controller_ref(&pod.metadata)?;
    (r.kind == T::kind(&()).as_ref()).then(|| {
        ObjectKey::new(
            pod.metadata.namespace.clone().unwrap_or_default(),
            r.name.clone(),
        )
    })
}

impl<T: ReplicaOwner> ReplicaController<T> {
    /// Registers on the owner and pod informers.
    pub fn new(ctx: &Context) -> Self {
        let queue: WorkQueue<ObjectKey> = WorkQueue::new();
        let owners = ctx.informers.typed::<T>();
        let pods = ctx.informers.typed::<Pod>();
        let expectations = Expectations::new(ctx.clock.clone());
        let q = queue.clone();
        let exp = expectations.clone();
        owners.on_change(move |c| match c {
            Change::Added(o) | Change::Updated(_, o) => q.add(ObjectKey::of(o.as_ref())),
            Change::Deleted(o) => {
                exp.delete(&ObjectKey::of(o.as_ref()));
                q.add(ObjectKey::of(o.as_ref()));
            }
        });
        let q = queue.clone();
        let exp = expectations.clone();
        let owners_for_pods = owners.clone();
        pods.on_change(move |c| match c {
            Change::Added(pod) => match owner_key::<T>(pod) {
                Some(key) => {
                    if pod.metadata.deletion_timestamp.is_some() {
                        exp.deletion_observed(&key);
                    } else {
                        exp.creation_observed(&key);
                    }
                    q.add(key);
                }
                None if owner::controller_ref(&pod.metadata).is_none() => {
                    for key in matching_owners(&owners_for_pods, pod) {
                        q.add(key);
                    }
                }
                None => {}
            },
            Change::Updated(old, new) => {
                if old.metadata.resource_version == new.metadata.resource_version {
                    return;
                }
                let old_key = owner_key::<T>(old);
                let new_key = owner_key::<T>(new);
                if let Some(key) = &new_key
                    && new.metadata.deletion_timestamp.is_some()
                    && old.metadata.deletion_timestamp.is_none()
                {
                    exp.deletion_observed(key);
                }
                if old_key != new_key
                    && let Some(key) = old_key
                {
                    q.add(key);
                }
                match new_key {
                    Some(key) => q.add(key),
                    None if owner::controller_ref(&new.metadata).is_none() => {
                        for key in matching_owners(&owners_for_pods, new) {
                            q.add(key);
                        }
                    }
                    None => {}
                }
            }
            Change::Deleted(pod) => {
                if let Some(key) = owner_key::<T>(pod) {
                    if pod.metadata.deletion_timestamp.is_none() {
                        exp.deletion_observed(&key);
                    }
                    q.add(key);
                }
            }
        });
        ReplicaController {
            ctx: ctx.clone(),
            queue,
            owners,
            pods,
            expectations,
            recorder: ctx.recorder.for_component(T::COMPONENT),
        }
    }

    /// Adopts and releases pods; returns the active pods this owner controls.
    async fn claim_pods(
        &self,
        owner: &T,
        selector: Option<&LabelSelector>,
    ) -> Result<Vec<Arc<Pod>>, SyncError> {
        let uid = owner.meta().uid.clone().unwrap_or_default();
        let namespace = owner.namespace().unwrap_or_default();
        let deleting = owner.meta().deletion_timestamp.is_some();
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let mut owned = Vec::new();
        for pod in self.pods.by_namespace(&namespace) {
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let matches = selector.is_some_and(|s| s.matches(&labels));
            let name = pod.name_any();
            match owner::claim(&uid, deleting, matches, &pod.metadata) {
                Claim::Owned => owned.push(pod),
                Claim::Ignore => {}
                Claim::Adopt => {
                    let patch =
                        owner::adopt_patch(&pod.metadata, &owner::new_controller_ref(owner));
                    match api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(adopted) => owned.push(Arc::new(adopted)),
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                        Err(source) => return Err(SyncError::Claim { pod: name, source }),
                    }
                }
                Claim::Release => {
                    let patch = owner::release_patch(&pod.metadata, &uid);
                    match api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => {}
                        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                        Err(source) => return Err(SyncError::Claim { pod: name, source }),
                    }
                }
            }
        }
        owned.retain(|p| is_active(p));
        Ok(owned)
    }

    /// Creates `count` pods in slow-start batches; the first error stops the rest.
    async fn create_pods(
        &self,
        key: &ObjectKey,
        owner: &T,
        count: usize,
    ) -> Result<(), kube::Error> {
        let Some(template) = owner.template() else {
            return Ok(());
        };
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let pp = PostParams::default();
        let pod = pod_from_template(
            template,
            &key.namespace,
            &key.name,
            owner::new_controller_ref(owner),
        );
        self.expectations.expect(key, count as i64, 0);
        let mut left = count;
        for batch in slow_start_batches(count) {
            let results =
                futures::future::join_all((0..batch).map(|_| api.create(&pp, &pod))).await;
            left -= batch;
            let mut first_error = None;
            for result in results {
                match result {
                    Ok(created) => self.recorder.publish(
                        owner,
                        NORMAL,
                        "SuccessfulCreate",
                        format!("Created pod: {}", created.name_any()),
                    ),
                    Err(e) => {
                        self.expectations.creation_observed(key);
                        self.recorder.publish(
                            owner,
                            WARNING,
                            "FailedCreate",
                            format!("Error creating: {e}"),
                        );
                        first_error.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_error {
                for _ in 0..left {
                    self.expectations.creation_observed(key);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn delete_pods(
        &self,
        key: &ObjectKey,
        owner: &T,
        victims: Vec<Arc<Pod>>,
    ) -> Result<(), SyncError> {
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
        self.expectations.expect(key, 0, victims.len() as i64);
        let results = futures::future::join_all(victims.iter().map(|p| {
            let api = api.clone();
            let name = p.name_any();
            async move { (api.delete(&name, &DeleteParams::default()).await, name) }
        }))
        .await;
        let mut failure = None;
        for (result, name) in results {
            match result {
                Ok(_) => self.recorder.publish(
                    owner,
                    NORMAL,
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                ),
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    self.expectations.deletion_observed(key)
                }
                Err(source) => {
                    self.expectations.deletion_observed(key);
                    self.recorder.publish(
                        owner,
                        WARNING,
                        "FailedDelete",
                        format!("Error deleting: {source}"),
                    );
                    failure.get_or_insert(SyncError::Delete { pod: name, source });
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }
}

impl<T: ReplicaOwner> Controller for ReplicaController<T> {
    type Key = ObjectKey;
    type Error = SyncError;

    fn name(&self) -> &'static str {
        T::CONTROLLER
    }

    fn queue(&self) -> &WorkQueue<ObjectKey> {
        &self.queue
    }

    async fn sync(&self, key: &ObjectKey) -> Result<(), SyncError> {
        let Some(owner) = self.owners.get(&key.namespace, &key.name) else {
            self.expectations.delete(key);
            return Ok(());
        };
        let needs_sync =
            self.expectations.satisfied(key) && owner.meta().deletion_timestamp.is_none();
        let selector = owner.selector();
        let pods = self.claim_pods(&owner, selector.as_ref()).await?;
        let mut failure = None;
        if needs_sync {
            let diff = replica_diff(pods.len(), owner.desired());
            if diff > 0 {
                if let Err(e) = self.create_pods(key, &owner, diff as usize).await {
                    failure = Some(e);
                }
            } else if diff < 0 {
                let victims = pods_to_delete(&pods, diff.unsigned_abs() as usize);
                self.delete_pods(key, &owner, victims).await?;
            }
        }
        let now = self.ctx.clock.now();
        let template_labels = owner
            .template()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let current = owner.status_value();
        let status = compute_status(
            owner.meta().generation,
            &template_labels,
            &pods,
            owner.min_ready_seconds(),
            now,
            failure.as_ref().map(|e| e.to_string()).as_deref(),
            &current["conditions"],
        );
        if !status_matches(&current, &status) {
            let api: Api<T> = Api::namespaced_with(self.ctx.client.clone(), &key.namespace, &());
            match api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Merge(&json!({"status": status})),
                )
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(SyncError::Status(e)),
            }
        }
        let min_ready = owner.min_ready_seconds();
        if min_ready > 0 && status["readyReplicas"] != status["availableReplicas"] {
            self.queue.add_after(
                key.clone(),
                std::time::Duration::from_secs(min_ready as u64),
            );
        }
        match failure {
            Some(e) => Err(SyncError::Create(e)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn pod(name: &str, node: &str, phase: &str, ready_at: Option<&str>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                creation_timestamp: Some(Time(t("2026-01-01T00:00:00Z"))),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: (!node.is_empty()).then(|| node.into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: ready_at.map(|at| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(t(at))),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn diff_is_capped_at_the_burst() {
        assert_eq!(replica_diff(0, 3), 3);
        assert_eq!(replica_diff(5, 3), -2);
        assert_eq!(replica_diff(0, 3000), 500);
        assert_eq!(replica_diff(3000, 0), -500);
    }

    #[test]
    fn slow_start_doubles() {
        assert_eq!(slow_start_batches(10), vec![1, 2, 4, 3]);
        assert_eq!(slow_start_batches(0), Vec::<usize>::new());
    }

    #[test]
    fn deletes_unscheduled_then_pending_then_not_ready_first() {
        let pods = vec![
            pod(
                "running-ready",
                "n1",
                "Running",
                Some("2026-01-01T00:00:10Z"),
            ),
            pod("pending", "n1", "Pending", None),
            pod("unscheduled", "", "Pending", None),
            pod("running-not-ready", "n2", "Running", None),
        ];
        let names: Vec<String> = pods_to_delete(&pods, 3)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(names, vec!["unscheduled", "pending", "running-not-ready"]);
    }

    #[test]
    fn availability_waits_min_ready_seconds() {
        let p = pod("a", "n1", "Running", Some("2026-01-01T00:00:00Z"));
        assert!(is_available(&p, 0, t("2026-01-01T00:00:00Z")));
        assert!(!is_available(&p, 10, t("2026-01-01T00:00:05Z")));
        assert!(is_available(&p, 10, t("2026-01-01T00:00:10Z")));
        assert!(!is_active(&pod("done", "n1", "Succeeded", None)));
    }

    #[test]
    fn status_counts_and_failure_condition() {
        let pods = vec![
            pod("a", "n1", "Running", Some("2026-01-01T00:00:00Z")),
            pod("b", "n1", "Pending", None),
        ];
        let labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
        let now = t("2026-01-01T00:00:05Z");
        let s = compute_status(Some(3), &labels, &pods, 10, now, None, &Value::Null);
        assert_eq!(s["replicas"], 2);
        assert_eq!(s["fullyLabeledReplicas"], 2);
        assert_eq!(s["readyReplicas"], 1);
        assert_eq!(s["availableReplicas"], Value::Null);
        assert_eq!(s["observedGeneration"], 3);
        assert!(status_matches(
            &json!({"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 1, "observedGeneration": 3}),
            &s
        ));
        let failed = compute_status(Some(3), &labels, &pods, 0, now, Some("quota"), &Value::Null);
        assert_eq!(failed["conditions"][0]["reason"], "FailedCreate");
        assert_eq!(failed["conditions"][0]["message"], "quota");
        let cleared = compute_status(Some(3), &labels, &pods, 0, now, None, &failed["conditions"]);
        assert_eq!(cleared["conditions"], Value::Null);
    }
}
