//! The container-runtime seam: what a pod worker needs from a runtime, shaped after CRI v1's
//! RuntimeService (sandboxes and containers, their statuses and lists), so the real CRI client and the
//! in-memory fake of hollow nodes are interchangeable.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::dns::DnsConfig;

/// What a pod sandbox is made from (CRI `PodSandboxConfig`, the parts used so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    pub pod_uid: String,
    pub pod_name: String,
    pub pod_namespace: String,
    pub attempt: u32,
    /// The pod's host name (its name, as upstream's default).
    pub hostname: String,
    /// The pod's `hostPort`s.
    pub ports: Vec<PortMapping>,
    /// The pod's resolv.conf settings.
    pub dns: DnsConfig,
}

/// A host port forwarded to the pod (CRI `PortMapping`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub container_port: i32,
    pub host_port: i32,
    pub host_ip: String,
}

/// A sandbox as the runtime reports it (CRI `PodSandboxStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxStatus {
    pub id: String,
    pub pod_uid: String,
    pub ready: bool,
    pub ip: Option<String>,
    pub created_at: Timestamp,
}

/// What a container is made from (CRI `ContainerConfig`, the parts used so far).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    pub name: String,
    pub attempt: u32,
    pub image: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    /// Resolved environment, in the pod's order.
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
}

/// CRI `ContainerState` with the times that belong to each state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running {
        started_at: Timestamp,
    },
    Exited {
        started_at: Timestamp,
        finished_at: Timestamp,
        exit_code: i32,
    },
}

/// A container as the runtime reports it (CRI `ContainerStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerStatus {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub attempt: u32,
    pub image: String,
    pub image_ref: String,
    pub state: ContainerState,
}

/// A runtime call that failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("no such sandbox {0}")]
    NoSandbox(String),
    #[error("no such container {0}")]
    NoContainer(String),
    #[error("container {0} is not in the created state")]
    NotCreated(String),
    #[error("runtime call {call} failed")]
    Call {
        call: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A container runtime as a pod worker drives it.
#[async_trait]
pub trait Runtime: Send + Sync + std::fmt::Debug {
    /// The runtime's name and version, for the node's `containerRuntimeVersion`.
    fn version(&self) -> String;
    async fn run_pod_sandbox(&self, config: &SandboxConfig) -> Result<String, RuntimeError>;
    /// Stops every container of the sandbox too, as CRI's StopPodSandbox does.
    async fn stop_pod_sandbox(&self, sandbox_id: &str) -> Result<(), RuntimeError>;
    async fn remove_pod_sandbox(&self, sandbox_id: &str) -> Result<(), RuntimeError>;
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: &ContainerConfig,
    ) -> Result<String, RuntimeError>;
    async fn start_container(&self, container_id: &str) -> Result<(), RuntimeError>;
    async fn stop_container(&self, container_id: &str, grace: Duration)
    -> Result<(), RuntimeError>;
    async fn remove_container(&self, container_id: &str) -> Result<(), RuntimeError>;
    /// The sandboxes of one pod, newest last.
    async fn list_pod_sandboxes(&self, pod_uid: &str) -> Vec<SandboxStatus>;
    /// The containers of one sandbox, oldest first.
    async fn list_containers(&self, sandbox_id: &str) -> Vec<ContainerStatus>;
}
