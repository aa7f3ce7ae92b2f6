//! `oxkube agent --hollow 3` against a real `oxkube server`: the nodes register Ready, their leases
//! renew, bound pods run, fail with their exit code or crash-loop as upstream shows it, and deleted
//! pods go away. A token pinning another CA is refused.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Binding, Node, ObjectReference, Pod};
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

/// Generous: debug builds on a shared two-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn oxkube(args: &[&str]) -> anyhow::Result<Killed> {
    let child = Command::new(env!("CARGO_BIN_EXE_oxkube"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting oxkube")?;
    Ok(Killed(child))
}

/// Polls `check` until it gives a value or the deadline passes.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let mut last = String::new();
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what} (last error: {last})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn start_server(dir: &Path) -> anyhow::Result<(Killed, String, Client)> {
    let data = dir.to_str().context("path")?;
    let server = oxkube(&[
        "server",
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        "0",
        "--disable-agent",
        // This test binds pods itself, as a scheduler would.
        "--disable-scheduler",
        "--data-dir",
        data,
    ])?;
    let kubeconfig = dir.join("kubeconfig");
    let client = eventually("the server", || {
        let kubeconfig = kubeconfig.clone();
        async move {
            let Ok(file) = Kubeconfig::read_from(&kubeconfig) else {
                return Ok(None);
            };
            let config =
                kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await?;
            let client = Client::try_from(config)?;
            client.apiserver_version().await?;
            Ok(Some(client))
        }
    })
    .await?;
    let file = Kubeconfig::read_from(&kubeconfig)?;
    let url = file
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .context("no server in the kubeconfig")?;
    Ok((server, url, client))
}

fn pod(name: &str, policy: &str, command: &[&str]) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": policy,
            "containers": [{"name": "c", "image": "busybox", "command": command}],
        },
    }))?)
}

/// Creates the pod and binds it to `node` as the scheduler does.
async fn create_bound(pods: &Api<Pod>, pod: Pod, node: &str) -> anyhow::Result<()> {
    let name = pod.metadata.name.clone().context("name")?;
    pods.create(&PostParams::default(), &pod).await?;
    let binding = Binding {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.into()),
            ..Default::default()
        },
    };
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        &name,
        &PostParams::default(),
        &binding,
    )
    .await?;
    Ok(())
}

/// The first container status of the pod once `ok` holds for the pod.
async fn pod_when(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    ok: impl Fn(&Pod) -> bool,
) -> anyhow::Result<Pod> {
    eventually(what, || async {
        let p = pods.get(name).await?;
        Ok(ok(&p).then_some(p))
    })
    .await
}

fn phase(p: &Pod) -> Option<&str> {
    p.status.as_ref()?.phase.as_deref()
}

fn first_status(p: &Pod) -> Option<&k8s_openapi::api::core::v1::ContainerStatus> {
    p.status.as_ref()?.container_statuses.as_ref()?.first()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hollow_nodes_run_pods_as_upstream_shows_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_server, url, client) = start_server(dir.path()).await?;
    let token = std::fs::read_to_string(dir.path().join("node-token"))?;
    let _agent = oxkube(&[
        "agent",
        "--server",
        &url,
        "--token",
        token.trim(),
        "--node-name",
        "it",
        "--hollow",
        "3",
        "--hollow-start-delay-ms",
        "1500",
    ])?;

    let nodes: Api<Node> = Api::all(client.clone());
    eventually("three Ready hollow nodes", || async {
        let list = nodes.list(&Default::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|n| {
                n.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("it-hollow-"))
            })
            .filter(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter().any(|c| {
                            c.type_ == "Ready"
                                && c.status == "True"
                                && c.reason.as_deref() == Some("KubeletReady")
                        })
                    })
            })
            .count();
        Ok((ready == 3).then_some(()))
    })
    .await?;

    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let renew_time = |l: &Lease| l.spec.as_ref().and_then(|s| s.renew_time.clone());
    let first = eventually("a lease", || async {
        Ok(leases
            .get_opt("it-hollow-0")
            .await?
            .and_then(|l| renew_time(&l)))
    })
    .await?;
    eventually("the lease renewed", || async {
        let l = leases.get("it-hollow-0").await?;
        assert_eq!(
            l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()),
            Some("it-hollow-0")
        );
        Ok(renew_time(&l).filter(|t| *t != first))
    })
    .await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    create_bound(
        &pods,
        pod("runs", "Always", &["sleep", "3600"])?,
        "it-hollow-0",
    )
    .await?;
    pod_when(&pods, "runs", "runs ContainerCreating", |p| {
        phase(p) == Some("Pending")
            && first_status(p)
                .and_then(|c| c.state.as_ref())
                .and_then(|s| s.waiting.as_ref())
                .is_some_and(|w| w.reason.as_deref() == Some("ContainerCreating"))
    })
    .await?;
    let running = pod_when(&pods, "runs", "runs Running", |p| {
        phase(p) == Some("Running") && first_status(p).is_some_and(|c| c.ready)
    })
    .await?;
    let c = first_status(&running).context("status")?;
    assert_eq!(c.restart_count, 0);
    assert_eq!(c.started, Some(true));
    assert!(c.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
    assert!(
        c.container_id
            .as_deref()
            .is_some_and(|id| id.starts_with("fake://"))
    );
    let status = running.status.as_ref().context("status")?;
    assert_eq!(status.host_ip.as_deref(), Some("10.64.0.1"));
    assert!(status.pod_ip.is_some());
    assert!(status.start_time.is_some());
    let ready = status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status == "True")
        .count();
    assert_eq!(ready, 5, "{:?}", status.conditions);

    create_bound(
        &pods,
        pod("fails", "Never", &["sh", "-c", "exit 3"])?,
        "it-hollow-1",
    )
    .await?;
    let failed = pod_when(&pods, "fails", "fails Failed", |p| {
        phase(p) == Some("Failed")
    })
    .await?;
    let t = first_status(&failed)
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
        .context("terminated")?;
    assert_eq!(t.exit_code, 3);
    assert_eq!(t.reason.as_deref(), Some("Error"));

    create_bound(
        &pods,
        pod("crashes", "OnFailure", &["sh", "-c", "exit 1"])?,
        "it-hollow-2",
    )
    .await?;
    let looping = pod_when(&pods, "crashes", "crashes in CrashLoopBackOff", |p| {
        first_status(p)
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.waiting.as_ref())
            .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
    })
    .await?;
    let c = first_status(&looping).context("status")?;
    assert!(c.restart_count >= 1);
    assert_eq!(
        c.last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code),
        Some(1)
    );

    for name in ["runs", "fails", "crashes"] {
        pods.delete(name, &DeleteParams::default()).await?;
    }
    eventually("the pods gone", || async {
        Ok(pods
            .list(&Default::default())
            .await?
            .items
            .is_empty()
            .then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_pinning_another_ca_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_server, url, _client) = start_server(dir.path()).await?;
    let token = std::fs::read_to_string(dir.path().join("node-token"))?;
    let (_, secret) = token.trim().split_once("::").context("token")?;
    let wrong = format!("K10{}::{secret}", "00".repeat(32));
    let out = Command::new(env!("CARGO_BIN_EXE_oxkube"))
        .args([
            "agent", "--server", &url, "--token", &wrong, "--hollow", "1",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to join"), "{stderr}");
    Ok(())
}
