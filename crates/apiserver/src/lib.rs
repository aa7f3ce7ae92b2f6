//! The Kubernetes API server: the only door to cluster state. REST and watch over the store, with
//! authentication → authorization → admission as separate stages, discovery, OpenAPI, Table output
//! and upstream's Status errors. The object rules themselves live in `oxkube-api`.

pub mod alloc;
pub mod auth;
pub mod bench;
pub mod bootstrap;
pub mod cache;
pub mod discovery;
pub mod kubelet_client;
pub mod negotiate;
pub mod objects;
pub mod pki;
pub mod request;
pub mod rest;
pub mod server;
pub mod status;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use oxkube_store::Store;

use crate::alloc::ServiceCidr;
use crate::auth::{AuthenticatedMayAll, Authenticator};
use crate::rest::{Rest, SystemClock};

/// What the API server is told at start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Holds `tls/`, `kubeconfig` and `node-token`.
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub secure_port: u16,
    pub service_cidr: ServiceCidr,
    pub token_auth_file: Option<PathBuf>,
    /// How far back watches may start (the store's compaction window).
    pub history: Duration,
    /// How long requests in flight may run on after shutdown begins.
    pub drain: Duration,
}

/// Every way starting the API server fails.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("preparing certificates")]
    Pki(#[from] pki::PkiError),
    #[error("reading the token file")]
    TokenFile(#[from] auth::TokenFileError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS setup")]
    Tls(#[from] server::TlsError),
    #[error("loading the watch caches")]
    Caches(#[source] status::ApiError),
    #[error("creating the built-in objects")]
    Bootstrap(#[source] status::ApiError),
}

/// A running API server.
#[derive(Debug)]
pub struct ApiServer {
    /// Where it listens.
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    /// The secret agents join with (the part after `::server:` in `node-token`).
    pub node_secret: String,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ApiServer {
    /// Prepares credentials, listens, loads the caches, creates the built-in objects and serves.
    pub async fn start(config: Config, store: Arc<dyn Store>) -> Result<ApiServer, StartError> {
        let addr = SocketAddr::new(config.bind_address, config.secure_port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        let client_ip = if config.bind_address.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            config.bind_address
        };
        let server_address = SocketAddr::new(client_ip, addr.port()).to_string();
        let host_ip = host_ip(config.bind_address);
        let names = serving_names(&config, host_ip);
        let creds = pki::prepare(
            &config.data_dir,
            &names,
            &format!("https://{server_address}"),
        )?;
        let mut authn = Authenticator::new(&creds.node_secret);
        if let Some(path) = &config.token_auth_file {
            authn.load_token_file(path)?;
        }
        let tls = server::tls_config(
            &creds.serving_cert_pem,
            &creds.serving_key_pem,
            &creds.ca_pem,
        )?;
        let rest = Rest::start(
            store,
            Arc::new(SystemClock),
            config.service_cidr,
            config.history,
        )
        .await
        .map_err(StartError::Caches)?;
        bootstrap::ensure(&rest, host_ip, addr.port())
            .await
            .map_err(StartError::Bootstrap)?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let handler = Arc::new(server::Handler::new(
            rest,
            authn,
            Box::new(AuthenticatedMayAll),
            server_address,
            creds.ca_pem.clone(),
            shutdown_rx.clone(),
        ));
        handler.ready.store(true, Ordering::Relaxed);
        let task = tokio::spawn(server::serve(
            listener,
            Arc::new(tls),
            handler,
            shutdown_rx,
            config.drain,
        ));
        Ok(ApiServer {
            addr,
            kubeconfig: creds.kubeconfig_path,
            node_secret: creds.node_secret,
            shutdown,
            task,
        })
    }

    /// Stops accepting, lets requests in flight finish, ends watches, and returns when done.
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "API server task ended abnormally");
        }
    }
}

/// The address other machines and pods reach this host at: the bind address when given, else the
/// first non-loopback address the host name resolves to, else loopback.
fn host_ip(bind: IpAddr) -> IpAddr {
    if !bind.is_unspecified() {
        return bind;
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    (hostname.trim(), 0)
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

fn serving_names(config: &Config, host_ip: IpAddr) -> pki::ServingNames {
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let mut dns: Vec<String> = vec![
        "localhost".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
    ];
    let hostname = hostname.trim();
    if !hostname.is_empty() && !dns.iter().any(|d| d == hostname) {
        dns.push(hostname.to_string());
    }
    let mut ips = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V4(config.service_cidr.first()),
        host_ip,
    ];
    if !config.bind_address.is_unspecified() {
        ips.push(config.bind_address);
    }
    ips.dedup();
    pki::ServingNames { dns, ips }
}
