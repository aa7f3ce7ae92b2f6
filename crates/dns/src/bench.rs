//! `oxkube bench dns`: queries/s against the real hickory shell on loopback, from a fixed table of
//! Services, with N concurrent UDP clients (one query in flight each) sending a bounded number of
//! queries; the same server on a single-threaded runtime is the baseline measured in the same run.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hickory_server::proto::op::{Message, Query};
use hickory_server::proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::forward::{ForwardError, Upstream};
use crate::records::{Table, Zone};
use crate::server::{self, Handler};

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Services in the table.
    pub services: usize,
    /// Concurrent UDP clients.
    pub clients: usize,
    /// Queries per run, split over the clients.
    pub queries: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            services: 1000,
            clients: 32,
            queries: 200_000,
        }
    }
}

/// A step of the benchmark that failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("starting a runtime")]
    Runtime(#[source] std::io::Error),
    #[error("serving")]
    Serve(#[source] server::ServeError),
    #[error("a client")]
    Client(#[source] std::io::Error),
    #[error("encoding a query")]
    Encode(#[source] hickory_server::proto::ProtoError),
    #[error("a server thread panicked")]
    Panicked,
    #[error("{0} queries got no answer in time")]
    Lost(u64),
}

/// One run's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    pub queries: u64,
    pub seconds: f64,
}

impl Run {
    pub fn qps(&self) -> f64 {
        self.queries as f64 / self.seconds.max(f64::EPSILON)
    }
}

/// The report `oxkube bench dns` prints.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub options: Options,
    pub single: Run,
    pub multi: Run,
    pub workers: usize,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "cluster DNS on 127.0.0.1 (UDP): {} services, {} clients, {} queries per run",
            self.options.services, self.options.clients, self.options.queries
        )?;
        writeln!(f, "| server runtime | queries/s | seconds |")?;
        writeln!(f, "|---|---|---|")?;
        writeln!(
            f,
            "| single-threaded, 1 UDP socket (baseline) | {:.0} | {:.2} |",
            self.single.qps(),
            self.single.seconds
        )?;
        writeln!(
            f,
            "| multi-threaded, {} workers and SO_REUSEPORT UDP sockets | {:.0} | {:.2} |",
            self.workers,
            self.multi.qps(),
            self.multi.seconds
        )?;
        writeln!(f, "ratio: {:.2}x", self.multi.qps() / self.single.qps())
    }
}

/// No upstream: the benchmark asks only cluster names.
#[derive(Debug)]
struct NoUpstream;

#[async_trait]
impl Upstream for NoUpstream {
    async fn exchange(&self, _query: &[u8]) -> Result<Vec<u8>, ForwardError> {
        Err(ForwardError::NoServers)
    }
}

/// `services` ClusterIP Services `svc-<i>` in ten namespaces, each with a named port.
pub fn table(services: usize) -> Table {
    let list: Vec<Arc<Service>> = (0..services)
        .map(|i| {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 1, 0)) + i as u32);
            Arc::new(Service {
                metadata: ObjectMeta {
                    name: Some(format!("svc-{i}")),
                    namespace: Some(format!("ns-{}", i % 10)),
                    ..Default::default()
                },
                spec: Some(ServiceSpec {
                    cluster_ip: Some(ip.to_string()),
                    ports: Some(vec![ServicePort {
                        name: Some("http".into()),
                        protocol: Some("TCP".into()),
                        port: 80,
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            })
        })
        .collect();
    Table::build(
        Zone::new(
            "cluster.local",
            Some(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10))),
        ),
        1,
        &list,
        &[],
    )
}

/// The queries clients cycle through: A and SRV of services, and a missing name (NXDOMAIN).
fn queries(services: usize) -> Result<Vec<Vec<u8>>, BenchError> {
    let mut out = Vec::new();
    for i in 0..services.max(1) {
        let ns = i % 10;
        for (name, rtype) in [
            (format!("svc-{i}.ns-{ns}.svc.cluster.local."), RecordType::A),
            (
                format!("_http._tcp.svc-{i}.ns-{ns}.svc.cluster.local."),
                RecordType::SRV,
            ),
            (
                format!("missing-{i}.ns-{ns}.svc.cluster.local."),
                RecordType::A,
            ),
        ] {
            let name = Name::from_ascii(&name).map_err(BenchError::Encode)?;
            let mut m = Message::query();
            m.metadata.recursion_desired = true;
            m.add_query(Query::query(name, rtype));
            out.push(m.to_vec().map_err(BenchError::Encode)?);
        }
    }
    Ok(out)
}

/// Runs the clients against `addr` on a runtime of their own; the queries answered and the time.
fn drive(
    addr: SocketAddr,
    options: &Options,
    queries: Arc<Vec<Vec<u8>>>,
) -> Result<Run, BenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?;
    let lost = Arc::new(AtomicU64::new(0));
    let per_client = options.queries / options.clients.max(1);
    let clients = options.clients.max(1);
    let result = rt.block_on(async {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let queries = queries.clone();
            let lost = lost.clone();
            tasks.push(tokio::spawn(async move {
                let socket = UdpSocket::bind("127.0.0.1:0").await?;
                socket.connect(addr).await?;
                let mut buf = vec![0u8; 4096];
                let mut done = 0u64;
                for i in 0..per_client {
                    let mut q = queries[(c * 7919 + i) % queries.len()].clone();
                    let id = u16::try_from(i % 65536).unwrap_or(0).to_be_bytes();
                    q[0] = id[0];
                    q[1] = id[1];
                    socket.send(&q).await?;
                    // A lost datagram is counted, not waited on forever.
                    match tokio::time::timeout(Duration::from_secs(1), async {
                        loop {
                            let n = socket.recv(&mut buf).await?;
                            if n >= 2 && buf[..2] == id {
                                return std::io::Result::Ok(());
                            }
                        }
                    })
                    .await
                    {
                        Ok(r) => {
                            r?;
                            done += 1;
                        }
                        Err(_) => {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                std::io::Result::Ok(done)
            }));
        }
        let mut answered = 0;
        for t in tasks {
            answered += t
                .await
                .map_err(|_| BenchError::Panicked)?
                .map_err(BenchError::Client)?;
        }
        Ok(Run {
            queries: answered,
            seconds: start.elapsed().as_secs_f64(),
        })
    });
    match lost.load(Ordering::Relaxed) {
        0 => result,
        n => Err(BenchError::Lost(n)),
    }
}

/// Serves the table on a runtime built by `build` (in a thread of its own) while the clients run.
fn measure(
    build: impl FnOnce() -> std::io::Result<tokio::runtime::Runtime> + Send + 'static,
    sockets: usize,
    options: &Options,
    table: Arc<Table>,
    queries: Arc<Vec<Vec<u8>>>,
) -> Result<Run, BenchError> {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || -> Result<(), BenchError> {
        let rt = build().map_err(BenchError::Runtime)?;
        rt.block_on(async move {
            let (_tx, rx) = watch::channel(table);
            let handler = Handler::new(rx, Arc::new(NoUpstream));
            let listening = server::listen(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, sockets, handler)
                .await
                .map_err(BenchError::Serve)?;
            let _ = addr_tx.send(listening.addr);
            let _ = stop_rx.await;
            listening.stop().await;
            Ok(())
        })
    });
    let run = match addr_rx.recv() {
        Ok(addr) => drive(addr, options, queries),
        Err(_) => Err(BenchError::Panicked),
    };
    let _ = stop_tx.send(());
    server.join().map_err(|_| BenchError::Panicked)??;
    run
}

/// Both runs, single-threaded first.
pub fn run(options: &Options) -> Result<Report, BenchError> {
    let table = Arc::new(table(options.services));
    let queries = Arc::new(queries(options.services)?);
    let single = measure(
        || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
        },
        1,
        options,
        table.clone(),
        queries.clone(),
    )?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let multi = measure(
        move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
        },
        workers,
        options,
        table,
        queries,
    )?;
    Ok(Report {
        options: options.clone(),
        single,
        multi,
        workers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_run_answers_every_query() {
        let options = Options {
            services: 20,
            clients: 4,
            queries: 400,
        };
        let report = run(&options).expect("bench");
        assert_eq!(report.single.queries, 400);
        assert_eq!(report.multi.queries, 400);
        assert!(report.to_string().contains("ratio"));
    }
}
