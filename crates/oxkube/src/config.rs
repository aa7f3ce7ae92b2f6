//! Command-line flags, parsed into a typed configuration and validated before anything happens. A bad
//! flag exits with status 64 (EX_USAGE) and a message.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// EX_USAGE from sysexits.h.
const EXIT_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(name = "oxkube", version, about = "Kubernetes in one binary")]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Run the control plane on this machine.
    Server(ServerArgs),
    /// Run a node that joins the cluster at --server.
    Agent(AgentArgs),
    /// Measure a component against its anchor and print the figures.
    #[command(subcommand)]
    Bench(BenchArgs),
    /// Explain why a pod is pending: per node, which plugin rejected it, and the scores.
    WhyPending(WhyPendingArgs),
    /// Build OCI images without a registry and import them into a node's containerd.
    #[command(subcommand)]
    Image(ImageArgs),
}

#[derive(Debug, Subcommand)]
enum ImageArgs {
    /// Build a deterministic OCI image-layout tar from a root filesystem directory.
    Build(ImageBuildArgs),
    /// Import an OCI image-layout tar into the node's containerd (namespace k8s.io).
    Import(ImageImportArgs),
}

#[derive(Debug, Args)]
struct ImageBuildArgs {
    /// The directory that becomes the image's root filesystem.
    #[arg(long)]
    rootfs: PathBuf,
    /// The entrypoint as a JSON array, e.g. '["sh"]'.
    #[arg(long, default_value = "[]")]
    entrypoint: String,
    /// The default arguments as a JSON array.
    #[arg(long, default_value = "[]")]
    cmd: String,
    /// The image's domain-qualified name with a tag, e.g. oxkube.local/busybox:1.35.
    #[arg(short = 't', long = "tag")]
    tag: String,
    /// Where the tar goes.
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

#[derive(Debug, Args)]
struct ImageImportArgs {
    /// The OCI image-layout tar.
    file: PathBuf,
    /// The node's data directory (its containerd socket is `<dir>/containerd/containerd.sock`).
    #[arg(long, default_value = "/var/lib/oxkube")]
    data_dir: PathBuf,
    /// An existing CRI runtime's containerd socket instead.
    #[arg(long)]
    container_runtime_endpoint: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct WhyPendingArgs {
    /// The pending pod's name.
    pod: String,
    /// The pod's namespace.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// The server's data directory (where the scheduler writes its address).
    #[arg(long, default_value = "/var/lib/oxkube")]
    data_dir: PathBuf,
    /// Print the explanation as JSON instead of text.
    #[arg(short = 'o', long, value_parser = ["text", "json"], default_value = "text")]
    output: String,
}

#[derive(Debug, Args)]
struct AgentArgs {
    /// The API server's URL, e.g. https://10.0.0.1:6443.
    #[arg(long)]
    server: String,
    /// The join token from the server's `<data-dir>/node-token`.
    #[arg(long)]
    token: String,
    /// Where the node keeps its state.
    #[arg(long, default_value = "/var/lib/oxkube-agent")]
    data_dir: PathBuf,
    /// The node's name (default: the host name); hollow nodes are `<name>-hollow-<i>`.
    #[arg(long)]
    node_name: Option<String>,
    /// Run this many simulated nodes over an in-memory runtime instead of a real node.
    #[arg(long)]
    hollow: Option<usize>,
    /// How long a hollow node's container takes to start, in milliseconds.
    #[arg(long, default_value_t = 0)]
    hollow_start_delay_ms: u64,
    /// Use the containerd at this socket instead of starting one.
    #[arg(long)]
    container_runtime_endpoint: Option<PathBuf>,
    /// Do not run the service proxy (nftables rules for Services, routes to other nodes' pods).
    #[arg(long)]
    disable_kube_proxy: bool,
    /// The cluster DNS Service's IP that pods resolve with (kubelet's flag).
    #[arg(long, default_value = "10.96.0.10")]
    cluster_dns: IpAddr,
    /// The cluster's DNS domain (kubelet's flag).
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Where the server keeps its state, certificates and kubeconfig.
    #[arg(long, default_value = "/var/lib/oxkube")]
    data_dir: PathBuf,
    /// Use etcd v3 at these comma-separated URLs instead of the embedded store.
    #[arg(long)]
    datastore_endpoint: Option<String>,
    /// How much store history to keep, in seconds (watches and reads further back get 410 Gone).
    #[arg(long, default_value_t = 300)]
    compaction_interval_seconds: u64,
    /// The address the API server listens on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// The HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// The IPv4 range Service cluster IPs come from.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cidr: String,
    /// Bearer tokens accepted besides client certificates (CSV: token,user,uid,"group1,group2").
    #[arg(long)]
    token_auth_file: Option<PathBuf>,
    /// Do not run a node on this machine.
    #[arg(long)]
    disable_agent: bool,
    /// Do not run the scheduler in this process.
    #[arg(long)]
    disable_scheduler: bool,
    /// Take the `kube-system/oxkube-controller-manager` Lease before running controllers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    leader_elect: bool,
    /// Silence (Lease and status) before a node turns Ready=Unknown and is tainted ("40s", "2m").
    #[arg(long, default_value = "40s")]
    node_monitor_grace_period: String,
    /// The pod IP range; each node gets a /24 of it as spec.podCIDR.
    #[arg(long, default_value = "10.42.0.0/16")]
    cluster_cidr: String,
    /// The name of this machine's node (default: the host name).
    #[arg(long)]
    node_name: Option<String>,
    /// Use the containerd at this socket for the node instead of starting one.
    #[arg(long)]
    container_runtime_endpoint: Option<PathBuf>,
    /// Do not run the service proxy with this machine's node.
    #[arg(long)]
    disable_kube_proxy: bool,
    /// The cluster DNS Service's IP (in --service-cidr): the kube-dns Service's and what pods resolve with.
    #[arg(long, default_value = "10.96.0.10")]
    cluster_dns: IpAddr,
    /// The cluster's DNS domain (kubelet's flag).
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// Do not run the cluster DNS in this process.
    #[arg(long)]
    disable_dns: bool,
}

#[derive(Debug, Subcommand)]
enum BenchArgs {
    /// The embedded store next to a real etcd started on loopback.
    Store(StoreBenchArgs),
    /// The API server binary, measured from outside over HTTPS and HTTP/2 on loopback.
    Api(ApiBenchArgs),
    /// The scheduler in-process (fake binder): upstream scheduler_perf's workloads.
    Scheduler(SchedulerBenchArgs),
    /// The service proxy's rule writes into nftables of a private network namespace.
    Proxy(ProxyBenchArgs),
    /// The cluster DNS's UDP queries/s on loopback, against a single-threaded baseline.
    Dns(DnsBenchArgs),
}

#[derive(Debug, Args)]
struct ProxyBenchArgs {
    /// Service counts, one run each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    services: Vec<usize>,
    /// Endpoints per service.
    #[arg(long, default_value_t = 10)]
    endpoints: usize,
    /// Endpoint changes timed per run.
    #[arg(long, default_value_t = 200)]
    changes: usize,
}

#[derive(Debug, Args)]
struct DnsBenchArgs {
    /// Services in the record table.
    #[arg(long, default_value_t = 1000)]
    services: usize,
    /// Concurrent UDP clients, one query in flight each.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Queries per run.
    #[arg(long, default_value_t = 200_000)]
    queries: usize,
}

#[derive(Debug, Args)]
struct SchedulerBenchArgs {
    /// Nodes of every workload but PreemptionBasic.
    #[arg(long, default_value_t = 5000)]
    nodes: usize,
    /// Pods of SchedulingBasic and NodeAffinity (the other workloads scale from it and --nodes).
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    /// Nodes of PreemptionBasic.
    #[arg(long, default_value_t = 500)]
    preemption_nodes: usize,
}

#[derive(Debug, Args)]
struct ApiBenchArgs {
    /// Pods created by the throughput run (and listed by the list test).
    #[arg(long, default_value_t = 10000)]
    pods: usize,
    /// Concurrent HTTP/2 clients, one connection and one request in flight each.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Creates per second of the paced latency run.
    #[arg(long, default_value_t = 1000)]
    paced_rate: u32,
    /// Seconds the paced latency run lasts.
    #[arg(long, default_value_t = 3)]
    paced_seconds: u64,
    /// Single-pod GETs.
    #[arg(long, default_value_t = 10000)]
    gets: usize,
    /// Full LISTs of the pods.
    #[arg(long, default_value_t = 10)]
    lists: usize,
    /// Writes delivered to the single watcher.
    #[arg(long, default_value_t = 10000)]
    watch_events: usize,
    /// Watchers of the fan-out test.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Writes delivered to each watcher of the fan-out test.
    #[arg(long, default_value_t = 2000)]
    fanout_events: usize,
    /// Where the server keeps its data (a fresh temporary directory by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct StoreBenchArgs {
    /// Sequential durable writes per backend.
    #[arg(long, default_value_t = 2000)]
    sequential: usize,
    /// Writes per backend spread over the concurrent writers.
    #[arg(long, default_value_t = 20000)]
    concurrent: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    writers: usize,
    /// Keys read by the range test.
    #[arg(long, default_value_t = 10000)]
    range_keys: usize,
    /// Events delivered by the watch test.
    #[arg(long, default_value_t = 100000)]
    watch_events: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 512)]
    value_size: usize,
    /// Keys in the store whose opening time is measured.
    #[arg(long, default_value_t = 100000)]
    open_keys: usize,
    /// Where to put both stores' data (a fresh temporary directory by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The whole validated configuration.
#[derive(Debug)]
pub struct Config {
    pub command: Command,
}

#[derive(Debug)]
pub enum Command {
    Server(ServerConfig),
    Agent(AgentConfig),
    Bench(BenchTarget),
    WhyPending(WhyPendingConfig),
    Image(ImageCommand),
}

/// What `oxkube image` does.
#[derive(Debug)]
pub enum ImageCommand {
    Build {
        rootfs: PathBuf,
        config: oxkube_cri::image::ImageConfig,
        output: PathBuf,
    },
    Import {
        file: PathBuf,
        socket: PathBuf,
    },
}

/// What kind of node an agent runs.
#[derive(Debug)]
pub enum AgentNode {
    Hollow(oxkube_kubelet::hollow::HollowConfig),
    Real {
        node: oxkube_cri::node::NodeOptions,
        run_proxy: bool,
    },
}

#[derive(Debug)]
pub struct WhyPendingConfig {
    pub namespace: String,
    pub pod: String,
    pub data_dir: PathBuf,
    pub json: bool,
}

#[derive(Debug)]
pub struct AgentConfig {
    pub server: http::Uri,
    pub token: oxkube_kubelet::join::JoinToken,
    pub data_dir: PathBuf,
    pub node: AgentNode,
}

#[derive(Debug)]
pub enum BenchTarget {
    Store(oxkube_store::bench::BenchOptions),
    Api(oxkube_apiserver::bench::BenchOptions),
    Scheduler(oxkube_scheduler::bench::BenchOptions),
    Proxy(oxkube_proxy::bench::BenchOptions),
    Dns(oxkube_dns::bench::Options),
}

/// Which store backend the server uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    Embedded,
    Etcd { endpoints: String },
}

#[derive(Debug)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    pub store: StoreBackend,
    pub compaction_window: Duration,
    pub api: oxkube_apiserver::Config,
    pub run_agent: bool,
    /// Whether the node runs the service proxy (only with `run_agent`).
    pub run_proxy: bool,
    pub run_scheduler: bool,
    pub leader_elect: bool,
    pub tuning: oxkube_controllers::Tuning,
    /// The node this machine runs when `run_agent`.
    pub node: oxkube_cri::node::NodeOptions,
    /// The cluster DNS's Service IP and domain, unless `--disable-dns`.
    pub dns: Option<DnsConfig>,
}

/// The in-process cluster DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    pub service_ip: IpAddr,
    pub domain: String,
}

/// A flag that parsed but makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--datastore-endpoint {0:?}: each endpoint must be an http:// or https:// URL")]
    Endpoint(String),
    #[error("--data-dir must not be empty")]
    DataDir,
    #[error("--compaction-interval-seconds must be at least 1")]
    Compaction,
    #[error("--service-cidr: {0}")]
    ServiceCidr(#[from] oxkube_apiserver::alloc::CidrError),
    #[error("--cluster-cidr: {0}")]
    ClusterCidr(#[from] oxkube_controllers::node_lifecycle::CidrError),
    #[error("--node-monitor-grace-period {0:?}: want a duration such as 40s or 2m")]
    GracePeriod(String),
    #[error("--token-auth-file {0}: no such file")]
    TokenFile(PathBuf),
    #[error("bench: {0} must be at least 1")]
    BenchCount(&'static str),
    #[error("--server {0:?}: must be an https:// URL with a host")]
    Server(String),
    #[error("--token: {0}")]
    Token(#[from] oxkube_kubelet::join::TokenError),
    #[error("--node-name {0:?}: must be a lowercase DNS name (a-z, 0-9, '-', '.')")]
    NodeName(String),
    #[error("--cluster-domain {0:?}: must be a lowercase DNS name")]
    ClusterDomain(String),
    #[error("--cluster-dns {ip}: must be an IPv4 address in --service-cidr {cidr}")]
    ClusterDns { ip: IpAddr, cidr: String },
    #[error("cannot read this machine's host name for the node name; pass --node-name")]
    Hostname(#[source] std::io::Error),
    #[error("--hollow must be between 1 and {max}", max = oxkube_kubelet::hollow::MAX_NODES)]
    HollowCount,
    #[error("--{flag} {value:?}: must be a JSON array of strings")]
    JsonArray { flag: &'static str, value: String },
    #[error("-t {0:?}: must be a domain-qualified name with a tag, e.g. oxkube.local/busybox:1.35")]
    ImageName(String),
}

/// `--cluster-domain` without a trailing dot, checked.
fn cluster_domain(domain: &str) -> Result<String, ConfigError> {
    let trimmed = domain.trim_end_matches('.');
    match dns_name(trimmed) {
        true => Ok(trimmed.to_string()),
        false => Err(ConfigError::ClusterDomain(domain.to_string())),
    }
}

fn dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 230
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.'])
}

fn validate_agent(a: AgentArgs) -> Result<AgentConfig, ConfigError> {
    let server: http::Uri = a
        .server
        .parse()
        .map_err(|_| ConfigError::Server(a.server.clone()))?;
    if server.scheme_str() != Some("https") || server.host().is_none() {
        return Err(ConfigError::Server(a.server));
    }
    let token = a.token.parse()?;
    if a.data_dir.as_os_str().is_empty() {
        return Err(ConfigError::DataDir);
    }
    let name = match a.node_name {
        Some(n) => n,
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_err(ConfigError::Hostname)?
            .trim()
            .to_ascii_lowercase(),
    };
    if !dns_name(&name) {
        return Err(ConfigError::NodeName(name));
    }
    let node = match a.hollow {
        Some(count) => {
            if count == 0 || count > oxkube_kubelet::hollow::MAX_NODES {
                return Err(ConfigError::HollowCount);
            }
            AgentNode::Hollow(oxkube_kubelet::hollow::HollowConfig {
                prefix: name,
                count,
                start_delay: Duration::from_millis(a.hollow_start_delay_ms),
            })
        }
        None => AgentNode::Real {
            node: oxkube_cri::node::NodeOptions {
                data_dir: a.data_dir.clone(),
                node_name: Some(name),
                runtime_endpoint: a.container_runtime_endpoint,
                cluster_dns: vec![a.cluster_dns.to_string()],
                cluster_domain: cluster_domain(&a.cluster_domain)?,
            },
            run_proxy: !a.disable_kube_proxy,
        },
    };
    Ok(AgentConfig {
        server,
        token,
        data_dir: a.data_dir,
        node,
    })
}

fn validate_server(a: ServerArgs) -> Result<ServerConfig, ConfigError> {
    if a.data_dir.as_os_str().is_empty() {
        return Err(ConfigError::DataDir);
    }
    if a.compaction_interval_seconds == 0 {
        return Err(ConfigError::Compaction);
    }
    let store = match a.datastore_endpoint {
        None => StoreBackend::Embedded,
        Some(endpoints) => {
            let ok = endpoints.split(',').map(str::trim).all(|e| {
                let rest = e
                    .strip_prefix("http://")
                    .or_else(|| e.strip_prefix("https://"));
                rest.is_some_and(|host| !host.is_empty())
            });
            if !ok {
                return Err(ConfigError::Endpoint(endpoints));
            }
            StoreBackend::Etcd { endpoints }
        }
    };
    if let Some(path) = &a.token_auth_file
        && !path.is_file()
    {
        return Err(ConfigError::TokenFile(path.clone()));
    }
    let compaction_window = Duration::from_secs(a.compaction_interval_seconds);
    let api = oxkube_apiserver::Config {
        data_dir: a.data_dir.clone(),
        bind_address: a.bind_address,
        secure_port: a.secure_port,
        service_cidr: a.service_cidr.parse()?,
        token_auth_file: a.token_auth_file,
        history: compaction_window,
        drain: Duration::from_secs(10),
    };
    if let Some(name) = &a.node_name
        && !dns_name(name)
    {
        return Err(ConfigError::NodeName(name.clone()));
    }
    let domain = cluster_domain(&a.cluster_domain)?;
    let in_range = match a.cluster_dns {
        IpAddr::V4(v4) => api.service_cidr.contains(v4),
        IpAddr::V6(_) => false,
    };
    if !in_range {
        return Err(ConfigError::ClusterDns {
            ip: a.cluster_dns,
            cidr: api.service_cidr.to_string(),
        });
    }
    let node = oxkube_cri::node::NodeOptions {
        data_dir: a.data_dir.clone(),
        node_name: a.node_name,
        runtime_endpoint: a.container_runtime_endpoint,
        cluster_dns: vec![a.cluster_dns.to_string()],
        cluster_domain: domain.clone(),
    };
    let dns = (!a.disable_dns).then_some(DnsConfig {
        service_ip: a.cluster_dns,
        domain,
    });
    Ok(ServerConfig {
        node,
        dns,
        data_dir: a.data_dir,
        store,
        compaction_window,
        api,
        run_agent: !a.disable_agent,
        run_proxy: !a.disable_agent && !a.disable_kube_proxy,
        run_scheduler: !a.disable_scheduler,
        leader_elect: a.leader_elect,
        tuning: oxkube_controllers::Tuning {
            node_monitor_grace_period: grace_period(&a.node_monitor_grace_period)?,
            cluster_cidr: oxkube_controllers::node_lifecycle::parse_cidr(&a.cluster_cidr)?,
            ..Default::default()
        },
    })
}

/// A Go-style duration of whole seconds or minutes ("40s", "2m").
fn grace_period(s: &str) -> Result<Duration, ConfigError> {
    let err = || ConfigError::GracePeriod(s.to_string());
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = num.parse().map_err(|_| err())?;
    match unit {
        "s" if n > 0 => Ok(Duration::from_secs(n)),
        "m" if n > 0 => Ok(Duration::from_secs(n * 60)),
        _ => Err(err()),
    }
}

fn validate_store_bench(
    a: StoreBenchArgs,
) -> Result<oxkube_store::bench::BenchOptions, ConfigError> {
    let counts = [
        ("--sequential", a.sequential),
        ("--concurrent", a.concurrent),
        ("--writers", a.writers),
        ("--range-keys", a.range_keys),
        ("--watch-events", a.watch_events),
        ("--open-keys", a.open_keys),
    ];
    if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
        return Err(ConfigError::BenchCount(name));
    }
    Ok(oxkube_store::bench::BenchOptions {
        sequential: a.sequential,
        concurrent: a.concurrent,
        writers: a.writers,
        range_keys: a.range_keys,
        watch_events: a.watch_events,
        value_size: a.value_size,
        open_keys: a.open_keys,
        dir: a.dir,
    })
}

fn validate_api_bench(
    a: ApiBenchArgs,
) -> Result<oxkube_apiserver::bench::BenchOptions, ConfigError> {
    let counts = [
        ("--pods", a.pods),
        ("--clients", a.clients),
        ("--paced-rate", a.paced_rate as usize),
        ("--paced-seconds", a.paced_seconds as usize),
        ("--gets", a.gets),
        ("--lists", a.lists),
        ("--watch-events", a.watch_events),
        ("--watchers", a.watchers),
        ("--fanout-events", a.fanout_events),
    ];
    if let Some((name, _)) = counts.iter().find(|(_, n)| *n == 0) {
        return Err(ConfigError::BenchCount(name));
    }
    Ok(oxkube_apiserver::bench::BenchOptions {
        pods: a.pods,
        clients: a.clients,
        paced_rate: a.paced_rate,
        paced_seconds: a.paced_seconds,
        gets: a.gets,
        lists: a.lists,
        watch_events: a.watch_events,
        watchers: a.watchers,
        fanout_events: a.fanout_events,
        dir: a.dir,
        binary: None,
    })
}

fn json_array(flag: &'static str, value: String) -> Result<Vec<String>, ConfigError> {
    serde_json::from_str(&value).map_err(|_| ConfigError::JsonArray { flag, value })
}

fn validate_image(a: ImageArgs) -> Result<ImageCommand, ConfigError> {
    Ok(match a {
        ImageArgs::Build(b) => {
            let config = oxkube_cri::image::ImageConfig {
                entrypoint: json_array("entrypoint", b.entrypoint)?,
                cmd: json_array("cmd", b.cmd)?,
                name: b.tag,
            };
            if !oxkube_cri::image::valid_name(&config.name) {
                return Err(ConfigError::ImageName(config.name));
            }
            if b.rootfs.as_os_str().is_empty() {
                return Err(ConfigError::DataDir);
            }
            ImageCommand::Build {
                rootfs: b.rootfs,
                config,
                output: b.output,
            }
        }
        ImageArgs::Import(i) => ImageCommand::Import {
            socket: i
                .container_runtime_endpoint
                .unwrap_or_else(|| oxkube_cri::containerd::Paths::new(&i.data_dir).socket),
            file: i.file,
        },
    })
}

fn validate(cli: Cli) -> Result<Config, ConfigError> {
    let command = match cli.command {
        CliCommand::Server(a) => Command::Server(validate_server(a)?),
        CliCommand::Agent(a) => Command::Agent(validate_agent(a)?),
        CliCommand::Image(a) => Command::Image(validate_image(a)?),
        CliCommand::Bench(BenchArgs::Store(a)) => {
            Command::Bench(BenchTarget::Store(validate_store_bench(a)?))
        }
        CliCommand::Bench(BenchArgs::Api(a)) => {
            Command::Bench(BenchTarget::Api(validate_api_bench(a)?))
        }
        CliCommand::Bench(BenchArgs::Scheduler(a)) => {
            if let Some((name, _)) = [
                ("--nodes", a.nodes),
                ("--pods", a.pods),
                ("--preemption-nodes", a.preemption_nodes),
            ]
            .into_iter()
            .find(|(_, n)| *n == 0)
            {
                return Err(ConfigError::BenchCount(name));
            }
            Command::Bench(BenchTarget::Scheduler(
                oxkube_scheduler::bench::BenchOptions {
                    nodes: a.nodes,
                    pods: a.pods,
                    preemption_nodes: a.preemption_nodes,
                },
            ))
        }
        CliCommand::Bench(BenchArgs::Proxy(a)) => {
            if a.services.contains(&0) || a.services.is_empty() {
                return Err(ConfigError::BenchCount("--services"));
            }
            if a.endpoints == 0 {
                return Err(ConfigError::BenchCount("--endpoints"));
            }
            if a.changes == 0 {
                return Err(ConfigError::BenchCount("--changes"));
            }
            Command::Bench(BenchTarget::Proxy(oxkube_proxy::bench::BenchOptions {
                services: a.services,
                endpoints_per_service: a.endpoints,
                changes: a.changes,
            }))
        }
        CliCommand::Bench(BenchArgs::Dns(a)) => {
            if let Some((name, _)) = [
                ("--services", a.services),
                ("--clients", a.clients),
                ("--queries", a.queries),
            ]
            .into_iter()
            .find(|(_, n)| *n == 0)
            {
                return Err(ConfigError::BenchCount(name));
            }
            Command::Bench(BenchTarget::Dns(oxkube_dns::bench::Options {
                services: a.services,
                clients: a.clients,
                queries: a.queries,
            }))
        }
        CliCommand::WhyPending(a) => Command::WhyPending(WhyPendingConfig {
            namespace: a.namespace,
            pod: a.pod,
            data_dir: a.data_dir,
            json: a.output == "json",
        }),
    };
    Ok(Config { command })
}

/// Parses and validates the command line; on failure returns the exit code after printing why.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Config, ExitCode> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Err(if e.use_stderr() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    validate(cli).map_err(|e| {
        eprintln!("oxkube: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn server_flags_become_a_typed_config() {
        let config = parse(args(
            "oxkube server --data-dir /tmp/x --datastore-endpoint http://127.0.0.1:2379",
        ))
        .expect("valid");
        let Command::Server(s) = config.command else {
            panic!("not a server config")
        };
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        let dns = s.dns.as_ref().expect("DNS on by default");
        assert_eq!(dns.service_ip.to_string(), "10.96.0.10");
        assert_eq!(dns.domain, "cluster.local");
        assert_eq!(s.node.cluster_dns, vec!["10.96.0.10"]);
        assert_eq!(s.node.cluster_domain, "cluster.local");
        let Command::Server(other) = parse(args(
            "oxkube server --disable-dns --cluster-dns 10.43.0.10 --service-cidr 10.43.0.0/16 --cluster-domain corp.",
        ))
        .expect("valid")
        .command
        else {
            panic!("not a server config")
        };
        assert_eq!(other.dns, None);
        assert_eq!(other.node.cluster_dns, vec!["10.43.0.10"]);
        assert_eq!(other.node.cluster_domain, "corp");
        assert_eq!(
            s.store,
            StoreBackend::Etcd {
                endpoints: "http://127.0.0.1:2379".into()
            }
        );
    }

    #[test]
    fn agent_flags_become_a_typed_config() {
        let token = format!("K10{}::server:secret", "0f".repeat(32));
        let line = format!(
            "oxkube agent --server https://10.0.0.1:6443 --token {token} --node-name box --hollow 3"
        );
        let config = parse(args(&line)).expect("valid");
        let Command::Agent(a) = config.command else {
            panic!("not an agent config")
        };
        assert_eq!(a.server.host(), Some("10.0.0.1"));
        let AgentNode::Hollow(hollow) = a.node else {
            panic!("not hollow")
        };
        assert_eq!(hollow.prefix, "box");
        assert_eq!(hollow.count, 3);
        let real = format!(
            "oxkube agent --server https://h --token {token} --data-dir /d --node-name box"
        );
        let Command::Agent(a) = parse(args(&real)).expect("valid").command else {
            panic!("not an agent config")
        };
        let AgentNode::Real { node, run_proxy } = a.node else {
            panic!("not a real node")
        };
        assert_eq!(node.node_name.as_deref(), Some("box"));
        assert_eq!(node.data_dir, PathBuf::from("/d"));
        assert_eq!(node.cluster_dns, vec!["10.96.0.10"]);
        assert_eq!(node.cluster_domain, "cluster.local");
        assert!(run_proxy);
        let Command::Agent(a) = parse(args(&format!("{real} --disable-kube-proxy")))
            .expect("valid")
            .command
        else {
            panic!("not an agent config")
        };
        assert!(matches!(
            a.node,
            AgentNode::Real {
                run_proxy: false,
                ..
            }
        ));
        for bad in [
            format!("oxkube agent --server https://h --token {token} --hollow 0"),
            format!("oxkube agent --server https://h --token {token} --node-name Box --hollow 1"),
            format!("oxkube agent --server https://h --token {token} --node-name Box"),
        ] {
            assert_eq!(parse(args(&bad)).err(), Some(ExitCode::from(64)), "{bad}");
        }
    }

    #[test]
    fn image_commands_become_typed() {
        let line =
            "oxkube image build --rootfs /r --entrypoint [\"sh\"] -t oxkube.local/b:1 -o /o.tar";
        let Command::Image(ImageCommand::Build { config, output, .. }) =
            parse(args(line)).expect("valid").command
        else {
            panic!("not an image build")
        };
        assert_eq!(config.entrypoint, vec!["sh"]);
        assert_eq!(output, PathBuf::from("/o.tar"));
        let Command::Image(ImageCommand::Import { socket, .. }) =
            parse(args("oxkube image import /x.tar --data-dir /d"))
                .expect("valid")
                .command
        else {
            panic!("not an image import")
        };
        assert_eq!(socket, PathBuf::from("/d/containerd/containerd.sock"));
    }

    #[test]
    fn bad_flags_exit_64() {
        for line in [
            "oxkube server --compaction-interval-seconds 0",
            "oxkube server --datastore-endpoint 127.0.0.1:2379",
            "oxkube server --no-such-flag",
            "oxkube server --service-cidr 10.0.0.0",
            "oxkube server --secure-port 70000",
            "oxkube server --bind-address nowhere",
            "oxkube server --token-auth-file /no/such/file",
            "oxkube server --cluster-dns 10.97.0.10 --service-cidr 10.96.0.0/16",
            "oxkube server --cluster-dns fd00::10",
            "oxkube server --cluster-domain Bad_Domain",
            "oxkube bench dns --clients 0",
            "oxkube bench store --writers 0",
            "oxkube bench api --clients 0",
            "oxkube bench api --pods 0",
            "oxkube bench api --paced-rate -5",
            "oxkube bench scheduler --nodes 0",
            "oxkube why-pending",
            "oxkube why-pending p -o yaml",
            "oxkube agent --server https://h:6443 --token bad --hollow 1",
            "oxkube agent --server http://h:6443 --token K10x::server:s --hollow 1",
            "oxkube image build --rootfs /r -t busybox:1 -o /o.tar",
            "oxkube image build --rootfs /r --entrypoint sh -t oxkube.local/b:1 -o /o.tar",
            "oxkube server --node-name Big",
        ] {
            assert_eq!(parse(args(line)).err(), Some(ExitCode::from(64)), "{line}");
        }
    }
}
