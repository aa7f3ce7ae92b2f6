//! The cluster state store: an MVCC key-value contract (etcd v3 semantics) and its two backends.
//!
//! The store knows bytes, keys, revisions and watches; it knows nothing of Kubernetes objects. The
//! apiserver maps `resourceVersion` to [`Revision`] and the errors here to HTTP statuses
//! ([`StoreError::Conflict`] → 409, [`StoreError::Compacted`] → 410 Gone).
//!
//! Semantics every backend keeps (checked by the shared conformance suite in `tests/`):
//! - one global revision, strictly increasing, starting at 1 for an empty store; every successful write
//!   gets the next one, and a key records the revision that created it and the one that last changed it;
//! - reads at the latest revision or at any retained past revision see a consistent snapshot;
//! - writes are conditional: create only if absent, update and delete only at an expected `mod_revision`;
//! - a watch on a prefix from any retained revision delivers every change in revision order, with the
//!   previous value on update and delete;
//! - after [`Store::compact`] to revision `c`, reads and watches below `c` fail with `Compacted`.

pub mod bench;
pub mod compactor;
pub mod embedded;
pub mod etcd;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use compactor::Compactor;
pub use embedded::{EmbeddedOptions, EmbeddedStore};
pub use etcd::EtcdStore;

/// A store revision (etcd's `int64` revision; Kubernetes' `resourceVersion`).
pub type Revision = i64;

/// One key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Bytes,
    pub value: Bytes,
    /// The revision of the write that created the key (after its last deletion).
    pub create_revision: Revision,
    /// The revision of the write that last changed the key.
    pub mod_revision: Revision,
}

/// A range read over every key that starts with `prefix`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeRequest {
    pub prefix: Bytes,
    /// Only keys strictly greater than this one (a continue point); `None` starts at the prefix.
    pub start_after: Option<Bytes>,
    /// At most this many keys; 0 means no limit.
    pub limit: usize,
    /// Read at this past revision; `None` reads at the latest.
    pub revision: Option<Revision>,
}

/// The answer to a [`RangeRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangeResponse {
    pub kvs: Vec<KeyValue>,
    /// The revision the read was served at: pass it back as `RangeRequest::revision` to page on the
    /// same snapshot.
    pub revision: Revision,
    /// More keys match after the last one returned.
    pub more: bool,
    /// How many keys in the range (from `start_after` on) match in all, `kvs` included.
    pub count: usize,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The key was created or updated; `prev` is the value before, for an update.
    Put {
        kv: KeyValue,
        prev: Option<KeyValue>,
    },
    /// The key was deleted at `revision`; `prev` is the value it had.
    Delete { prev: KeyValue, revision: Revision },
}

impl Event {
    /// The revision of the write this event reports.
    pub fn revision(&self) -> Revision {
        match self {
            Event::Put { kv, .. } => kv.mod_revision,
            Event::Delete { revision, .. } => *revision,
        }
    }

    /// The key the event is about.
    pub fn key(&self) -> &Bytes {
        match self {
            Event::Put { kv, .. } => &kv.key,
            Event::Delete { prev, .. } => &prev.key,
        }
    }
}

/// A watch: every change under a prefix, in revision order, then nothing until the next change. An
/// `Err` item ends the stream (a watcher overtaken by compaction gets [`StoreError::Compacted`]).
pub type WatchStream = BoxStream<'static, Result<Event, StoreError>>;

/// Every way a store operation fails.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("key already exists")]
    AlreadyExists,
    #[error("key not found")]
    NotFound,
    /// The key's `mod_revision` was not the expected one; `current` is what it is now (`None`: deleted).
    #[error("conflict: the key was modified (expected mod_revision {expected})")]
    Conflict {
        expected: Revision,
        current: Option<Box<KeyValue>>,
    },
    #[error("required revision {requested} has been compacted")]
    Compacted { requested: Revision },
    #[error("required revision {requested} is a future revision")]
    FutureRevision { requested: Revision },
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error("the store is closed")]
    Closed,
    #[error(transparent)]
    Embedded(#[from] embedded::EmbeddedError),
    #[error(transparent)]
    Etcd(#[from] etcd::EtcdError),
}

/// The contract both backends keep. All methods are cancel-safe to drop: a write either happened (and
/// is durable) or did not, whether or not its caller is still waiting.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug {
    /// The key at the latest revision (or at `revision`), with the revision the read was served at.
    async fn get(
        &self,
        key: &[u8],
        revision: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), StoreError>;

    /// Keys under a prefix, in key order.
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError>;

    /// Creates `key` if it does not exist; returns the new revision.
    async fn create(&self, key: &[u8], value: Bytes) -> Result<Revision, StoreError>;

    /// Replaces `key`'s value if its `mod_revision` is `expected`; returns the new revision.
    async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError>;

    /// Deletes `key` (only at `mod_revision == expected`, when given); returns the revision of the
    /// delete and the value the key had.
    async fn delete(
        &self,
        key: &[u8],
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError>;

    /// Every change under `prefix` with revision ≥ `start` (0: from the next write on).
    async fn watch(&self, prefix: &[u8], start: Revision) -> Result<WatchStream, StoreError>;

    /// The latest revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// Forgets history below `revision`: reads and watches at older revisions fail from then on.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
}

/// The first key after every key that starts with `prefix` (etcd's `range_end` for a prefix), or
/// `None` when no such key exists (an empty prefix, or one of all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte_that_can_be() {
        assert_eq!(prefix_end(b"/a/"), Some(b"/a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
