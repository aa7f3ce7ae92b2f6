//! The controller-manager: independent reconcile loops that drive observed cluster state toward the
//! desired state, each a pure `reconcile` core in its own module behind a thin informer shell.
//!
//! # How a controller plugs in
//!
//! 1. Add a module (one file) with a pure core — `reconcile(observed…) -> Vec<Action>` plus status
//!    computation — unit-tested without I/O (use [`clock::FakeClock`] for time).
//! 2. In the same file, a struct implementing [`manager::Controller`]: its `new(&Context)` takes the
//!    shared informers it needs from `ctx.informers.typed::<K>()` (one list+watch per type, shared by every
//!    controller; indexes `by_namespace`, `by_owner`, `by_node`), registers `on_change` handlers that
//!    push keys on its own [`queue::WorkQueue`], and keeps `ctx.recorder.for_component("<upstream
//!    component>")` for events. `sync(key)` reads the caches, calls the core, executes the actions.
//!    Use [`owner`] for controllerRefs/adoption and [`expectations::Expectations`] around creates/deletes.
//! 3. Add one line to [`controllers`] below: `Runner::new(MyController::new(ctx))`, before the garbage
//!    collector and namespace controller (they reuse every typed informer registered before them).
//!
//! [`run`] waits for the leader Lease (unless `leader_elect` is off), builds a fresh [`manager::Context`],
//! registers every controller, starts the informers, waits for their first list and starts the workers.
//! Losing the Lease stops everything and goes back to electing.

pub mod clock;
pub mod deployment;
pub mod events;
pub mod expectations;
pub mod garbage_collector;
pub mod informer;
pub mod leader;
pub mod manager;
pub mod namespace;
pub mod owner;
pub mod queue;
pub mod replica_set;
pub mod resources;
pub mod service_account;
pub mod service_lb;

use std::sync::Arc;

use kube::Client;

use crate::clock::{RealClock, SharedClock};
use crate::deployment::DeploymentController;
use crate::events::Recorder;
use crate::garbage_collector::GarbageCollector;
use crate::informer::Informers;
use crate::leader::{Election, LeaderError};
use crate::manager::{Context, Runner, Running};
use crate::namespace::NamespaceController;
use crate::replica_set::{ReplicaSetController, ReplicationManager};
use crate::resources::Catalogue;
use crate::service_account::ServiceAccountController;

/// How the controller-manager runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Take the leader Lease before running (`--leader-elect`, default true).
    pub leader_elect: bool,
    /// This process's identity in the Lease.
    pub identity: String,
    /// The cluster CA (PEM) published as `kube-root-ca.crt` in every namespace.
    pub root_ca: String,
    /// The workload and node controllers' settings.
    pub tuning: Tuning,
}

/// Settings of the workload and node controllers (upstream kube-controller-manager flags).
#[derive(Debug, Clone)]
pub struct Tuning {
    /// `--node-monitor-grace-period`: silence before a node turns Ready=Unknown.
    pub node_monitor_grace_period: std::time::Duration,
    /// `--cluster-cidr`, parsed: the pod range nodes get a /24 of.
    pub cluster_cidr: (std::net::Ipv4Addr, u8),
    /// `--terminated-pod-gc-threshold`.
    pub terminated_pod_gc_threshold: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            node_monitor_grace_period: node_lifecycle::DEFAULT_GRACE,
            cluster_cidr: (std::net::Ipv4Addr::new(10, 42, 0, 0), 16),
            terminated_pod_gc_threshold: podgc::DEFAULT_THRESHOLD,
        }
    }
}

/// Failures of the controller-manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Leader election could not start.
    #[error("leader election")]
    Leader(#[source] LeaderError),
}

/// Every controller, registered on `ctx` (informer handlers are in place before the informers start).
pub async fn controllers(ctx: &Context, options: &Options) -> Vec<Runner> {
    let catalogue = discover(&ctx.client).await;
    let mut runners = vec![
        Runner::new(ServiceAccountController::new(ctx, options.root_ca.clone())),
        Runner::new(ReplicaSetController::new(ctx)),
        Runner::new(ReplicationManager::new(ctx)),
        Runner::new(DeploymentController::new(ctx)),
        Runner::new(job::JobController::new(ctx)),
        Runner::new(cronjob::CronJobController::new(ctx)),
        Runner::new(ttl_after_finished::TtlAfterFinishedController::new(ctx)),
        Runner::new(statefulset::StatefulSetController::new(ctx)),
        Runner::new(daemonset::DaemonSetController::new(ctx)),
        Runner::new(endpoints::EndpointsController::new(ctx)),
        Runner::new(endpointslice::EndpointSliceController::new(ctx)),
        Runner::new(service_lb::ServiceLbController::new(ctx)),
        Runner::new(node_lifecycle::NodeLifecycleController::new(
            ctx,
            options.tuning.node_monitor_grace_period,
            options.tuning.cluster_cidr,
        )),
        Runner::new(podgc::PodGcController::new(
            ctx,
            options.tuning.terminated_pod_gc_threshold,
        )),
        Runner::new(resourcequota::ResourceQuotaController::new(ctx, &catalogue)),
    ];
    // Last: these watch every other resource through metadata views, reusing the typed informers the
    // controllers above registered (a type first asked for here gets a dynamic informer).
    runners.push(Runner::new(GarbageCollector::new(ctx, &catalogue)));
    runners.push(Runner::new(NamespaceController::new(ctx, &catalogue)));
    runners
}

/// Discovery, retried until the API server answers it.
async fn discover(client: &Client) -> Catalogue {
    let mut delay = std::time::Duration::from_millis(100);
    loop {
        match Catalogue::discover(client).await {
            Ok(catalogue) => return catalogue,
            Err(e) => {
                tracing::warn!(error = %e, "discovery failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
        }
    }
}

/// Starts one leadership term: fresh informers, every controller, the event writer.
async fn lead(
    client: &Client,
    clock: &SharedClock,
    options: &Options,
) -> (Running, tokio::task::JoinHandle<()>) {
    let (recorder, writer) = Recorder::new(client.clone(), clock.clone());
    let writer = tokio::spawn(writer);
    let ctx = Context {
        client: client.clone(),
        informers: Informers::new(client.clone()),
        recorder,
        clock: clock.clone(),
    };
    let runners = controllers(&ctx, options).await;
    (manager::start(&ctx.informers, runners).await, writer)
}

/// The controller-manager's life, one state per step.
enum State {
    /// Waiting for the Lease.
    Electing,
    /// Running the controllers.
    Leading(Running, tokio::task::JoinHandle<()>),
    /// Shut down.
    Stopped,
}

/// Runs the controller-manager until `shutdown` resolves.
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Error> {
    let clock: SharedClock = Arc::new(RealClock);
    let mut election = if options.leader_elect {
        Some(
            Election::start(client.clone(), options.identity.clone())
                .await
                .map_err(Error::Leader)?,
        )
    } else {
        None
    };
    tokio::pin!(shutdown);
    let mut state = State::Electing;
    loop {
        state = match state {
            State::Electing => {
                let acquired = async {
                    match election.as_mut() {
                        Some(e) => e.acquired().await,
                        None => true,
                    }
                };
                tokio::select! {
                    _ = &mut shutdown => State::Stopped,
                    won = acquired => {
                        if won {
                            tracing::info!(identity = %options.identity, "leading: starting controllers");
                            let (running, writer) = lead(&client, &clock, &options).await;
                            State::Leading(running, writer)
                        } else {
                            State::Stopped
                        }
                    }
                }
            }
            State::Leading(running, writer) => {
                let lost = async {
                    match election.as_mut() {
                        Some(e) => e.lost().await,
                        None => std::future::pending().await,
                    }
                };
                let next = tokio::select! {
                    _ = &mut shutdown => State::Stopped,
                    _ = lost => {
                        tracing::warn!("leader lease lost: stopping controllers");
                        State::Electing
                    }
                };
                running.stop();
                writer.abort();
                next
            }
            State::Stopped => {
                if let Some(e) = election.take() {
                    e.stop().await;
                }
                return Ok(());
            }
        };
    }
}

pub mod cron;
pub mod cronjob;
pub mod daemonset;
pub mod endpoints;
pub mod endpointslice;
pub mod job;
pub mod node_lifecycle;
pub mod podgc;
pub mod resourcequota;
pub mod shell;
pub mod statefulset;
pub mod ttl_after_finished;
pub mod workload;
