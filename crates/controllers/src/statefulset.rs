//! The StatefulSet controller's pure core: stable ordinal pods (`<set>-<i>`), their
//! PersistentVolumeClaims from volumeClaimTemplates, OrderedReady and Parallel management,
//! RollingUpdate with partition and OnDelete, ControllerRevisions and the status upstream
//! (`pkg/controller/statefulset`) reports.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::workload::{self, Event};

/// The label naming a pod's revision (for StatefulSets: the revision's full name).
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label with the pod's own name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label with the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// What one reconcile asks of the shell, in this order: create `revision`, claims, pods, delete
/// pods, then write `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatefulSetSync {
    /// The update revision, when no ControllerRevision records it yet.
    pub revision: Option<ControllerRevision>,
    /// Claims to create.
    pub create_claims: Vec<PersistentVolumeClaim>,
    /// Pods to create.
    pub create: Vec<Pod>,
    /// Pods to delete.
    pub delete: Vec<String>,
    /// The status to write.
    pub status: StatefulSetStatus,
    /// Events to record on the StatefulSet (after the matching action succeeded).
    pub events: Vec<Event>,
}

/// The ordinal in a pod name `<set>-<ordinal>`.
pub fn ordinal(set: &str, pod: &str) -> Option<i32> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// The claim name for template `claim` of pod `<set>-<ordinal>`.
pub fn claim_name(claim: &str, set: &str, ordinal: i32) -> String {
    format!("{claim}-{set}-{ordinal}")
}

fn revision_label(pod: &Pod) -> Option<&str> {
    pod.metadata
        .labels
        .as_ref()?
        .get(REVISION_LABEL)
        .map(String::as_str)
}

fn running_and_ready(pod: &Pod) -> bool {
    workload::phase(pod) == "Running" && workload::is_ready(pod)
}

/// The claims pod `<set>-<ordinal>` uses.
pub fn claims_for(set: &StatefulSet, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    let spec = set.spec.clone();
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    spec.volume_claim_templates
        .unwrap_or_default()
        .into_iter()
        .map(|tpl| {
            let tmeta = tpl.metadata.clone();
            let tname = tmeta.name.clone().unwrap_or_default();
            let mut labels = tmeta.labels.unwrap_or_default();
            labels.extend(selector_labels.clone());
            PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some(claim_name(&tname, &set_name, ordinal)),
                    namespace: set.metadata.namespace.clone(),
                    labels: Some(labels),
                    annotations: tmeta.annotations,
                    ..Default::default()
                },
                spec: tpl.spec,
                status: None,
            }
        })
        .collect()
}

/// Pod `<set>-<ordinal>` from `template` at revision `revision`.
pub fn new_pod(set: &StatefulSet, template: &PodTemplateSpec, revision: &str, ordinal: i32) -> Pod {
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let name = format!("{set_name}-{ordinal}");
    let mut meta = template.metadata.clone().unwrap_or_default();
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.to_string(), name.clone());
    labels.insert(POD_INDEX_LABEL.to_string(), ordinal.to_string());
    labels.insert(REVISION_LABEL.to_string(), revision.to_string());
    meta.name = Some(name.clone());
    meta.generate_name = None;
    meta.namespace = set.metadata.namespace.clone();
    meta.owner_references = Some(vec![workload::controller_ref(
        "apps/v1",
        "StatefulSet",
        &set.metadata,
    )]);
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name);
    if let Some(service) = set.spec.service_name.clone() {
        spec.subdomain = Some(service);
    }
    let templates = set.spec.volume_claim_templates.clone().unwrap_or_default();
    for tpl in templates {
        let tname = tpl.metadata.name.unwrap_or_default();
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        volumes.retain(|v| v.name != tname);
        volumes.push(Volume {
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim_name(&tname, &set_name, ordinal),
                read_only: None,
            }),
            name: tname,
            ..Default::default()
        });
    }
    Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    }
}

/// Reconciles `set` against its pods, the names of the claims that exist and its revisions.
pub fn reconcile(
    set: &StatefulSet,
    pods: &[Pod],
    claims: &BTreeSet<String>,
    revisions: &[ControllerRevision],
    now: Timestamp,
) -> StatefulSetSync {
    let spec = set.spec.clone();
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let old = set.status.clone().unwrap_or_default();
    let collision = old.collision_count;
    let next_number = revisions
        .iter()
        .filter_map(|r| r.revision)
        .max()
        .unwrap_or(0)
        + 1;
    let candidate = workload::revision_of(
        "apps/v1",
        "StatefulSet",
        &set.metadata,
        &spec.template,
        collision,
        next_number,
    );
    let update_name = candidate.metadata.name.clone().unwrap_or_default();
    let exists = revisions
        .iter()
        .any(|r| r.metadata.name.as_deref() == Some(update_name.as_str()));
    let current_name = old
        .current_revision
        .clone()
        .filter(|c| {
            revisions
                .iter()
                .any(|r| r.metadata.name.as_deref() == Some(c.as_str()))
        })
        .unwrap_or_else(|| update_name.clone());
    let current_template = revisions
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(current_name.as_str()))
        .and_then(workload::template_of)
        .unwrap_or_else(|| spec.template.clone());

    let mut sync = StatefulSetSync {
        revision: (!exists).then_some(candidate),
        create_claims: Vec::new(),
        create: Vec::new(),
        delete: Vec::new(),
        status: StatefulSetStatus::default(),
        events: Vec::new(),
    };

    let replicas = spec.replicas.unwrap_or(1).max(0);
    let start = spec.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
    let end = start + replicas;
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    let on_delete = strategy.type_.as_deref() == Some("OnDelete");
    let partition = strategy
        .rolling_update
        .as_ref()
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let min_ready = spec.min_ready_seconds.unwrap_or(0);

    let mut by_ordinal: BTreeMap<i32, &Pod> = BTreeMap::new();
    for p in pods {
        if let Some(o) = p
            .metadata
            .name
            .as_deref()
            .and_then(|n| ordinal(&set_name, n))
        {
            by_ordinal.insert(o, p);
        }
    }

    // Status from what is observed.
    let mut status = StatefulSetStatus {
        observed_generation: set.metadata.generation,
        collision_count: collision,
        ..Default::default()
    };
    let (mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0);
    for p in by_ordinal.values() {
        status.replicas += 1;
        if running_and_ready(p) {
            ready += 1;
            if workload::is_available(p, min_ready, now) {
                available += 1;
            }
        }
        if !workload::is_deleting(p) {
            match revision_label(p) {
                Some(r) if r == current_name => current += 1,
                _ => {}
            }
            if revision_label(p) == Some(update_name.as_str()) {
                updated += 1;
            }
        }
    }
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(current);
    status.updated_replicas = Some(updated);
    status.update_revision = Some(update_name.clone());
    status.current_revision = Some(current_name.clone());
    if !on_delete
        && updated == status.replicas
        && ready == status.replicas
        && status.replicas == replicas
    {
        status.current_revision = Some(update_name.clone());
        status.current_replicas = Some(updated);
    }

    // Pods in range, in order.
    let mut blocked = false;
    for o in start..end {
        let revision_for = |o: i32| {
            if current_name != update_name && o - start < partition {
                (&current_template, current_name.as_str())
            } else {
                (&spec.template, update_name.as_str())
            }
        };
        let pod_name = format!("{set_name}-{o}");
        match by_ordinal.get(&o) {
            None => {
                let (tpl, rev) = revision_for(o);
                for claim in claims_for(set, o) {
                    let cname = claim.metadata.name.clone().unwrap_or_default();
                    if !claims.contains(&cname) {
                        sync.events.push(Event::normal(
                            "SuccessfulCreate",
                            format!("create Claim {cname} Pod {pod_name} in StatefulSet {set_name} success"),
                        ));
                        sync.create_claims.push(claim);
                    }
                }
                sync.create.push(new_pod(set, tpl, rev, o));
                sync.events.push(Event::normal(
                    "SuccessfulCreate",
                    format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                ));
                if monotonic {
                    blocked = true;
                    break;
                }
            }
            Some(p) if workload::is_terminal(p) && !workload::is_deleting(p) => {
                sync.delete.push(pod_name.clone());
                sync.events.push(Event::normal(
                    "SuccessfulDelete",
                    format!("delete Pod {pod_name} in StatefulSet {set_name} successful"),
                ));
                if monotonic {
                    blocked = true;
                    break;
                }
            }
            Some(p) => {
                for claim in claims_for(set, o) {
                    let cname = claim.metadata.name.clone().unwrap_or_default();
                    if !claims.contains(&cname) {
                        sync.create_claims.push(claim);
                    }
                }
                let healthy = running_and_ready(p)
                    && !workload::is_deleting(p)
                    && workload::is_available(p, min_ready, now);
                if monotonic && !healthy {
                    blocked = true;
                    break;
                }
            }
        }
    }
    if blocked {
        sync.status = status;
        return sync;
    }

    // Condemned pods: highest ordinal first, one at a time when ordered.
    let condemned: Vec<(&i32, &&Pod)> = by_ordinal
        .iter()
        .rev()
        .filter(|(o, _)| **o < start || **o >= end)
        .collect();
    for (_, p) in &condemned {
        if workload::is_deleting(p) {
            if monotonic {
                sync.status = status;
                return sync;
            }
            continue;
        }
        let name = p.metadata.name.clone().unwrap_or_default();
        sync.events.push(Event::normal(
            "SuccessfulDelete",
            format!("delete Pod {name} in StatefulSet {set_name} successful"),
        ));
        sync.delete.push(name);
        if monotonic {
            sync.status = status;
            return sync;
        }
    }

    // Rolling update: highest ordinal first down to the partition, one unavailable at a time.
    if !on_delete {
        for o in (start + partition.max(0)..end).rev() {
            let Some(p) = by_ordinal.get(&o) else {
                continue;
            };
            if revision_label(p) != Some(update_name.as_str()) && !workload::is_deleting(p) {
                let name = p.metadata.name.clone().unwrap_or_default();
                sync.events.push(Event::normal(
                    "SuccessfulDelete",
                    format!("delete Pod {name} in StatefulSet {set_name} successful"),
                ));
                sync.delete.push(name);
                break;
            }
            if !running_and_ready(p) || workload::is_deleting(p) {
                break;
            }
        }
    }
    sync.status = status;
    sync
}

/// The StatefulSet controller: the core behind informers of StatefulSets, pods, claims and
/// ControllerRevisions.
#[derive(Debug)]
pub struct StatefulSetController {
    ctx: crate::manager::Context,
    sets: crate::informer::Informer<StatefulSet>,
    pods: crate::informer::Informer<Pod>,
    claims: crate::informer::Informer<PersistentVolumeClaim>,
    revisions: crate::informer::Informer<ControllerRevision>,
    queue: crate::queue::WorkQueue<crate::informer::ObjectKey>,
    recorder: crate::events::Recorder,
}

impl StatefulSetController {
    /// Registers on the shared informers.
    pub fn new(ctx: &crate::manager::Context) -> Self {
        let queue = crate::queue::WorkQueue::new();
        let sets = ctx.informers.typed::<StatefulSet>();
        let pods = ctx.informers.typed::<Pod>();
        let q = queue.clone();
        sets.on_change(move |c| q.add(crate::informer::ObjectKey::of(crate::shell::changed(c))));
        let q = queue.clone();
        pods.on_change(move |c| crate::shell::enqueue_controller(c, "StatefulSet", &q));
        StatefulSetController {
            ctx: ctx.clone(),
            sets,
            pods,
            claims: ctx.informers.typed::<PersistentVolumeClaim>(),
            revisions: ctx.informers.typed::<ControllerRevision>(),
            queue,
            recorder: ctx.recorder.for_component("statefulset-controller"),
        }
    }
}

impl crate::manager::Controller for StatefulSetController {
    type Key = crate::informer::ObjectKey;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "statefulset"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        let Some(set) = self.sets.get(&key.namespace, &key.name) else {
            return Ok(());
        };
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let owned = |meta: &ObjectMeta| workload::is_controlled_by(meta, &uid);
        let pods: Vec<Pod> = self
            .pods
            .by_owner(&uid)
            .into_iter()
            .filter(|p| owned(&p.metadata))
            .map(|p| (*p).clone())
            .collect();
        let revisions: Vec<ControllerRevision> = self
            .revisions
            .by_owner(&uid)
            .into_iter()
            .filter(|r| owned(&r.metadata))
            .map(|r| (*r).clone())
            .collect();
        let claims: BTreeSet<String> = self
            .claims
            .by_namespace(&key.namespace)
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        let sync = reconcile(&set, &pods, &claims, &revisions, self.ctx.clock.now());
        let client = self.ctx.client.clone();
        if let Some(rev) = &sync.revision {
            let api: kube::Api<ControllerRevision> =
                kube::Api::namespaced(client.clone(), &key.namespace);
            crate::shell::create(&api, "ControllerRevision", rev).await?;
        }
        let claim_api: kube::Api<PersistentVolumeClaim> =
            kube::Api::namespaced(client.clone(), &key.namespace);
        for claim in &sync.create_claims {
            crate::shell::create(&claim_api, "PersistentVolumeClaim", claim).await?;
        }
        let pod_api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &key.namespace);
        for pod in &sync.create {
            crate::shell::create(&pod_api, "Pod", pod).await?;
        }
        for name in &sync.delete {
            crate::shell::delete(&pod_api, "Pod", name, None).await?;
        }
        crate::shell::publish(&self.recorder, &*set, sync.events);
        if set.status.as_ref() != Some(&sync.status) {
            let api: kube::Api<StatefulSet> = kube::Api::namespaced(client, &key.namespace);
            let status = serde_json::to_value(&sync.status).unwrap_or_default();
            crate::shell::patch_status(&api, "StatefulSet", &key.name, status).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::workload::testing::{pod, ts};
    use k8s_openapi::api::apps::v1::{
        RollingUpdateStatefulSetStrategy, StatefulSetSpec, StatefulSetUpdateStrategy,
    };

    fn set(replicas: i32, policy: &str) -> StatefulSet {
        StatefulSet {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("ss-uid".into()),
                generation: Some(1),
                ..Default::default()
            },
            spec: StatefulSetSpec {
                replicas: Some(replicas),
                service_name: Some("nginx".into()),
                pod_management_policy: Some(policy.into()),
                volume_claim_templates: Some(vec![PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some("www".into()),
                        ..Default::default()
                    },
                    ..Default::default()
                }]),
                ..Default::default()
            },
            status: None,
        }
    }

    /// Runs the core with the revision it asks for already recorded.
    fn run(s: &StatefulSet, pods: &[Pod], claims: &BTreeSet<String>) -> StatefulSetSync {
        let first = reconcile(s, pods, claims, &[], ts("2026-01-01T00:00:00Z"));
        let revs: Vec<ControllerRevision> = first.revision.into_iter().collect();
        reconcile(s, pods, claims, &revs, ts("2026-01-01T00:00:00Z"))
    }

    fn member(s: &StatefulSet, o: i32, ready: bool) -> Pod {
        let sync = reconcile(s, &[], &BTreeSet::new(), &[], ts("2026-01-01T00:00:00Z"));
        let rev = sync.revision.unwrap().metadata.name.unwrap();
        let mut p = pod(&format!("web-{o}"), "Running", ready);
        p.metadata.labels = Some([(REVISION_LABEL.to_string(), rev)].into());
        p
    }

    #[test]
    fn ordered_ready_creates_one_pod_at_a_time_with_its_claim() {
        let s = set(3, "OrderedReady");
        let sync = run(&s, &[], &BTreeSet::new());
        assert_eq!(sync.create.len(), 1);
        let p = &sync.create[0];
        assert_eq!(p.metadata.name.as_deref(), Some("web-0"));
        let spec = p.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-0"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        let vol = &spec.volumes.as_ref().unwrap()[0];
        assert_eq!(
            vol.persistent_volume_claim.as_ref().unwrap().claim_name,
            "www-web-0"
        );
        assert_eq!(
            sync.create_claims[0].metadata.name.as_deref(),
            Some("www-web-0")
        );
        let labels = p.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[POD_INDEX_LABEL], "0");
        // web-0 not ready yet: nothing more.
        let claims: BTreeSet<String> = ["www-web-0".to_string()].into();
        let sync = run(&s, &[member(&s, 0, false)], &claims);
        assert!(sync.create.is_empty());
        // web-0 ready: web-1 next.
        let sync = run(&s, &[member(&s, 0, true)], &claims);
        assert_eq!(sync.create[0].metadata.name.as_deref(), Some("web-1"));
        assert_eq!(sync.status.ready_replicas, Some(1));
    }

    #[test]
    fn parallel_creates_all_and_scale_down_removes_highest_first() {
        let s = set(3, "Parallel");
        let sync = run(&s, &[], &BTreeSet::new());
        assert_eq!(sync.create.len(), 3);
        let s = set(1, "OrderedReady");
        let pods = [
            member(&s, 0, true),
            member(&s, 1, true),
            member(&s, 2, true),
        ];
        let sync = run(&s, &pods, &BTreeSet::new());
        assert_eq!(sync.delete, vec!["web-2".to_string()]);
    }

    #[test]
    fn rolling_update_replaces_from_the_highest_ordinal_down_to_the_partition() {
        let old = set(3, "OrderedReady");
        let pods = [
            member(&old, 0, true),
            member(&old, 1, true),
            member(&old, 2, true),
        ];
        let old_rev = reconcile(&old, &[], &BTreeSet::new(), &[], ts("2026-01-01T00:00:00Z"))
            .revision
            .unwrap();
        let mut new = old.clone();
        new.status = Some(StatefulSetStatus {
            current_revision: old_rev.metadata.name.clone(),
            ..Default::default()
        });
        let spec = &mut new.spec;
        spec.template.metadata = Some(ObjectMeta {
            labels: Some([("v".to_string(), "2".to_string())].into()),
            ..Default::default()
        });
        spec.update_strategy = Some(StatefulSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateStatefulSetStrategy {
                partition: Some(2),
                max_unavailable: None,
            }),
        });
        let first = reconcile(
            &new,
            &pods,
            &BTreeSet::new(),
            std::slice::from_ref(&old_rev),
            ts("2026-01-01T00:00:00Z"),
        );
        let new_rev = first.revision.clone().unwrap();
        assert_ne!(new_rev.metadata.name, old_rev.metadata.name);
        let sync = reconcile(
            &new,
            &pods,
            &BTreeSet::new(),
            &[old_rev.clone(), new_rev.clone()],
            ts("2026-01-01T00:00:00Z"),
        );
        assert_eq!(sync.delete, vec!["web-2".to_string()]);
        assert_eq!(sync.status.current_revision, old_rev.metadata.name);
        assert_eq!(sync.status.update_revision, new_rev.metadata.name);
        assert_eq!(sync.status.current_replicas, Some(3));
        assert_eq!(sync.status.updated_replicas, Some(0));
    }

    #[test]
    fn ordinals_and_claim_names() {
        assert_eq!(ordinal("web", "web-12"), Some(12));
        assert_eq!(ordinal("web", "webx-1"), None);
        assert_eq!(claim_name("www", "web", 3), "www-web-3");
    }
}
