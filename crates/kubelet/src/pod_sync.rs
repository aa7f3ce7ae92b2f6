//! The pure core of a pod worker: from the pod as the API has it, what the runtime reports and the
//! time, decide the next runtime actions (sandbox, containers in order, restarts per restartPolicy with
//! upstream's CrashLoopBackOff, stopping on deletion or completion) and compute the pod status exactly
//! as upstream's kubelet shows it. No I/O and no clock: time is an argument.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{
    self as core, Container, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::runtime::{ContainerState, ContainerStatus, SandboxStatus};

/// The first restart delay after a repeated crash (upstream's 10 s).
const BACKOFF_INITIAL: SignedDuration = SignedDuration::from_secs(10);
/// The longest restart delay (upstream's 5 min).
const BACKOFF_MAX: SignedDuration = SignedDuration::from_secs(300);

/// What the runtime holds for one pod: its newest sandbox and that sandbox's containers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub sandbox: Option<SandboxStatus>,
    pub containers: Vec<ContainerStatus>,
}

/// The node facts a pod status carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    pub host_ip: String,
    /// The scheme of container IDs, e.g. `containerd` (`containerd://<id>`).
    pub runtime_scheme: String,
}

/// Restart back-off of one container (upstream's flowcontrol.Backoff entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub delay: SignedDuration,
    pub updated: Timestamp,
}

/// Back-off per container name of one pod.
pub type Backoffs = BTreeMap<String, Backoff>;

/// One runtime step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make the pod's sandbox (network, IP).
    RunSandbox,
    /// Create and start the container of this name, as its `attempt`th run.
    StartContainer { name: String, attempt: u32 },
    /// Remove a dead container that no status refers to any more.
    RemoveContainer { id: String },
    /// Stop every container and the sandbox.
    KillPod,
    /// Everything is stopped and the pod is being deleted: delete it with grace 0.
    FinishDeletion,
}

/// What to do now and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// A restart waits for its back-off until then.
    pub wake_at: Option<Timestamp>,
    pub backoffs: Backoffs,
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn containers(pod: &Pod) -> &[Container] {
    pod.spec.as_ref().map_or(&[], |s| s.containers.as_slice())
}

fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The newest run of a container and the one before it.
fn runs<'a>(
    observed: &'a Observed,
    name: &str,
) -> (Option<&'a ContainerStatus>, Option<&'a ContainerStatus>) {
    let mut mine: Vec<&ContainerStatus> = observed
        .containers
        .iter()
        .filter(|c| c.name == name)
        .collect();
    mine.sort_by_key(|c| c.attempt);
    let latest = mine.pop();
    (latest, mine.pop())
}

/// Whether the pod is done for good: it already was, or every container ended and none restarts.
fn is_terminal(pod: &Pod, observed: &Observed) -> bool {
    let old = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if matches!(old, Some("Succeeded" | "Failed")) {
        return true;
    }
    let policy = restart_policy(pod);
    let specs = containers(pod);
    !specs.is_empty()
        && specs.iter().all(|c| match runs(observed, &c.name).0 {
            Some(ContainerStatus {
                state: ContainerState::Exited { exit_code, .. },
                ..
            }) => !should_restart(policy, *exit_code),
            _ => false,
        })
}

/// Upstream's back-off rule: a restart right after the first crash, then 10 s doubling to 5 min;
/// an entry not touched for 10 min starts over. Returns when the restart may happen.
fn backoff_until(
    entry: Option<&Backoff>,
    finished_at: Timestamp,
    now: Timestamp,
) -> Option<Timestamp> {
    let entry = entry?;
    let expired = now.duration_since(entry.updated) > BACKOFF_MAX * 2;
    let until = finished_at.saturating_add(entry.delay).ok()?;
    (!expired && now < until).then_some(until)
}

fn next_backoff(entry: Option<&Backoff>, now: Timestamp) -> Backoff {
    let delay = match entry {
        Some(e) if now.duration_since(e.updated) <= BACKOFF_MAX * 2 => {
            (e.delay * 2).min(BACKOFF_MAX)
        }
        _ => BACKOFF_INITIAL,
    };
    Backoff {
        delay,
        updated: now,
    }
}

/// The next runtime steps for the pod.
pub fn decide(pod: &Pod, observed: &Observed, backoffs: &Backoffs, now: Timestamp) -> Plan {
    let mut plan = Plan {
        actions: Vec::new(),
        wake_at: None,
        backoffs: backoffs.clone(),
    };
    let anything_running = observed.sandbox.as_ref().is_some_and(|s| s.ready)
        || observed
            .containers
            .iter()
            .any(|c| !matches!(c.state, ContainerState::Exited { .. }));
    if pod.metadata.deletion_timestamp.is_some() {
        plan.actions.push(if anything_running {
            Action::KillPod
        } else {
            Action::FinishDeletion
        });
        return plan;
    }
    if is_terminal(pod, observed) {
        if anything_running {
            plan.actions.push(Action::KillPod);
        }
        return plan;
    }
    let Some(sandbox) = &observed.sandbox else {
        plan.actions.push(Action::RunSandbox);
        return plan;
    };
    if !sandbox.ready {
        return plan;
    }
    let policy = restart_policy(pod);
    for spec in containers(pod) {
        let (latest, previous) = runs(observed, &spec.name);
        let Some(latest) = latest else {
            plan.actions.push(Action::StartContainer {
                name: spec.name.clone(),
                attempt: 0,
            });
            continue;
        };
        let ContainerState::Exited {
            finished_at,
            exit_code,
            ..
        } = latest.state
        else {
            continue;
        };
        if !should_restart(policy, exit_code) {
            continue;
        }
        let entry = plan.backoffs.get(&spec.name);
        if let Some(until) = backoff_until(entry, finished_at, now) {
            plan.wake_at = Some(plan.wake_at.map_or(until, |w| w.min(until)));
            continue;
        }
        let next = next_backoff(entry, now);
        plan.backoffs.insert(spec.name.clone(), next);
        if let Some(previous) = previous {
            plan.actions.push(Action::RemoveContainer {
                id: previous.id.clone(),
            });
        }
        plan.actions.push(Action::StartContainer {
            name: spec.name.clone(),
            attempt: latest.attempt + 1,
        });
    }
    plan
}

/// A timestamp as the API stores it (whole seconds).
fn time(ts: Timestamp) -> Time {
    Time(Timestamp::from_second(ts.as_second()).unwrap_or(ts))
}

fn terminated(c: &ContainerStatus, scheme: &str) -> Option<core::ContainerState> {
    let ContainerState::Exited {
        started_at,
        finished_at,
        exit_code,
    } = c.state
    else {
        return None;
    };
    Some(core::ContainerState {
        terminated: Some(ContainerStateTerminated {
            container_id: Some(format!("{scheme}://{}", c.id)),
            exit_code,
            finished_at: Some(time(finished_at)),
            reason: Some(if exit_code == 0 { "Completed" } else { "Error" }.into()),
            started_at: Some(time(started_at)),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn waiting(reason: &str, message: Option<String>) -> core::ContainerState {
    core::ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..Default::default()
    }
}

fn container_status(
    pod: &Pod,
    spec: &Container,
    observed: &Observed,
    backoffs: &Backoffs,
    node: &HostFacts,
    now: Timestamp,
) -> core::ContainerStatus {
    let image = spec.image.clone().unwrap_or_default();
    let (latest, previous) = runs(observed, &spec.name);
    let Some(latest) = latest else {
        return core::ContainerStatus {
            name: spec.name.clone(),
            image,
            image_id: String::new(),
            ready: false,
            restart_count: 0,
            started: Some(false),
            state: Some(waiting("ContainerCreating", None)),
            last_state: Some(core::ContainerState::default()),
            ..Default::default()
        };
    };
    let scheme = node.runtime_scheme.as_str();
    let last_of = |c: Option<&ContainerStatus>| {
        Some(c.and_then(|c| terminated(c, scheme)).unwrap_or_default())
    };
    let (state, last_state, running) = match latest.state {
        ContainerState::Created => (waiting("ContainerCreating", None), last_of(previous), false),
        ContainerState::Running { started_at } => (
            core::ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(time(started_at)),
                }),
                ..Default::default()
            },
            last_of(previous),
            true,
        ),
        ContainerState::Exited {
            finished_at,
            exit_code,
            ..
        } => {
            let restarting = pod.metadata.deletion_timestamp.is_none()
                && !is_terminal(pod, observed)
                && should_restart(restart_policy(pod), exit_code);
            let backoff = backoffs.get(&spec.name);
            match backoff.filter(|_| restarting) {
                Some(b) if backoff_until(Some(b), finished_at, now).is_some() => {
                    let meta = &pod.metadata;
                    let message = format!(
                        "back-off {} restarting failed container={} pod={}_{}({})",
                        go_duration(b.delay),
                        spec.name,
                        meta.name.as_deref().unwrap_or_default(),
                        meta.namespace.as_deref().unwrap_or_default(),
                        meta.uid.as_deref().unwrap_or_default(),
                    );
                    (
                        waiting("CrashLoopBackOff", Some(message)),
                        last_of(Some(latest)),
                        false,
                    )
                }
                _ => (
                    terminated(latest, scheme).unwrap_or_default(),
                    last_of(previous),
                    false,
                ),
            }
        }
    };
    core::ContainerStatus {
        name: spec.name.clone(),
        image,
        image_id: latest.image_ref.clone(),
        container_id: Some(format!("{scheme}://{}", latest.id)),
        ready: running,
        restart_count: i32::try_from(latest.attempt).unwrap_or(i32::MAX),
        started: Some(running),
        state: Some(state),
        last_state,
        ..Default::default()
    }
}

/// Go's time.Duration formatting for whole seconds and minutes (`10s`, `1m20s`, `5m0s`).
fn go_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

/// Upstream's getPhase for a pod without init containers.
fn phase(pod: &Pod, statuses: &[core::ContainerStatus], terminal: bool) -> &'static str {
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in statuses {
        let state = s.state.as_ref();
        if state.is_some_and(|s| s.running.is_some()) {
            running += 1;
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    if statuses.is_empty() || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if terminal {
        return if stopped == succeeded {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    match restart_policy(pod) {
        "Always" => "Running",
        _ if stopped == succeeded => "Succeeded",
        "Never" => "Failed",
        _ => "Running",
    }
}

fn condition(
    old: &[PodCondition],
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    generation: Option<i64>,
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| time(now));
    PodCondition {
        type_: type_.into(),
        status: status.into(),
        reason: reason.map(String::from),
        message,
        last_transition_time: Some(since),
        observed_generation: generation,
        last_probe_time: None,
    }
}

/// The pod's status as upstream's kubelet reports it for this observation.
pub fn pod_status(
    pod: &Pod,
    observed: &Observed,
    backoffs: &Backoffs,
    node: &HostFacts,
    now: Timestamp,
) -> PodStatus {
    let old = pod.status.clone().unwrap_or_default();
    let old_conditions = old.conditions.as_deref().unwrap_or_default();
    let generation = pod.metadata.generation;
    let terminal = is_terminal(pod, observed);
    let statuses: Vec<core::ContainerStatus> = containers(pod)
        .iter()
        .map(|spec| container_status(pod, spec, observed, backoffs, node, now))
        .collect();
    let phase = match old.phase.as_deref() {
        Some(p @ ("Succeeded" | "Failed")) => p.to_string(),
        _ => phase(pod, &statuses, terminal).to_string(),
    };
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let (ready, reason, message) = if phase == "Succeeded" {
        (false, Some("PodCompleted"), None)
    } else if unready.is_empty() {
        (true, None, None)
    } else {
        (
            false,
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let sandbox_ready = observed
        .sandbox
        .as_ref()
        .is_some_and(|s| s.ready && s.ip.is_some());
    // A stopped sandbox still names the address the pod had, as upstream keeps it.
    let pod_ip = observed
        .sandbox
        .as_ref()
        .and_then(|s| s.ip.clone())
        .or(old.pod_ip.clone());
    let cond = |t: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        condition(old_conditions, t, ok, reason, message, generation, now)
    };
    PodStatus {
        phase: Some(phase),
        conditions: Some(vec![
            cond("PodReadyToStartContainers", sandbox_ready, None, None),
            cond("Initialized", true, None, None),
            cond("Ready", ready, reason, message.clone()),
            cond("ContainersReady", ready, reason, message),
            cond("PodScheduled", true, None, None),
        ]),
        host_ip: Some(node.host_ip.clone()),
        host_ips: Some(vec![HostIP {
            ip: node.host_ip.clone(),
        }]),
        pod_ips: pod_ip.clone().map(|ip| vec![PodIP { ip }]),
        pod_ip,
        start_time: Some(old.start_time.clone().unwrap_or_else(|| time(now))),
        container_statuses: Some(statuses),
        qos_class: old.qos_class.clone(),
        observed_generation: generation,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).expect("time")
    }

    fn pod(policy: &str, command: &[&str]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                generation: Some(1),
                ..Default::default()
            },
            spec: Some(PodSpec {
                restart_policy: Some(policy.into()),
                node_name: Some("n".into()),
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("busybox".into()),
                    command: Some(command.iter().map(|s| s.to_string()).collect()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                qos_class: Some("BestEffort".into()),
                ..Default::default()
            }),
        }
    }

    fn host() -> HostFacts {
        HostFacts {
            host_ip: "10.64.0.1".into(),
            runtime_scheme: "fake".into(),
        }
    }

    fn sandbox(ready: bool) -> SandboxStatus {
        SandboxStatus {
            id: "s1".into(),
            pod_uid: "u1".into(),
            ready,
            ip: Some("10.128.0.2".into()),
            created_at: at(0),
        }
    }

    fn container(attempt: u32, state: ContainerState) -> ContainerStatus {
        ContainerStatus {
            id: format!("c{attempt}"),
            sandbox_id: "s1".into(),
            name: "c".into(),
            attempt,
            image: "busybox".into(),
            image_ref: "fake://busybox".into(),
            state,
        }
    }

    fn exited(attempt: u32, code: i32, finished: i64) -> ContainerStatus {
        container(
            attempt,
            ContainerState::Exited {
                started_at: at(finished),
                finished_at: at(finished),
                exit_code: code,
            },
        )
    }

    fn observed(containers: Vec<ContainerStatus>) -> Observed {
        Observed {
            sandbox: Some(sandbox(true)),
            containers,
        }
    }

    fn condition_of(status: &PodStatus, type_: &str) -> PodCondition {
        status
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == type_))
            .cloned()
            .expect("condition")
    }

    #[test]
    fn a_new_pod_gets_a_sandbox_then_its_containers() {
        let p = pod("Always", &["sleep", "1d"]);
        let plan = decide(&p, &Observed::default(), &Backoffs::new(), at(0));
        assert_eq!(plan.actions, vec![Action::RunSandbox]);
        let plan = decide(&p, &observed(vec![]), &Backoffs::new(), at(0));
        assert_eq!(
            plan.actions,
            vec![Action::StartContainer {
                name: "c".into(),
                attempt: 0
            }]
        );
        let status = pod_status(&p, &observed(vec![]), &Backoffs::new(), &host(), at(0));
        assert_eq!(status.phase.as_deref(), Some("Pending"));
        let c = &status.container_statuses.as_ref().expect("statuses")[0];
        let reason = c
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        assert_eq!(reason, Some("ContainerCreating"));
        assert_eq!(
            condition_of(&status, "PodReadyToStartContainers").status,
            "True"
        );
        assert_eq!(
            condition_of(&status, "Ready").reason.as_deref(),
            Some("ContainersNotReady")
        );
    }

    #[test]
    fn a_running_pod_reports_as_upstream() {
        let p = pod("Always", &["sleep", "1d"]);
        let obs = observed(vec![container(
            0,
            ContainerState::Running { started_at: at(1) },
        )]);
        assert!(decide(&p, &obs, &Backoffs::new(), at(2)).actions.is_empty());
        let status = pod_status(&p, &obs, &Backoffs::new(), &host(), at(2));
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.128.0.2"));
        assert_eq!(status.host_ip.as_deref(), Some("10.64.0.1"));
        assert_eq!(status.qos_class.as_deref(), Some("BestEffort"));
        assert_eq!(status.start_time, Some(Time(at(2))));
        let types: Vec<_> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.as_str(), c.status.as_str()))
            .collect();
        assert_eq!(
            types,
            [
                ("PodReadyToStartContainers", "True"),
                ("Initialized", "True"),
                ("Ready", "True"),
                ("ContainersReady", "True"),
                ("PodScheduled", "True")
            ]
        );
        let c = &status.container_statuses.as_ref().expect("statuses")[0];
        assert!(c.ready);
        assert_eq!(c.started, Some(true));
        assert_eq!(c.container_id.as_deref(), Some("fake://c0"));
        assert_eq!(c.image_id, "fake://busybox");
        let running = c
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .expect("running");
        assert_eq!(running.started_at, Some(Time(at(1))));
    }

    #[test]
    fn never_ends_failed_with_the_exit_code_and_stops_the_sandbox() {
        let p = pod("Never", &["sh", "-c", "exit 3"]);
        let obs = observed(vec![exited(0, 3, 1)]);
        let plan = decide(&p, &obs, &Backoffs::new(), at(2));
        assert_eq!(plan.actions, vec![Action::KillPod]);
        let status = pod_status(&p, &obs, &Backoffs::new(), &host(), at(2));
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        let c = &status.container_statuses.as_ref().expect("statuses")[0];
        let t = c
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("terminated");
        assert_eq!(t.exit_code, 3);
        assert_eq!(t.reason.as_deref(), Some("Error"));
        // Once stopped, the sandbox's IP stays in the status and nothing more happens.
        let stopped = Observed {
            sandbox: Some(sandbox(false)),
            containers: vec![exited(0, 3, 1)],
        };
        let mut p = p;
        p.status = Some(status);
        assert!(
            decide(&p, &stopped, &Backoffs::new(), at(3))
                .actions
                .is_empty()
        );
        let later = pod_status(&p, &stopped, &Backoffs::new(), &host(), at(3));
        assert_eq!(later.phase.as_deref(), Some("Failed"));
        assert_eq!(later.pod_ip.as_deref(), Some("10.128.0.2"));
        assert_eq!(
            condition_of(&later, "PodReadyToStartContainers").status,
            "False"
        );
    }

    #[test]
    fn exit_0_under_on_failure_succeeds() {
        let p = pod("OnFailure", &["sh", "-c", "exit 0"]);
        let obs = observed(vec![exited(0, 0, 1)]);
        let status = pod_status(&p, &obs, &Backoffs::new(), &host(), at(2));
        assert_eq!(status.phase.as_deref(), Some("Succeeded"));
        assert_eq!(
            condition_of(&status, "Ready").reason.as_deref(),
            Some("PodCompleted")
        );
        let t = status.container_statuses.as_ref().expect("statuses")[0]
            .state
            .clone()
            .and_then(|s| s.terminated)
            .expect("terminated");
        assert_eq!(t.reason.as_deref(), Some("Completed"));
    }

    #[test]
    fn crashes_restart_at_once_then_back_off_doubling_to_five_minutes() {
        let p = pod("OnFailure", &["sh", "-c", "exit 1"]);
        // First crash: restart at once.
        let plan = decide(
            &p,
            &observed(vec![exited(0, 1, 0)]),
            &Backoffs::new(),
            at(0),
        );
        assert_eq!(
            plan.actions,
            vec![Action::StartContainer {
                name: "c".into(),
                attempt: 1
            }]
        );
        let mut backoffs = plan.backoffs;
        assert_eq!(backoffs["c"].delay, SignedDuration::from_secs(10));
        // Second crash at t=1: wait 10 s, shown as CrashLoopBackOff.
        let obs = observed(vec![exited(0, 1, 0), exited(1, 1, 1)]);
        let plan = decide(&p, &obs, &backoffs, at(2));
        assert!(plan.actions.is_empty());
        assert_eq!(plan.wake_at, Some(at(11)));
        let status = pod_status(&p, &obs, &backoffs, &host(), at(2));
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let c = &status.container_statuses.as_ref().expect("statuses")[0];
        assert_eq!(c.restart_count, 1);
        let w = c
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .expect("waiting");
        assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(
            w.message.as_deref(),
            Some("back-off 10s restarting failed container=c pod=p_default(u1)")
        );
        let last = c
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("last");
        assert_eq!(last.exit_code, 1);
        // After the delay: restart, drop the run before the last, double the delay.
        let plan = decide(&p, &obs, &backoffs, at(11));
        assert_eq!(
            plan.actions,
            vec![
                Action::RemoveContainer { id: "c0".into() },
                Action::StartContainer {
                    name: "c".into(),
                    attempt: 2
                }
            ]
        );
        backoffs = plan.backoffs;
        assert_eq!(backoffs["c"].delay, SignedDuration::from_secs(20));
        for _ in 0..10 {
            backoffs = decide(&p, &obs, &backoffs, at(301)).backoffs;
            let entry = backoffs["c"];
            backoffs.insert(
                "c".into(),
                Backoff {
                    updated: at(0),
                    ..entry
                },
            );
        }
        let b = backoffs["c"];
        assert_eq!(b.delay, SignedDuration::from_secs(300));
        assert_eq!(go_duration(b.delay), "5m0s");
        // Untouched for more than 10 min: the ladder starts over.
        let reset = decide(&p, &obs, &backoffs, at(10_000)).backoffs;
        assert_eq!(reset["c"].delay, SignedDuration::from_secs(10));
    }

    #[test]
    fn always_restarts_even_after_success() {
        let p = pod("Always", &["sh", "-c", "exit 0"]);
        let plan = decide(
            &p,
            &observed(vec![exited(0, 0, 0)]),
            &Backoffs::new(),
            at(1),
        );
        assert_eq!(plan.actions.len(), 1);
    }

    #[test]
    fn deletion_stops_everything_then_finishes() {
        let mut p = pod("Always", &["sleep", "1d"]);
        p.metadata.deletion_timestamp = Some(Time(at(5)));
        let obs = observed(vec![container(
            0,
            ContainerState::Running { started_at: at(1) },
        )]);
        assert_eq!(
            decide(&p, &obs, &Backoffs::new(), at(5)).actions,
            vec![Action::KillPod]
        );
        let stopped = Observed {
            sandbox: Some(sandbox(false)),
            containers: vec![exited(0, 137, 5)],
        };
        assert_eq!(
            decide(&p, &stopped, &Backoffs::new(), at(5)).actions,
            vec![Action::FinishDeletion]
        );
    }

    #[test]
    fn transition_times_stay_while_a_condition_holds() {
        let p = pod("Always", &["sleep", "1d"]);
        let obs = observed(vec![container(
            0,
            ContainerState::Running { started_at: at(1) },
        )]);
        let first = pod_status(&p, &obs, &Backoffs::new(), &host(), at(2));
        let mut p = p;
        p.status = Some(first.clone());
        let second = pod_status(&p, &obs, &Backoffs::new(), &host(), at(50));
        assert_eq!(first, second);
    }
}
