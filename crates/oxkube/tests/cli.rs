//! The binary as a user runs it: bad flags exit 64, and `oxkube server` opens either store backend,
//! serves the API, writes its kubeconfig and node token, and exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use oxkube_store::etcd::local::LocalEtcd;

/// A free loopback port, so tests never collide with a server on 6443.
const LOOPBACK: [&str; 4] = ["--bind-address", "127.0.0.1", "--secure-port", "0"];

fn oxkube() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oxkube"))
}

#[test]
fn bad_flags_exit_64_with_a_message() {
    for args in [
        &["server", "--no-such-flag"][..],
        &["server", "--datastore-endpoint", "127.0.0.1:2379"],
        &["server", "--compaction-interval-seconds", "0"],
        &["bench", "store", "--writers", "0"],
    ] {
        let out = oxkube().args(args).output().expect("run oxkube");
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    let help = oxkube().arg("--help").output().expect("run oxkube");
    assert_eq!(help.status.code(), Some(0));
}

/// Waits until the server's log says `needle`, then stops it with SIGTERM and returns its exit code.
fn run_until_logged_then_terminate(mut child: Child, needle: &str) -> Option<i32> {
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains(needle)) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!("server never logged {needle:?}; log:\n{}", log.join("\n"));
            }
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait().expect("wait").code()
}

#[test]
fn server_opens_the_embedded_store_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = oxkube()
        .args(["server", "--data-dir"])
        .arg(dir.path())
        .args(LOOPBACK)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start server");
    assert_eq!(
        run_until_logged_then_terminate(child, "API server ready"),
        Some(0)
    );
    assert!(
        dir.path().join("db/oxkube-store").exists(),
        "store created under DIR/db"
    );
    assert!(dir.path().join("kubeconfig").exists());
    let token = std::fs::metadata(dir.path().join("node-token")).expect("node-token");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(token.permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn server_uses_etcd_when_given_an_endpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let etcd = LocalEtcd::start(&dir.path().join("etcd"))
        .await
        .expect("etcd");
    let child = oxkube()
        .args(["server", "--data-dir"])
        .arg(dir.path().join("server"))
        .args(["--datastore-endpoint", etcd.endpoint()])
        .args(LOOPBACK)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start server");
    let code = tokio::task::spawn_blocking(move || {
        run_until_logged_then_terminate(child, "API server ready")
    })
    .await
    .expect("join");
    assert_eq!(code, Some(0));
    assert!(
        !dir.path().join("server/db").exists(),
        "no embedded store with etcd"
    );
}
