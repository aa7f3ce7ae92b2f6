//! The embedded backend's own promises: durability across reopen, checkpoints that bound disk use, a
//! torn WAL tail dropped, damage elsewhere refused with a clear error, and a data directory that is
//! checked and locked.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use oxkube_store::embedded::EmbeddedError;
use oxkube_store::{EmbeddedOptions, EmbeddedStore, RangeRequest, Store, StoreError};

fn open(dir: &Path) -> EmbeddedStore {
    EmbeddedStore::open(EmbeddedOptions::new(dir)).expect("open")
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    out.sort();
    out
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read dir")
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

async fn all(store: &EmbeddedStore) -> Vec<(Bytes, Bytes, i64, i64)> {
    store
        .range(RangeRequest::default())
        .await
        .expect("range")
        .kvs
        .into_iter()
        .map(|kv| (kv.key, kv.value, kv.create_revision, kv.mod_revision))
        .collect()
}

#[tokio::test]
async fn acknowledged_writes_survive_reopen_and_revisions_continue() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (before, revision) = {
        let s = open(tmp.path());
        let r = s
            .create(b"/a", Bytes::from_static(b"1"))
            .await
            .expect("create");
        s.update(b"/a", Bytes::from_static(b"2"), r)
            .await
            .expect("update");
        s.create(b"/b", Bytes::from_static(b"1"))
            .await
            .expect("create");
        s.delete(b"/b", None).await.expect("delete");
        (all(&s).await, s.current_revision().await.expect("rev"))
    };
    let s = open(tmp.path());
    assert_eq!(all(&s).await, before);
    assert_eq!(s.current_revision().await.ok(), Some(revision));
    // History survives too: a past read and a watch from an old revision.
    let old = s
        .get(b"/a", Some(2))
        .await
        .expect("old read")
        .0
        .expect("exists");
    assert_eq!(old.value, Bytes::from_static(b"1"));
    let next = s.create(b"/c", Bytes::new()).await.expect("create");
    assert_eq!(next, revision + 1);
}

#[tokio::test]
async fn compaction_checkpoints_and_reclaims_disk() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let opts = EmbeddedOptions {
        checkpoint_wal_bytes: 64 << 10,
        ..EmbeddedOptions::new(tmp.path())
    };
    let value = Bytes::from(vec![7u8; 1000]);
    let s = EmbeddedStore::open(opts.clone()).expect("open");
    // Rewrite the same 20 keys many times: the live state stays small while the log grows.
    let mut revs = [0i64; 20];
    for round in 0..100 {
        for (k, rev) in revs.iter_mut().enumerate() {
            let key = format!("/k/{k}");
            *rev = if round == 0 {
                s.create(key.as_bytes(), value.clone())
                    .await
                    .expect("create")
            } else {
                s.update(key.as_bytes(), value.clone(), *rev)
                    .await
                    .expect("update")
            };
        }
    }
    let head = s.current_revision().await.expect("rev");
    s.compact(head).await.expect("compact");
    // The checkpoint runs in the background; wait until the one at the compaction point has
    // replaced the old segments.
    let deadline = Instant::now() + Duration::from_secs(10);
    let wanted = tmp.path().join(format!("checkpoint-{head:020}.bin"));
    while files(tmp.path(), "wal-").len() > 1
        || files(tmp.path(), "checkpoint-") != [wanted.clone()]
    {
        assert!(Instant::now() < deadline, "checkpoint did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let used = dir_bytes(tmp.path());
    assert!(
        used < 200_000,
        "2,000 writes of 1 kB compacted to 20 live keys still use {used} bytes"
    );
    let before = all(&s).await;
    drop(s);
    let s = EmbeddedStore::open(opts).expect("reopen");
    assert_eq!(all(&s).await, before);
    assert!(
        matches!(
            s.get(b"/k/0", Some(head - 1)).await,
            Err(StoreError::Compacted { .. })
        ),
        "the compaction point is durable"
    );
    assert_eq!(s.current_revision().await.ok(), Some(head));
}

#[tokio::test]
async fn a_torn_tail_is_dropped_and_writing_goes_on() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let before = {
        let s = open(tmp.path());
        for i in 0..10 {
            s.create(format!("/t/{i}").as_bytes(), Bytes::from_static(b"v"))
                .await
                .expect("create");
        }
        all(&s).await
    };
    // A write that never completed: half a frame at the end of the newest segment.
    let segment = files(tmp.path(), "wal-").pop().expect("a segment");
    let whole = std::fs::metadata(&segment).expect("meta").len();
    let mut data = std::fs::read(&segment).expect("read");
    data.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3, 4, 1, 9]);
    std::fs::write(&segment, &data).expect("write");
    let s = open(tmp.path());
    assert_eq!(all(&s).await, before);
    assert_eq!(
        std::fs::metadata(&segment).expect("meta").len(),
        whole,
        "tail cut off"
    );
    let r = s
        .create(b"/t/after", Bytes::from_static(b"v"))
        .await
        .expect("create");
    assert_eq!(r, 12);
    drop(s);
    assert_eq!(all(&open(tmp.path())).await.len(), 11);
}

#[tokio::test]
async fn damage_outside_the_tail_is_an_error_not_a_loss() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let opts = EmbeddedOptions {
            checkpoint_wal_bytes: 1,
            ..EmbeddedOptions::new(tmp.path())
        };
        let s = EmbeddedStore::open(opts).expect("open");
        for i in 0..5 {
            s.create(format!("/d/{i}").as_bytes(), Bytes::from_static(b"value"))
                .await
                .expect("create");
        }
    }
    // Checkpoints rotate segments; damage the newest checkpoint.
    let checkpoint = files(tmp.path(), "checkpoint-")
        .pop()
        .expect("a checkpoint");
    let mut data = std::fs::read(&checkpoint).expect("read");
    let middle = data.len() / 2;
    data[middle] ^= 0xff;
    std::fs::write(&checkpoint, &data).expect("write");
    match EmbeddedStore::open(EmbeddedOptions::new(tmp.path())) {
        Err(EmbeddedError::CorruptCheckpoint { path, .. }) => assert_eq!(path, checkpoint),
        other => panic!("expected CorruptCheckpoint, got {other:?}"),
    }
}

#[tokio::test]
async fn a_damaged_older_segment_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let s = open(tmp.path());
        for i in 0..5 {
            s.create(format!("/s/{i}").as_bytes(), Bytes::from_static(b"value"))
                .await
                .expect("create");
        }
    }
    // Make the segment an older one by adding a newer, empty segment after it.
    let segment = files(tmp.path(), "wal-").pop().expect("a segment");
    std::fs::write(tmp.path().join("wal-00000000000000000007.log"), b"").expect("write");
    let mut data = std::fs::read(&segment).expect("read");
    data[20] ^= 0x01;
    std::fs::write(&segment, &data).expect("write");
    match EmbeddedStore::open(EmbeddedOptions::new(tmp.path())) {
        Err(e @ EmbeddedError::CorruptSegment { .. }) => {
            assert!(e.to_string().contains("damaged"), "{e}");
        }
        other => panic!("expected CorruptSegment, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_segment_is_a_revision_gap() {
    let tmp = tempfile::tempdir().expect("tempdir");
    {
        let s = open(tmp.path());
        s.create(b"/g", Bytes::from_static(b"v"))
            .await
            .expect("create");
    }
    let segment = files(tmp.path(), "wal-").pop().expect("a segment");
    std::fs::rename(&segment, tmp.path().join("wal-00000000000000000009.log")).expect("rename");
    assert!(matches!(
        EmbeddedStore::open(EmbeddedOptions::new(tmp.path())),
        Err(EmbeddedError::RevisionGap {
            expected: 2,
            found: 9,
            ..
        })
    ));
}

#[test]
fn a_wrong_data_directory_gets_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    assert!(matches!(
        EmbeddedStore::open(EmbeddedOptions::new(&file)),
        Err(EmbeddedError::NotADirectory { .. })
    ));
    let other = tmp.path().join("someone-elses");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), b"mine").expect("write");
    let err = EmbeddedStore::open(EmbeddedOptions::new(&other)).expect_err("not a store");
    assert!(matches!(err, EmbeddedError::NotAStore { .. }));
    assert!(err.to_string().contains("is not an oxkube store"), "{err}");
    assert_eq!(
        std::fs::read(other.join("notes.txt")).ok(),
        Some(b"mine".to_vec()),
        "nothing touched"
    );
    let future = tmp.path().join("future");
    std::fs::create_dir(&future).expect("mkdir");
    std::fs::write(future.join("oxkube-store"), b"oxkube-store 9\n").expect("write");
    assert!(matches!(
        EmbeddedStore::open(EmbeddedOptions::new(&future)),
        Err(EmbeddedError::UnsupportedFormat { .. })
    ));
}

#[test]
fn a_data_directory_is_used_by_one_store_at_a_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let first = open(tmp.path());
    assert!(matches!(
        EmbeddedStore::open(EmbeddedOptions::new(tmp.path())),
        Err(EmbeddedError::Locked { .. })
    ));
    drop(first);
    assert!(EmbeddedStore::open(EmbeddedOptions::new(tmp.path())).is_ok());
}
