//! A single-member etcd started from the `etcd` binary on free loopback ports, for tests and the store
//! benchmark (the anchor every embedded figure is compared with). Killed when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Every way starting a local etcd fails.
#[derive(Debug, thiserror::Error)]
pub enum LocalEtcdError {
    #[error("cannot find a free loopback port")]
    Port(#[source] std::io::Error),
    #[error("cannot prepare {path}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start `{binary}` (install Debian's etcd-server)")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("etcd did not become ready within {0:?}; its log is {1}")]
    NotReady(Duration, PathBuf),
}

/// A running etcd; the process is killed and reaped on drop.
#[derive(Debug)]
pub struct LocalEtcd {
    child: Child,
    endpoint: String,
}

fn free_port() -> Result<u16, LocalEtcdError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(LocalEtcdError::Port)
}

impl LocalEtcd {
    /// Starts etcd with its data under `dir` (created if missing) and waits until it serves.
    pub async fn start(dir: &Path) -> Result<LocalEtcd, LocalEtcdError> {
        let binary = std::env::var("OXKUBE_ETCD_BIN").unwrap_or_else(|_| "etcd".to_owned());
        std::fs::create_dir_all(dir).map_err(|source| LocalEtcdError::Dir {
            path: dir.to_owned(),
            source,
        })?;
        let log_path = dir.join("etcd.log");
        let log = std::fs::File::create(&log_path).map_err(|source| LocalEtcdError::Dir {
            path: log_path.clone(),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| LocalEtcdError::Dir {
            path: log_path.clone(),
            source,
        })?;
        let client = format!("http://127.0.0.1:{}", free_port()?);
        let peer = format!("http://127.0.0.1:{}", free_port()?);
        let child = Command::new(&binary)
            .arg("--name=oxkube-test")
            .arg(format!("--data-dir={}", dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=oxkube-test={peer}"))
            .arg("--log-level=warn")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| LocalEtcdError::Spawn { binary, source })?;
        let etcd = LocalEtcd {
            child,
            endpoint: client,
        };
        let limit = Duration::from_secs(20);
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(mut c) = etcd_client::Client::connect([etcd.endpoint.as_str()], None).await
                && c.get("health-probe", None).await.is_ok()
            {
                return Ok(etcd);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(LocalEtcdError::NotReady(limit, log_path))
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for LocalEtcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
