//! Cluster DNS (upstream's CoreDNS add-on in-process): authoritative for the cluster domain from
//! Services and EndpointSlices, everything else forwarded to the host's resolvers; serves UDP and
//! TCP on the node's address behind the `kube-system/kube-dns` Service it keeps in place.
//!
//! Pure core: `records` (the record table and its answers). Shell: `cluster` (reflectors → table),
//! `server` (hickory handler and listeners), `forward` (upstream resolvers), `kube_dns` (the
//! Service and its endpoints), `bench` (queries/s).

pub mod bench;
pub mod cluster;
pub mod forward;
pub mod kube_dns;
pub mod records;
pub mod server;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use kube::Client;
use tokio::sync::watch;

use crate::forward::Resolvers;
use crate::records::{Table, Zone};

/// How the cluster DNS runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The cluster domain (`--cluster-domain`, default `cluster.local`).
    pub domain: String,
    /// The `kube-dns` Service's cluster IP (`--cluster-dns`, default 10.96.0.10).
    pub service_ip: IpAddr,
    /// The address to listen on: the node's IP (never 0.0.0.0: a host resolver may hold :53).
    pub listen_ip: IpAddr,
    /// UDP and TCP port (53).
    pub port: u16,
    /// Where the upstream resolvers are read from (`/etc/resolv.conf`).
    pub resolv_conf: PathBuf,
    /// The node the endpoint is on, for the EndpointSlice.
    pub node_name: Option<String>,
}

/// A step of starting the DNS that failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("serving DNS")]
    Serve(#[source] server::ServeError),
}

/// Runs the cluster DNS until `shutdown` resolves. Binding failures are returned at once.
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DnsError> {
    let own = SocketAddr::new(options.listen_ip, options.port);
    let upstream = match Resolvers::from_resolv_conf(&options.resolv_conf, &[own]) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "no upstream resolvers: names outside the cluster domain will fail");
            Resolvers::new(Vec::new())
        }
    };
    let zone = Zone::new(&options.domain, Some(options.service_ip));
    let (tx, rx) = watch::channel(Arc::new(Table::build(zone.clone(), 0, &[], &[])));
    let handler = server::Handler::new(rx, Arc::new(upstream.clone()));
    let sockets = std::thread::available_parallelism().map_or(1, |n| n.get());
    let listening = server::listen(options.listen_ip, options.port, sockets, handler)
        .await
        .map_err(DnsError::Serve)?;
    tracing::info!(address = %listening.addr, domain = %zone.domain, upstream = ?upstream.servers(), "cluster DNS listening");
    let writer = tokio::spawn(cluster::feed(client.clone(), zone, tx));
    let objects = tokio::spawn(kube_dns::ensure(
        client,
        options.service_ip,
        listening.addr,
        options.node_name.clone(),
    ));
    shutdown.await;
    objects.abort();
    writer.abort();
    listening.stop().await;
    Ok(())
}
