//! The `oxkube` binary: parses flags into a validated config, then wires the components together.

mod config;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use oxkube_apiserver::ApiServer;
use oxkube_store::{Compactor, EmbeddedOptions, EmbeddedStore, EtcdStore, Store};

use crate::config::{
    AgentConfig, AgentNode, BenchTarget, Command, Config, ImageCommand, ServerConfig, StoreBackend,
};

fn main() -> ExitCode {
    let config = match config::parse(std::env::args_os()) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("oxkube: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oxkube: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    match config.command {
        Command::Server(server) => run_server(server).await,
        Command::Agent(agent) => run_agent(agent).await,
        Command::Bench(BenchTarget::Store(opts)) => {
            let report = oxkube_store::bench::run(&opts).await?;
            print!("{report}");
            Ok(())
        }
        Command::Image(ImageCommand::Build {
            rootfs,
            config,
            output,
        }) => {
            oxkube_cri::image::build_dir(&rootfs, &config, &output)?;
            println!("{}: {}", config.name, output.display());
            Ok(())
        }
        Command::Image(ImageCommand::Import { file, socket }) => {
            oxkube_cri::containerd::import(&socket, &file).await?;
            Ok(())
        }
        Command::Bench(BenchTarget::Api(opts)) => {
            let report = oxkube_apiserver::bench::run(&opts).await?;
            print!("{report}");
            Ok(())
        }
        Command::Bench(BenchTarget::Scheduler(opts)) => {
            let report = tokio::task::spawn_blocking(move || oxkube_scheduler::bench::run(&opts))
                .await
                .context("running the scheduler benchmark")?;
            print!("{report}");
            Ok(())
        }
        Command::Bench(BenchTarget::Proxy(opts)) => {
            let report = tokio::task::spawn_blocking(move || oxkube_proxy::bench::run(&opts))
                .await
                .context("running the proxy benchmark")??;
            print!("{report}");
            Ok(())
        }
        Command::Bench(BenchTarget::Dns(opts)) => {
            let report = tokio::task::spawn_blocking(move || oxkube_dns::bench::run(&opts))
                .await
                .context("running the DNS benchmark")??;
            print!("{report}");
            Ok(())
        }
        Command::WhyPending(w) => {
            let e = oxkube_scheduler::explain::query(&w.data_dir, &w.namespace, &w.pod).await?;
            if w.json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                print!("{}", oxkube_scheduler::schedule::render(&e));
            }
            Ok(())
        }
    }
}

async fn open_store(server: &ServerConfig) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &server.store {
        StoreBackend::Embedded => {
            let dir = server.data_dir.join("db");
            let store = EmbeddedStore::open(EmbeddedOptions::new(&dir))
                .with_context(|| format!("opening the embedded store in {}", dir.display()))?;
            Arc::new(store)
        }
        StoreBackend::Etcd { endpoints } => Arc::new(EtcdStore::connect(endpoints).await?),
    })
}

async fn run_server(server: ServerConfig) -> anyhow::Result<()> {
    // Installed first, so a SIGTERM during start-up still ends in a clean stop.
    let shutdown = ShutdownSignal::install()?;
    let store = open_store(&server).await?;
    let revision = store.current_revision().await?;
    tracing::info!(data_dir = %server.data_dir.display(), revision, "store open");
    let compactor = tokio::spawn(Compactor::new(store.clone(), server.compaction_window).run());
    let api = ApiServer::start(server.api, store.clone())
        .await
        .context("starting the API server")?;
    tracing::info!(address = %api.addr, kubeconfig = %api.kubeconfig.display(), "API server ready");
    println!("kubeconfig: {}", api.kubeconfig.display());
    let (stop_controllers, controllers_stopped) = tokio::sync::oneshot::channel::<()>();
    let controllers = tokio::spawn(run_controllers(
        api.kubeconfig.clone(),
        server.data_dir.join("tls/ca.crt"),
        server.leader_elect,
        server.tuning.clone(),
        async move {
            let _ = controllers_stopped.await;
        },
    ));
    let scheduler = match server.run_scheduler {
        true => Some(start_scheduler(&api.kubeconfig, &server.data_dir).await?),
        false => None,
    };
    let (stop_dns, dns_stopped) = tokio::sync::oneshot::channel::<()>();
    let dns = server.dns.clone().map(|dns| {
        let node_name = server
            .run_agent
            .then(|| server.node.node_name.clone())
            .flatten();
        tokio::spawn(run_dns(api.kubeconfig.clone(), dns, node_name, dns_stopped))
    });
    let (stop_node, node_stopped) = tokio::sync::oneshot::channel::<()>();
    let node = server.run_agent.then(|| {
        let kubeconfig = api.kubeconfig.clone();
        tokio::spawn(run_node(kubeconfig, server.node.clone(), node_stopped))
    });
    let (stop_proxy, proxy_stopped) = tokio::sync::oneshot::channel::<()>();
    let proxy = match server.run_proxy {
        true => {
            let client = admin_client(&api.kubeconfig).await?;
            let name = node_name(&server.node)?;
            Some(tokio::spawn(run_proxy(client, name, async {
                let _ = proxy_stopped.await;
            })))
        }
        false => None,
    };
    shutdown.wait().await;
    tracing::info!("shutting down");
    let _ = stop_node.send(());
    let _ = stop_proxy.send(());
    if let Some(node) = node {
        let _ = node.await;
    }
    if let Some(proxy) = proxy {
        let _ = proxy.await;
    }
    let _ = stop_dns.send(());
    if let Some(dns) = dns {
        let _ = dns.await;
    }
    if let Some((stop, task)) = scheduler {
        let _ = stop.send(());
        let _ = task.await;
    }
    let _ = stop_controllers.send(());
    // The controllers release the leader Lease on the way out; never wait long for that.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), controllers).await;
    api.stop().await;
    compactor.abort();
    drop(store);
    tracing::info!("stopped");
    Ok(())
}

/// A client acting as the admin user of the kubeconfig the API server wrote: how the in-process
/// control-plane components reach the API.
async fn admin_client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let file = Kubeconfig::read_from(kubeconfig).context("reading the admin kubeconfig")?;
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .context("loading the admin kubeconfig")?;
    kube::Client::try_from(config).context("building the admin client")
}

/// The in-process scheduler.
async fn start_scheduler(
    kubeconfig: &std::path::Path,
    data_dir: &std::path::Path,
) -> anyhow::Result<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let client = admin_client(kubeconfig).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let options = oxkube_scheduler::Options {
        profile: oxkube_scheduler::framework::Profile::default_profile(),
        data_dir: data_dir.to_path_buf(),
    };
    let task = tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        if let Err(e) = oxkube_scheduler::run(client, options, stopped).await {
            tracing::error!(error = %e, "the scheduler stopped");
        }
    });
    Ok((stop, task))
}

/// The controller-manager, in-process.
async fn run_controllers(
    kubeconfig: std::path::PathBuf,
    ca: std::path::PathBuf,
    leader_elect: bool,
    tuning: oxkube_controllers::Tuning,
    shutdown: impl Future<Output = ()> + Send,
) {
    let setup = async {
        let client = admin_client(&kubeconfig).await?;
        let root_ca =
            std::fs::read_to_string(&ca).with_context(|| format!("reading {}", ca.display()))?;
        anyhow::Ok((client, root_ca))
    };
    let (client, root_ca) = match setup.await {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("controller-manager not started: {e:#}");
            return;
        }
    };
    let identity = format!("oxkube_{}", uuid::Uuid::new_v4());
    let options = oxkube_controllers::Options {
        leader_elect,
        identity,
        root_ca,
        tuning,
    };
    if let Err(e) = oxkube_controllers::run(client, options, shutdown).await {
        tracing::error!("controller-manager stopped: {e:#}");
    }
}

async fn run_agent(agent: AgentConfig) -> anyhow::Result<()> {
    let shutdown = ShutdownSignal::install()?;
    tracing::info!(server = %agent.server, data_dir = %agent.data_dir.display(), "joining");
    let client_config = oxkube_kubelet::join::client_config(&agent.server, &agent.token)
        .await
        .context("joining the cluster")?;
    let client = kube::Client::try_from(client_config).context("building the API client")?;
    match agent.node {
        AgentNode::Hollow(hollow) => {
            oxkube_kubelet::hollow::run(client, hollow, shutdown.wait()).await?;
        }
        AgentNode::Real { node, run_proxy } => {
            use futures::FutureExt;
            let stop = shutdown.wait().shared();
            let proxy = match run_proxy {
                true => Some(tokio::spawn(self::run_proxy(
                    client.clone(),
                    node_name(&node)?,
                    stop.clone(),
                ))),
                false => None,
            };
            let result = oxkube_cri::node::run(client, node, stop).await;
            if let Some(proxy) = proxy {
                let _ = proxy.await;
            }
            result?;
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// The server's own node, with the admin credentials, until `stop`; a failure is logged and leaves
/// the control plane running.
async fn run_node(
    kubeconfig: std::path::PathBuf,
    node: oxkube_cri::node::NodeOptions,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let result = match admin_client(&kubeconfig).await {
        Ok(client) => oxkube_cri::node::run(client, node, async {
            let _ = stop.await;
        })
        .await
        .map_err(anyhow::Error::from),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::error!(error = %format!("{e:#}"), "the node agent stopped; the control plane keeps running");
    }
}

/// The name the node registers under (the flag, else the host name).
fn node_name(node: &oxkube_cri::node::NodeOptions) -> anyhow::Result<String> {
    Ok(oxkube_cri::host::facts(node.node_name.clone())
        .context("reading the host's facts")?
        .name)
}

/// The service proxy of this machine's node, on this network namespace's nftables and routes,
/// until `stop`; a failure is logged and leaves the rest running.
async fn run_proxy(
    client: kube::Client,
    node_name: String,
    stop: impl Future<Output = ()> + Send + 'static,
) {
    let options = oxkube_proxy::Options {
        node_name,
        settle: std::time::Duration::from_millis(5),
    };
    let result = oxkube_proxy::run(client, options, oxkube_proxy::Kernel::host(), stop).await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the service proxy stopped");
    }
}

/// The cluster DNS on this machine's node address, port 53, until `stop`; a failure (e.g. the
/// port is taken) is logged and leaves the rest running.
async fn run_dns(
    kubeconfig: std::path::PathBuf,
    dns: config::DnsConfig,
    node_name: Option<String>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let result = async {
        let client = admin_client(&kubeconfig).await?;
        let listen_ip: std::net::IpAddr = oxkube_cri::host::default_ip()
            .parse()
            .context("the node's address")?;
        let options = oxkube_dns::Options {
            domain: dns.domain,
            service_ip: dns.service_ip,
            listen_ip,
            port: 53,
            resolv_conf: "/etc/resolv.conf".into(),
            node_name,
        };
        oxkube_dns::run(client, options, async {
            let _ = stop.await;
        })
        .await
        .map_err(anyhow::Error::from)
    };
    if let Err(e) = result.await {
        tracing::error!(error = %format!("{e:#}"), "the cluster DNS is not running; the rest keeps running");
    }
}

/// SIGTERM and SIGINT, caught from the moment it is installed.
struct ShutdownSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(ShutdownSignal {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Resolves on the first of them.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
