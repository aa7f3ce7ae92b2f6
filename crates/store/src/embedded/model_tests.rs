//! Property tests of the MVCC core against the simplest possible model: a full copy of the key space
//! at every revision. Random writes (alone and in batches), compactions, reads at random revisions
//! and watches from random revisions must agree with it.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;

use super::mvcc::{BatchPlanner, Mvcc, WriteOp, WriteOutcome};
use crate::{Event, KeyValue, RangeRequest, Revision, StoreError};

const KEYS: [&str; 5] = ["/a", "/a/b", "/a/c", "/b", "/b/c"];
const PREFIXES: [&str; 4] = ["", "/a", "/a/", "/b/"];

/// The model: `snapshots[r - 1]` is the key space at revision `r`.
#[derive(Debug)]
struct Model {
    snapshots: Vec<BTreeMap<Bytes, KeyValue>>,
    compacted: Revision,
}

impl Model {
    fn revision(&self) -> Revision {
        self.snapshots.len() as Revision
    }
    fn head(&self) -> &BTreeMap<Bytes, KeyValue> {
        &self.snapshots[self.snapshots.len() - 1]
    }
    fn at(&self, r: Revision) -> Result<&BTreeMap<Bytes, KeyValue>, StoreError> {
        if r < self.compacted {
            return Err(StoreError::Compacted { requested: r });
        }
        if r > self.revision() {
            return Err(StoreError::FutureRevision { requested: r });
        }
        Ok(&self.snapshots[(r - 1) as usize])
    }
    /// Applies a write the way the contract says, or refuses it.
    fn write(&mut self, op: &WriteOp) -> Result<WriteOutcome, StoreError> {
        let next = self.revision() + 1;
        let mut state = self.head().clone();
        let outcome = match op {
            WriteOp::Create { key, value } => {
                if state.contains_key(key) {
                    return Err(StoreError::AlreadyExists);
                }
                state.insert(key.clone(), kv(key, value, next, next));
                WriteOutcome::Put(next)
            }
            WriteOp::Update {
                key,
                value,
                expected,
            } => {
                let Some(now) = state.get(key).filter(|kv| kv.mod_revision == *expected) else {
                    return Err(StoreError::Conflict {
                        expected: *expected,
                        current: state.get(key).cloned().map(Box::new),
                    });
                };
                let create = now.create_revision;
                state.insert(key.clone(), kv(key, value, create, next));
                WriteOutcome::Put(next)
            }
            WriteOp::Delete { key, expected } => {
                let Some(now) = state.get(key).cloned() else {
                    return Err(StoreError::NotFound);
                };
                if expected.is_some_and(|e| e != now.mod_revision) {
                    return Err(StoreError::Conflict {
                        expected: expected.unwrap_or(0),
                        current: Some(Box::new(now)),
                    });
                }
                state.remove(key);
                WriteOutcome::Deleted(next, now)
            }
        };
        self.snapshots.push(state);
        Ok(outcome)
    }
    /// The events under `prefix` from revision `from` on, derived from consecutive snapshots.
    fn events(&self, prefix: &[u8], from: Revision) -> Vec<Event> {
        let mut out = Vec::new();
        for r in from.max(2)..=self.revision() {
            let (before, after) = (
                &self.snapshots[(r - 2) as usize],
                &self.snapshots[(r - 1) as usize],
            );
            for key in KEYS.iter().map(|k| Bytes::from_static(k.as_bytes())) {
                if !key.starts_with(prefix) {
                    continue;
                }
                match (before.get(&key), after.get(&key)) {
                    (prev, Some(now)) if now.mod_revision == r => out.push(Event::Put {
                        kv: now.clone(),
                        prev: prev.cloned(),
                    }),
                    (Some(prev), None) => out.push(Event::Delete {
                        prev: prev.clone(),
                        revision: r,
                    }),
                    _ => {}
                }
            }
        }
        out
    }
}

fn kv(key: &Bytes, value: &Bytes, create: Revision, modr: Revision) -> KeyValue {
    KeyValue {
        key: key.clone(),
        value: value.clone(),
        create_revision: create,
        mod_revision: modr,
    }
}

/// A revision choice: relative to the head, so it is often meaningful.
#[derive(Debug, Clone)]
enum Step {
    Write(OpSpec),
    Batch(Vec<OpSpec>),
    Compact(u8),
    Get(usize, u8),
    Range(usize, usize, u8),
    Watch(usize, u8),
}

#[derive(Debug, Clone)]
enum OpSpec {
    Create(usize, u8),
    /// Update with the key's real mod_revision (`true`) or a guess back from the head.
    Update(usize, u8, bool, u8),
    Delete(usize, Option<(bool, u8)>),
}

fn op_spec() -> impl Strategy<Value = OpSpec> {
    prop_oneof![
        (0..KEYS.len(), any::<u8>()).prop_map(|(k, v)| OpSpec::Create(k, v)),
        (0..KEYS.len(), any::<u8>(), any::<bool>(), 0u8..6)
            .prop_map(|(k, v, real, back)| OpSpec::Update(k, v, real, back)),
        (0..KEYS.len(), proptest::option::of((any::<bool>(), 0u8..6)))
            .prop_map(|(k, e)| OpSpec::Delete(k, e)),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => op_spec().prop_map(Step::Write),
        1 => proptest::collection::vec(op_spec(), 1..6).prop_map(Step::Batch),
        1 => (0u8..8).prop_map(Step::Compact),
        2 => (0..KEYS.len(), 0u8..10).prop_map(|(k, r)| Step::Get(k, r)),
        2 => (0..PREFIXES.len(), 0usize..4, 0u8..10).prop_map(|(p, l, r)| Step::Range(p, l, r)),
        2 => (0..PREFIXES.len(), 0u8..10).prop_map(|(p, r)| Step::Watch(p, r)),
    ]
}

/// `back` revisions before the head plus one (so 0 is a future revision), at least 1.
fn rev_back(model: &Model, back: u8) -> Revision {
    (model.revision() + 1 - Revision::from(back)).max(1)
}

fn to_op(spec: &OpSpec, model: &Model) -> WriteOp {
    let key = |k: usize| Bytes::from_static(KEYS[k].as_bytes());
    let expected = |k: usize, real: bool, back: u8| match model.head().get(&key(k)) {
        Some(kv) if real => kv.mod_revision,
        _ => rev_back(model, back),
    };
    match *spec {
        OpSpec::Create(k, v) => WriteOp::Create {
            key: key(k),
            value: Bytes::from(vec![v]),
        },
        OpSpec::Update(k, v, real, back) => WriteOp::Update {
            key: key(k),
            value: Bytes::from(vec![v]),
            expected: expected(k, real, back),
        },
        OpSpec::Delete(k, e) => WriteOp::Delete {
            key: key(k),
            expected: e.map(|(real, back)| expected(k, real, back)),
        },
    }
}

fn same<T: PartialEq + std::fmt::Debug>(
    got: Result<T, StoreError>,
    want: Result<T, StoreError>,
) -> Result<(), TestCaseError> {
    match (got, want) {
        (Ok(g), Ok(w)) => prop_assert_eq!(g, w),
        (Err(g), Err(w)) => prop_assert_eq!(
            std::mem::discriminant(&g),
            std::mem::discriminant(&w),
            "{} vs {}",
            g,
            w
        ),
        (g, w) => prop_assert!(false, "got {:?}, model says {:?}", g, w),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn mvcc_agrees_with_the_model(steps in proptest::collection::vec(step(), 1..60)) {
        let mut mvcc = Mvcc::default();
        let mut model = Model { snapshots: vec![BTreeMap::new()], compacted: 0 };
        for step in steps {
            match step {
                Step::Write(spec) => {
                    let op = to_op(&spec, &model);
                    let want = model.write(&op);
                    let got = BatchPlanner::new(&mvcc).plan(op).map(|(record, outcome)| {
                        mvcc.apply(&record);
                        outcome
                    });
                    same(got, want)?;
                }
                Step::Batch(specs) => {
                    // Planned together against the state before the batch, applied after.
                    let mut records = Vec::new();
                    let mut planner = BatchPlanner::new(&mvcc);
                    for spec in &specs {
                        let op = to_op(spec, &model);
                        let want = model.write(&op);
                        let got = planner.plan(op).map(|(record, outcome)| {
                            records.push(record);
                            outcome
                        });
                        same(got, want)?;
                    }
                    for record in &records {
                        mvcc.apply(record);
                    }
                }
                Step::Compact(back) => {
                    let r = rev_back(&model, back);
                    let want = if r > model.revision() {
                        Err(StoreError::FutureRevision { requested: r })
                    } else if r <= model.compacted {
                        Err(StoreError::Compacted { requested: r })
                    } else {
                        model.compacted = r;
                        Ok(())
                    };
                    same(mvcc.compact(r), want)?;
                }
                Step::Get(k, back) => {
                    let r = rev_back(&model, back);
                    let key = Bytes::from_static(KEYS[k].as_bytes());
                    let want = model.at(r).map(|s| (s.get(&key).cloned(), r));
                    same(mvcc.get(&key, Some(r)), want)?;
                }
                Step::Range(p, limit, back) => {
                    let r = rev_back(&model, back);
                    let prefix = Bytes::from_static(PREFIXES[p].as_bytes());
                    let want = model.at(r).map(|s| {
                        let all: Vec<KeyValue> =
                            s.values().filter(|kv| kv.key.starts_with(&prefix)).cloned().collect();
                        let count = all.len();
                        let kvs: Vec<KeyValue> =
                            all.into_iter().take(if limit == 0 { usize::MAX } else { limit }).collect();
                        (kvs.clone(), count > kvs.len(), count, r)
                    });
                    let req = RangeRequest { prefix, limit, revision: Some(r), start_after: None };
                    let got = mvcc.range(&req).map(|resp| (resp.kvs, resp.more, resp.count, resp.revision));
                    same(got, want)?;
                }
                Step::Watch(p, back) => {
                    let from = rev_back(&model, back);
                    let prefix = PREFIXES[p].as_bytes();
                    let want = if from < model.compacted {
                        Err(StoreError::Compacted { requested: from })
                    } else {
                        Ok(model.events(prefix, from))
                    };
                    same(mvcc.events_since(prefix, from, usize::MAX).map(|(e, _)| e), want)?;
                }
            }
        }
        // Rebuilt from its versions (as a checkpoint does), the state answers the same.
        let rebuilt = Mvcc::from_versions(mvcc.versions().clone(), mvcc.revision(), mvcc.compacted());
        let from = mvcc.compacted().max(1);
        prop_assert_eq!(
            rebuilt.events_since(b"", from, usize::MAX).ok(),
            mvcc.events_since(b"", from, usize::MAX).ok()
        );
    }
}
