//! The TTL-after-finished controller's pure core (upstream `pkg/controller/ttlafterfinished`):
//! a finished Job with `ttlSecondsAfterFinished` is deleted (foreground) that long after it
//! finished.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::batch::v1::Job;

/// What to do with a Job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// Nothing: no TTL, not finished, or already being deleted.
    Keep,
    /// Look again after this long.
    Wait(Duration),
    /// Delete it (foreground, preconditioned on its uid).
    Delete,
}

/// When the Job finished: its Complete or Failed condition's transition time.
pub fn finish_time(job: &Job) -> Option<Timestamp> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Decides for `job` at `now`.
pub fn reconcile(job: &Job, now: Timestamp) -> Ttl {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ttl::Keep;
    };
    if job.metadata.deletion_timestamp.is_some() {
        return Ttl::Keep;
    }
    let Some(finished) = finish_time(job) else {
        return Ttl::Keep;
    };
    let expire = finished.as_millisecond() + i64::from(ttl.max(0)) * 1000;
    let left = expire - now.as_millisecond();
    if left <= 0 {
        Ttl::Delete
    } else {
        Ttl::Wait(Duration::from_millis(u64::try_from(left).unwrap_or(0)))
    }
}

/// The TTL-after-finished controller over the Job informer.
#[derive(Debug)]
pub struct TtlAfterFinishedController {
    ctx: crate::manager::Context,
    jobs: crate::informer::Informer<Job>,
    queue: crate::queue::WorkQueue<crate::informer::ObjectKey>,
}

impl TtlAfterFinishedController {
    /// Registers on the shared Job informer.
    pub fn new(ctx: &crate::manager::Context) -> Self {
        let queue = crate::queue::WorkQueue::new();
        let jobs = ctx.informers.typed::<Job>();
        let q = queue.clone();
        jobs.on_change(move |c| {
            if !matches!(c, crate::informer::Change::Deleted(_)) {
                q.add(crate::informer::ObjectKey::of(crate::shell::changed(c)));
            }
        });
        TtlAfterFinishedController {
            ctx: ctx.clone(),
            jobs,
            queue,
        }
    }
}

impl crate::manager::Controller for TtlAfterFinishedController {
    type Key = crate::informer::ObjectKey;
    type Error = crate::shell::ShellError;

    fn name(&self) -> &'static str {
        "ttl-after-finished"
    }

    fn queue(&self) -> &crate::queue::WorkQueue<Self::Key> {
        &self.queue
    }

    async fn sync(&self, key: &Self::Key) -> Result<(), Self::Error> {
        let Some(job) = self.jobs.get(&key.namespace, &key.name) else {
            return Ok(());
        };
        match reconcile(&job, self.ctx.clock.now()) {
            Ttl::Keep => Ok(()),
            Ttl::Wait(after) => {
                self.queue.add_after(key.clone(), after);
                Ok(())
            }
            Ttl::Delete => {
                let api: kube::Api<Job> =
                    kube::Api::namespaced(self.ctx.client.clone(), &key.namespace);
                let params = kube::api::DeleteParams {
                    propagation_policy: Some(kube::api::PropagationPolicy::Foreground),
                    preconditions: Some(kube::api::Preconditions {
                        uid: job.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match api.delete(&key.name, &params).await {
                    Ok(_) => Ok(()),
                    Err(e) if crate::shell::not_found(&e) || crate::shell::conflict(&e) => Ok(()),
                    Err(source) => Err(crate::shell::ShellError::Delete {
                        kind: "Job",
                        name: key.name.clone(),
                        source,
                    }),
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobCondition, JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn job(ttl: Option<i32>, finished: Option<&str>) -> Job {
        Job {
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(JobStatus {
                conditions: finished.map(|t| {
                    vec![JobCondition {
                        type_: "Complete".into(),
                        status: "True".into(),
                        last_transition_time: Some(Time(t.parse().unwrap())),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn finished_jobs_go_after_their_ttl() {
        let now: Timestamp = "2026-01-01T00:00:10Z".parse().unwrap();
        assert_eq!(
            reconcile(&job(Some(5), Some("2026-01-01T00:00:00Z")), now),
            Ttl::Delete
        );
        assert_eq!(
            reconcile(&job(Some(30), Some("2026-01-01T00:00:00Z")), now),
            Ttl::Wait(Duration::from_secs(20))
        );
        assert_eq!(reconcile(&job(Some(0), None), now), Ttl::Keep);
        assert_eq!(
            reconcile(&job(None, Some("2026-01-01T00:00:00Z")), now),
            Ttl::Keep
        );
    }
}
