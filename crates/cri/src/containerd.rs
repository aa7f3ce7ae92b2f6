//! The node's own containerd: its configuration (own root, state and sockets under the node's data
//! directory, runc with cgroupfs, `restrict_oom_score_adj`, our pause image, CNI from /usr/lib/cni),
//! and a supervisor that starts it as a child, waits for its socket, restarts it when it dies and
//! stops it on request. Images are imported through containerd's `ctr`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Where CNI plugin binaries live on Debian.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The longest wait for containerd's socket after a start.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How often the socket is looked for.
const READY_POLL: Duration = Duration::from_millis(20);
/// The longest pause between restarts.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// How long a stopping containerd gets before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Every path of one node's containerd and pod network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub root: PathBuf,
    pub state: PathBuf,
    pub socket: PathBuf,
    pub ttrpc_socket: PathBuf,
    pub config: PathBuf,
    pub log: PathBuf,
    pub cni_conf_dir: PathBuf,
    pub ipam_dir: PathBuf,
    /// Pod log directories (`<namespace>_<name>_<uid>/<container>/<attempt>.log`).
    pub pod_logs: PathBuf,
}

impl Paths {
    pub fn new(data_dir: &Path) -> Self {
        let c = data_dir.join("containerd");
        Paths {
            root: c.join("root"),
            state: c.join("state"),
            socket: c.join("containerd.sock"),
            ttrpc_socket: c.join("containerd.sock.ttrpc"),
            config: c.join("config.toml"),
            log: c.join("containerd.log"),
            cni_conf_dir: data_dir.join("cni/net.d"),
            ipam_dir: data_dir.join("cni/ipam"),
            pod_logs: data_dir.join("pods"),
        }
    }
}

/// containerd 1.6's configuration (version 2) for these paths, with `sandbox_image` as the pause image.
pub fn config_toml(paths: &Paths, sandbox_image: &str) -> String {
    let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{ttrpc}"

[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  enable_selinux = false

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false

[{cri}.cni]
  bin_dir = "{CNI_BIN_DIR}"
  conf_dir = "{cni}"
  max_conf_num = 1
"#,
        root = paths.root.display(),
        state = paths.state.display(),
        socket = paths.socket.display(),
        ttrpc = paths.ttrpc_socket.display(),
        cni = paths.cni_conf_dir.display(),
    )
}

/// A step of running containerd that failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error("creating {path}")]
    Dirs {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("starting {binary}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd exited before its socket {socket} appeared ({status}); see {log}")]
    Exited {
        socket: PathBuf,
        status: std::process::ExitStatus,
        log: PathBuf,
    },
    #[error("containerd's socket {0} did not appear within {READY_TIMEOUT:?}")]
    NotReady(PathBuf),
    #[error("running ctr to import {file}")]
    Ctr {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ctr could not import {file}: {stderr}")]
    Import { file: PathBuf, stderr: String },
}

/// Writes `text` to `path`, creating its directory.
pub fn write_file(path: &Path, text: &str) -> Result<(), ContainerdError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ContainerdError::Dirs {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| ContainerdError::Write {
        path: path.to_path_buf(),
        source,
    })
}

async fn spawn(binary: &str, paths: &Paths) -> Result<Child, ContainerdError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&paths.log)
        .map_err(|source| ContainerdError::Write {
            path: paths.log.clone(),
            source,
        })?;
    let log_err = log.try_clone().map_err(|source| ContainerdError::Write {
        path: paths.log.clone(),
        source,
    })?;
    // A stale socket from an earlier run would look ready.
    let _ = std::fs::remove_file(&paths.socket);
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&paths.config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ContainerdError::Spawn {
            binary: binary.into(),
            source,
        })?;
    let waited = tokio::time::Instant::now();
    loop {
        if tokio::net::UnixStream::connect(&paths.socket).await.is_ok() {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ContainerdError::Exited {
                socket: paths.socket.clone(),
                status,
                log: paths.log.clone(),
            });
        }
        if waited.elapsed() > READY_TIMEOUT {
            return Err(ContainerdError::NotReady(paths.socket.clone()));
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// Asks a child to stop with SIGTERM, then kills it after [`STOP_GRACE`].
async fn stop_child(mut child: Child) {
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    if tokio::time::timeout(STOP_GRACE, child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// The supervisor's states.
#[derive(Debug)]
enum State {
    Running(Child),
    Restarting { failures: u32 },
    Stopped,
}

#[derive(Debug)]
struct Supervision {
    binary: String,
    paths: Paths,
    stop: oneshot::Receiver<()>,
}

fn restart_delay(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1u64 << failures.min(16));
    Duration::from_millis(ms).min(MAX_RESTART_DELAY)
}

async fn step(s: &mut Supervision, state: State) -> State {
    match state {
        State::Stopped => State::Stopped,
        State::Running(mut child) => {
            tokio::select! {
                exit = child.wait() => {
                    tracing::warn!(status = ?exit.ok(), log = %s.paths.log.display(), "containerd exited; restarting");
                    State::Restarting { failures: 0 }
                }
                _ = &mut s.stop => {
                    stop_child(child).await;
                    State::Stopped
                }
            }
        }
        State::Restarting { failures } => {
            tokio::select! {
                () = tokio::time::sleep(restart_delay(failures)) => {
                    match spawn(&s.binary, &s.paths).await {
                        Ok(child) => {
                            tracing::info!("containerd restarted");
                            State::Running(child)
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "restarting containerd failed");
                            State::Restarting { failures: failures + 1 }
                        }
                    }
                }
                _ = &mut s.stop => State::Stopped,
            }
        }
    }
}

/// A running containerd child, restarted whenever it dies.
#[derive(Debug)]
pub struct Supervisor {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervisor {
    /// Writes the configuration, starts containerd and returns once its socket answers.
    pub async fn start(
        binary: &str,
        paths: &Paths,
        sandbox_image: &str,
    ) -> Result<Self, ContainerdError> {
        for dir in [
            &paths.root,
            &paths.state,
            &paths.cni_conf_dir,
            &paths.pod_logs,
        ] {
            std::fs::create_dir_all(dir).map_err(|source| ContainerdError::Dirs {
                path: dir.clone(),
                source,
            })?;
        }
        write_file(&paths.config, &config_toml(paths, sandbox_image))?;
        let child = spawn(binary, paths).await?;
        let (stop, stop_rx) = oneshot::channel();
        let mut supervision = Supervision {
            binary: binary.into(),
            paths: paths.clone(),
            stop: stop_rx,
        };
        let task = tokio::spawn(async move {
            let mut state = State::Running(child);
            while !matches!(state, State::Stopped) {
                state = step(&mut supervision, state).await;
            }
        });
        Ok(Supervisor { stop, task })
    }

    /// Stops containerd (its shims, and so the containers, keep running as with upstream).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Imports an OCI image-layout tar into containerd's `k8s.io` namespace (where CRI finds images).
pub async fn import(socket: &Path, file: &Path) -> Result<(), ContainerdError> {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["--namespace", "k8s.io", "images", "import"])
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| ContainerdError::Ctr {
            file: file.into(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ContainerdError::Import {
            file: file.into(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_keeps_everything_under_the_data_dir() {
        let paths = Paths::new(Path::new("/d"));
        let toml = config_toml(&paths, "oxkube.local/pause:3.10");
        assert!(toml.contains("root = \"/d/containerd/root\""));
        assert!(toml.contains("address = \"/d/containerd/containerd.sock\""));
        assert!(toml.contains("restrict_oom_score_adj = true"));
        assert!(toml.contains("sandbox_image = \"oxkube.local/pause:3.10\""));
        assert!(toml.contains("conf_dir = \"/d/cni/net.d\""));
        assert!(toml.contains("SystemdCgroup = false"));
    }

    #[test]
    fn restarts_back_off_up_to_a_limit() {
        assert_eq!(restart_delay(0), Duration::from_millis(100));
        assert_eq!(restart_delay(3), Duration::from_millis(800));
        assert_eq!(restart_delay(40), MAX_RESTART_DELAY);
    }
}
