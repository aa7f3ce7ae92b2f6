//! The embedded backend's pure core: multi-version key state, the event log that serves watches, and
//! the rules that decide whether a write is accepted. No I/O; the commit loop feeds it records.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;

use bytes::Bytes;

use crate::{Event, KeyValue, RangeRequest, RangeResponse, Revision, StoreError};

/// The revision of an empty store (as etcd: the first write gets revision 2).
pub const INITIAL_REVISION: Revision = 1;

/// One version of a key: a value, or a tombstone (`value: None`) left by a delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub create_revision: Revision,
    pub mod_revision: Revision,
    pub value: Option<Bytes>,
}

/// One accepted write, as the log stores it and replay applies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub revision: Revision,
    pub key: Bytes,
    /// The new value; `None` deletes the key.
    pub value: Option<Bytes>,
}

/// A write asked of the store.
#[derive(Clone, Debug)]
pub enum WriteOp {
    Create {
        key: Bytes,
        value: Bytes,
    },
    Update {
        key: Bytes,
        value: Bytes,
        expected: Revision,
    },
    Delete {
        key: Bytes,
        expected: Option<Revision>,
    },
}

/// What an accepted write answers its caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Put(Revision),
    Deleted(Revision, KeyValue),
}

/// The full multi-version state. Only the commit loop mutates it.
#[derive(Clone, Debug)]
pub struct Mvcc {
    /// Every key with its retained versions, oldest first.
    keys: BTreeMap<Bytes, Vec<Version>>,
    /// Every retained change in revision order (a delete whose value was compacted away is absent).
    log: VecDeque<Event>,
    revision: Revision,
    compacted: Revision,
}

impl Default for Mvcc {
    fn default() -> Self {
        Mvcc {
            keys: BTreeMap::new(),
            log: VecDeque::new(),
            revision: INITIAL_REVISION,
            compacted: 0,
        }
    }
}

impl Mvcc {
    /// Rebuilds the state from retained versions (as a checkpoint stores them), recomputing the event log.
    pub fn from_versions(
        keys: BTreeMap<Bytes, Vec<Version>>,
        revision: Revision,
        compacted: Revision,
    ) -> Mvcc {
        let mut events: Vec<Event> = Vec::new();
        for (key, versions) in &keys {
            for (i, v) in versions.iter().enumerate() {
                if v.mod_revision < compacted {
                    continue;
                }
                let prev = i.checked_sub(1).and_then(|p| to_kv(key, &versions[p]));
                events.push(match &v.value {
                    Some(value) => Event::Put {
                        kv: KeyValue {
                            key: key.clone(),
                            value: value.clone(),
                            create_revision: v.create_revision,
                            mod_revision: v.mod_revision,
                        },
                        prev,
                    },
                    None => match prev {
                        Some(prev) => Event::Delete {
                            prev,
                            revision: v.mod_revision,
                        },
                        // A tombstone whose value was compacted away reports nothing.
                        None => continue,
                    },
                });
            }
        }
        events.sort_by_key(Event::revision);
        Mvcc {
            keys,
            log: events.into(),
            revision,
            compacted,
        }
    }

    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn compacted(&self) -> Revision {
        self.compacted
    }

    /// Every key's retained versions (what a checkpoint stores).
    pub fn versions(&self) -> &BTreeMap<Bytes, Vec<Version>> {
        &self.keys
    }

    /// How many keys exist at the latest revision.
    pub fn live_keys(&self) -> usize {
        self.keys
            .values()
            .filter(|v| v.last().is_some_and(|v| v.value.is_some()))
            .count()
    }

    fn check_revision(&self, revision: Option<Revision>) -> Result<Revision, StoreError> {
        match revision {
            None => Ok(self.revision),
            Some(r) if r <= 0 => Ok(self.revision),
            Some(r) if r < self.compacted => Err(StoreError::Compacted { requested: r }),
            Some(r) if r > self.revision => Err(StoreError::FutureRevision { requested: r }),
            Some(r) => Ok(r),
        }
    }

    /// The key as of `revision` (latest when `None`).
    pub fn get(
        &self,
        key: &[u8],
        revision: Option<Revision>,
    ) -> Result<(Option<KeyValue>, Revision), StoreError> {
        let at = self.check_revision(revision)?;
        let kv = self
            .keys
            .get_key_value(key)
            .and_then(|(k, versions)| version_at(versions, at).and_then(|v| to_kv(k, v)));
        Ok((kv, at))
    }

    /// The latest value of `key`, if it exists.
    pub fn latest(&self, key: &[u8]) -> Option<KeyValue> {
        self.keys
            .get_key_value(key)
            .and_then(|(k, versions)| versions.last().and_then(|v| to_kv(k, v)))
    }

    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, StoreError> {
        let at = self.check_revision(req.revision)?;
        let lower = match &req.start_after {
            Some(after) if after.as_ref() >= req.prefix.as_ref() => Bound::Excluded(after.clone()),
            _ => Bound::Included(req.prefix.clone()),
        };
        let mut kvs = Vec::new();
        let mut count = 0;
        for (key, versions) in self.keys.range((lower, Bound::Unbounded)) {
            if !key.starts_with(&req.prefix) {
                break;
            }
            let Some(kv) = version_at(versions, at).and_then(|v| to_kv(key, v)) else {
                continue;
            };
            count += 1;
            if req.limit == 0 || kvs.len() < req.limit {
                kvs.push(kv);
            }
        }
        Ok(RangeResponse {
            more: count > kvs.len(),
            kvs,
            revision: at,
            count,
        })
    }

    /// Applies one accepted write (at the next revision) and logs its event.
    pub fn apply(&mut self, record: &Record) -> Event {
        debug_assert_eq!(record.revision, self.revision + 1);
        let versions = self.keys.entry(record.key.clone()).or_default();
        let prev = versions.last().and_then(|v| to_kv(&record.key, v));
        let event = match &record.value {
            Some(value) => {
                let create_revision = prev.as_ref().map_or(record.revision, |p| p.create_revision);
                versions.push(Version {
                    create_revision,
                    mod_revision: record.revision,
                    value: Some(value.clone()),
                });
                Event::Put {
                    kv: KeyValue {
                        key: record.key.clone(),
                        value: value.clone(),
                        create_revision,
                        mod_revision: record.revision,
                    },
                    prev,
                }
            }
            None => {
                let prev = prev.unwrap_or_else(|| KeyValue {
                    key: record.key.clone(),
                    value: Bytes::new(),
                    create_revision: 0,
                    mod_revision: 0,
                });
                versions.push(Version {
                    create_revision: 0,
                    mod_revision: record.revision,
                    value: None,
                });
                Event::Delete {
                    prev,
                    revision: record.revision,
                }
            }
        };
        self.log.push_back(event.clone());
        self.revision = record.revision;
        event
    }

    /// Forgets history below `revision` (reads at `revision` itself stay possible).
    pub fn compact(&mut self, revision: Revision) -> Result<(), StoreError> {
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
            });
        }
        if revision <= self.compacted {
            return Err(StoreError::Compacted {
                requested: revision,
            });
        }
        self.compacted = revision;
        self.keys.retain(|_, versions| {
            // Keep the version current at the compaction point and everything after it. A change
            // made exactly at the compaction point is still watchable, so the version it replaced
            // stays too (its event's previous value); an older tombstone goes.
            let at_or_below = versions.partition_point(|v| v.mod_revision <= revision);
            if let Some(current) = at_or_below.checked_sub(1) {
                let keep_from = if versions[current].mod_revision == revision {
                    current.saturating_sub(1)
                } else if versions[current].value.is_some() {
                    current
                } else {
                    at_or_below
                };
                versions.drain(..keep_from);
            }
            !versions.is_empty()
        });
        while self.log.front().is_some_and(|e| e.revision() < revision) {
            self.log.pop_front();
        }
        Ok(())
    }

    /// Up to `max` events under `prefix` with revision ≥ `from`, and the revision to continue from.
    pub fn events_since(
        &self,
        prefix: &[u8],
        from: Revision,
        max: usize,
    ) -> Result<(Vec<Event>, Revision), StoreError> {
        if from < self.compacted {
            return Err(StoreError::Compacted { requested: from });
        }
        let skip = self.log.partition_point(|e| e.revision() < from);
        let mut out = Vec::new();
        let mut next = from;
        for event in self.log.iter().skip(skip) {
            next = event.revision() + 1;
            if event.key().starts_with(prefix) {
                out.push(event.clone());
                if out.len() >= max {
                    break;
                }
            }
        }
        if out.len() < max {
            // Everything up to the latest revision was looked at.
            next = next.max(self.revision + 1);
        }
        Ok((out, next))
    }
}

/// Decides writes against the committed state plus the writes accepted earlier in the same batch
/// (which are not applied until the batch is durable).
#[derive(Debug)]
pub struct BatchPlanner<'a> {
    state: &'a Mvcc,
    pending: HashMap<Bytes, Option<KeyValue>>,
    next_revision: Revision,
}

impl<'a> BatchPlanner<'a> {
    pub fn new(state: &'a Mvcc) -> Self {
        BatchPlanner {
            state,
            pending: HashMap::new(),
            next_revision: state.revision() + 1,
        }
    }

    fn current(&self, key: &Bytes) -> Option<KeyValue> {
        match self.pending.get(key) {
            Some(pending) => pending.clone(),
            None => self.state.latest(key),
        }
    }

    /// Accepts or refuses one write; an accepted one returns the record to log and the caller's answer.
    pub fn plan(&mut self, op: WriteOp) -> Result<(Record, WriteOutcome), StoreError> {
        let revision = self.next_revision;
        let (record, outcome, after) = match op {
            WriteOp::Create { key, value } => {
                if self.current(&key).is_some() {
                    return Err(StoreError::AlreadyExists);
                }
                let after = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision: revision,
                    mod_revision: revision,
                };
                let record = Record {
                    revision,
                    key,
                    value: Some(value),
                };
                (record, WriteOutcome::Put(revision), Some(after))
            }
            WriteOp::Update {
                key,
                value,
                expected,
            } => {
                let current = self.current(&key);
                let Some(now) = current.filter(|c| c.mod_revision == expected) else {
                    return Err(StoreError::Conflict {
                        expected,
                        current: self.current(&key).map(Box::new),
                    });
                };
                let after = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision: now.create_revision,
                    mod_revision: revision,
                };
                let record = Record {
                    revision,
                    key,
                    value: Some(value),
                };
                (record, WriteOutcome::Put(revision), Some(after))
            }
            WriteOp::Delete { key, expected } => {
                let Some(now) = self.current(&key) else {
                    return Err(StoreError::NotFound);
                };
                if let Some(expected) = expected
                    && now.mod_revision != expected
                {
                    return Err(StoreError::Conflict {
                        expected,
                        current: Some(Box::new(now)),
                    });
                }
                let record = Record {
                    revision,
                    key,
                    value: None,
                };
                (record, WriteOutcome::Deleted(revision, now), None)
            }
        };
        self.pending.insert(record.key.clone(), after);
        self.next_revision += 1;
        Ok((record, outcome))
    }
}

fn version_at(versions: &[Version], at: Revision) -> Option<&Version> {
    let n = versions.partition_point(|v| v.mod_revision <= at);
    n.checked_sub(1).map(|i| &versions[i])
}

fn to_kv(key: &Bytes, v: &Version) -> Option<KeyValue> {
    v.value.as_ref().map(|value| KeyValue {
        key: key.clone(),
        value: value.clone(),
        create_revision: v.create_revision,
        mod_revision: v.mod_revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn write(m: &mut Mvcc, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (record, outcome) = BatchPlanner::new(m).plan(op)?;
        m.apply(&record);
        Ok(outcome)
    }

    fn put(key: &str, value: &str) -> WriteOp {
        WriteOp::Create {
            key: b(key),
            value: b(value),
        }
    }

    #[test]
    fn first_write_gets_revision_two_and_create_revision_sticks() {
        let mut m = Mvcc::default();
        assert_eq!(
            write(&mut m, put("/a", "1")).ok(),
            Some(WriteOutcome::Put(2))
        );
        let up = WriteOp::Update {
            key: b("/a"),
            value: b("2"),
            expected: 2,
        };
        assert_eq!(write(&mut m, up).ok(), Some(WriteOutcome::Put(3)));
        let kv = m.latest(b"/a").expect("key exists");
        assert_eq!((kv.create_revision, kv.mod_revision), (2, 3));
    }

    #[test]
    fn a_batch_sees_its_own_earlier_writes() {
        let m = Mvcc::default();
        let mut planner = BatchPlanner::new(&m);
        assert!(planner.plan(put("/a", "1")).is_ok());
        assert!(matches!(
            planner.plan(put("/a", "again")),
            Err(StoreError::AlreadyExists)
        ));
        let del = WriteOp::Delete {
            key: b("/a"),
            expected: Some(2),
        };
        let (record, outcome) = planner.plan(del).expect("delete planned");
        assert_eq!(record.revision, 3);
        assert!(matches!(outcome, WriteOutcome::Deleted(3, ref kv) if kv.value == b("1")));
    }

    #[test]
    fn compaction_keeps_reads_at_the_compacted_revision() {
        let mut m = Mvcc::default();
        write(&mut m, put("/a", "1")).ok();
        write(&mut m, put("/b", "1")).ok();
        let del = WriteOp::Delete {
            key: b("/b"),
            expected: None,
        };
        write(&mut m, del).ok();
        write(&mut m, put("/c", "1")).ok();
        m.compact(4).expect("compact");
        assert!(matches!(
            m.get(b"/a", Some(3)),
            Err(StoreError::Compacted { .. })
        ));
        let at4 = m.range(&RangeRequest {
            prefix: b("/"),
            revision: Some(4),
            ..Default::default()
        });
        let keys: Vec<_> = at4
            .expect("range")
            .kvs
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        assert_eq!(keys, vec![b("/a")]);
        let (events, next) = m.events_since(b"/", 4, 10).expect("events");
        assert_eq!(
            events.iter().map(Event::revision).collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert_eq!(next, 6);
        // Deleted exactly at the compaction point: still watchable, so still there.
        assert!(m.versions().contains_key(&b("/b")));
        m.compact(5).expect("compact");
        assert!(!m.versions().contains_key(&b("/b")), "deleted key dropped");
    }

    #[test]
    fn the_event_log_rebuilds_from_versions() {
        let mut m = Mvcc::default();
        write(&mut m, put("/a", "1")).ok();
        write(
            &mut m,
            WriteOp::Update {
                key: b("/a"),
                value: b("2"),
                expected: 2,
            },
        )
        .ok();
        write(
            &mut m,
            WriteOp::Delete {
                key: b("/a"),
                expected: None,
            },
        )
        .ok();
        write(&mut m, put("/b", "1")).ok();
        let rebuilt = Mvcc::from_versions(m.versions().clone(), m.revision(), m.compacted());
        assert_eq!(
            rebuilt.events_since(b"", 0, 100).ok(),
            m.events_since(b"", 0, 100).ok()
        );
    }
}
