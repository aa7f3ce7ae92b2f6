//! The manager: the [`Controller`] contract, the shared [`Context`] every controller is built from, and
//! the worker loops that drain each controller's queue (retry with backoff up to `max_retries`, forget
//! on success).

use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::sync::Arc;

use futures::future::BoxFuture;
use kube::Client;

use crate::clock::SharedClock;
use crate::events::Recorder;
use crate::informer::Informers;
use crate::queue::WorkQueue;

/// What every controller is built from; cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    /// The API client (admin credentials).
    pub client: Client,
    /// The shared informers.
    pub informers: Informers,
    /// The event recorder (call `for_component`).
    pub recorder: Recorder,
    /// The clock.
    pub clock: SharedClock,
}

/// One reconcile loop. Its constructor registers informer handlers that put keys on [`Controller::queue`];
/// the manager calls [`Controller::sync`] for each key from `workers()` tasks.
pub trait Controller: Send + Sync + 'static {
    /// The queue key (usually an `ObjectKey`).
    type Key: Hash + Eq + Clone + Send + Sync + Debug + Display + 'static;
    /// The failure of one sync.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The controller's name, as upstream's (`deployment`, `replicaset`, …).
    fn name(&self) -> &'static str;

    /// The queue the informer handlers feed.
    fn queue(&self) -> &WorkQueue<Self::Key>;

    /// Brings the object behind `key` to its desired state.
    fn sync(&self, key: &Self::Key) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Concurrent workers (upstream's `--concurrent-*-syncs`).
    fn workers(&self) -> usize {
        5
    }

    /// Retries before a failing key is dropped (until its next change).
    fn max_retries(&self) -> u32 {
        15
    }
}

/// What a worker does with a key after a sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSync {
    /// Success: reset its backoff.
    Forget,
    /// Failure with retries left: back off and retry.
    Retry,
    /// Failure, out of retries: drop it until it changes again.
    Drop,
}

/// The pure retry decision (upstream's `handleErr`).
pub fn after_sync(ok: bool, requeues: u32, max_retries: u32) -> AfterSync {
    if ok {
        AfterSync::Forget
    } else if requeues < max_retries {
        AfterSync::Retry
    } else {
        AfterSync::Drop
    }
}

async fn worker<C: Controller>(controller: Arc<C>) {
    let queue = controller.queue().clone();
    while let Some(key) = queue.get().await {
        let result = controller.sync(&key).await;
        let requeues = queue.num_requeues(&key);
        match after_sync(result.is_ok(), requeues, controller.max_retries()) {
            AfterSync::Forget => queue.forget(&key),
            AfterSync::Retry => {
                if let Err(e) = &result {
                    tracing::debug!(controller = controller.name(), %key, error = %e, "sync failed; retrying");
                }
                queue.add_rate_limited(key.clone());
            }
            AfterSync::Drop => {
                if let Err(e) = &result {
                    tracing::warn!(controller = controller.name(), %key, error = %e, "dropping key out of retries");
                }
                queue.forget(&key);
            }
        }
        queue.done(&key);
    }
}

/// A registered controller's worker pool, ready to spawn.
pub struct Runner {
    name: &'static str,
    workers: Vec<BoxFuture<'static, ()>>,
    shutdown: Box<dyn FnOnce() + Send>,
}

impl Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("name", &self.name).finish()
    }
}

impl Runner {
    /// The worker pool of `controller`.
    pub fn new<C: Controller>(controller: C) -> Self {
        let controller = Arc::new(controller);
        let queue = controller.queue().clone();
        Runner {
            name: controller.name(),
            workers: (0..controller.workers().max(1))
                .map(|_| Box::pin(worker(controller.clone())) as BoxFuture<'static, ()>)
                .collect(),
            shutdown: Box::new(move || queue.shut_down()),
        }
    }
}

/// The running controllers of one leadership term.
#[derive(Debug)]
pub struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdowns: Vec<Runner>,
}

/// Starts the informers, waits for their first list, then starts every runner's workers.
pub async fn start(informers: &Informers, runners: Vec<Runner>) -> Running {
    let mut tasks = informers.start();
    informers.wait_synced().await;
    let mut shutdowns = Vec::new();
    for mut runner in runners {
        tracing::info!(controller = runner.name, "starting controller");
        tasks.extend(runner.workers.drain(..).map(tokio::spawn));
        shutdowns.push(runner);
    }
    Running { tasks, shutdowns }
}

impl Running {
    /// Stops every worker and informer.
    pub fn stop(self) {
        for runner in self.shutdowns {
            (runner.shutdown)();
        }
        for task in self.tasks {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_until_max_then_drops() {
        assert_eq!(after_sync(true, 3, 15), AfterSync::Forget);
        assert_eq!(after_sync(false, 0, 15), AfterSync::Retry);
        assert_eq!(after_sync(false, 14, 15), AfterSync::Retry);
        assert_eq!(after_sync(false, 15, 15), AfterSync::Drop);
    }
}
