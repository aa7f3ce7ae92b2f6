//! The in-memory runtime of hollow nodes and tests: sandboxes get an address from the node's /24,
//! a started container runs after the configured start delay, and one whose command is
//! `sh -c "exit N"` then ends with code N; anything else runs until stopped. Every call is recorded.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use parking_lot::Mutex;

use crate::runtime::{
    ContainerConfig, ContainerState, ContainerStatus, Runtime, RuntimeError, SandboxConfig,
    SandboxStatus,
};

/// One runtime call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    RunSandbox { pod_uid: String },
    StopSandbox { id: String },
    RemoveSandbox { id: String },
    CreateContainer { sandbox_id: String, name: String },
    StartContainer { id: String },
    StopContainer { id: String },
    RemoveContainer { id: String },
}

#[derive(Debug)]
struct Container {
    status: ContainerStatus,
    exit_code: Option<i32>,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    next_host: u8,
    sandboxes: BTreeMap<String, SandboxStatus>,
    containers: BTreeMap<String, Container>,
    calls: Vec<Call>,
    record: bool,
}

/// A fake runtime for one node.
#[derive(Debug)]
pub struct FakeRuntime {
    start_delay: Duration,
    pod_prefix: [u8; 3],
    state: Mutex<State>,
}

/// The exit code a command asks for when it is exactly `sh -c "exit N"`.
pub fn scripted_exit(command: &[String], args: &[String]) -> Option<i32> {
    let line: Vec<&str> = command.iter().chain(args).map(String::as_str).collect();
    match line.as_slice() {
        ["sh" | "/bin/sh", "-c", script] => script
            .trim()
            .strip_prefix("exit")
            .and_then(|n| n.trim().parse::<i32>().ok()),
        _ => None,
    }
}

impl FakeRuntime {
    /// Pod addresses come from `<pod_prefix>.0/24`. Calls are not recorded (hollow nodes).
    pub fn new(start_delay: Duration, pod_prefix: [u8; 3]) -> Self {
        FakeRuntime {
            start_delay,
            pod_prefix,
            state: Mutex::new(State::default()),
        }
    }

    /// The same, recording every call for [`FakeRuntime::calls`].
    pub fn recording(start_delay: Duration, pod_prefix: [u8; 3]) -> Self {
        let fake = Self::new(start_delay, pod_prefix);
        fake.state.lock().record = true;
        fake
    }

    /// The calls made so far, in order (empty unless built with [`FakeRuntime::recording`]).
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().calls.clone()
    }

    fn record(state: &mut State, call: Call) {
        if state.record {
            state.calls.push(call);
        }
    }
}

fn next_id(state: &mut State, kind: &str) -> String {
    state.next_id += 1;
    format!("{kind}{:016x}", state.next_id)
}

fn stop(container: &mut Container, now: Timestamp, code: i32) {
    if let ContainerState::Running { started_at } = container.status.state {
        container.status.state = ContainerState::Exited {
            started_at,
            finished_at: now,
            exit_code: code,
        };
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn version(&self) -> String {
        "fake://0.1.0".into()
    }

    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String, RuntimeError> {
        let mut state = self.state.lock();
        Self::record(
            &mut state,
            Call::RunSandbox {
                pod_uid: config.pod_uid.clone(),
            },
        );
        let id = next_id(&mut state, "sandbox");
        state.next_host = state.next_host % 253 + 1;
        let [a, b, c] = self.pod_prefix;
        let ip = Ipv4Addr::new(a, b, c, state.next_host + 1);
        state.sandboxes.insert(
            id.clone(),
            SandboxStatus {
                id: id.clone(),
                pod_uid: config.pod_uid.clone(),
                ready: true,
                ip: Some(ip.to_string()),
                created_at: Timestamp::now(),
            },
        );
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, sandbox_id: &str) -> Result<(), RuntimeError> {
        let mut state = self.state.lock();
        Self::record(
            &mut state,
            Call::StopSandbox {
                id: sandbox_id.into(),
            },
        );
        let sandbox = state
            .sandboxes
            .get_mut(sandbox_id)
            .ok_or_else(|| RuntimeError::NoSandbox(sandbox_id.into()))?;
        sandbox.ready = false;
        let now = Timestamp::now();
        for c in state.containers.values_mut() {
            if c.status.sandbox_id == sandbox_id {
                stop(c, now, 137);
            }
        }
        Ok(())
    }

    async fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<(), RuntimeError> {
        let mut state = self.state.lock();
        Self::record(
            &mut state,
            Call::RemoveSandbox {
                id: sandbox_id.into(),
            },
        );
        state.sandboxes.remove(sandbox_id);
        state
            .containers
            .retain(|_, c| c.status.sandbox_id != sandbox_id);
        Ok(())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
    ) -> Result<String, RuntimeError> {
        let mut state = self.state.lock();
        Self::record(
            &mut state,
            Call::CreateContainer {
                sandbox_id: sandbox_id.into(),
                name: config.name.clone(),
            },
        );
        if !state.sandboxes.contains_key(sandbox_id) {
            return Err(RuntimeError::NoSandbox(sandbox_id.into()));
        }
        let id = next_id(&mut state, "container");
        let image_ref = format!("fake://{}", config.image);
        state.containers.insert(
            id.clone(),
            Container {
                status: ContainerStatus {
                    id: id.clone(),
                    sandbox_id: sandbox_id.into(),
                    name: config.name.clone(),
                    attempt: config.attempt,
                    image: config.image.clone(),
                    image_ref,
                    state: ContainerState::Created,
                },
                exit_code: scripted_exit(&config.command, &config.args),
            },
        );
        Ok(id)
    }

    async fn start_container(&self, container_id: &str) -> Result<(), RuntimeError> {
        {
            let mut state = self.state.lock();
            Self::record(
                &mut state,
                Call::StartContainer {
                    id: container_id.into(),
                },
            );
            match state.containers.get(container_id) {
                None => return Err(RuntimeError::NoContainer(container_id.into())),
                Some(c) if c.status.state != ContainerState::Created => {
                    return Err(RuntimeError::NotCreated(container_id.into()));
                }
                Some(_) => {}
            }
        }
        if !self.start_delay.is_zero() {
            tokio::time::sleep(self.start_delay).await;
        }
        let mut state = self.state.lock();
        let container = state
            .containers
            .get_mut(container_id)
            .ok_or_else(|| RuntimeError::NoContainer(container_id.into()))?;
        let now = Timestamp::now();
        container.status.state = ContainerState::Running { started_at: now };
        if let Some(code) = container.exit_code {
            stop(container, now, code);
        }
        Ok(())
    }

    async fn stop_container(
        &self,
        container_id: &str,
        _grace: Duration,
    ) -> Result<(), RuntimeError> {
        let mut state = self.state.lock();
        Self::record(
            &mut state,
            Call::StopContainer {
                id: container_id.into(),
            },
        );
        let container = state
            .containers
            .get_mut(container_id)
            .ok_or_else(|| RuntimeError::NoContainer(container_id.into()))?;
        stop(container, Timestamp::now(), 137);
        Ok(())
    }

    async fn remove_container(&self, container_id: &str) -> Result<(), RuntimeError> {
        let mut state = self.state.lock();
        Self::record(
            &mut state,
            Call::RemoveContainer {
                id: container_id.into(),
            },
        );
        state.containers.remove(container_id);
        Ok(())
    }

    async fn list_pod_sandboxes(&self, pod_uid: &str) -> Vec<SandboxStatus> {
        let state = self.state.lock();
        state
            .sandboxes
            .values()
            .filter(|s| s.pod_uid == pod_uid)
            .cloned()
            .collect()
    }

    async fn list_containers(&self, sandbox_id: &str) -> Vec<ContainerStatus> {
        let state = self.state.lock();
        state
            .containers
            .values()
            .filter(|c| c.status.sandbox_id == sandbox_id)
            .map(|c| c.status.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn only_sh_c_exit_n_is_scripted() {
        assert_eq!(
            scripted_exit(&["sh".into(), "-c".into(), "exit 3".into()], &[]),
            Some(3)
        );
        assert_eq!(
            scripted_exit(&["sh".into()], &["-c".into(), "exit 0".into()]),
            Some(0)
        );
        assert_eq!(scripted_exit(&words("sleep 3600"), &[]), None);
        assert_eq!(
            scripted_exit(&["sh".into(), "-c".into(), "echo; exit 1".into()], &[]),
            None
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_scripted_container_exits_after_the_delay_and_others_run_until_stopped() {
        let fake = FakeRuntime::recording(Duration::from_secs(2), [10, 1, 2]);
        let sandbox_config = SandboxConfig {
            pod_uid: "u".into(),
            pod_name: "p".into(),
            pod_namespace: "default".into(),
            attempt: 0,
            hostname: "p".into(),
            ports: vec![],
            dns: Default::default(),
        };
        let sandbox = fake
            .run_pod_sandbox(&sandbox_config)
            .await
            .expect("sandbox");
        let config = |name: &str, command: &str| ContainerConfig {
            name: name.into(),
            attempt: 0,
            image: "busybox".into(),
            command: vec!["sh".into(), "-c".into(), command.into()],
            args: vec![],
            env: vec![],
            working_dir: None,
        };
        let exits = fake
            .create_container(&sandbox, &config("a", "exit 3"))
            .await
            .expect("create");
        let runs = fake
            .create_container(&sandbox, &config("b", "sleep 1000"))
            .await
            .expect("create");
        let before = tokio::time::Instant::now();
        fake.start_container(&exits).await.expect("start");
        assert_eq!(before.elapsed(), Duration::from_secs(2));
        fake.start_container(&runs).await.expect("start");
        let states: Vec<_> = fake
            .list_containers(&sandbox)
            .await
            .into_iter()
            .map(|c| c.state)
            .collect();
        assert!(matches!(
            states[0],
            ContainerState::Exited { exit_code: 3, .. }
        ));
        assert!(matches!(states[1], ContainerState::Running { .. }));
        fake.stop_pod_sandbox(&sandbox).await.expect("stop");
        assert!(
            fake.list_containers(&sandbox)
                .await
                .iter()
                .all(|c| matches!(c.state, ContainerState::Exited { .. }))
        );
        let sandboxes = fake.list_pod_sandboxes("u").await;
        assert_eq!(sandboxes[0].ip.as_deref(), Some("10.1.2.2"));
        assert_eq!(
            fake.calls()[0],
            Call::RunSandbox {
                pod_uid: "u".into()
            }
        );
        assert!(fake.start_container(&runs).await.is_err());
    }
}
