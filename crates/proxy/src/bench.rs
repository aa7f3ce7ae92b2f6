//! `oxkube bench proxy`: programs synthetic Services into the real nftables of a network namespace
//! the benchmark makes (and removes), measuring the first full write and the time from an
//! endpoint change to the kernel holding the new rules (recompute, diff, one `nft` transaction —
//! what the proxy's loop does after a watch event; the watch delivery itself is not included).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::model::{Endpoint, PortId, Protocol, ServicePort};
use crate::nft::{self, Netfilter, Nft};
use crate::rules::{self, NodeContext};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Service counts to program, one run each.
    pub services: Vec<usize>,
    pub endpoints_per_service: usize,
    /// Endpoint changes timed per run.
    pub changes: usize,
}

/// The benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("making network namespace {name} (needs root and iproute2)")]
    Netns {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ip netns add {0} failed")]
    NetnsFailed(String),
    #[error("writing the rules")]
    Apply(#[source] nft::NftError),
}

/// A network namespace of the benchmark's own, removed when dropped.
struct Netns(String);

impl Netns {
    fn new() -> Result<Netns, BenchError> {
        let name = format!("oxk-bench-{}", std::process::id());
        let status = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .map_err(|source| BenchError::Netns {
                name: name.clone(),
                source,
            })?;
        if !status.success() {
            return Err(BenchError::NetnsFailed(name));
        }
        Ok(Netns(name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

fn ip(base: u32, i: usize) -> Ipv4Addr {
    Ipv4Addr::from(base + u32::try_from(i).unwrap_or(u32::MAX - base))
}

/// `n` services of one TCP port each, `m` endpoints each (every tenth a NodePort).
fn world(n: usize, m: usize) -> Vec<(ServicePort, Vec<Endpoint>)> {
    let services = u32::from(Ipv4Addr::new(10, 96, 0, 0)) + 100;
    let pods = u32::from(Ipv4Addr::new(10, 42, 0, 0)) + 10;
    (0..n)
        .map(|i| {
            let port = ServicePort {
                id: PortId {
                    namespace: format!("ns{}", i % 50),
                    name: format!("svc-{i}"),
                    protocol: Protocol::Tcp,
                    port_name: "http".into(),
                },
                cluster_ip: ip(services, i),
                port: 80,
                node_port: (i % 10 == 0).then(|| 30000 + u16::try_from(i / 10 % 2700).unwrap_or(0)),
                external_ips: Vec::new(),
                affinity_seconds: None,
                external_local: false,
                internal_local: false,
            };
            let eps = (0..m)
                .map(|j| Endpoint {
                    ip: ip(pods, i * m + j),
                    port: 8080,
                    ready: true,
                    serving: true,
                    terminating: false,
                    node: Some(format!("node-{}", j % 3)),
                })
                .collect();
            (port, eps)
        })
        .collect()
}

fn compute(node: &NodeContext, w: &[(ServicePort, Vec<Endpoint>)]) -> rules::Ruleset {
    rules::compute(node, w.iter().map(|(p, e)| (p, e.as_slice())))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs every configured size and returns the report.
pub fn run(options: &BenchOptions) -> Result<String, BenchError> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "proxy: nftables in a private network namespace, {} endpoints per service, {} endpoint changes timed",
        options.endpoints_per_service, options.changes
    );
    let _ = writeln!(
        out,
        "| services | rules compute | first write (nft) | script | change → live p50 | p99 | max | of which nft p50 |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    for &n in &options.services {
        let netns = Netns::new()?;
        let nft = Nft {
            netns: Some(netns.0.clone()),
        };
        let node = NodeContext {
            name: "node-0".into(),
            pod_cidr: Some("10.42.0.0/24".into()),
            cluster_pod_cidrs: vec!["10.42.0.0/24".into()],
        };
        let mut w = world(n, options.endpoints_per_service);
        let started = Instant::now();
        let mut applied = compute(&node, &w);
        let compute_time = started.elapsed();
        let script = nft::full(&applied);
        if let Ok(dir) = std::env::var("OXKUBE_BENCH_DUMP") {
            let _ = std::fs::write(format!("{dir}/full-{n}.nft"), &script);
            continue;
        }
        let started = Instant::now();
        nft.apply(&script).map_err(BenchError::Apply)?;
        let write_time = started.elapsed();

        let mut latencies = Vec::with_capacity(options.changes);
        let mut kernel = Vec::with_capacity(options.changes);
        for k in 0..options.changes {
            // One endpoint of one service changes address (a pod replaced).
            let s = (k * 7919) % w.len().max(1);
            if let Some((_, eps)) = w.get_mut(s)
                && let Some(ep) = eps.first_mut()
            {
                ep.ip = ip(u32::from(Ipv4Addr::new(10, 43, 0, 0)), k);
            }
            let started = Instant::now();
            let next = compute(&node, &w);
            let change = nft::diff(&applied, &next);
            let writing = Instant::now();
            nft.apply(&change).map_err(BenchError::Apply)?;
            kernel.push(writing.elapsed());
            latencies.push(started.elapsed());
            applied = next;
        }
        latencies.sort();
        kernel.sort();
        let _ = writeln!(
            out,
            "| {n} | {} | {} | {} KiB | {} | {} | {} | {} |",
            ms(compute_time),
            ms(write_time),
            script.len() / 1024,
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies.last().copied().unwrap_or_default()),
            ms(percentile(&kernel, 0.5)),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synthetic_world_has_what_was_asked_and_no_dangling_chains() {
        let w = world(30, 4);
        assert_eq!(w.len(), 30);
        assert!(w.iter().all(|(_, e)| e.len() == 4));
        let node = NodeContext {
            name: "node-0".into(),
            pod_cidr: None,
            cluster_pod_cidrs: Vec::new(),
        };
        let r = compute(&node, &w);
        assert!(rules::dangling_references(&r).is_empty());
        // No chain per service: two shared balancers (cluster IPs, node ports) of four endpoints,
        // and the endpoints as map elements.
        let balancers: Vec<&String> = r
            .chains
            .keys()
            .filter(|c| c.starts_with("balance-"))
            .collect();
        assert_eq!(
            balancers,
            vec![
                "balance-nodeport-endpoints-tcp-4",
                "balance-vip-endpoints-tcp-4"
            ]
        );
        assert!(!r.chains.keys().any(|c| c.contains("/svc-")));
        assert_eq!(r.collections["vip-endpoints-tcp"].elements.len(), 120);
        assert_eq!(r.collections["nodeport-endpoints-tcp"].elements.len(), 12);
    }

    #[test]
    fn percentiles_pick_by_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&d, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
