//! The Job controller's pure core: from a Job and the pods it owns, the pods to create or
//! delete, the tracking finalizers to remove and the status to write (upstream
//! `pkg/controller/job`: finalizer-based tracking, backoff, Indexed mode, pod failure policy,
//! suspend, active deadline, the FailureTarget/SuccessCriteriaMet → Failed/Complete conditions).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::workload::{self, Event};

/// The finalizer every pod of a Job carries until its outcome is counted in the Job's status.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation and label holding an Indexed Job pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// Upstream's initial pod-failure backoff.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
/// Upstream's longest pod-failure backoff.
const BACKOFF_MAX: Duration = Duration::from_secs(600);

/// What one reconcile asks of the shell, in this order: write `status` (when it differs), then
/// remove finalizers, delete and create pods.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSync {
    /// The status to write.
    pub status: JobStatus,
    /// Pods whose tracking finalizer may go (their outcome is recorded in `status`).
    pub remove_finalizer: Vec<String>,
    /// Active pods to delete.
    pub delete: Vec<String>,
    /// Pods to create (with `generateName`).
    pub create: Vec<Pod>,
    /// Events to record on the Job.
    pub events: Vec<Event>,
    /// When to look again even without a change (backoff, active deadline).
    pub requeue_after: Option<Duration>,
}

fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

fn index_of(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(COMPLETION_INDEX))
        .and_then(|v| v.parse().ok())
}

fn condition_true(status: &JobStatus, type_: &str) -> Option<JobCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == type_ && c.status == "True")
        .cloned()
}

/// Sets condition `type_` (replacing an earlier one of that type; the transition time kept when
/// the status does not change).
fn set_condition(
    status: &mut JobStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let new = JobCondition {
        type_: type_.to_string(),
        status: value.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == value && c.reason.as_deref() == Some(reason) => {}
        Some(c) => *c = new,
        None => conditions.push(new),
    }
}

/// Parses `completedIndexes` ("0-2,4").
pub fn parse_indexes(s: &str) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
                    out.extend(a..=b);
                }
            }
            None => {
                if let Ok(i) = part.parse() {
                    out.insert(i);
                }
            }
        }
    }
    out
}

/// Formats indexes as upstream's ordered intervals ("0-2,4").
pub fn format_indexes(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter.peek() == Some(&(last + 1)) {
            last += 1;
            iter.next();
        }
        parts.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    parts.join(",")
}

/// When a pod failed: its latest container finish, else its last condition change.
fn finished_at(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?;
    let containers = status.container_statuses.iter().flatten();
    let from_containers = containers
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max();
    from_containers.or_else(|| {
        status
            .conditions
            .iter()
            .flatten()
            .filter_map(|c| c.last_transition_time.as_ref().map(|t| t.0))
            .max()
    })
}

/// Whether a pod counts as failed: phase Failed, or being deleted before succeeding (upstream,
/// with the default pod replacement policy).
fn is_failed(pod: &Pod, only_failed_phase: bool) -> bool {
    match workload::phase(pod) {
        "Failed" => true,
        "Succeeded" => false,
        _ => !only_failed_phase && workload::is_deleting(pod),
    }
}

/// What the pod failure policy says about a failed pod.
#[derive(Debug, Clone, PartialEq)]
enum PolicyVerdict {
    /// Count the failure against backoffLimit.
    Count,
    /// Do not count it.
    Ignore,
    /// Fail the Job with this message.
    FailJob(String),
}

fn pod_failure_verdict(job: &Job, pod: &Pod) -> PolicyVerdict {
    let Some(policy) = job
        .spec
        .as_ref()
        .and_then(|s| s.pod_failure_policy.as_ref())
    else {
        return PolicyVerdict::Count;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref();
    for (i, rule) in policy.rules.iter().enumerate() {
        let mut matched: Option<String> = None;
        if let Some(req) = &rule.on_exit_codes {
            let statuses = status
                .into_iter()
                .flat_map(|s| {
                    s.init_container_statuses
                        .iter()
                        .flatten()
                        .chain(s.container_statuses.iter().flatten())
                })
                .filter(|c| req.container_name.as_ref().is_none_or(|n| *n == c.name));
            for c in statuses {
                let Some(code) = c
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .map(|t| t.exit_code)
                    .filter(|code| *code != 0)
                else {
                    continue;
                };
                let hit = match req.operator.as_str() {
                    "In" => req.values.contains(&code),
                    "NotIn" => !req.values.contains(&code),
                    _ => false,
                };
                if hit {
                    matched = Some(format!(
                        "Container {} for pod {ns}/{name} failed with exit code {code} matching {} rule at index {i}",
                        c.name, rule.action
                    ));
                    break;
                }
            }
        }
        for pattern in rule.on_pod_conditions.iter().flatten() {
            let want = pattern.status.as_deref().unwrap_or("True");
            let has = status
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == pattern.type_ && c.status == want)
                });
            if has && matched.is_none() {
                matched = Some(format!(
                    "Pod {ns}/{name} has condition {} matching {} rule at index {i}",
                    pattern.type_, rule.action
                ));
            }
        }
        if let Some(message) = matched {
            return match rule.action.as_str() {
                "FailJob" => PolicyVerdict::FailJob(message),
                "Ignore" => PolicyVerdict::Ignore,
                _ => PolicyVerdict::Count,
            };
        }
    }
    PolicyVerdict::Count
}

/// The pod for a new attempt (at `index` for Indexed Jobs), owned by the Job and tracked by its
/// finalizer.
pub fn new_pod(job: &Job, index: Option<i32>) -> Pod {
    let name = job.metadata.name.clone().unwrap_or_default();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let mut meta = template.metadata.unwrap_or_default();
    meta.generate_name = Some(match index {
        Some(i) => format!("{name}-{i}-"),
        None => format!("{name}-"),
    });
    meta.namespace = job.metadata.namespace.clone();
    meta.owner_references = Some(vec![workload::controller_ref(
        "batch/v1",
        "Job",
        &job.metadata,
    )]);
    meta.finalizers = Some(vec![TRACKING_FINALIZER.to_string()]);
    let mut spec = template.spec.unwrap_or_default();
    if let Some(i) = index {
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(COMPLETION_INDEX.to_string(), i.to_string());
        meta.labels
            .get_or_insert_with(BTreeMap::new)
            .insert(COMPLETION_INDEX.to_string(), i.to_string());
        if spec.hostname.is_none() {
            spec.hostname = Some(format!("{name}-{i}"));
        }
        let env = EnvVar {
            name: "JOB_COMPLETION_INDEX".to_string(),
            value: None,
            value_from: Some(EnvVarSource {
                field_ref: Some(ObjectFieldSelector {
                    api_version: None,
                    field_path: format!("metadata.annotations['{COMPLETION_INDEX}']"),
                }),
                ..Default::default()
            }),
        };
        let containers = spec
            .init_containers
            .iter_mut()
            .flatten()
            .chain(spec.containers.iter_mut());
        for c in containers {
            let envs = c.env.get_or_insert_with(Vec::new);
            if !envs.iter().any(|e| e.name == env.name) {
                envs.push(env.clone());
            }
        }
    }
    Pod {
        metadata: meta,
        spec: Some(spec),
        status: None,
    }
}

/// Upstream's backoff before the next pod after `failures` consecutive failures.
pub fn backoff(failures: u32) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let shift = (failures - 1).min(16);
    BACKOFF_BASE.saturating_mul(1 << shift).min(BACKOFF_MAX)
}

/// Orders active pods for deletion: not ready first, then the newest.
fn deletion_order(pods: &mut [&Pod]) {
    pods.sort_by(|a, b| {
        workload::is_ready(a)
            .cmp(&workload::is_ready(b))
            .then_with(|| {
                let ta = a.metadata.creation_timestamp.as_ref().map(|t| t.0);
                let tb = b.metadata.creation_timestamp.as_ref().map(|t| t.0);
                tb.cmp(&ta)
            })
    });
}

fn secs(d: i64) -> Duration {
    Duration::from_secs(u64::try_from(d.max(0)).unwrap_or(0))
}

/// Reconciles `job` against the `pods` it controls at `now`.
pub fn reconcile(job: &Job, pods: &[Pod], now: Timestamp) -> JobSync {
    let spec = job.spec.clone().unwrap_or_default();
    let mut status = job.status.clone().unwrap_or_default();
    let mut sync = JobSync {
        status: JobStatus::default(),
        remove_finalizer: Vec::new(),
        delete: Vec::new(),
        create: Vec::new(),
        events: Vec::new(),
        requeue_after: None,
    };
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let only_failed_phase = spec.pod_replacement_policy.as_deref() == Some("Failed");
    let finished = condition_true(&status, "Complete").is_some()
        || condition_true(&status, "Failed").is_some();

    // Counting: uncounted pods whose finalizer is gone move into the counters.
    let by_uid: BTreeMap<&str, &Pod> = pods
        .iter()
        .filter_map(|p| Some((p.metadata.uid.as_deref()?, p)))
        .collect();
    let mut uncounted = status.uncounted_terminated_pods.take().unwrap_or_default();
    let mut succeeded_uids = uncounted.succeeded.take().unwrap_or_default();
    let mut failed_uids = uncounted.failed.take().unwrap_or_default();
    let settled = |uid: &String| by_uid.get(uid.as_str()).is_none_or(|p| !has_finalizer(p));
    let mut succeeded = status.succeeded.unwrap_or(0);
    let mut failed = status.failed.unwrap_or(0);
    succeeded += i32::try_from(succeeded_uids.iter().filter(|u| settled(u)).count()).unwrap_or(0);
    failed += i32::try_from(failed_uids.iter().filter(|u| settled(u)).count()).unwrap_or(0);
    succeeded_uids.retain(|u| !settled(u));
    failed_uids.retain(|u| !settled(u));
    let mut completed = parse_indexes(status.completed_indexes.as_deref().unwrap_or(""));

    // Newly finished pods still carrying the finalizer.
    let mut fail_message: Option<String> = None;
    let mut latest_failure: Option<Timestamp> = None;
    let mut latest_success: Option<Timestamp> = None;
    for pod in pods {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let is_success = workload::phase(pod) == "Succeeded";
        let failed_now = is_failed(pod, only_failed_phase);
        if is_success {
            latest_success = latest_success.max(finished_at(pod));
        }
        if failed_now {
            latest_failure = latest_failure.max(finished_at(pod));
        }
        if !has_finalizer(pod) {
            continue;
        }
        if succeeded_uids.contains(&uid) || failed_uids.contains(&uid) {
            sync.remove_finalizer.push(name);
            continue;
        }
        if is_success {
            let index = index_of(pod);
            let in_range = index.is_some_and(|i| i >= 0 && i < spec.completions.unwrap_or(0));
            if !indexed || (in_range && index.is_some_and(|i| completed.insert(i))) {
                succeeded_uids.push(uid);
            }
            sync.remove_finalizer.push(name);
        } else if failed_now {
            match pod_failure_verdict(job, pod) {
                PolicyVerdict::Ignore => {}
                PolicyVerdict::Count => failed_uids.push(uid),
                PolicyVerdict::FailJob(message) => {
                    failed_uids.push(uid);
                    fail_message.get_or_insert(message);
                }
            }
            sync.remove_finalizer.push(name);
        } else if finished {
            sync.remove_finalizer.push(name);
        }
    }
    let total_succeeded = succeeded + i32::try_from(succeeded_uids.len()).unwrap_or(0);
    let total_failed = failed + i32::try_from(failed_uids.len()).unwrap_or(0);

    let active: Vec<&Pod> = pods.iter().filter(|p| workload::is_active(p)).collect();
    let terminating = pods
        .iter()
        .filter(|p| workload::is_deleting(p) && !workload::is_terminal(p))
        .count();
    let ready = active.iter().filter(|p| workload::is_ready(p)).count();

    let suspended = spec.suspend == Some(true);
    if !finished {
        // Suspension.
        let was_suspended = condition_true(&status, "Suspended").is_some();
        if suspended && !was_suspended {
            set_condition(
                &mut status,
                "Suspended",
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            );
            sync.events
                .push(Event::normal("Suspended", "Job suspended".to_string()));
        } else if !suspended && was_suspended {
            set_condition(
                &mut status,
                "Suspended",
                "False",
                "JobResumed",
                "Job resumed",
                now,
            );
            sync.events
                .push(Event::normal("Resumed", "Job resumed".to_string()));
            status.start_time = Some(Time(now));
        }
        if !suspended && status.start_time.is_none() {
            status.start_time = Some(Time(now));
        }

        // Failure and success criteria.
        let has_target = condition_true(&status, "FailureTarget").is_some()
            || condition_true(&status, "SuccessCriteriaMet").is_some();
        if !has_target {
            let backoff_limit = spec.backoff_limit.unwrap_or(6);
            let deadline = spec.active_deadline_seconds.and_then(|ads| {
                let start = status.start_time.as_ref()?.0;
                Some(start.as_second().saturating_add(ads))
            });
            let failure = if let Some(message) = fail_message {
                Some(("PodFailurePolicy", message))
            } else if total_failed > backoff_limit {
                Some((
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit".to_string(),
                ))
            } else if !suspended && deadline.is_some_and(|d| now.as_second() >= d) {
                Some((
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline".to_string(),
                ))
            } else {
                None
            };
            let success = match (indexed, spec.completions) {
                (true, Some(c)) => i32::try_from(completed.len()).unwrap_or(0) >= c,
                (false, Some(c)) => total_succeeded >= c,
                (_, None) => total_succeeded > 0 && active.is_empty(),
            };
            if let Some((reason, message)) = failure {
                set_condition(&mut status, "FailureTarget", "True", reason, &message, now);
            } else if success {
                set_condition(
                    &mut status,
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    now,
                );
            } else if let Some(d) = deadline.filter(|_| !suspended) {
                sync.requeue_after = Some(secs(d - now.as_second()));
            }
        }
    }

    let target = condition_true(&status, "FailureTarget")
        .map(|c| ("Failed", c))
        .or_else(|| condition_true(&status, "SuccessCriteriaMet").map(|c| ("Complete", c)));
    let active_count = if finished || target.is_some() || suspended {
        sync.delete
            .extend(active.iter().filter_map(|p| p.metadata.name.clone()));
        0
    } else {
        plan_pods(
            job,
            &spec,
            &active,
            &completed,
            total_succeeded,
            &mut sync,
            now,
            latest_failure,
            latest_success,
            indexed,
        );
        active.len() - sync.delete.len() + sync.create.len()
    };

    // The terminal condition once nothing runs and every outcome is counted.
    if let Some((type_, target)) = target.filter(|_| !finished) {
        let settled = active_count == 0
            && terminating == 0
            && succeeded_uids.iter().chain(failed_uids.iter()).all(settled)
            && sync.remove_finalizer.is_empty();
        if settled {
            let reason = target.reason.clone().unwrap_or_default();
            let message = target.message.clone().unwrap_or_default();
            set_condition(&mut status, type_, "True", &reason, &message, now);
            if type_ == "Complete" {
                status.completion_time = Some(Time(now));
                sync.events
                    .push(Event::normal("Completed", "Job completed".to_string()));
            } else {
                sync.events.push(Event::warning(
                    if reason == "BackoffLimitExceeded" {
                        "BackoffLimitExceeded"
                    } else if reason == "DeadlineExceeded" {
                        "DeadlineExceeded"
                    } else {
                        "PodFailurePolicy"
                    },
                    message,
                ));
            }
        }
    }

    status.active = Some(i32::try_from(active_count).unwrap_or(0));
    status.ready = Some(i32::try_from(ready.min(active_count)).unwrap_or(0));
    status.terminating = Some(i32::try_from(terminating).unwrap_or(0));
    status.succeeded = Some(succeeded);
    status.failed = Some(failed);
    if indexed {
        status.completed_indexes = Some(format_indexes(&completed));
    }
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: Some(succeeded_uids),
        failed: Some(failed_uids),
    });
    sync.status = status;
    sync
}

/// The writes of one sync that the next must find in its informers before it acts (upstream's
/// expectations for finalizer removals and deletions, plus the Job's own status write): a stale
/// cache would otherwise drop a pod's counted outcome, or count it twice, or create again.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fence {
    /// The Job's resourceVersion after its status write.
    pub status_rv: Option<String>,
    /// Pods (by UID) whose tracking finalizer was removed.
    pub released: Vec<String>,
    /// Pods (by UID) deleted.
    pub deleted: Vec<String>,
}

impl Fence {
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.status_rv.is_none() && self.released.is_empty() && self.deleted.is_empty()
    }

    /// Whether `job` and `pods` (as the informers hold them) show every write: the Job at
    /// `status_rv` or later, each released pod without the finalizer, each deleted pod marked for
    /// deletion; a pod that is gone shows both.
    pub fn observed(&self, job: &Job, pods: &[Pod]) -> bool {
        let revision = |rv: Option<&str>| rv.and_then(|rv| rv.parse::<u64>().ok());
        let job_seen = match (
            revision(self.status_rv.as_deref()),
            revision(job.metadata.resource_version.as_deref()),
        ) {
            (Some(written), Some(cached)) => cached >= written,
            // Not comparable (not ours): never hold the Job back on it.
            _ => true,
        };
        let pod = |uid: &String| pods.iter().find(|p| p.metadata.uid.as_ref() == Some(uid));
        job_seen
            && self
                .released
                .iter()
                .all(|uid| pod(uid).is_none_or(|p| !has_finalizer(p)))
            && self
                .deleted
                .iter()
                .all(|uid| pod(uid).is_none_or(|p| p.metadata.deletion_timestamp.is_some()))
    }
}

/// Plans creations and deletions for a running Job.
#[allow(clippy::too_many_arguments)]
fn plan_pods(
    job: &Job,
    spec: &k8s_openapi::api::batch::v1::JobSpec,
    active: &[&Pod],
    completed: &BTreeSet<i32>,
    succeeded: i32,
    sync: &mut JobSync,
    now: Timestamp,
    latest_failure: Option<Timestamp>,
    latest_success: Option<Timestamp>,
    indexed: bool,
) {
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let mut deletable: Vec<&Pod> = Vec::new();
    let mut kept: Vec<&Pod> = Vec::new();
    if indexed {
        let completions = spec.completions.unwrap_or(0);
        let mut seen = BTreeSet::new();
        let mut sorted: Vec<&Pod> = active.to_vec();
        sorted.sort_by_key(|p| {
            (
                !workload::is_ready(p),
                p.metadata.creation_timestamp.as_ref().map(|t| t.0),
            )
        });
        for p in sorted {
            match index_of(p) {
                Some(i)
                    if i >= 0 && i < completions && !completed.contains(&i) && seen.insert(i) =>
                {
                    kept.push(p)
                }
                _ => deletable.push(p),
            }
        }
    } else {
        kept = active.to_vec();
    }
    let remaining = match spec.completions {
        Some(c) if indexed => c - i32::try_from(completed.len()).unwrap_or(0),
        Some(c) => c - succeeded,
        None if succeeded > 0 => 0,
        None => parallelism,
    };
    let want = usize::try_from(parallelism.min(remaining).max(0)).unwrap_or(0);
    if kept.len() > want {
        deletion_order(&mut kept);
        let excess = kept.len() - want;
        deletable.extend(kept.drain(..excess));
    }
    sync.delete
        .extend(deletable.iter().filter_map(|p| p.metadata.name.clone()));
    if kept.len() >= want {
        return;
    }
    // Backoff after failures that came after the last success.
    if let Some(last) = latest_failure.filter(|f| latest_success.is_none_or(|s| *f > s)) {
        let failures = u32::try_from(job.status.as_ref().and_then(|s| s.failed).unwrap_or(0))
            .unwrap_or(0)
            .max(1);
        let delay = backoff(failures);
        let ready_at = last.as_second() + i64::try_from(delay.as_secs()).unwrap_or(0);
        if now.as_second() < ready_at {
            sync.requeue_after = Some(secs(ready_at - now.as_second()));
            return;
        }
    }
    let missing = want - kept.len();
    if indexed {
        let taken: BTreeSet<i32> = kept.iter().filter_map(|p| index_of(p)).collect();
        let free = (0..spec.completions.unwrap_or(0))
            .filter(|i| !completed.contains(i) && !taken.contains(i))
            .take(missing);
        sync.create.extend(free.map(|i| new_pod(job, Some(i))));
    } else {
        sync.create.extend((0..missing).map(|_| new_pod(job, None)));
    }
}

/// The Job controller: the core behind informers of Jobs and pods.
#[derive(Debug)]
pub struct JobController {
    ctx: crate::manager::Context,
    jobs: crate::informer::Informer<Job>,
    pods: crate::informer::Informer<Pod>,
    queue: crate::queue::WorkQueue<crate::informer::ObjectKey>,
    expectations: crate::expectations::Expectations<crate::informer::ObjectKey>,
    /// Each Job's last writes, with when they were made (they stop holding it back after
    /// upstream's expectations TTL).
    fences: std::sync::Arc<
        parking_lot::Mutex<BTreeMap<crate::informer::ObjectKey, (Fence, Timestamp)>>,
    >,
    recorder: crate::events::Recorder,
}

impl JobController {
    /// Registers on the shared Job and pod informers.
    pub fn new(ctx: &crate::manager::Context) -> Self {
        use crate::informer::{Change, ObjectKey};
        let queue = crate::queue::WorkQueue::new();
        let expectations = crate::expectations::Expectations::new(ctx.clock.clone());
        let jobs = ctx.informers.typed::<Job>();
        let pods = ctx.informers.typed::<Pod>();
        let q = queue.clone();
        jobs.on_change(move |c| q.add(ObjectKey::of(crate::shell::changed(c))));
        let q = queue.clone();
        let exp = expectations.clone();
        pods.on_change(move |c: &Change<Pod>| {
            if let Change::Added(p) = c
                && let Some(owner) =
                    crate::owner::controller_ref(&p.metadata).filter(|o| o.kind == "Job")
            {
                exp.creation_observed(&ObjectKey::new(
                    p.metadata.namespace.clone().unwrap_or_default(),
                    owner.name.clone(),
                ));
            }
            crate::shell::enqueue_controller(c, "Job", &q);
        });
        JobController {
            ctx: ctx.clone(),
            jobs,
            pods,
            queue,
            expectations,
            fences: Default::default(),
            recorder: ctx.recorder.for_component("job-controller"),
        }
    }

    /// Removes the tracking finalizer from a pod.
    async fn release(
        &self,
        api: &kube::Api<Pod>,
        pod: &Pod,
    ) -> Result<(), crate::shell::ShellError> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let kept: Vec<String> = pod
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != TRACKING_FINALIZER)
            .cloned()
            .collect();
        let patch = serde_json::json!({"metadata": {"finalizers": kept}});
        crate::shell::patch(api, "Pod", &name, patch).await
    }
}

impl crate::manager::Controller for JobController {
    type Key = crate::informer::ObjectKey;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "job"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        let pod_api: kube::Api<Pod> =
            kube::Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let Some(job) = self.jobs.get(&key.namespace, &key.name) else {
            // The Job is gone: its pods' finalizers must not keep them.
            self.expectations.delete(key);
            self.fences.lock().remove(key);
            for pod in self.pods.by_namespace(&key.namespace) {
                let orphan = crate::owner::controller_ref(&pod.metadata)
                    .is_some_and(|o| o.kind == "Job" && o.name == key.name);
                if orphan && has_finalizer(&pod) {
                    self.release(&pod_api, &pod).await?;
                }
            }
            return Ok(());
        };
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let pods: Vec<Pod> = self
            .pods
            .by_owner(&uid)
            .into_iter()
            .filter(|p| workload::is_controlled_by(&p.metadata, &uid))
            .map(|p| (*p).clone())
            .collect();
        let now = self.ctx.clock.now();
        let waiting = self.fences.lock().get(key).is_some_and(|(fence, at)| {
            !fence.observed(&job, &pods)
                && now.duration_since(*at) <= crate::expectations::EXPECTATIONS_TTL
        });
        if waiting {
            // The informers' events for our writes enqueue the Job again; this is a backstop.
            self.queue.add_after(key.clone(), Duration::from_secs(1));
            return Ok(());
        }
        let mut sync = reconcile(&job, &pods, now);
        if !self.expectations.satisfied(key) {
            sync.create.clear();
        }
        let job_api: kube::Api<Job> =
            kube::Api::namespaced(self.ctx.client.clone(), &key.namespace);
        let by_name: BTreeMap<&str, &Pod> = pods
            .iter()
            .filter_map(|p| Some((p.metadata.name.as_deref()?, p)))
            .collect();
        let uid_of = |name: &String| by_name.get(name.as_str())?.metadata.uid.clone();
        // Recorded before writing: a write that fails half-way still holds the next sync back
        // until whatever did land is seen.
        let mut fence = Fence {
            status_rv: None,
            released: sync.remove_finalizer.iter().filter_map(uid_of).collect(),
            deleted: sync.delete.iter().filter_map(uid_of).collect(),
        };
        self.fences.lock().insert(key.clone(), (fence.clone(), now));
        if job.status.as_ref() != Some(&sync.status) {
            let status = serde_json::to_value(&sync.status).unwrap_or_default();
            fence.status_rv =
                crate::shell::patch_status(&job_api, "Job", &key.name, status).await?;
            self.fences.lock().insert(key.clone(), (fence.clone(), now));
        }
        if fence.is_empty() {
            self.fences.lock().remove(key);
        }
        for name in &sync.remove_finalizer {
            if let Some(pod) = by_name.get(name.as_str()) {
                self.release(&pod_api, pod).await?;
            }
        }
        crate::shell::delete_then_create_pods(
            &pod_api,
            &self.recorder,
            &self.expectations,
            key,
            &*job,
            &sync.delete,
            &sync.create,
        )
        .await?;
        crate::shell::publish(&self.recorder, &*job, sync.events);
        if let Some(after) = sync.requeue_after {
            self.queue.add_after(key.clone(), after);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::workload::testing::{pod, ts};
    use k8s_openapi::api::batch::v1::{
        JobSpec, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyRule,
    };
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, ContainerStatus, PodTemplateSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn job(spec: JobSpec) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("pi".into()),
                namespace: Some("default".into()),
                uid: Some("job-uid".into()),
                ..Default::default()
            },
            spec: Some(JobSpec {
                template: PodTemplateSpec::default(),
                ..spec
            }),
            status: None,
        }
    }

    fn tracked(mut p: Pod) -> Pod {
        p.metadata.finalizers = Some(vec![TRACKING_FINALIZER.into()]);
        p
    }

    fn failed_with(name: &str, code: i32, at: &str) -> Pod {
        let mut p = tracked(pod(name, "Failed", false));
        p.status.as_mut().unwrap().container_statuses = Some(vec![ContainerStatus {
            name: "main".into(),
            state: Some(ContainerState {
                terminated: Some(ContainerStateTerminated {
                    exit_code: code,
                    finished_at: Some(Time(ts(at))),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }]);
        p
    }

    fn cond<'a>(s: &'a JobStatus, t: &str) -> Option<&'a JobCondition> {
        s.conditions.iter().flatten().find(|c| c.type_ == t)
    }

    #[test]
    fn a_new_job_starts_parallelism_tracked_owned_pods() {
        let j = job(JobSpec {
            parallelism: Some(2),
            completions: Some(5),
            ..Default::default()
        });
        let now = ts("2026-01-01T00:00:00Z");
        let sync = reconcile(&j, &[], now);
        assert_eq!(sync.create.len(), 2);
        let p = &sync.create[0];
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-"));
        assert_eq!(
            p.metadata.finalizers,
            Some(vec![TRACKING_FINALIZER.to_string()])
        );
        let owner = &p.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Job", "job-uid", Some(true))
        );
        assert_eq!(sync.status.start_time, Some(Time(now)));
        assert_eq!(sync.status.active, Some(2));
    }

    #[test]
    fn finished_pods_are_counted_through_uncounted_then_finalizers_go() {
        let mut j = job(JobSpec {
            completions: Some(1),
            ..Default::default()
        });
        let now = ts("2026-01-01T00:01:00Z");
        let done = tracked(pod("a", "Succeeded", false));
        let first = reconcile(&j, std::slice::from_ref(&done), now);
        let unc = first.status.uncounted_terminated_pods.clone().unwrap();
        assert_eq!(unc.succeeded, Some(vec!["a".to_string()]));
        assert_eq!(first.status.succeeded, Some(0));
        assert_eq!(first.remove_finalizer, vec!["a".to_string()]);
        assert!(cond(&first.status, "SuccessCriteriaMet").is_some());
        assert!(
            cond(&first.status, "Complete").is_none(),
            "not before the pod is counted"
        );
        // The finalizer is gone: the pod is counted and the Job completes.
        j.status = Some(first.status);
        let mut released = done.clone();
        released.metadata.finalizers = None;
        let second = reconcile(&j, &[released], now);
        assert_eq!(second.status.succeeded, Some(1));
        let complete = cond(&second.status, "Complete").unwrap();
        assert_eq!(complete.reason.as_deref(), Some("CompletionsReached"));
        assert_eq!(
            complete.message.as_deref(),
            Some("Reached expected number of succeeded pods")
        );
        assert_eq!(second.status.completion_time, Some(Time(now)));
        assert!(second.create.is_empty());
        assert_eq!(
            second.events,
            vec![Event::normal("Completed", "Job completed".into())]
        );
    }

    #[test]
    fn failures_back_off_exponentially_then_exceed_the_limit() {
        let mut j = job(JobSpec {
            backoff_limit: Some(1),
            ..Default::default()
        });
        // One failure at 00:00:00; at 00:00:05 the 10 s backoff still holds.
        let f1 = failed_with("a", 1, "2026-01-01T00:00:00Z");
        let s = reconcile(&j, std::slice::from_ref(&f1), ts("2026-01-01T00:00:05Z"));
        assert!(s.create.is_empty());
        assert_eq!(s.requeue_after, Some(Duration::from_secs(5)));
        j.status = Some(s.status);
        let mut f1 = f1;
        f1.metadata.finalizers = None;
        let s = reconcile(&j, std::slice::from_ref(&f1), ts("2026-01-01T00:00:11Z"));
        assert_eq!(s.status.failed, Some(1));
        assert_eq!(s.create.len(), 1, "retried after the backoff");
        j.status = Some(s.status);
        // A second failure exceeds backoffLimit 1.
        let f2 = failed_with("b", 1, "2026-01-01T00:00:20Z");
        let s = reconcile(&j, &[f1.clone(), f2.clone()], ts("2026-01-01T00:00:21Z"));
        let target = cond(&s.status, "FailureTarget").unwrap();
        assert_eq!(target.reason.as_deref(), Some("BackoffLimitExceeded"));
        assert!(s.create.is_empty());
        j.status = Some(s.status);
        let mut f2 = f2;
        f2.metadata.finalizers = None;
        let s = reconcile(&j, &[f1, f2], ts("2026-01-01T00:00:22Z"));
        let failed = cond(&s.status, "Failed").unwrap();
        assert_eq!(
            failed.message.as_deref(),
            Some("Job has reached the specified backoff limit")
        );
        assert_eq!(s.status.failed, Some(2));
        assert!(s.status.completion_time.is_none());
    }

    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(3), Duration::from_secs(40));
        assert_eq!(backoff(20), Duration::from_secs(600));
    }

    #[test]
    fn indexed_jobs_fill_missing_indexes_and_track_completed_ones() {
        let mut j = job(JobSpec {
            completions: Some(3),
            parallelism: Some(3),
            completion_mode: Some("Indexed".into()),
            ..Default::default()
        });
        let s = reconcile(&j, &[], ts("2026-01-01T00:00:00Z"));
        let idx: Vec<_> = s
            .create
            .iter()
            .map(|p| p.metadata.annotations.as_ref().unwrap()[COMPLETION_INDEX].clone())
            .collect();
        assert_eq!(idx, ["0", "1", "2"]);
        let p1 = &s.create[1];
        assert_eq!(p1.metadata.generate_name.as_deref(), Some("pi-1-"));
        assert_eq!(p1.spec.as_ref().unwrap().hostname.as_deref(), Some("pi-1"));
        j.status = Some(s.status);
        let mut done = tracked(pod("pi-1-x", "Succeeded", false));
        done.metadata.annotations = Some([(COMPLETION_INDEX.to_string(), "1".to_string())].into());
        let mut running = tracked(pod("pi-0-x", "Running", true));
        running.metadata.annotations =
            Some([(COMPLETION_INDEX.to_string(), "0".to_string())].into());
        let s = reconcile(&j, &[done, running], ts("2026-01-01T00:00:05Z"));
        assert_eq!(s.status.completed_indexes.as_deref(), Some("1"));
        let idx: Vec<_> = s
            .create
            .iter()
            .map(|p| p.metadata.annotations.as_ref().unwrap()[COMPLETION_INDEX].clone())
            .collect();
        assert_eq!(idx, ["2"], "only the index neither done nor running");
    }

    #[test]
    fn indexes_format_as_intervals() {
        let set = parse_indexes("0-2,4,6-7");
        assert_eq!(set.len(), 6);
        assert_eq!(format_indexes(&set), "0-2,4,6-7");
        assert_eq!(format_indexes(&[1, 2].into()), "1-2");
    }

    #[test]
    fn pod_failure_policy_fail_job_and_ignore() {
        let rule = |action: &str, codes: Vec<i32>| PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: "In".into(),
                values: codes,
            }),
            on_pod_conditions: None,
        };
        let j = job(JobSpec {
            pod_failure_policy: Some(PodFailurePolicy {
                rules: vec![rule("Ignore", vec![3]), rule("FailJob", vec![42])],
            }),
            ..Default::default()
        });
        let now = ts("2026-01-01T00:10:00Z");
        let s = reconcile(&j, &[failed_with("a", 3, "2026-01-01T00:00:00Z")], now);
        assert!(
            s.status
                .uncounted_terminated_pods
                .unwrap()
                .failed
                .unwrap()
                .is_empty()
        );
        assert_eq!(s.remove_finalizer, vec!["a".to_string()]);
        let s = reconcile(&j, &[failed_with("b", 42, "2026-01-01T00:00:00Z")], now);
        let target = cond(&s.status, "FailureTarget").unwrap();
        assert_eq!(target.reason.as_deref(), Some("PodFailurePolicy"));
        assert_eq!(
            target.message.as_deref(),
            Some(
                "Container main for pod default/b failed with exit code 42 matching FailJob rule at index 1"
            )
        );
    }

    #[test]
    fn active_deadline_fails_the_job_and_deletes_its_pods() {
        let mut j = job(JobSpec {
            active_deadline_seconds: Some(30),
            ..Default::default()
        });
        j.status = Some(JobStatus {
            start_time: Some(Time(ts("2026-01-01T00:00:00Z"))),
            ..Default::default()
        });
        let running = tracked(pod("a", "Running", true));
        let s = reconcile(
            &j,
            std::slice::from_ref(&running),
            ts("2026-01-01T00:00:10Z"),
        );
        assert_eq!(s.requeue_after, Some(Duration::from_secs(20)));
        let s = reconcile(&j, &[running], ts("2026-01-01T00:00:31Z"));
        assert_eq!(
            cond(&s.status, "FailureTarget").unwrap().reason.as_deref(),
            Some("DeadlineExceeded")
        );
        assert_eq!(s.delete, vec!["a".to_string()]);
    }

    #[test]
    fn suspend_deletes_active_pods_and_sets_the_condition() {
        let j = job(JobSpec {
            suspend: Some(true),
            ..Default::default()
        });
        let s = reconcile(
            &j,
            &[tracked(pod("a", "Running", true))],
            ts("2026-01-01T00:00:00Z"),
        );
        assert_eq!(s.delete, vec!["a".to_string()]);
        let c = cond(&s.status, "Suspended").unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("True", Some("JobSuspended"))
        );
        assert!(s.create.is_empty());
    }

    #[test]
    fn a_fence_holds_until_the_informers_show_every_write() {
        let mut j = job(JobSpec::default());
        j.metadata.resource_version = Some("41".into());
        let fence = Fence {
            status_rv: Some("42".into()),
            released: vec!["a".into()],
            deleted: vec!["b".into()],
        };
        let a = tracked(pod("a", "Succeeded", false));
        let b = tracked(pod("b", "Running", true));
        // Nothing seen yet: the Job is older than its status write.
        assert!(!fence.observed(&j, &[a.clone(), b.clone()]));
        j.metadata.resource_version = Some("42".into());
        // The status is seen, but `a` still has its finalizer and `b` is not marked deleted.
        assert!(!fence.observed(&j, &[a.clone(), b.clone()]));
        let mut a_released = a.clone();
        a_released.metadata.finalizers = Some(vec![]);
        assert!(!fence.observed(&j, &[a_released.clone(), b.clone()]));
        let mut b_deleting = b.clone();
        b_deleting.metadata.deletion_timestamp = Some(Time(ts("2026-01-01T00:01:00Z")));
        assert!(fence.observed(&j, &[a_released, b_deleting]));
        // Pods that are gone show both writes.
        assert!(fence.observed(&j, &[]));
    }

    #[test]
    fn a_fence_never_holds_on_a_resource_version_it_cannot_compare() {
        let mut j = job(JobSpec::default());
        j.metadata.resource_version = Some("not-a-number".into());
        let fence = Fence {
            status_rv: Some("42".into()),
            ..Default::default()
        };
        assert!(fence.observed(&j, &[]));
        assert!(!fence.is_empty());
        assert!(Fence::default().is_empty());
    }
}
