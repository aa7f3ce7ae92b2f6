//! The kubelet's HTTPS endpoint for container logs, as upstream's `/containerLogs/{namespace}/{pod}/
//! {container}` (`follow`, `tailLines`, `previous`, `timestamps`): it reads the CRI log files under
//! the node's pod log directory and, when following, streams new lines until the container stops.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::logs::{self, LogOptions};
use crate::runtime::{ContainerState, Runtime};

/// How often a followed log is read for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// The kubelet's default port.
pub const PORT: u16 = 10250;

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Serving the endpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum LogServerError {
    #[error("making the kubelet's serving certificate")]
    Cert(#[source] rcgen::Error),
    #[error("the kubelet's TLS configuration")]
    Tls(#[source] rustls::Error),
}

/// A self-signed serving configuration for the node (the API server does not verify kubelets, as
/// upstream without `--kubelet-certificate-authority`).
pub fn tls_config(node_name: &str, ip: &str) -> Result<rustls::ServerConfig, LogServerError> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let certified = rcgen::generate_simple_self_signed(vec![node_name.to_string(), ip.to_string()])
        .map_err(LogServerError::Cert)?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(LogServerError::Tls)?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .map_err(LogServerError::Tls)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Where logs are and how to tell whether a container still runs.
#[derive(Debug, Clone)]
pub struct LogFiles {
    pub pod_logs: PathBuf,
    pub runtime: Arc<dyn Runtime>,
}

/// A log request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LogRequest {
    namespace: String,
    pod: String,
    container: String,
    follow: bool,
    previous: bool,
    options: LogOptions,
}

fn parse(path: &str, query: Option<&str>) -> Option<LogRequest> {
    let rest = path.strip_prefix("/containerLogs/")?;
    let mut parts = rest.split('/');
    let (namespace, pod, container) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [namespace, pod, container].iter().any(|p| p.is_empty()) {
        return None;
    }
    let mut req = LogRequest {
        namespace: namespace.into(),
        pod: pod.into(),
        container: container.into(),
        follow: false,
        previous: false,
        options: LogOptions::default(),
    };
    let truthy = |v: &str| v == "true" || v == "1";
    for pair in query.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, "true"));
        match k {
            "follow" => req.follow = truthy(v),
            "previous" => req.previous = truthy(v),
            "timestamps" => req.options.timestamps = truthy(v),
            "tailLines" => req.options.tail_lines = v.parse().ok(),
            _ => {}
        }
    }
    Some(req)
}

/// The newest pod log directory of a pod (`<namespace>_<pod>_<uid>`) and its uid.
fn pod_dir(root: &Path, namespace: &str, pod: &str) -> Option<(PathBuf, String)> {
    let prefix = format!("{namespace}_{pod}_");
    std::fs::read_dir(root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let uid = name.strip_prefix(&prefix)?.to_string();
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, e.path(), uid))
        })
        .max_by_key(|(modified, _, _)| *modified)
        .map(|(_, path, uid)| (path, uid))
}

/// The log files of a container, oldest attempt first.
fn attempts(dir: &Path) -> Vec<(u32, PathBuf)> {
    let mut out: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_suffix(".log")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    out
}

fn text(code: StatusCode, message: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(message)).boxed_unsync());
    *r.status_mut() = code;
    r
}

async fn running(files: &LogFiles, uid: &str, container: &str) -> bool {
    let Some(sandbox) = files.runtime.list_pod_sandboxes(uid).await.pop() else {
        return false;
    };
    files
        .runtime
        .list_containers(&sandbox.id)
        .await
        .into_iter()
        .filter(|c| c.name == container)
        .max_by_key(|c| c.attempt)
        .is_some_and(|c| !matches!(c.state, ContainerState::Exited { .. }))
}

/// State of a followed log.
struct Follow {
    files: LogFiles,
    uid: String,
    container: String,
    path: PathBuf,
    offset: u64,
    timestamps: bool,
    done: bool,
}

/// Complete lines of `raw` and how many bytes they take.
fn complete(raw: &str) -> (&str, usize) {
    match raw.rfind('\n') {
        Some(i) => (&raw[..=i], i + 1),
        None => ("", 0),
    }
}

async fn follow_step(mut f: Follow) -> Option<(Bytes, Follow)> {
    loop {
        if f.done {
            return None;
        }
        let data = tokio::fs::read(&f.path).await.unwrap_or_default();
        let start = usize::try_from(f.offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let fresh = String::from_utf8_lossy(&data[start..]).into_owned();
        let (lines, used) = complete(&fresh);
        if used > 0 {
            f.offset += used as u64;
            let out = logs::render(
                lines,
                LogOptions {
                    tail_lines: None,
                    timestamps: f.timestamps,
                },
            );
            return Some((Bytes::from(out), f));
        }
        if !running(&f.files, &f.uid, &f.container).await {
            // One last read after the container stopped, then the end.
            f.done = true;
            let data = tokio::fs::read(&f.path).await.unwrap_or_default();
            let start = usize::try_from(f.offset)
                .unwrap_or(usize::MAX)
                .min(data.len());
            let rest = String::from_utf8_lossy(&data[start..]).into_owned();
            let out = logs::render(
                &rest,
                LogOptions {
                    tail_lines: None,
                    timestamps: f.timestamps,
                },
            );
            return Some((Bytes::from(out), f));
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

async fn handle(files: &LogFiles, req: &Request<hyper::body::Incoming>) -> Response<Body> {
    let Some(r) = parse(req.uri().path(), req.uri().query()) else {
        return text(StatusCode::NOT_FOUND, "404 page not found\n".into());
    };
    let Some((dir, uid)) = pod_dir(&files.pod_logs, &r.namespace, &r.pod) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("pod {}/{} not found on this node", r.namespace, r.pod),
        );
    };
    let mut runs = attempts(&dir.join(&r.container));
    if r.previous {
        runs.pop();
    }
    let Some((_, path)) = runs.pop() else {
        let message = if r.previous {
            format!(
                "previous terminated container \"{}\" in pod \"{}\" not found",
                r.container, r.pod
            )
        } else {
            format!(
                "container \"{}\" in pod \"{}\" is waiting to start: ContainerCreating",
                r.container, r.pod
            )
        };
        return text(StatusCode::BAD_REQUEST, message);
    };
    let data = tokio::fs::read(&path).await.unwrap_or_default();
    let raw = String::from_utf8_lossy(&data).into_owned();
    if !r.follow || r.previous {
        return text(StatusCode::OK, logs::render(&raw, r.options));
    }
    let (lines, used) = complete(&raw);
    let first = Bytes::from(logs::render(lines, r.options));
    let follow = Follow {
        files: files.clone(),
        uid,
        container: r.container,
        path,
        offset: used as u64,
        timestamps: r.options.timestamps,
        done: false,
    };
    let stream = futures::stream::once(async move { first })
        .chain(futures::stream::unfold(follow, follow_step))
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    Response::new(BodyExt::boxed_unsync(StreamBody::new(stream)))
}

/// Serves the endpoint on `listener` forever (abort the task to stop).
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, files: LogFiles) {
    let acceptor = TlsAcceptor::from(tls);
    let files = Arc::new(files);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        let files = files.clone();
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let files = files.clone();
                async move { Ok::<_, Infallible>(handle(&files, &req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_like_upstream() {
        let r = parse(
            "/containerLogs/ns/web/c",
            Some("follow=true&tailLines=5&timestamps=1"),
        )
        .expect("parsed");
        assert_eq!(
            (r.namespace.as_str(), r.pod.as_str(), r.container.as_str()),
            ("ns", "web", "c")
        );
        assert!(r.follow && !r.previous && r.options.timestamps);
        assert_eq!(r.options.tail_lines, Some(5));
        assert_eq!(parse("/containerLogs/ns/web", None), None);
        assert_eq!(parse("/pods", None), None);
    }

    #[test]
    fn the_newest_pod_dir_and_attempts_are_found() {
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("ns_web_u1/c");
        std::fs::create_dir_all(&dir).expect("mkdir");
        for n in [0, 2, 1] {
            std::fs::write(dir.join(format!("{n}.log")), b"").expect("write");
        }
        std::fs::create_dir_all(root.path().join("ns_webx_u2")).expect("mkdir");
        let (path, uid) = pod_dir(root.path(), "ns", "web").expect("found");
        assert_eq!(uid, "u1");
        let runs: Vec<u32> = attempts(&path.join("c"))
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(runs, vec![0, 1, 2]);
        assert_eq!(complete("a\nb"), ("a\n", 2));
    }
}
