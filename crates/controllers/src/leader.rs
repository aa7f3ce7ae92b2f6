//! Leader election on the Lease `kube-system/oxkube-controller-manager` (kube-lease-manager, which
//! takes and renews the Lease with server-side apply), so two servers never run controllers at once.

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;

/// The Lease's namespace.
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The Lease's name.
pub const LEASE_NAME: &str = "oxkube-controller-manager";
/// `leaseDurationSeconds`, upstream's default `--leader-elect-lease-duration`.
pub const LEASE_DURATION_SECONDS: u64 = 15;
/// How long before expiry the holder renews (upstream renews within its 10 s deadline).
pub const RENEW_GRACE_SECONDS: u64 = 5;

/// Failures of leader election.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be read or created.
    #[error("setting up the leader-election lease")]
    Setup(#[source] LeaseManagerError),
}

/// A running election: `is_leader()` follows this process's hold on the Lease.
#[derive(Debug)]
pub struct Election {
    state: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Election {
    /// Starts contending for the Lease as `identity`.
    pub async fn start(client: Client, identity: String) -> Result<Self, LeaderError> {
        let manager = LeaseManagerBuilder::new(client, LEASE_NAME)
            .with_namespace(LEASE_NAMESPACE)
            .with_identity(identity)
            .with_duration(LEASE_DURATION_SECONDS)
            .with_grace(RENEW_GRACE_SECONDS)
            .build()
            .await
            .map_err(LeaderError::Setup)?;
        let (state, task) = manager.watch().await;
        Ok(Election { state, task })
    }

    /// Resolves once this process leads (or `false` if the election stopped).
    pub async fn acquired(&mut self) -> bool {
        self.state.wait_for(|l| *l).await.is_ok()
    }

    /// Resolves once this process no longer leads.
    pub async fn lost(&mut self) {
        // A closed channel means the election task ended: treat it as lost.
        let _ = self.state.wait_for(|l| !*l).await;
    }

    /// Releases the Lease (the election task releases it when the channel closes).
    pub async fn stop(self) {
        let Election { state, task } = self;
        drop(state);
        if let Ok(Err(e)) = task.await {
            tracing::debug!(error = %e, "releasing the leader lease");
        }
    }
}
