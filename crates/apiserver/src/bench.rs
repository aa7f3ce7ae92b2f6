//! The API server benchmark (`oxkube bench api`): starts the real server binary as a child process on
//! a free loopback port with a fresh data directory, then measures it from outside over HTTPS with
//! the admin client certificate and HTTP/2: cold start to `/readyz`, idle RSS, pod create throughput
//! and latency (closed loop and paced open loop), get and list latency, and watch delivery to one and
//! to many watchers. Not a test: it asserts nothing and never runs in CI. The client runs on the same
//! machine as the server, so both share its cores; the figures are therefore a floor.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_rustls::TlsConnector;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Pods created by the throughput run; the list test lists exactly these.
    pub pods: usize,
    /// Concurrent HTTP/2 clients (one connection each, one request in flight each).
    pub clients: usize,
    /// Creates per second of the paced (open-loop) run.
    pub paced_rate: u32,
    /// How long the paced run lasts.
    pub paced_seconds: u64,
    /// Single-pod GETs.
    pub gets: usize,
    /// Full LISTs of the `pods` pods.
    pub lists: usize,
    /// Writes watched by the single watcher.
    pub watch_events: usize,
    /// Watchers of the fan-out test.
    pub watchers: usize,
    /// Writes watched by each of the `watchers` watchers.
    pub fanout_events: usize,
    /// Where the server keeps its data; a temporary directory when `None`.
    pub dir: Option<PathBuf>,
    /// The `oxkube` binary to start; the running executable when `None`.
    pub binary: Option<PathBuf>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            pods: 10_000,
            clients: 16,
            paced_rate: 1_000,
            paced_seconds: 3,
            gets: 10_000,
            lists: 10,
            watch_events: 10_000,
            watchers: 100,
            fanout_events: 2_000,
            dir: None,
            binary: None,
        }
    }
}

/// Every way the benchmark fails.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot create the benchmark directory")]
    Dir(#[source] std::io::Error),
    #[error("cannot find a free loopback port")]
    Port(#[source] std::io::Error),
    #[error("cannot find the oxkube binary")]
    Binary(#[source] std::io::Error),
    #[error("cannot start the server")]
    Spawn(#[source] std::io::Error),
    #[error("the server exited before it was ready ({0})")]
    Exited(std::process::ExitStatus),
    #[error("the server was not ready after {0:?}")]
    NotReady(Duration),
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    #[error("client TLS setup")]
    Tls(#[source] rustls::Error),
    #[error("cannot connect to the server")]
    Connect(#[source] std::io::Error),
    #[error("the server did not negotiate HTTP/2")]
    NoHttp2,
    #[error("HTTP")]
    Http(#[source] hyper::Error),
    #[error("{method} {path}: HTTP {status}: {body}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        body: String,
    },
    #[error("unexpected response: {0}")]
    Response(String),
    #[error("a watch ended after {got} of {want} events")]
    WatchEnded { got: usize, want: usize },
    #[error("timed out: {0}")]
    Timeout(&'static str),
    #[error("a client task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// The 50th and 99th percentiles of a set of request latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    pub samples: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Latency {
    pub fn of(mut samples: Vec<Duration>) -> Latency {
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        Latency {
            samples: samples.len(),
            p50_ms: ms(percentile(&samples, 50.0)),
            p99_ms: ms(percentile(&samples, 99.0)),
        }
    }
}

/// The nearest-rank percentile `p` (0..=100) of `sorted` (ascending); zero when empty.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// All figures.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub options: BenchOptions,
    pub cold_start_ms: f64,
    pub idle_rss_kib: u64,
    pub loaded_rss_kib: u64,
    pub creates_per_s: f64,
    pub create: Latency,
    pub paced_rate_achieved: f64,
    pub paced: Latency,
    pub gets_per_s: f64,
    pub get: Latency,
    pub list: Latency,
    pub list_bytes: usize,
    /// Events/s to one watcher while the writes happen (bounded by the write rate).
    pub watch_live_per_s: f64,
    /// Writes/s during the single-watcher test.
    pub watch_writes_per_s: f64,
    /// Events/s to one watcher replaying history already written (delivery alone).
    pub watch_replay_per_s: f64,
    /// Events/s summed over all the fan-out watchers.
    pub fanout_per_s: f64,
    pub fanout_writes_per_s: f64,
}

const MIB: f64 = 1024.0;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(
            f,
            "API server benchmark: the server binary on loopback (embedded store, fsync per write), \
             {} HTTP/2 clients on the same machine",
            o.clients
        )?;
        writeln!(
            f,
            "{:<52} {:>16} {:>14} {:>4}",
            "figure", "measured", "goal", "met"
        )?;
        let row = |f: &mut fmt::Formatter<'_>,
                   name: String,
                   measured: String,
                   goal: &str,
                   met: Option<bool>| {
            let met = match met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "-",
            };
            writeln!(f, "{name:<52} {measured:>16} {goal:>14} {met:>4}")
        };
        let pair = |l: &Latency| format!("{:.2} / {:.2}", l.p50_ms, l.p99_ms);
        row(
            f,
            "cold start to /readyz 200, ms".into(),
            format!("{:.1}", self.cold_start_ms),
            "<= 500",
            Some(self.cold_start_ms <= 500.0),
        )?;
        let idle = self.idle_rss_kib as f64 / MIB;
        row(
            f,
            "idle RSS after ready, MiB".into(),
            format!("{idle:.1}"),
            "<= 40",
            Some(idle <= 40.0),
        )?;
        row(
            f,
            format!("pod creates/s ({} pods, {} clients)", o.pods, o.clients),
            format!("{:.0}", self.creates_per_s),
            ">= 10000",
            Some(self.creates_per_s >= 10_000.0),
        )?;
        row(
            f,
            format!(
                "  create p50 / p99 ms at full speed ({})",
                self.create.samples
            ),
            pair(&self.create),
            "-",
            None,
        )?;
        row(
            f,
            format!(
                "create p50 / p99 ms paced at {}/s (got {:.0}/s)",
                o.paced_rate, self.paced_rate_achieved
            ),
            pair(&self.paced),
            "p99 <= 10",
            Some(self.paced.p99_ms <= 10.0),
        )?;
        row(
            f,
            format!("get p50 / p99 ms ({} gets, {} clients)", o.gets, o.clients),
            pair(&self.get),
            "-",
            None,
        )?;
        row(
            f,
            "  gets/s".into(),
            format!("{:.0}", self.gets_per_s),
            "-",
            None,
        )?;
        row(
            f,
            format!(
                "list {} pods p50 / p99 ms ({} runs, {:.1} MiB)",
                o.pods,
                o.lists,
                self.list_bytes as f64 / MIB / MIB
            ),
            pair(&self.list),
            "<= 100",
            Some(self.list.p50_ms <= 100.0),
        )?;
        row(
            f,
            format!(
                "watch events/s, 1 watcher, live ({} writes at {:.0}/s)",
                o.watch_events, self.watch_writes_per_s
            ),
            format!("{:.0}", self.watch_live_per_s),
            ">= 100000",
            Some(self.watch_live_per_s >= 100_000.0),
        )?;
        row(
            f,
            format!("watch events/s, 1 watcher, replay of {}", o.watch_events),
            format!("{:.0}", self.watch_replay_per_s),
            ">= 100000",
            Some(self.watch_replay_per_s >= 100_000.0),
        )?;
        row(
            f,
            format!(
                "watch events/s, {} watchers, total ({} writes at {:.0}/s)",
                o.watchers, o.fanout_events, self.fanout_writes_per_s
            ),
            format!("{:.0}", self.fanout_per_s),
            ">= 100000",
            Some(self.fanout_per_s >= 100_000.0),
        )?;
        row(
            f,
            "RSS after the load, MiB".into(),
            format!("{:.1}", self.loaded_rss_kib as f64 / MIB),
            "-",
            None,
        )?;
        writeln!(
            f,
            "latency: from the intended send time (paced) or the send (otherwise) to the full response;"
        )?;
        writeln!(
            f,
            "watch: from the first write (live) or the watch request (replay) to the last event received"
        )
    }
}

/// The parts of a kubeconfig the benchmark needs (the first cluster and the first user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub server: String,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(serde::Deserialize)]
struct KubeconfigFile {
    clusters: Vec<NamedCluster>,
    users: Vec<NamedUser>,
}

#[derive(serde::Deserialize)]
struct NamedCluster {
    cluster: ClusterEntry,
}

#[derive(serde::Deserialize)]
struct ClusterEntry {
    server: String,
    #[serde(rename = "certificate-authority-data")]
    ca: String,
}

#[derive(serde::Deserialize)]
struct NamedUser {
    user: UserEntry,
}

#[derive(serde::Deserialize)]
struct UserEntry {
    #[serde(rename = "client-certificate-data")]
    cert: String,
    #[serde(rename = "client-key-data")]
    key: String,
}

/// Reads the server URL, the CA and the client certificate and key out of a kubeconfig whose
/// credentials are inline (`*-data`, base64 PEM), as the server writes it.
pub fn parse_kubeconfig(text: &str) -> Result<Credentials, BenchError> {
    let file: KubeconfigFile =
        serde_yaml_ng::from_str(text).map_err(|e| BenchError::Kubeconfig(e.to_string()))?;
    let cluster = file
        .clusters
        .into_iter()
        .next()
        .ok_or_else(|| BenchError::Kubeconfig("no cluster".into()))?
        .cluster;
    let user = file
        .users
        .into_iter()
        .next()
        .ok_or_else(|| BenchError::Kubeconfig("no user".into()))?
        .user;
    let decode = |what: &str, b64: &str| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| BenchError::Kubeconfig(format!("{what}: {e}")))?;
        String::from_utf8(bytes).map_err(|_| BenchError::Kubeconfig(format!("{what}: not UTF-8")))
    };
    Ok(Credentials {
        server: cluster.server,
        ca_pem: decode("certificate-authority-data", &cluster.ca)?,
        cert_pem: decode("client-certificate-data", &user.cert)?,
        key_pem: decode("client-key-data", &user.key)?,
    })
}

/// The resident set size in KiB from the text of `/proc/<pid>/status`.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

fn rss_kib(pid: Option<u32>) -> u64 {
    pid.and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .and_then(|s| parse_vm_rss(&s))
        .unwrap_or(0)
}

/// The client TLS configuration: the cluster CA as the only root, the admin client certificate,
/// HTTP/2 only.
fn tls_config(creds: &Credentials) -> Result<Arc<rustls::ClientConfig>, BenchError> {
    let pem = |what: &str| BenchError::Kubeconfig(format!("cannot read the {what} PEM"));
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(creds.ca_pem.as_bytes()) {
        roots
            .add(ca.map_err(|_| pem("CA"))?)
            .map_err(BenchError::Tls)?;
    }
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(creds.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|_| pem("client certificate"))?;
    let key =
        PrivateKeyDer::from_pem_slice(creds.key_pem.as_bytes()).map_err(|_| pem("client key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(BenchError::Tls)?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(BenchError::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// One HTTP/2 connection; clones share it (one stream per request).
#[derive(Debug, Clone)]
struct Client {
    send: SendRequest<Full<Bytes>>,
    base: String,
}

impl Client {
    async fn connect(
        addr: SocketAddr,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<Client, BenchError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(BenchError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let stream = TlsConnector::from(tls.clone())
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await
            .map_err(BenchError::Connect)?;
        if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
            return Err(BenchError::NoHttp2);
        }
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(BenchError::Http)?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Client {
            send,
            base: format!("https://{addr}"),
        })
    }

    /// Sends a request and returns the response head with its body unread.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<http::Response<Incoming>, BenchError> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let req = builder
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| BenchError::Response(e.to_string()))?;
        let mut send = self.send.clone();
        send.ready().await.map_err(BenchError::Http)?;
        let resp = send.send_request(req).await.map_err(BenchError::Http)?;
        Ok(resp)
    }

    /// Sends a request, reads the whole body, and fails unless the status is `want`.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        want: StatusCode,
    ) -> Result<Bytes, BenchError> {
        let resp = self.send(method.clone(), path, body).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(BenchError::Http)?
            .to_bytes();
        if status != want {
            return Err(BenchError::Status {
                method,
                path: path.to_owned(),
                status,
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(500)]).into_owned(),
            });
        }
        Ok(bytes)
    }
}

/// The server child process and its data directory; killed and removed when dropped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl ServerProcess {
    fn start(o: &BenchOptions) -> Result<(ServerProcess, Instant), BenchError> {
        let (tmp, dir) = match &o.dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).map_err(BenchError::Dir)?;
                (None, dir.clone())
            }
            None => {
                let tmp = tempfile::tempdir().map_err(BenchError::Dir)?;
                let dir = tmp.path().to_owned();
                (Some(tmp), dir)
            }
        };
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(BenchError::Port)?
            .port();
        let binary = match &o.binary {
            Some(b) => b.clone(),
            None => std::env::current_exe().map_err(BenchError::Binary)?,
        };
        let data_dir = dir.join("server");
        let started = Instant::now();
        let child = Command::new(binary)
            .arg("server")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--bind-address", "127.0.0.1", "--secure-port"])
            .arg(port.to_string())
            .arg("--disable-agent")
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(BenchError::Spawn)?;
        Ok((
            ServerProcess {
                child,
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                data_dir,
                _tmp: tmp,
            },
            started,
        ))
    }

    /// Polls `/readyz` every 2 ms until it answers 200; returns the credentials and a TLS config.
    async fn wait_ready(
        &mut self,
        limit: Duration,
    ) -> Result<Arc<rustls::ClientConfig>, BenchError> {
        let deadline = Instant::now() + limit;
        let kubeconfig = self.data_dir.join("kubeconfig");
        let mut tls = None;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(BenchError::Exited(status));
            }
            if Instant::now() > deadline {
                return Err(BenchError::NotReady(limit));
            }
            if tls.is_none()
                && let Ok(text) = std::fs::read_to_string(&kubeconfig)
            {
                tls = Some(tls_config(&parse_kubeconfig(&text)?)?);
            }
            if let Some(tls) = &tls
                && let Ok(client) = Client::connect(self.addr, tls).await
                && let Ok(resp) = client.send(Method::GET, "/readyz", None).await
                && resp.status() == StatusCode::OK
            {
                return Ok(tls.clone());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// SIGTERM, then up to 10 s for a clean exit, then SIGKILL.
    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// One request of a workload: method, path, body, expected status.
type MakeRequest = Arc<dyn Fn(usize) -> (Method, String, Option<Bytes>) + Send + Sync>;

/// Runs requests `0..count` from the clients, each with one request in flight, as fast as they go.
/// Returns the elapsed time and every request's latency.
async fn closed_loop(
    clients: &[Client],
    count: usize,
    want: StatusCode,
    make: MakeRequest,
) -> Result<(Duration, Vec<Duration>), BenchError> {
    let start = Instant::now();
    let n = clients.len();
    let mut tasks = Vec::with_capacity(n);
    for (w, client) in clients.iter().enumerate() {
        let client = client.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count / n + 1);
            let mut i = w;
            while i < count {
                let (method, path, body) = make(i);
                let sent = Instant::now();
                client.call(method, &path, body, want).await?;
                latencies.push(sent.elapsed());
                i += n;
            }
            Ok::<_, BenchError>(latencies)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for task in tasks {
        all.extend(task.await.map_err(BenchError::Task)??);
    }
    Ok((start.elapsed(), all))
}

/// Sends `count` requests at `rate` per second regardless of how fast answers come (open loop),
/// round-robin over the clients. Latency counts from each request's intended send time, so a
/// server (or client) falling behind shows up in it. Returns the achieved rate and the latencies.
async fn open_loop(
    clients: &[Client],
    count: usize,
    rate: u32,
    want: StatusCode,
    make: MakeRequest,
) -> Result<(f64, Vec<Duration>), BenchError> {
    let interval = Duration::from_secs(1) / rate.max(1);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due).await;
        let client = clients[i % clients.len()].clone();
        let (method, path, body) = make(i);
        tasks.push(tokio::spawn(async move {
            client.call(method, &path, body, want).await?;
            Ok::<_, BenchError>(due.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    for task in tasks {
        latencies.push(task.await.map_err(BenchError::Task)??);
    }
    Ok((per_second(count, start.elapsed()), latencies))
}

/// Reads a watch stream until `want` events (lines) arrived; returns when the last one did.
async fn count_events(resp: http::Response<Incoming>, want: usize) -> Result<Instant, BenchError> {
    if resp.status() != StatusCode::OK {
        return Err(BenchError::Response(format!(
            "watch: HTTP {}",
            resp.status()
        )));
    }
    let mut body = resp.into_body();
    let mut got = 0;
    while got < want {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    got += data.iter().filter(|&&b| b == b'\n').count();
                }
            }
            Some(Err(e)) => return Err(BenchError::Http(e)),
            None => return Err(BenchError::WatchEnded { got, want }),
        }
    }
    Ok(Instant::now())
}

fn pod(name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"app":"bench"}}}},"spec":{{"containers":[{{"name":"main","image":"busybox"}}]}}}}"#
    ))
}

fn configmap(name: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{{"key":"value"}}}}"#
    ))
}

fn creates(path: String, body: fn(&str) -> Bytes, prefix: &'static str) -> MakeRequest {
    Arc::new(move |i| {
        (
            Method::POST,
            path.clone(),
            Some(body(&format!("{prefix}{i:06}"))),
        )
    })
}

async fn create_namespace(client: &Client, name: &str) -> Result<(), BenchError> {
    let body = Bytes::from(format!(
        r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#
    ));
    client
        .call(
            Method::POST,
            "/api/v1/namespaces",
            Some(body),
            StatusCode::CREATED,
        )
        .await
        .map(drop)
}

/// The list's `metadata.resourceVersion` and its number of items.
async fn list_meta(client: &Client, path: &str) -> Result<(String, usize), BenchError> {
    let bytes = client.call(Method::GET, path, None, StatusCode::OK).await?;
    let list: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| BenchError::Response(format!("{path}: {e}")))?;
    let rv = list
        .pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .ok_or_else(|| BenchError::Response(format!("{path}: no resourceVersion")))?
        .to_owned();
    let items = list
        .get("items")
        .and_then(|v| v.as_array())
        .map_or(0, Vec::len);
    Ok((rv, items))
}

/// Opens `watchers` watches of the configmaps in `namespace` from its current revision, one
/// connection each, then creates `writes` configmaps there from the clients. Returns events/s
/// summed over the watchers (first write → last event at the slowest watcher) and the writes/s.
async fn watch_fanout(
    clients: &[Client],
    addr: SocketAddr,
    tls: &Arc<rustls::ClientConfig>,
    namespace: &str,
    watchers: usize,
    writes: usize,
) -> Result<(f64, f64, String), BenchError> {
    create_namespace(&clients[0], namespace).await?;
    let path = format!("/api/v1/namespaces/{namespace}/configmaps");
    let (rv, _) = list_meta(&clients[0], &path).await?;
    let watch_path = format!("{path}?watch=true&resourceVersion={rv}");
    let mut tasks = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let client = Client::connect(addr, tls).await?;
        let resp = client.send(Method::GET, &watch_path, None).await?;
        tasks.push(tokio::spawn(async move {
            let _keep = client;
            count_events(resp, writes).await
        }));
    }
    let start = Instant::now();
    let (write_time, _) = closed_loop(
        clients,
        writes,
        StatusCode::CREATED,
        creates(path, configmap, "cm-"),
    )
    .await?;
    let mut last = start;
    for task in tasks {
        let done = tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .map_err(|_| BenchError::Timeout("watch events"))?
            .map_err(BenchError::Task)??;
        last = last.max(done);
    }
    Ok((
        per_second(writes * watchers, last - start),
        per_second(writes, write_time),
        watch_path,
    ))
}

/// Starts the server, runs every workload, stops the server.
pub async fn run(o: &BenchOptions) -> Result<Report, BenchError> {
    let (mut server, spawned) = ServerProcess::start(o)?;
    let tls = server.wait_ready(Duration::from_secs(30)).await?;
    let cold_start_ms = spawned.elapsed().as_secs_f64() * 1e3;
    let result = workloads(o, &server, tls, cold_start_ms).await;
    server.stop().await;
    result
}

async fn workloads(
    o: &BenchOptions,
    server: &ServerProcess,
    tls: Arc<rustls::ClientConfig>,
    cold_start_ms: f64,
) -> Result<Report, BenchError> {
    let pid = server.child.id();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = rss_kib(pid);

    let mut clients = Vec::with_capacity(o.clients);
    for _ in 0..o.clients {
        clients.push(Client::connect(server.addr, &tls).await?);
    }

    // Create throughput, as fast as the clients go.
    let pods_path = "/api/v1/namespaces/default/pods".to_owned();
    let (elapsed, latencies) = closed_loop(
        &clients,
        o.pods,
        StatusCode::CREATED,
        creates(pods_path.clone(), pod, "pod-"),
    )
    .await?;
    let creates_per_s = per_second(o.pods, elapsed);
    let create = Latency::of(latencies);

    // Create latency at a fixed rate, in another namespace so the list sees only `pods` pods.
    create_namespace(&clients[0], "bench-paced").await?;
    let paced_count = (u64::from(o.paced_rate) * o.paced_seconds) as usize;
    let (paced_rate_achieved, latencies) = open_loop(
        &clients,
        paced_count,
        o.paced_rate,
        StatusCode::CREATED,
        creates("/api/v1/namespaces/bench-paced/pods".into(), pod, "paced-"),
    )
    .await?;
    let paced = Latency::of(latencies);

    // Single gets, spread over the pods.
    let pods = o.pods;
    let (elapsed, latencies) = closed_loop(
        &clients,
        o.gets,
        StatusCode::OK,
        Arc::new(move |i| {
            let n = (i * 7919) % pods;
            (
                Method::GET,
                format!("/api/v1/namespaces/default/pods/pod-{n:06}"),
                None,
            )
        }),
    )
    .await?;
    let gets_per_s = per_second(o.gets, elapsed);
    let get = Latency::of(latencies);

    // Full lists, one at a time; the count checked once outside the timing.
    let (_, items) = list_meta(&clients[0], &pods_path).await?;
    if items != o.pods {
        return Err(BenchError::Response(format!(
            "list returned {items} pods, not {}",
            o.pods
        )));
    }
    let mut latencies = Vec::with_capacity(o.lists);
    let mut list_bytes = 0;
    for _ in 0..o.lists {
        let sent = Instant::now();
        let body = clients[0]
            .call(Method::GET, &pods_path, None, StatusCode::OK)
            .await?;
        latencies.push(sent.elapsed());
        list_bytes = body.len();
    }
    let list = Latency::of(latencies);

    // One watcher, live; then the same history replayed to a new watcher.
    let (watch_live_per_s, watch_writes_per_s, watch_path) = watch_fanout(
        &clients,
        server.addr,
        &tls,
        "bench-watch",
        1,
        o.watch_events,
    )
    .await?;
    let sent = Instant::now();
    let resp = clients[0].send(Method::GET, &watch_path, None).await?;
    let last = tokio::time::timeout(Duration::from_secs(120), count_events(resp, o.watch_events))
        .await
        .map_err(|_| BenchError::Timeout("watch replay"))??;
    let watch_replay_per_s = per_second(o.watch_events, last - sent);

    // Many watchers.
    let (fanout_per_s, fanout_writes_per_s, _) = watch_fanout(
        &clients,
        server.addr,
        &tls,
        "bench-fanout",
        o.watchers,
        o.fanout_events,
    )
    .await?;

    let loaded_rss_kib = rss_kib(pid);
    Ok(Report {
        options: o.clone(),
        cold_start_ms,
        idle_rss_kib,
        loaded_rss_kib,
        creates_per_s,
        create,
        paced_rate_achieved,
        paced,
        gets_per_s,
        get,
        list,
        list_bytes,
        watch_live_per_s,
        watch_writes_per_s,
        watch_replay_per_s,
        fanout_per_s,
        fanout_writes_per_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), ms(50));
        assert_eq!(percentile(&sorted, 99.0), ms(99));
        assert_eq!(percentile(&sorted, 100.0), ms(100));
        assert_eq!(percentile(&sorted, 0.0), ms(1));
        assert_eq!(percentile(&[ms(7)], 99.0), ms(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        let l = Latency::of(vec![ms(3), ms(1), ms(2)]);
        assert_eq!((l.samples, l.p50_ms, l.p99_ms), (3, 2.0, 3.0));
    }

    #[test]
    fn kubeconfig_credentials_are_decoded() {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://127.0.0.1:6443\n  name: oxkube\ncontexts: []\ncurrent-context: oxkube\nusers:\n- name: admin\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64("CA"),
            b64("CERT"),
            b64("KEY"),
        );
        let creds = parse_kubeconfig(&text).expect("parses");
        assert_eq!(
            creds,
            Credentials {
                server: "https://127.0.0.1:6443".into(),
                ca_pem: "CA".into(),
                cert_pem: "CERT".into(),
                key_pem: "KEY".into(),
            }
        );
        assert!(parse_kubeconfig("clusters: []\nusers: []\n").is_err());
        assert!(parse_kubeconfig(&text.replace(&b64("KEY"), "!!")).is_err());
        assert!(parse_kubeconfig("not: [yaml").is_err());
    }

    #[test]
    fn vm_rss_is_read_from_proc_status() {
        let status = "Name:\toxkube\nVmPeak:\t  100 kB\nVmRSS:\t   23456 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(23456));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }
}
