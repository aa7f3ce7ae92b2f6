//! The CronJob controller's pure core: from a CronJob, the Jobs it owns and the time, the Job
//! to start, the Jobs to delete (Replace, history limits) and the status to write (upstream
//! `pkg/controller/cronjob`, controller v2).

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use crate::cron::Schedule;
use crate::workload::{self, Event};

/// The annotation on a Job recording the time it was scheduled for.
pub const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// More missed start times than this raise `TooManyMissedTimes`.
const MISSED_LIMIT: usize = 100;

/// What one reconcile asks of the shell: delete, then create, then write `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct CronJobSync {
    /// The status to write.
    pub status: CronJobStatus,
    /// The Job to start now.
    pub create: Option<Job>,
    /// Jobs to delete (background propagation).
    pub delete: Vec<String>,
    /// Events to record on the CronJob.
    pub events: Vec<Event>,
    /// When the next activation is due.
    pub requeue_after: Option<Duration>,
}

fn finished(job: &Job) -> Option<&'static str> {
    let conds = job.status.as_ref()?.conditions.as_ref()?;
    for c in conds.iter().filter(|c| c.status == "True") {
        match c.type_.as_str() {
            "Complete" => return Some("Complete"),
            "Failed" => return Some("Failed"),
            _ => {}
        }
    }
    None
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".to_string()),
        kind: Some("Job".to_string()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// The name of the Job for an activation at `scheduled` (minutes since the epoch).
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// The Job for the activation at `scheduled`.
pub fn new_job(cj: &CronJob, scheduled: Timestamp, tz: &TimeZone) -> Job {
    let template = cj.spec.job_template.clone();
    let tmeta = template.metadata.unwrap_or_default();
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP.to_string(),
        scheduled
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    );
    let name = cj.metadata.name.clone().unwrap_or_default();
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cj.metadata.namespace.clone(),
            labels: tmeta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![workload::controller_ref(
                "batch/v1",
                "CronJob",
                &cj.metadata,
            )]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    }
}

fn requeue(next: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    let next = next?;
    let ms = next
        .as_millisecond()
        .saturating_sub(now.as_millisecond())
        .max(0)
        + 100;
    Some(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

/// Reconciles `cj` against the Jobs it controls at `now`.
pub fn reconcile(cj: &CronJob, jobs: &[Job], now: Timestamp) -> CronJobSync {
    let spec = cj.spec.clone();
    let old = cj.status.clone().unwrap_or_default();
    let mut sync = CronJobSync {
        status: old.clone(),
        create: None,
        delete: Vec::new(),
        events: Vec::new(),
        requeue_after: None,
    };
    let by_name: BTreeMap<&str, &Job> = jobs
        .iter()
        .filter_map(|j| Some((j.metadata.name.as_deref()?, j)))
        .collect();

    // Active list and completions.
    for r in old.active.iter().flatten() {
        let name = r.name.as_deref().unwrap_or_default();
        match by_name.get(name) {
            None => sync.events.push(Event::normal(
                "MissingJob",
                format!("Active job went missing: {name}"),
            )),
            Some(j) => {
                if let Some(cond) = finished(j) {
                    sync.events.push(Event::normal(
                        "SawCompletedJob",
                        format!("Saw completed job: {name}, condition: {cond}"),
                    ));
                }
            }
        }
    }
    let mut active: Vec<&Job> = jobs
        .iter()
        .filter(|j| finished(j).is_none() && j.metadata.deletion_timestamp.is_none())
        .collect();
    active.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let last_success = jobs
        .iter()
        .filter(|j| finished(j) == Some("Complete"))
        .filter_map(|j| j.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
        .max();
    if let Some(t) = last_success
        && old.last_successful_time.as_ref().is_none_or(|o| o.0 < t)
    {
        sync.status.last_successful_time = Some(Time(t));
    }

    // History limits.
    let mut history = |kind: &str, limit: i32| {
        let mut done: Vec<&Job> = jobs.iter().filter(|j| finished(j) == Some(kind)).collect();
        done.sort_by_key(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .or(j.metadata.creation_timestamp.as_ref())
                .map(|t| t.0)
        });
        let excess = done
            .len()
            .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
        for j in done.into_iter().take(excess) {
            let name = j.metadata.name.clone().unwrap_or_default();
            sync.events.push(Event::normal(
                "SuccessfulDelete",
                format!("Deleted job {name}"),
            ));
            sync.delete.push(name);
        }
    };
    history("Complete", spec.successful_jobs_history_limit.unwrap_or(3));
    history("Failed", spec.failed_jobs_history_limit.unwrap_or(1));

    let set_active = |sync: &mut CronJobSync, active: &[&Job]| {
        sync.status.active = if active.is_empty() {
            None
        } else {
            Some(active.iter().map(|j| reference(j)).collect())
        };
    };
    set_active(&mut sync, &active);

    if cj.metadata.deletion_timestamp.is_some() {
        return sync;
    }
    let tz = match spec.time_zone.as_deref() {
        None => TimeZone::UTC,
        Some(name) => match TimeZone::get(name) {
            Ok(tz) => tz,
            Err(e) => {
                sync.events.push(Event::warning(
                    "UnknownTimeZone",
                    format!(
                        "invalid timeZone: {}: {e}",
                        oxkube_api::validation::go_quote(name)
                    ),
                ));
                return sync;
            }
        },
    };
    let schedule = match Schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            sync.events.push(Event::warning(
                "UnparseableSchedule",
                format!(
                    "unparseable schedule: {} : {e}",
                    oxkube_api::validation::go_quote(&spec.schedule)
                ),
            ));
            return sync;
        }
    };
    if spec.suspend == Some(true) {
        return sync;
    }

    // The most recent activation not yet started.
    let mut earliest = old
        .last_schedule_time
        .as_ref()
        .or(cj.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0);
    if let Some(sds) = spec.starting_deadline_seconds
        && let Ok(floor) = now.checked_sub(jiff::SignedDuration::from_secs(sds))
    {
        earliest = earliest.max(floor);
    }
    let mut scheduled = None;
    let mut missed = 0usize;
    let mut t = earliest;
    while let Some(next) = schedule.next_after(t, &tz).filter(|n| *n <= now) {
        scheduled = Some(next);
        missed += 1;
        t = next;
        if missed > 10 * MISSED_LIMIT {
            break;
        }
    }
    let next_run = schedule.next_after(now, &tz);
    sync.requeue_after = requeue(next_run, now);
    let Some(scheduled) = scheduled else {
        return sync;
    };
    if missed > MISSED_LIMIT {
        sync.events.push(Event::warning(
            "TooManyMissedTimes",
            format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
        ));
    }
    if let Some(sds) = spec.starting_deadline_seconds
        && scheduled.as_second() + sds < now.as_second()
    {
        sync.events.push(Event::warning(
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000")
            ),
        ));
        return sync;
    }
    let cj_name = cj.metadata.name.clone().unwrap_or_default();
    let name = job_name(&cj_name, scheduled);
    if by_name.contains_key(name.as_str()) {
        return sync;
    }
    match spec.concurrency_policy.as_deref().unwrap_or("Allow") {
        "Forbid" if !active.is_empty() => {
            sync.events.push(Event::normal(
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".to_string(),
            ));
            return sync;
        }
        "Replace" => {
            for j in active.drain(..) {
                let n = j.metadata.name.clone().unwrap_or_default();
                sync.events.push(Event::normal(
                    "SuccessfulDelete",
                    format!("Deleted job {n}"),
                ));
                sync.delete.push(n);
            }
            set_active(&mut sync, &active);
        }
        _ => {}
    }
    sync.events.push(Event::normal(
        "SuccessfulCreate",
        format!("Created job {name}"),
    ));
    sync.create = Some(new_job(cj, scheduled, &tz));
    sync.status.last_schedule_time = Some(Time(scheduled));
    sync
}

/// The CronJob controller: the core behind informers of CronJobs and Jobs.
#[derive(Debug)]
pub struct CronJobController {
    ctx: crate::manager::Context,
    cronjobs: crate::informer::Informer<CronJob>,
    jobs: crate::informer::Informer<Job>,
    queue: crate::queue::WorkQueue<crate::informer::ObjectKey>,
    recorder: crate::events::Recorder,
}

impl CronJobController {
    /// Registers on the shared CronJob and Job informers.
    pub fn new(ctx: &crate::manager::Context) -> Self {
        let queue = crate::queue::WorkQueue::new();
        let cronjobs = ctx.informers.typed::<CronJob>();
        let jobs = ctx.informers.typed::<Job>();
        let q = queue.clone();
        cronjobs
            .on_change(move |c| q.add(crate::informer::ObjectKey::of(crate::shell::changed(c))));
        let q = queue.clone();
        jobs.on_change(move |c| crate::shell::enqueue_controller(c, "CronJob", &q));
        CronJobController {
            ctx: ctx.clone(),
            cronjobs,
            jobs,
            queue,
            recorder: ctx.recorder.for_component("cronjob-controller"),
        }
    }
}

impl crate::manager::Controller for CronJobController {
    type Key = crate::informer::ObjectKey;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "cronjob"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        let Some(cj) = self.cronjobs.get(&key.namespace, &key.name) else {
            return Ok(());
        };
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let jobs: Vec<Job> = self
            .jobs
            .by_owner(&uid)
            .into_iter()
            .filter(|j| workload::is_controlled_by(&j.metadata, &uid))
            .map(|j| (*j).clone())
            .collect();
        let sync = reconcile(&cj, &jobs, self.ctx.clock.now());
        let job_api: kube::Api<Job> =
            kube::Api::namespaced(self.ctx.client.clone(), &key.namespace);
        for name in &sync.delete {
            crate::shell::delete(
                &job_api,
                "Job",
                name,
                Some(kube::api::PropagationPolicy::Background),
            )
            .await?;
        }
        if let Some(job) = &sync.create {
            crate::shell::create(&job_api, "Job", job).await?;
        }
        crate::shell::publish(&self.recorder, &*cj, sync.events);
        if cj.status.as_ref() != Some(&sync.status) {
            let mut status = serde_json::to_value(&sync.status).unwrap_or_default();
            if let Some(obj) = status.as_object_mut() {
                obj.entry("active").or_insert(serde_json::Value::Null);
            }
            let api: kube::Api<CronJob> =
                kube::Api::namespaced(self.ctx.client.clone(), &key.namespace);
            crate::shell::patch_status(&api, "CronJob", &key.name, status).await?;
        }
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
    use crate::workload::testing::ts;
    use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobStatus};

    fn cronjob(schedule: &str, policy: &str) -> CronJob {
        CronJob {
            metadata: ObjectMeta {
                name: Some("hello".into()),
                namespace: Some("default".into()),
                uid: Some("cj-uid".into()),
                creation_timestamp: Some(Time(ts("2026-01-01T00:00:30Z"))),
                ..Default::default()
            },
            spec: CronJobSpec {
                schedule: schedule.into(),
                concurrency_policy: Some(policy.into()),
                ..Default::default()
            },
            status: None,
        }
    }

    fn job(name: &str, done: Option<&str>) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(name.into()),
                creation_timestamp: Some(Time(ts("2026-01-01T00:00:00Z"))),
                ..Default::default()
            },
            spec: None,
            status: done.map(|t| JobStatus {
                conditions: Some(vec![JobCondition {
                    type_: t.into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                completion_time: (t == "Complete").then(|| Time(ts("2026-01-01T00:01:10Z"))),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn fires_once_per_activation_with_upstream_names_and_annotation() {
        let cj = cronjob("*/1 * * * *", "Allow");
        // Before the first activation: wait for it.
        let s = reconcile(&cj, &[], ts("2026-01-01T00:00:40Z"));
        assert!(s.create.is_none());
        assert_eq!(s.requeue_after, Some(Duration::from_millis(20_100)));
        // After it: create hello-<minutes>.
        let s = reconcile(&cj, &[], ts("2026-01-01T00:01:02Z"));
        let created = s.create.unwrap();
        let minutes = ts("2026-01-01T00:01:00Z").as_second() / 60;
        assert_eq!(created.metadata.name, Some(format!("hello-{minutes}")));
        assert_eq!(
            created.metadata.annotations.unwrap()[SCHEDULED_TIMESTAMP],
            "2026-01-01T00:01:00+00:00"
        );
        assert_eq!(
            s.status.last_schedule_time,
            Some(Time(ts("2026-01-01T00:01:00Z")))
        );
        assert_eq!(s.events[0].reason, "SuccessfulCreate");
        // Once recorded, the same activation does not fire again.
        let mut cj = cj;
        cj.status = Some(s.status);
        let s = reconcile(
            &cj,
            &[job(&format!("hello-{minutes}"), None)],
            ts("2026-01-01T00:01:30Z"),
        );
        assert!(s.create.is_none());
        assert_eq!(s.status.active.unwrap().len(), 1);
    }

    #[test]
    fn forbid_skips_while_active_and_replace_deletes() {
        let now = ts("2026-01-01T00:02:01Z");
        let mut cj = cronjob("*/1 * * * *", "Forbid");
        cj.status = Some(CronJobStatus {
            last_schedule_time: Some(Time(ts("2026-01-01T00:01:00Z"))),
            ..Default::default()
        });
        let running = job("hello-old", None);
        let s = reconcile(&cj, std::slice::from_ref(&running), now);
        assert!(s.create.is_none());
        assert_eq!(s.events.last().unwrap().reason, "JobAlreadyActive");
        cj.spec.concurrency_policy = Some("Replace".into());
        let s = reconcile(&cj, &[running], now);
        assert_eq!(s.delete, vec!["hello-old".to_string()]);
        assert!(s.create.is_some());
    }

    #[test]
    fn history_limits_and_last_successful_time() {
        let mut cj = cronjob("@hourly", "Allow");
        cj.spec.successful_jobs_history_limit = Some(1);
        let jobs = [
            job("a", Some("Complete")),
            job("b", Some("Complete")),
            job("c", Some("Failed")),
            job("d", Some("Failed")),
        ];
        let s = reconcile(&cj, &jobs, ts("2026-01-01T00:30:00Z"));
        assert_eq!(
            s.delete.len(),
            2,
            "one success and one failure over the limits"
        );
        assert_eq!(
            s.status.last_successful_time,
            Some(Time(ts("2026-01-01T00:01:10Z")))
        );
    }

    #[test]
    fn missed_deadline_and_suspend_do_not_start_jobs() {
        let mut cj = cronjob("0 * * * *", "Allow");
        cj.spec.starting_deadline_seconds = Some(10);
        let s = reconcile(&cj, &[], ts("2026-01-01T01:00:30Z"));
        assert!(s.create.is_none());
        let mut cj = cronjob("0 * * * *", "Allow");
        cj.spec.suspend = Some(true);
        assert!(
            reconcile(&cj, &[], ts("2026-01-01T01:00:30Z"))
                .create
                .is_none()
        );
        let cj = cronjob("not a schedule", "Allow");
        let s = reconcile(&cj, &[], ts("2026-01-01T01:00:30Z"));
        assert_eq!(s.events[0].reason, "UnparseableSchedule");
    }
}
