//! The embedded backend (the default): the whole multi-version state in memory, made durable by a
//! write-ahead log with group commit, and kept small on disk by checkpoints.
//!
//! Writes go to one commit thread, which takes every request waiting, decides each against the state
//! (see [`mvcc::BatchPlanner`]), appends the accepted ones to the log, syncs once, and only then applies
//! them and answers: a write is acknowledged only once it is on disk, and readers never see one that is
//! not. Reads take a read lock on the state; watches read the event log from their own position, so a
//! slow watcher costs nothing until compaction overtakes it. Why this design rather than a B-tree file
//! underneath: `docs/store.md`.

pub mod checkpoint;
#[cfg(test)]
mod model_tests;
pub mod mvcc;
pub mod wal;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{oneshot, watch};

use self::mvcc::{BatchPlanner, Mvcc, Record, WriteOp, WriteOutcome};
use self::wal::{FrameDamage, Segment};
use crate::{
    Event, KeyValue, RangeRequest, RangeResponse, Revision, Store, StoreError, WatchStream,
};

const META_FILE: &str = "oxkube-store";
const META_CONTENT: &str = "oxkube-store 1\n";
const LOCK_FILE: &str = "LOCK";
/// Most writes one commit takes at once.
const MAX_BATCH: usize = 4096;
/// How soon a wanted checkpoint is tried again while another one runs.
const CHECKPOINT_RETRY: std::time::Duration = std::time::Duration::from_millis(50);
/// Most events a watcher takes from the log under one read lock.
const WATCH_CHUNK: usize = 1024;
/// The largest value accepted (etcd's default request limit is 1.5 MiB; Kubernetes objects stay below).
pub const MAX_VALUE_BYTES: usize = 16 << 20;

/// Every way the embedded backend fails.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("data directory {path} exists but is not a directory")]
    NotADirectory { path: PathBuf },
    #[error("cannot create data directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another process")]
    Locked { path: PathBuf },
    #[error("cannot lock data directory {path}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an oxkube store (it is not empty and has no {META_FILE} file)")]
    NotAStore { path: PathBuf },
    #[error("{path} holds a store of an unsupported format ({found:?})")]
    UnsupportedFormat { path: PathBuf, found: String },
    #[error("cannot write the store's format file {path}")]
    WriteMeta {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list data directory {path}")]
    ListDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read WAL segment {path}")]
    ReadSegment {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "WAL segment {path} is damaged at byte {offset} ({damage}) and is not the newest segment"
    )]
    CorruptSegment {
        path: PathBuf,
        offset: u64,
        damage: FrameDamage,
    },
    #[error(
        "WAL segment {path} continues at revision {found}, expected {expected}: records are missing"
    )]
    RevisionGap {
        path: PathBuf,
        expected: Revision,
        found: Revision,
    },
    #[error("cannot create or open WAL segment {path}")]
    CreateSegment {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write WAL segment {path}")]
    WriteWal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot sync WAL segment {path} to disk")]
    SyncWal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot sync directory {path}")]
    SyncDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write checkpoint {path}")]
    WriteCheckpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read checkpoint {path}")]
    ReadCheckpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("checkpoint {path} is damaged: {reason}")]
    CorruptCheckpoint { path: PathBuf, reason: String },
    #[error("cannot start the store's commit thread")]
    SpawnThread(#[source] std::io::Error),
    #[error("the store stopped taking writes after a failed disk write: {reason}")]
    Poisoned { reason: String },
}

/// How to open an embedded store.
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    pub dir: PathBuf,
    /// Start a checkpoint when the newest WAL segment grows past this many bytes.
    pub checkpoint_wal_bytes: u64,
}

impl EmbeddedOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EmbeddedOptions {
            dir: dir.into(),
            checkpoint_wal_bytes: 64 << 20,
        }
    }
}

enum Request {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<WriteOutcome, StoreError>>,
    },
    Compact {
        revision: Revision,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// The embedded store. Cheap to share behind an `Arc`; dropping it finishes pending writes, waits for a
/// running checkpoint and releases the data directory.
pub struct EmbeddedStore {
    state: Arc<RwLock<Mvcc>>,
    requests: Option<mpsc::Sender<Request>>,
    revisions: watch::Receiver<Revision>,
    commit_thread: Mutex<Option<JoinHandle<()>>>,
    dir: PathBuf,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `opts.dir`, recovering from the last checkpoint and the WAL.
    pub fn open(opts: EmbeddedOptions) -> Result<EmbeddedStore, EmbeddedError> {
        let dir = opts.dir.clone();
        let lock = prepare_dir(&dir)?;
        let (state, segment) = recover(&dir)?;
        let revision = state.revision();
        let state = Arc::new(RwLock::new(state));
        let (requests, rx) = mpsc::channel();
        let (rev_tx, revisions) = watch::channel(revision);
        let committer = Committer {
            dir: dir.clone(),
            state: state.clone(),
            segment,
            revisions: rev_tx,
            poisoned: None,
            checkpoint_wal_bytes: opts.checkpoint_wal_bytes,
            checkpoint_thread: None,
            checkpoint_pending: false,
            _lock: lock,
        };
        let thread = std::thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || committer.run(rx))
            .map_err(EmbeddedError::SpawnThread)?;
        Ok(EmbeddedStore {
            state,
            requests: Some(requests),
            revisions,
            commit_thread: Mutex::new(Some(thread)),
            dir,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many keys exist now.
    pub fn len(&self) -> usize {
        self.state.read().live_keys()
    }

    /// Whether no key exists now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Request,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let requests = self.requests.as_ref().ok_or(StoreError::Closed)?;
        requests.send(make(reply)).map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        self.call(|reply| Request::Write { op, reply }).await
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.commit_thread.lock().take() {
            let _ = thread.join();
        }
    }
}

fn check_key(key: &[u8]) -> Result<(), StoreError> {
    if key.is_empty() {
        return Err(StoreError::InvalidRequest("empty key"));
    }
    Ok(())
}

fn check_value(value: &Bytes) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::InvalidRequest("value too large"));
    }
    Ok(())
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn get(
        &self,
        key: &[u8],
        revision: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), StoreError> {
        self.state.read().get(key, revision)
    }

    async fn range(&self, req: RangeRequest) -> Result<RangeResponse, StoreError> {
        self.state.read().range(&req)
    }

    async fn create(&self, key: &[u8], value: Bytes) -> Result<Revision, StoreError> {
        check_key(key)?;
        check_value(&value)?;
        let key = Bytes::copy_from_slice(key);
        match self.write(WriteOp::Create { key, value }).await? {
            WriteOutcome::Put(revision) | WriteOutcome::Deleted(revision, _) => Ok(revision),
        }
    }

    async fn update(
        &self,
        key: &[u8],
        value: Bytes,
        expected: Revision,
    ) -> Result<Revision, StoreError> {
        check_key(key)?;
        check_value(&value)?;
        let key = Bytes::copy_from_slice(key);
        let op = WriteOp::Update {
            key,
            value,
            expected,
        };
        match self.write(op).await? {
            WriteOutcome::Put(revision) | WriteOutcome::Deleted(revision, _) => Ok(revision),
        }
    }

    async fn delete(
        &self,
        key: &[u8],
        expected: Option<Revision>,
    ) -> Result<(Revision, KeyValue), StoreError> {
        check_key(key)?;
        let key = Bytes::copy_from_slice(key);
        match self.write(WriteOp::Delete { key, expected }).await? {
            WriteOutcome::Deleted(revision, prev) => Ok((revision, prev)),
            WriteOutcome::Put(_) => Err(StoreError::NotFound),
        }
    }

    async fn watch(&self, prefix: &[u8], start: Revision) -> Result<WatchStream, StoreError> {
        let mut revisions = self.revisions.clone();
        revisions.borrow_and_update();
        let next = {
            let state = self.state.read();
            if start > 0 && start < state.compacted() {
                return Err(StoreError::Compacted { requested: start });
            }
            if start <= 0 {
                state.revision() + 1
            } else {
                start
            }
        };
        let watcher = Watcher {
            state: self.state.clone(),
            prefix: Bytes::copy_from_slice(prefix),
            next,
            buffered: VecDeque::new(),
            revisions,
            phase: WatchPhase::Reading,
        };
        Ok(Box::pin(futures::stream::unfold(watcher, Watcher::step)))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.state.read().revision())
    }

    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        self.call(|reply| Request::Compact { revision, reply })
            .await
    }
}

/// Where a watcher is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WatchPhase {
    /// Taking events from the log (or waiting for new ones).
    Reading,
    /// Ended: the store closed or an error was delivered.
    Done,
}

/// One watch as an explicit state machine, driven by `stream::unfold`.
struct Watcher {
    state: Arc<RwLock<Mvcc>>,
    prefix: Bytes,
    next: Revision,
    buffered: VecDeque<Event>,
    revisions: watch::Receiver<Revision>,
    phase: WatchPhase,
}

impl Watcher {
    async fn step(mut self) -> Option<(Result<Event, StoreError>, Watcher)> {
        loop {
            if self.phase == WatchPhase::Done {
                return None;
            }
            if let Some(event) = self.buffered.pop_front() {
                return Some((Ok(event), self));
            }
            // Mark the revision seen before reading, so a write after the read wakes us.
            self.revisions.borrow_and_update();
            let read = self
                .state
                .read()
                .events_since(&self.prefix, self.next, WATCH_CHUNK);
            match read {
                Err(e) => {
                    self.phase = WatchPhase::Done;
                    return Some((Err(e), self));
                }
                Ok((events, next)) => {
                    self.next = next;
                    if events.is_empty() {
                        if self.revisions.changed().await.is_err() {
                            self.phase = WatchPhase::Done;
                        }
                    } else {
                        self.buffered.extend(events);
                    }
                }
            }
        }
    }
}

/// The single writer: owns the WAL and is the only one to change the state.
struct Committer {
    dir: PathBuf,
    state: Arc<RwLock<Mvcc>>,
    segment: Segment,
    revisions: watch::Sender<Revision>,
    poisoned: Option<String>,
    checkpoint_wal_bytes: u64,
    checkpoint_thread: Option<JoinHandle<()>>,
    /// A checkpoint was wanted while another was running.
    checkpoint_pending: bool,
    _lock: File,
}

impl Committer {
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        loop {
            let first = if self.checkpoint_pending {
                // A checkpoint waits for the running one: look again soon even with no writes.
                match rx.recv_timeout(CHECKPOINT_RETRY) {
                    Ok(request) => request,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.start_checkpoint();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(request) => request,
                    Err(_) => break,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
        if let Some(thread) = self.checkpoint_thread.take() {
            let _ = thread.join();
        }
    }

    fn commit(&mut self, batch: Vec<Request>) {
        type Reply = oneshot::Sender<Result<WriteOutcome, StoreError>>;
        let mut framed = Vec::new();
        let mut records: Vec<Record> = Vec::new();
        let mut replies: Vec<(Reply, WriteOutcome)> = Vec::new();
        let mut compactions = Vec::new();
        {
            let state = self.state.read();
            let mut planner = BatchPlanner::new(&state);
            for request in batch {
                match request {
                    Request::Write { op, reply } => {
                        if let Some(reason) = &self.poisoned {
                            let reason = reason.clone();
                            let _ = reply.send(Err(EmbeddedError::Poisoned { reason }.into()));
                            continue;
                        }
                        match planner.plan(op) {
                            Ok((record, outcome)) => {
                                wal::encode(&record, &mut framed);
                                records.push(record);
                                replies.push((reply, outcome));
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                    Request::Compact { revision, reply } => compactions.push((revision, reply)),
                }
            }
        }
        if let Some(last) = records.last() {
            if let Err(e) = self.segment.append_durably(&framed) {
                let reason = error_chain(&e);
                tracing::error!(error = %reason, "WAL write failed; the store takes no more writes");
                for (reply, _) in replies {
                    let reason = reason.clone();
                    let _ = reply.send(Err(EmbeddedError::Poisoned { reason }.into()));
                }
                self.poisoned = Some(reason);
                return;
            }
            {
                let mut state = self.state.write();
                for record in &records {
                    state.apply(record);
                }
            }
            self.revisions.send_replace(last.revision);
            for (reply, outcome) in replies {
                let _ = reply.send(Ok(outcome));
            }
        }
        let mut compacted = false;
        for (revision, reply) in compactions {
            let result = self.state.write().compact(revision);
            compacted |= result.is_ok();
            let _ = reply.send(result);
        }
        if compacted || self.checkpoint_pending || self.segment.bytes > self.checkpoint_wal_bytes {
            self.start_checkpoint();
        }
    }

    /// Rotates the WAL and writes a checkpoint in the background; once it is durable, the segments
    /// and checkpoints it replaces are deleted.
    fn start_checkpoint(&mut self) {
        if self.poisoned.is_some() {
            return;
        }
        if let Some(thread) = &self.checkpoint_thread {
            if !thread.is_finished() {
                self.checkpoint_pending = true;
                return;
            }
            if let Some(thread) = self.checkpoint_thread.take() {
                let _ = thread.join();
            }
        }
        self.checkpoint_pending = false;
        let (revision, compacted, keys) = {
            let state = self.state.read();
            (
                state.revision(),
                state.compacted(),
                state.versions().clone(),
            )
        };
        if self.segment.bytes > 0 {
            match Segment::create(&self.dir, revision + 1) {
                Ok(segment) => self.segment = segment,
                Err(e) => {
                    tracing::warn!(error = %error_chain(&e), "cannot rotate the WAL; checkpoint skipped");
                    return;
                }
            }
        }
        let dir = self.dir.clone();
        let keep_segments_from = self.segment.first;
        let spawned = std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                let result = checkpoint::write(&dir, revision, compacted, &keys)
                    .and_then(|_| remove_covered(&dir, revision, keep_segments_from));
                match result {
                    Ok(()) => tracing::debug!(revision, compacted, "checkpoint written"),
                    Err(e) => tracing::warn!(error = %error_chain(&e), "checkpoint failed; the WAL keeps everything"),
                }
            });
        match spawned {
            Ok(thread) => self.checkpoint_thread = Some(thread),
            Err(e) => tracing::warn!(error = %e, "cannot start a checkpoint thread"),
        }
    }
}

/// An error and its causes on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The store's files, as found in its directory.
#[derive(Debug, Default)]
struct DirListing {
    segments: Vec<(Revision, PathBuf)>,
    checkpoints: Vec<(Revision, PathBuf)>,
}

fn list_dir(dir: &Path) -> Result<DirListing, EmbeddedError> {
    let err = |source| EmbeddedError::ListDir {
        path: dir.to_owned(),
        source,
    };
    let mut listing = DirListing::default();
    for entry in std::fs::read_dir(dir).map_err(err)? {
        let entry = entry.map_err(err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first) = wal::parse_segment_name(name) {
            listing.segments.push((first, entry.path()));
        } else if let Some(revision) = checkpoint::parse_checkpoint_name(name) {
            listing.checkpoints.push((revision, entry.path()));
        } else if name.starts_with("checkpoint-") && name.ends_with(".tmp") {
            // A checkpoint that never finished: nothing refers to it.
            let _ = std::fs::remove_file(entry.path());
        }
    }
    listing.segments.sort();
    listing.checkpoints.sort();
    Ok(listing)
}

/// Deletes what a durable checkpoint at `revision` makes redundant.
fn remove_covered(
    dir: &Path,
    revision: Revision,
    keep_segments_from: Revision,
) -> Result<(), EmbeddedError> {
    let listing = list_dir(dir)?;
    let old_segments = listing
        .segments
        .iter()
        .filter(|(first, _)| *first < keep_segments_from);
    let old_checkpoints = listing.checkpoints.iter().filter(|(r, _)| *r < revision);
    for (_, path) in old_segments.chain(old_checkpoints) {
        let _ = std::fs::remove_file(path);
    }
    wal::sync_dir(dir)
}

/// Creates or checks the data directory and takes its lock.
fn prepare_dir(dir: &Path) -> Result<File, EmbeddedError> {
    if dir.exists() && !dir.is_dir() {
        return Err(EmbeddedError::NotADirectory {
            path: dir.to_owned(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|source| EmbeddedError::CreateDir {
        path: dir.to_owned(),
        source,
    })?;
    let meta = dir.join(META_FILE);
    let lock_path = dir.join(LOCK_FILE);
    if !meta.exists() {
        let others = std::fs::read_dir(dir)
            .map_err(|source| EmbeddedError::ListDir {
                path: dir.to_owned(),
                source,
            })?
            .filter_map(Result::ok)
            .any(|e| e.file_name() != LOCK_FILE);
        if others {
            return Err(EmbeddedError::NotAStore {
                path: dir.to_owned(),
            });
        }
    }
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| EmbeddedError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(EmbeddedError::Locked {
                path: dir.to_owned(),
            });
        }
        Err(std::fs::TryLockError::Error(source)) => {
            return Err(EmbeddedError::Lock {
                path: lock_path,
                source,
            });
        }
    }
    if meta.exists() {
        let found = std::fs::read_to_string(&meta).map_err(|source| EmbeddedError::WriteMeta {
            path: meta.clone(),
            source,
        })?;
        if found != META_CONTENT {
            return Err(EmbeddedError::UnsupportedFormat {
                path: dir.to_owned(),
                found: found.trim().to_owned(),
            });
        }
    } else {
        let tmp = meta.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(META_CONTENT.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &meta)
        };
        write().map_err(|source| EmbeddedError::WriteMeta {
            path: meta.clone(),
            source,
        })?;
        wal::sync_dir(dir)?;
    }
    Ok(lock)
}

/// Rebuilds the state from the newest checkpoint and the WAL after it; returns the segment to append to.
fn recover(dir: &Path) -> Result<(Mvcc, Segment), EmbeddedError> {
    let listing = list_dir(dir)?;
    let mut state = match listing.checkpoints.last() {
        Some((_, path)) => {
            let cp = checkpoint::read(path)?;
            Mvcc::from_versions(cp.keys, cp.revision, cp.compacted)
        }
        None => Mvcc::default(),
    };
    let segments = &listing.segments;
    let mut tail: Option<(Revision, PathBuf, u64)> = None;
    for (i, (first, path)) in segments.iter().enumerate() {
        let is_last = i + 1 == segments.len();
        // A segment followed by one that starts at or before our revision is wholly covered.
        if let Some((next_first, _)) = segments.get(i + 1)
            && *next_first <= state.revision() + 1
        {
            continue;
        }
        if *first > state.revision() + 1 {
            return Err(EmbeddedError::RevisionGap {
                path: path.clone(),
                expected: state.revision() + 1,
                found: *first,
            });
        }
        let read = wal::read_segment(path)?;
        if let Some(damage) = read.damage {
            if !is_last {
                return Err(EmbeddedError::CorruptSegment {
                    path: path.clone(),
                    offset: read.valid_len,
                    damage,
                });
            }
            let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = len.saturating_sub(read.valid_len),
                %damage,
                "dropping the torn tail of the newest WAL segment (writes never acknowledged)"
            );
        }
        for record in &read.records {
            if record.revision <= state.revision() {
                continue;
            }
            if record.revision != state.revision() + 1 {
                return Err(EmbeddedError::RevisionGap {
                    path: path.clone(),
                    expected: state.revision() + 1,
                    found: record.revision,
                });
            }
            state.apply(record);
        }
        if is_last {
            tail = Some((*first, path.clone(), read.valid_len));
        }
    }
    let segment = match tail {
        Some((first, path, valid_len)) => Segment::reopen(&path, first, valid_len)?,
        None => Segment::create(dir, state.revision() + 1)?,
    };
    Ok((state, segment))
}
