//! The store contract, checked the same way on both backends: the embedded store in a temporary
//! directory, and a real single-member etcd started on a free loopback port (Debian's etcd-server).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use oxkube_store::etcd::local::LocalEtcd;
use oxkube_store::{
    EmbeddedOptions, EmbeddedStore, EtcdStore, Event, RangeRequest, Store, StoreError, WatchStream,
};

/// A store under test and whatever keeps it alive.
struct Backend {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
    _etcd: Option<LocalEtcd>,
}

async fn embedded() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(EmbeddedOptions::new(dir.path().join("db"))).expect("open");
    Backend {
        store: Arc::new(store),
        _dir: dir,
        _etcd: None,
    }
}

async fn etcd() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = LocalEtcd::start(dir.path()).await.expect("start etcd");
    let store = EtcdStore::connect(server.endpoint())
        .await
        .expect("connect");
    Backend {
        store: Arc::new(store),
        _dir: dir,
        _etcd: Some(server),
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_event(watch: &mut WatchStream) -> Event {
    tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("an event within 10 s")
        .expect("the watch is open")
        .expect("not an error")
}

/// Runs each check on both backends.
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod embedded_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::embedded().await.store).await }
            )*
        }
        mod etcd_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::etcd().await.store).await }
            )*
        }
    };
}

conformance!(
    revisions_start_at_one_and_every_write_takes_the_next,
    create_refuses_an_existing_key,
    update_and_delete_are_guarded_by_mod_revision,
    reads_at_past_revisions_see_that_snapshot,
    range_is_ordered_prefix_bounded_and_pages_on_one_snapshot,
    watch_replays_history_in_order_with_previous_values,
    watch_from_zero_starts_at_the_next_write,
    compaction_forgets_older_revisions,
    concurrent_writers_get_distinct_revisions_and_lose_no_update,
    a_watch_sees_every_concurrent_write_once_in_order,
);

async fn revisions_start_at_one_and_every_write_takes_the_next(s: Arc<dyn Store>) {
    assert_eq!(s.current_revision().await.ok(), Some(1));
    let r1 = s.create(b"/registry/a", b("1")).await.expect("create");
    assert_eq!(r1, 2);
    let r2 = s.update(b"/registry/a", b("2"), r1).await.expect("update");
    assert_eq!(r2, 3);
    let r3 = s.create(b"/registry/b", b("1")).await.expect("create");
    assert_eq!(r3, 4);
    let (kv, at) = s.get(b"/registry/a", None).await.expect("get");
    let kv = kv.expect("exists");
    assert_eq!((kv.create_revision, kv.mod_revision, at), (2, 3, 4));
    assert_eq!(kv.value, b("2"));
    let (r4, prev) = s.delete(b"/registry/a", None).await.expect("delete");
    assert_eq!((r4, prev.mod_revision), (5, 3));
    // Re-created: a new create_revision.
    let r5 = s
        .create(b"/registry/a", b("3"))
        .await
        .expect("create again");
    let kv = s
        .get(b"/registry/a", None)
        .await
        .expect("get")
        .0
        .expect("exists");
    assert_eq!((kv.create_revision, kv.mod_revision), (r5, r5));
    assert_eq!(s.current_revision().await.ok(), Some(r5));
}

async fn create_refuses_an_existing_key(s: Arc<dyn Store>) {
    s.create(b"/k", b("1")).await.expect("create");
    let before = s.current_revision().await.expect("rev");
    assert!(matches!(
        s.create(b"/k", b("2")).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        s.current_revision().await.ok(),
        Some(before),
        "a refused write takes no revision"
    );
    assert_eq!(
        s.get(b"/k", None).await.expect("get").0.map(|kv| kv.value),
        Some(b("1"))
    );
}

async fn update_and_delete_are_guarded_by_mod_revision(s: Arc<dyn Store>) {
    let r1 = s.create(b"/k", b("1")).await.expect("create");
    let r2 = s.update(b"/k", b("2"), r1).await.expect("update");
    match s.update(b"/k", b("stale"), r1).await {
        Err(StoreError::Conflict { expected, current }) => {
            assert_eq!(expected, r1);
            let current = current.expect("the current value comes back");
            assert_eq!((current.mod_revision, current.value), (r2, b("2")));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(matches!(
        s.update(b"/missing", b("x"), 5).await,
        Err(StoreError::Conflict { current: None, .. })
    ));
    assert!(matches!(
        s.delete(b"/k", Some(r1)).await,
        Err(StoreError::Conflict {
            current: Some(_),
            ..
        })
    ));
    assert!(matches!(
        s.delete(b"/missing", None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.delete(b"/missing", Some(3)).await,
        Err(StoreError::NotFound)
    ));
    let (r3, prev) = s.delete(b"/k", Some(r2)).await.expect("delete");
    assert_eq!(
        (prev.value, prev.mod_revision, prev.create_revision),
        (b("2"), r2, r1)
    );
    assert_eq!(r3, r2 + 1);
    assert_eq!(s.get(b"/k", None).await.expect("get").0, None);
}

async fn reads_at_past_revisions_see_that_snapshot(s: Arc<dyn Store>) {
    let r1 = s.create(b"/p/a", b("1")).await.expect("create");
    let r2 = s.update(b"/p/a", b("2"), r1).await.expect("update");
    let r3 = s.create(b"/p/b", b("1")).await.expect("create");
    let (r4, _) = s.delete(b"/p/a", None).await.expect("delete");
    let at = |r| s.get(b"/p/a", Some(r));
    assert_eq!(
        at(r1).await.expect("get").0.map(|kv| kv.value),
        Some(b("1"))
    );
    assert_eq!(
        at(r2).await.expect("get").0.map(|kv| kv.value),
        Some(b("2"))
    );
    assert_eq!(
        at(r3).await.expect("get").0.map(|kv| kv.value),
        Some(b("2"))
    );
    assert_eq!(at(r4).await.expect("get").0, None);
    assert_eq!(at(r1 - 1).await.expect("get").0, None);
    let range = s
        .range(RangeRequest {
            prefix: b("/p/"),
            revision: Some(r3),
            ..Default::default()
        })
        .await
        .expect("range");
    assert_eq!(range.revision, r3);
    assert_eq!(range.kvs.len(), 2);
    assert!(matches!(
        s.get(b"/p/a", Some(r4 + 100)).await,
        Err(StoreError::FutureRevision { .. })
    ));
}

async fn range_is_ordered_prefix_bounded_and_pages_on_one_snapshot(s: Arc<dyn Store>) {
    for name in ["c", "a", "e", "b", "d"] {
        s.create(format!("/r/{name}").as_bytes(), b(name))
            .await
            .expect("create");
    }
    // Neighbours that share bytes with the prefix but are outside it.
    s.create(b"/r", b("x")).await.expect("create");
    s.create(b"/r0", b("x")).await.expect("create");
    s.create(b"/q/z", b("x")).await.expect("create");

    let page1 = s
        .range(RangeRequest {
            prefix: b("/r/"),
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("page 1");
    let keys = |r: &oxkube_store::RangeResponse| {
        r.kvs
            .iter()
            .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&page1), ["/r/a", "/r/b"]);
    assert!(page1.more);
    assert_eq!(page1.count, 5);

    // Changes after the first page are invisible to the rest of the listing.
    s.create(b"/r/bb", b("new")).await.expect("create");
    s.delete(b"/r/e", None).await.expect("delete");

    let mut seen = keys(&page1);
    let mut last = page1.kvs.last().map(|kv| kv.key.clone());
    loop {
        let page = s
            .range(RangeRequest {
                prefix: b("/r/"),
                start_after: last.clone(),
                limit: 2,
                revision: Some(page1.revision),
            })
            .await
            .expect("next page");
        assert_eq!(page.revision, page1.revision);
        seen.extend(keys(&page));
        last = page.kvs.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, ["/r/a", "/r/b", "/r/c", "/r/d", "/r/e"]);

    let now = s
        .range(RangeRequest {
            prefix: b("/r/"),
            ..Default::default()
        })
        .await
        .expect("latest");
    assert_eq!(keys(&now), ["/r/a", "/r/b", "/r/bb", "/r/c", "/r/d"]);
    assert!(!now.more);
}

async fn watch_replays_history_in_order_with_previous_values(s: Arc<dyn Store>) {
    let r1 = s.create(b"/w/a", b("1")).await.expect("create");
    s.create(b"/other/x", b("1")).await.expect("create");
    let r2 = s.update(b"/w/a", b("2"), r1).await.expect("update");
    let (r3, _) = s.delete(b"/w/a", None).await.expect("delete");
    let mut watch = s.watch(b"/w/", r1).await.expect("watch");
    match next_event(&mut watch).await {
        Event::Put { kv, prev } => {
            assert_eq!((kv.mod_revision, kv.value), (r1, b("1")));
            assert_eq!(prev, None);
        }
        other => panic!("expected the create, got {other:?}"),
    }
    match next_event(&mut watch).await {
        Event::Put { kv, prev } => {
            assert_eq!((kv.mod_revision, kv.create_revision), (r2, r1));
            assert_eq!(prev.map(|p| p.value), Some(b("1")));
        }
        other => panic!("expected the update, got {other:?}"),
    }
    match next_event(&mut watch).await {
        Event::Delete { prev, revision } => {
            assert_eq!(revision, r3);
            assert_eq!((prev.value, prev.mod_revision), (b("2"), r2));
        }
        other => panic!("expected the delete, got {other:?}"),
    }
    // Then live changes.
    let r4 = s.create(b"/w/b", b("live")).await.expect("create");
    s.create(b"/other/y", b("1")).await.expect("create");
    let r5 = s.create(b"/w/c", b("live")).await.expect("create");
    assert_eq!(next_event(&mut watch).await.revision(), r4);
    assert_eq!(next_event(&mut watch).await.revision(), r5);
}

async fn watch_from_zero_starts_at_the_next_write(s: Arc<dyn Store>) {
    s.create(b"/z/old", b("1")).await.expect("create");
    let mut watch = s.watch(b"/z/", 0).await.expect("watch");
    let r = s.create(b"/z/new", b("1")).await.expect("create");
    let event = next_event(&mut watch).await;
    assert_eq!((event.revision(), event.key().clone()), (r, b("/z/new")));
}

async fn compaction_forgets_older_revisions(s: Arc<dyn Store>) {
    let r1 = s.create(b"/c/a", b("1")).await.expect("create");
    let r2 = s.update(b"/c/a", b("2"), r1).await.expect("update");
    let r3 = s.create(b"/c/b", b("1")).await.expect("create");
    s.compact(r2).await.expect("compact");
    assert!(matches!(
        s.get(b"/c/a", Some(r1)).await,
        Err(StoreError::Compacted { .. })
    ));
    let old_range = s
        .range(RangeRequest {
            prefix: b("/c/"),
            revision: Some(r1),
            ..Default::default()
        })
        .await;
    assert!(matches!(old_range, Err(StoreError::Compacted { .. })));
    assert_eq!(
        s.get(b"/c/a", Some(r2))
            .await
            .expect("at the compaction point")
            .0
            .map(|kv| kv.value),
        Some(b("2"))
    );
    // A watch from before the compaction point fails, at once or as its first item.
    match s.watch(b"/c/", r1).await {
        Err(StoreError::Compacted { .. }) => {}
        Ok(mut w) => {
            let first = tokio::time::timeout(Duration::from_secs(10), w.next()).await;
            assert!(
                matches!(first, Ok(Some(Err(StoreError::Compacted { .. })))),
                "got {first:?}"
            );
        }
        Err(other) => panic!("expected Compacted, got {other:?}"),
    }
    // From the compaction point on, history is whole.
    let mut w = s
        .watch(b"/c/", r2)
        .await
        .expect("watch at the compaction point");
    assert_eq!(next_event(&mut w).await.revision(), r2);
    assert_eq!(next_event(&mut w).await.revision(), r3);
    assert!(matches!(
        s.compact(r1).await,
        Err(StoreError::Compacted { .. })
    ));
}

async fn concurrent_writers_get_distinct_revisions_and_lose_no_update(s: Arc<dyn Store>) {
    const WRITERS: usize = 16;
    const EACH: usize = 25;
    let start = s.current_revision().await.expect("rev");
    s.create(b"/n/counter", b("0")).await.expect("create");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut revisions = Vec::new();
            for i in 0..EACH {
                revisions.push(
                    s.create(format!("/n/{w}/{i}").as_bytes(), b("v"))
                        .await
                        .expect("create"),
                );
                // A read-modify-write loop on one shared key: conflicts retry, nothing is lost.
                loop {
                    let kv = s
                        .get(b"/n/counter", None)
                        .await
                        .expect("get")
                        .0
                        .expect("exists");
                    let n: u64 = String::from_utf8_lossy(&kv.value)
                        .parse()
                        .expect("a number");
                    match s
                        .update(b"/n/counter", b(&(n + 1).to_string()), kv.mod_revision)
                        .await
                    {
                        Ok(r) => {
                            revisions.push(r);
                            break;
                        }
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => panic!("update failed: {e}"),
                    }
                }
            }
            revisions
        }));
    }
    let mut all = BTreeSet::new();
    for t in tasks {
        for r in t.await.expect("task") {
            assert!(all.insert(r), "revision {r} given twice");
        }
    }
    let total = WRITERS * EACH * 2;
    assert_eq!(all.len(), total);
    let end = s.current_revision().await.expect("rev");
    assert_eq!(
        end,
        start + 1 + total as i64,
        "no revision skipped or wasted"
    );
    let counter = s
        .get(b"/n/counter", None)
        .await
        .expect("get")
        .0
        .expect("exists");
    assert_eq!(counter.value, b(&(WRITERS * EACH).to_string()));
}

async fn a_watch_sees_every_concurrent_write_once_in_order(s: Arc<dyn Store>) {
    const WRITERS: usize = 8;
    const EACH: usize = 50;
    let mut watch = s.watch(b"/cw/", 0).await.expect("watch");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                s.create(format!("/cw/{w}/{i}").as_bytes(), b("v"))
                    .await
                    .expect("create");
            }
        }));
    }
    let mut last = 0;
    let mut keys = BTreeSet::new();
    for _ in 0..WRITERS * EACH {
        let event = next_event(&mut watch).await;
        assert!(event.revision() > last, "revisions out of order");
        last = event.revision();
        assert!(keys.insert(event.key().clone()), "an event delivered twice");
    }
    for t in tasks {
        t.await.expect("task");
    }
}
