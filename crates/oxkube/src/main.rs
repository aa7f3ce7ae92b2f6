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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
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
    let (stop_node, node_stopped) = tokio::sync::oneshot::channel::<()>();
    let node = server.run_agent.then(|| {
        let kubeconfig = api.kubeconfig.clone();
        tokio::spawn(run_node(kubeconfig, server.node.clone(), node_stopped))
    });
    shutdown.wait().await;
    tracing::info!("shutting down");
    let _ = stop_node.send(());
    if let Some(node) = node {
        let _ = node.await;
    }
    api.stop().await;
    compactor.abort();
    drop(store);
    tracing::info!("stopped");
    Ok(())
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
        AgentNode::Real(node) => oxkube_cri::node::run(client, node, shutdown.wait()).await?,
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
    let client = async {
        let file = kube::config::Kubeconfig::read_from(&kubeconfig)
            .with_context(|| format!("reading {}", kubeconfig.display()))?;
        let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
            .await
            .context("loading the admin kubeconfig")?;
        kube::Client::try_from(config).context("building the API client")
    };
    let result = match client.await {
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
