//! History retention for either backend, as kube-apiserver's compactor does it: every `window`, compact
//! to the revision that was current one window earlier, so at least one window of history stays.

use std::sync::Arc;
use std::time::Duration;

use crate::{Revision, Store, StoreError};

/// The default history window (kube-apiserver's `--etcd-compaction-interval`).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Compacts a store periodically.
#[derive(Debug)]
pub struct Compactor {
    store: Arc<dyn Store>,
    window: Duration,
    /// The revision seen at the previous tick: the next compaction point.
    previous: Option<Revision>,
}

impl Compactor {
    pub fn new(store: Arc<dyn Store>, window: Duration) -> Self {
        Compactor {
            store,
            window,
            previous: None,
        }
    }

    /// One tick: compact to the revision seen at the previous tick, then remember the current one.
    /// Returns the revision compacted to, if any.
    pub async fn tick(&mut self) -> Result<Option<Revision>, StoreError> {
        let current = self.store.current_revision().await?;
        let target = self.previous.replace(current);
        match target {
            Some(target) => match self.store.compact(target).await {
                Ok(()) => Ok(Some(target)),
                // Someone (another server on the same etcd) compacted at or past it already.
                Err(StoreError::Compacted { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    /// Ticks every window, forever; errors are logged and the next tick tries again.
    pub async fn run(mut self) {
        let mut interval = tokio::time::interval(self.window);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match self.tick().await {
                Ok(Some(revision)) => tracing::debug!(revision, "compacted store history"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "store compaction failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EmbeddedOptions, EmbeddedStore};
    use bytes::Bytes;

    #[tokio::test]
    async fn each_tick_compacts_to_what_the_previous_tick_saw() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(EmbeddedOptions::new(dir.path())).expect("open"));
        let mut compactor = Compactor::new(store.clone(), DEFAULT_WINDOW);
        assert_eq!(
            compactor.tick().await.ok(),
            Some(None),
            "first tick only looks"
        );
        let first = store
            .create(b"/a", Bytes::from_static(b"1"))
            .await
            .expect("create");
        // Compacts to revision 1 (before `first`): `first` stays readable.
        assert_eq!(compactor.tick().await.ok(), Some(Some(1)));
        let second = store
            .update(b"/a", Bytes::from_static(b"2"), first)
            .await
            .expect("update");
        assert!(
            store.get(b"/a", Some(first)).await.is_ok(),
            "one window kept"
        );
        // Compacts to `first`, which the previous tick saw; reads below it now fail.
        assert_eq!(compactor.tick().await.ok(), Some(Some(first)));
        assert!(matches!(
            store.get(b"/a", Some(first - 1)).await,
            Err(StoreError::Compacted { .. })
        ));
        assert!(store.get(b"/a", Some(second)).await.is_ok());
        // Nothing written since: compacting again to the same point is not an error.
        assert_eq!(compactor.tick().await.ok(), Some(Some(second)));
        assert_eq!(compactor.tick().await.ok(), Some(None));
    }
}
