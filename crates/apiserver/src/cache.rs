//! The watch cache: per stored resource, the current objects and a window of recent changes held
//! in memory, all fed by one store watch. Lists without paging and every client watch are served from it, so
//! the store sees one watch per resource however many clients watch (upstream's cacher).
//!
//! One writer (the feeding task) and cheap readers: the state sits behind a read-write lock, and a
//! `watch` channel carries the revision the cache has reached, which client watches wait on.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use parking_lot::RwLock;
use serde_json::Value;
use tokio::sync::watch;

use oxkube_api::registry::Resource;
use oxkube_store::{Event, KeyValue, RangeRequest, Revision, Store, StoreError, WatchStream};

use crate::objects;
use crate::status::ApiError;

/// Most changes a cache keeps (older ones go first).
const CAPACITY: usize = 100_000;
/// How long a reader waits for the cache to reach a revision the store already has.
pub const CATCH_UP: Duration = Duration::from_secs(3);

/// One object as the cache holds it: decoded (with its resourceVersion) and encoded.
#[derive(Debug)]
pub struct Entry {
    pub key: Bytes,
    pub object: Value,
    pub json: Bytes,
    pub revision: Revision,
}

impl Entry {
    fn new(key: Bytes, value: &[u8], revision: Revision) -> Result<Self, ApiError> {
        let object = objects::decode_at(value, revision)?;
        let json = serde_json::to_vec(&object)
            .map(Bytes::from)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(Entry {
            key,
            object,
            json,
            revision,
        })
    }

    fn from_kv(kv: &KeyValue) -> Result<Self, ApiError> {
        Self::new(kv.key.clone(), &kv.value, kv.mod_revision)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One change: the object after it (for a delete, its last state at the delete's revision) and
/// before it.
#[derive(Debug)]
pub struct Change {
    pub kind: ChangeKind,
    pub entry: Arc<Entry>,
    pub prev: Option<Arc<Entry>>,
    pub revision: Revision,
}

#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<Bytes, Arc<Entry>>,
    changes: VecDeque<(Instant, Arc<Change>)>,
    /// Every change up to here is applied.
    revision: Revision,
    /// Changes after this revision are all kept: a watch may start at any revision ≥ it.
    oldest: Revision,
}

/// The cache of one stored resource.
#[derive(Debug)]
pub struct Cache {
    pub resource: &'static Resource,
    prefix: Bytes,
    history: Duration,
    state: RwLock<State>,
    /// The revision every cache has reached (shared: one feed serves them all).
    reached: watch::Sender<Revision>,
}

/// A consistent view of the cache's objects at one revision.
#[derive(Debug)]
pub struct Snapshot {
    pub entries: Vec<Arc<Entry>>,
    pub revision: Revision,
}

/// The caches of every stored resource, fed by one store watch on `/registry/`: since every write
/// is under it, the revision the feed has reached is each cache's, whether or not its own
/// resource changed.
#[derive(Debug)]
pub struct Caches {
    caches: Vec<Arc<Cache>>,
}

impl Caches {
    /// Loads every resource's objects at one revision and starts following the store.
    /// `history` bounds how far back a watch may start (the store's compaction window).
    pub async fn start(
        store: Arc<dyn Store>,
        resources: impl IntoIterator<Item = &'static Resource>,
        history: Duration,
    ) -> Result<Caches, ApiError> {
        let reached = Arc::new(watch::channel(0).0);
        let caches: Vec<Arc<Cache>> = resources
            .into_iter()
            .map(|resource| {
                Arc::new(Cache {
                    resource,
                    prefix: Bytes::from(resource.key_prefix(None)),
                    history,
                    state: RwLock::new(State::default()),
                    reached: reached.as_ref().clone(),
                })
            })
            .collect();
        let set = Caches { caches };
        let watch = set.relist(store.as_ref()).await?;
        let weak: Vec<std::sync::Weak<Cache>> = set.caches.iter().map(Arc::downgrade).collect();
        tokio::spawn(async move {
            let steps = futures::stream::unfold(Feed::Watching { store, watch }, move |state| {
                let caches: Option<Vec<Arc<Cache>>> =
                    weak.iter().map(std::sync::Weak::upgrade).collect();
                async move {
                    let caches = Caches { caches: caches? };
                    Some(((), state.step(&caches).await))
                }
            });
            steps.for_each(|()| async {}).await;
        });
        Ok(set)
    }

    /// The cache of a stored resource.
    pub fn get(&self, resource: &Resource) -> Option<&Arc<Cache>> {
        self.caches
            .iter()
            .find(|c| c.resource.storage == resource.storage)
    }

    /// Reads every object afresh at one revision and watches from there. Watches that started
    /// before lose their place (they get 410, as upstream's after a relist).
    async fn relist(&self, store: &dyn Store) -> Result<WatchStream, ApiError> {
        let revision = store.current_revision().await.map_err(store_error)?;
        let mut loaded = Vec::with_capacity(self.caches.len());
        for cache in &self.caches {
            let range = store
                .range(RangeRequest {
                    prefix: cache.prefix.clone(),
                    revision: Some(revision),
                    ..RangeRequest::default()
                })
                .await
                .map_err(store_error)?;
            let mut objects = BTreeMap::new();
            for kv in &range.kvs {
                objects.insert(kv.key.clone(), Arc::new(Entry::from_kv(kv)?));
            }
            loaded.push(objects);
        }
        let watch = store
            .watch(REGISTRY.as_bytes(), revision + 1)
            .await
            .map_err(store_error)?;
        for (cache, objects) in self.caches.iter().zip(loaded) {
            let mut state = cache.state.write();
            state.objects = objects;
            state.changes.clear();
            state.revision = revision;
            state.oldest = revision;
        }
        if let Some(first) = self.caches.first() {
            first.reached.send_replace(revision);
        }
        Ok(watch)
    }

    fn apply(&self, event: &Event) -> Result<(), ApiError> {
        let key = event.key();
        if let Some(cache) = self.caches.iter().find(|c| key.starts_with(&c.prefix)) {
            cache.apply(event)?;
        }
        if let Some(first) = self.caches.first() {
            first.reached.send_if_modified(|r| {
                let newer = event.revision() > *r;
                if newer {
                    *r = event.revision();
                }
                newer
            });
        }
        Ok(())
    }
}

/// Every object is stored under this prefix.
const REGISTRY: &str = "/registry/";

impl Cache {
    fn apply(&self, event: &Event) -> Result<(), ApiError> {
        let revision = event.revision();
        let mut state = self.state.write();
        if revision <= state.revision {
            return Ok(());
        }
        let prev = state.objects.get(event.key()).cloned();
        let change = match event {
            Event::Put { kv, .. } => {
                let entry = Arc::new(Entry::from_kv(kv)?);
                state.objects.insert(kv.key.clone(), entry.clone());
                Change {
                    kind: if prev.is_some() {
                        ChangeKind::Modified
                    } else {
                        ChangeKind::Added
                    },
                    entry,
                    prev,
                    revision,
                }
            }
            Event::Delete { prev: last, .. } => {
                state.objects.remove(&last.key);
                let entry = Arc::new(Entry::new(last.key.clone(), &last.value, revision)?);
                Change {
                    kind: ChangeKind::Deleted,
                    entry,
                    prev,
                    revision,
                }
            }
        };
        let now = Instant::now();
        state.changes.push_back((now, Arc::new(change)));
        state.revision = revision;
        while let Some((at, front)) = state.changes.front() {
            if state.changes.len() > CAPACITY || now.duration_since(*at) > self.history {
                state.oldest = front.revision;
                state.changes.pop_front();
            } else {
                break;
            }
        }
        Ok(())
    }

    /// The revision the cache has reached.
    pub fn revision(&self) -> Revision {
        *self.reached.borrow()
    }

    /// Waits (up to [`CATCH_UP`]) until the cache has reached `revision`.
    pub async fn wait_for(&self, revision: Revision) -> Result<(), ApiError> {
        let mut rx = self.reached.subscribe();
        let reached = tokio::time::timeout(CATCH_UP, rx.wait_for(|r| *r >= revision)).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::Timeout(format!(
                "Too large resource version: {revision}, current: {}",
                self.revision()
            ))),
        }
    }

    /// The objects in `namespace` (or all), and the revision they are current at.
    pub fn snapshot(&self, namespace: Option<&str>) -> Snapshot {
        // Read the revision first: the objects are at least as new as it.
        let revision = self.revision();
        let state = self.state.read();
        let prefix = self.resource.key_prefix(namespace);
        let entries = state
            .objects
            .range(Bytes::from(prefix.clone())..)
            .take_while(|(k, _)| k.starts_with(prefix.as_bytes()))
            .map(|(_, e)| e.clone())
            .collect();
        Snapshot {
            entries,
            revision: revision.max(state.revision),
        }
    }

    /// One object as cached.
    pub fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        self.state.read().objects.get(key).cloned()
    }

    /// Every change after `after`, as they come. A start older than the kept window, or a relist
    /// that overtakes the watch, ends it with 410 Expired.
    pub fn changes(
        self: &Arc<Self>,
        after: Revision,
    ) -> impl Stream<Item = Result<Arc<Change>, ApiError>> + Send + 'static {
        let follow = Follow {
            cache: self.clone(),
            position: after,
            pending: VecDeque::new(),
            reached: self.reached.subscribe(),
            done: false,
        };
        futures::stream::unfold(follow, Follow::next)
    }

    fn read_after(
        &self,
        position: Revision,
        out: &mut VecDeque<Arc<Change>>,
    ) -> Result<(), ApiError> {
        let state = self.state.read();
        // Changes past the history window are gone even before the next change trims them.
        let now = Instant::now();
        let expired = state
            .changes
            .iter()
            .take_while(|(at, _)| now.duration_since(*at) > self.history)
            .last()
            .map(|(_, c)| c.revision);
        let oldest = expired.map_or(state.oldest, |r| r.max(state.oldest));
        if position < oldest {
            return Err(ApiError::too_old(position, oldest));
        }
        let start = state
            .changes
            .partition_point(|(_, c)| c.revision <= position);
        out.extend(
            state
                .changes
                .range(start..)
                .take(1024)
                .map(|(_, c)| c.clone()),
        );
        Ok(())
    }
}

/// The feeding task: follow the store's watch; relist when it breaks.
enum Feed {
    Watching {
        store: Arc<dyn Store>,
        watch: WatchStream,
    },
    Relisting {
        store: Arc<dyn Store>,
    },
}

impl Feed {
    async fn step(self, caches: &Caches) -> Feed {
        match self {
            Feed::Watching { store, mut watch } => match watch.next().await {
                Some(Ok(event)) => {
                    if let Err(e) = caches.apply(&event) {
                        tracing::error!(error = %e, "cache cannot apply a change; relisting");
                        return Feed::Relisting { store };
                    }
                    Feed::Watching { store, watch }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "store watch ended; relisting");
                    Feed::Relisting { store }
                }
                None => Feed::Relisting { store },
            },
            Feed::Relisting { store } => match caches.relist(store.as_ref()).await {
                Ok(watch) => Feed::Watching { store, watch },
                Err(e) => {
                    tracing::warn!(error = %e, "relist failed; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Feed::Relisting { store }
                }
            },
        }
    }
}

/// A client's place in a cache's changes.
struct Follow {
    cache: Arc<Cache>,
    position: Revision,
    pending: VecDeque<Arc<Change>>,
    reached: watch::Receiver<Revision>,
    done: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Arc<Change>, ApiError>, Follow)> {
        if self.done {
            return None;
        }
        loop {
            if let Some(change) = self.pending.pop_front() {
                self.position = change.revision;
                return Some((Ok(change), self));
            }
            // Every change up to the revision reached now is in the cache already.
            let reached = *self.reached.borrow_and_update();
            if let Err(e) = self.cache.read_after(self.position, &mut self.pending) {
                self.done = true;
                return Some((Err(e), self));
            }
            if self.pending.is_empty() {
                // Nothing of this resource up to `reached`: move there, or writes to other
                // resources (which move the shared revision) would wake this loop forever.
                self.position = self.position.max(reached);
                let position = self.position;
                if self.reached.wait_for(|r| *r > position).await.is_err() {
                    return None;
                }
            }
        }
    }
}

/// A store error as the API reports it.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Compacted { requested } => ApiError::Expired(format!(
            "The resourceVersion for the provided list is too old: {requested}"
        )),
        StoreError::FutureRevision { requested } => {
            ApiError::Timeout(format!("Too large resource version: {requested}"))
        }
        other => ApiError::Internal(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxkube_api::registry::find;
    use oxkube_store::{EmbeddedOptions, EmbeddedStore};

    async fn store(dir: &std::path::Path) -> Arc<dyn Store> {
        Arc::new(EmbeddedStore::open(EmbeddedOptions::new(dir)).expect("open"))
    }

    #[tokio::test]
    async fn follows_the_store_and_replays_from_a_revision() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(dir.path()).await;
        let cms = find("", "v1", "configmaps").expect("configmaps");
        let key = cms.key(Some("a"), "one");
        let r1 = store
            .create(
                key.as_bytes(),
                Bytes::from_static(br#"{"metadata":{"name":"one"}}"#),
            )
            .await
            .expect("create");
        let secrets = find("", "v1", "secrets").expect("secrets");
        let caches = Caches::start(store.clone(), [cms, secrets], Duration::from_secs(300))
            .await
            .expect("caches");
        let cache = caches.get(cms).expect("configmaps cache").clone();
        // A write elsewhere moves every cache's revision.
        let other = store
            .create(
                secrets.key(Some("a"), "s").as_bytes(),
                Bytes::from_static(b"{}"),
            )
            .await
            .expect("secret");
        cache
            .wait_for(other)
            .await
            .expect("reached by another resource's write");
        assert_eq!(
            caches
                .get(secrets)
                .expect("secrets cache")
                .snapshot(None)
                .entries
                .len(),
            1
        );
        assert_eq!(cache.snapshot(None).entries.len(), 1);
        assert_eq!(cache.snapshot(Some("b")).entries.len(), 0);

        let r2 = store
            .update(
                key.as_bytes(),
                Bytes::from_static(br#"{"metadata":{"name":"one","labels":{"x":"y"}}}"#),
                r1,
            )
            .await
            .expect("update");
        let (r3, _) = store.delete(key.as_bytes(), None).await.expect("delete");
        cache.wait_for(r3).await.expect("caught up");

        let mut changes = Box::pin(cache.changes(other));
        let c = changes.next().await.expect("one").expect("ok");
        assert_eq!((c.kind, c.revision), (ChangeKind::Modified, r2));
        assert!(r2 > other);
        let c = changes.next().await.expect("two").expect("ok");
        assert_eq!((c.kind, c.revision), (ChangeKind::Deleted, r3));
        assert_eq!(
            c.entry.object["metadata"]["resourceVersion"],
            r3.to_string()
        );
        assert!(cache.snapshot(None).entries.is_empty());

        // a start before the window is 410
        let mut old = Box::pin(cache.changes(r1 - 1));
        let err = old.next().await.expect("item").expect_err("too old");
        assert_eq!(err.code().as_u16(), 410);
    }
}
