//! The scheduling queue, pure (time is passed in): activeQ ordered by PrioritySort, backoffQ with
//! per-pod exponential backoff (1 s doubling to 10 s), and the unschedulable pods parked until a
//! cluster event might help them (or 5 minutes pass), as upstream's PriorityQueue.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::plugins::priority_sort::{QueuedOrder, compare};
use crate::pod::{PodInfo, PodKey};

/// Upstream `podInitialBackoffDuration`.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Upstream `podMaxBackoffDuration`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream `podMaxInUnschedulablePodsDuration`.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);

/// The backoff after `attempts` failed attempts.
pub fn backoff(attempts: u32) -> Duration {
    let mut d = INITIAL_BACKOFF;
    for _ in 1..attempts {
        d *= 2;
        if d >= MAX_BACKOFF {
            return MAX_BACKOFF;
        }
    }
    d
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active,
    Backoff,
    Unschedulable,
    /// Popped and being scheduled or bound.
    InFlight,
}

#[derive(Debug)]
struct Queued {
    info: Arc<PodInfo>,
    attempts: u32,
    place: Place,
    /// Sequence number of its live activeQ entry.
    seq: u64,
    backoff_until: Option<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    order: QueuedOrder,
    key: PodKey,
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap pops the greatest: invert PrioritySort's "schedule first" order.
        compare(&other.order, &self.order)
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The queue of pods waiting for a node.
#[derive(Debug, Default)]
pub struct Queue {
    pods: HashMap<PodKey, Queued>,
    active: BinaryHeap<Entry>,
    backoff: BTreeSet<(Instant, u64, PodKey)>,
    /// Unschedulable pods by when they were parked.
    parked: BTreeSet<(Instant, u64, PodKey)>,
    seq: u64,
}

/// How many pods sit where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub active: usize,
    pub backoff: usize,
    pub unschedulable: usize,
    pub in_flight: usize,
}

impl Queue {
    /// An empty queue.
    pub fn new() -> Queue {
        Queue::default()
    }

    fn push_active(&mut self, key: &str) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(q) = self.pods.get_mut(key) {
            q.place = Place::Active;
            q.seq = seq;
            self.active.push(Entry {
                order: QueuedOrder {
                    priority: q.info.priority,
                    timestamp: seq,
                },
                key: key.to_string(),
            });
        }
    }

    fn push_backoff(&mut self, key: &str, until: Instant) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(q) = self.pods.get_mut(key) {
            q.place = Place::Backoff;
            q.seq = seq;
            self.backoff.insert((until, seq, key.to_string()));
        }
    }

    /// Back to activeQ, or backoffQ while its backoff lasts.
    fn reactivate(&mut self, key: &str, now: Instant) {
        let until = self.pods.get(key).and_then(|q| q.backoff_until);
        match until {
            Some(t) if t > now => self.push_backoff(key, t),
            _ => self.push_active(key),
        }
    }

    /// A pending pod was seen (added or updated). A changed unschedulable pod gets another try.
    pub fn upsert(&mut self, info: Arc<PodInfo>, now: Instant) {
        let key = info.key.clone();
        match self.pods.get_mut(&key) {
            None => {
                self.pods.insert(
                    key.clone(),
                    Queued {
                        info,
                        attempts: 0,
                        place: Place::Active,
                        seq: 0,
                        backoff_until: None,
                    },
                );
                self.push_active(&key);
            }
            Some(q) => {
                let priority_changed = q.info.priority != info.priority;
                q.info = info;
                match q.place {
                    Place::Unschedulable => self.reactivate(&key, now),
                    Place::Active if priority_changed => self.push_active(&key),
                    _ => {}
                }
            }
        }
    }

    /// Takes a newer copy of a queued pod without moving it (status-only changes).
    pub fn refresh(&mut self, info: Arc<PodInfo>) {
        if let Some(q) = self.pods.get_mut(&info.key) {
            q.info = info;
        }
    }

    /// The queued pod's info.
    pub fn get(&self, key: &str) -> Option<Arc<PodInfo>> {
        self.pods.get(key).map(|q| q.info.clone())
    }

    /// The pod is gone or was bound by someone else.
    pub fn remove(&mut self, key: &str) {
        self.pods.remove(key);
    }

    /// Whether the queue knows this pod.
    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// Moves pods whose backoff ended to activeQ and pods parked too long back into play.
    pub fn flush(&mut self, now: Instant) {
        while let Some(first) = self.backoff.first().cloned() {
            if first.0 > now {
                break;
            }
            self.backoff.pop_first();
            let (_, seq, key) = first;
            if self
                .pods
                .get(&key)
                .is_some_and(|q| q.place == Place::Backoff && q.seq == seq)
            {
                self.push_active(&key);
            }
        }
        while let Some(first) = self.parked.first().cloned() {
            if now.duration_since(first.0) < MAX_UNSCHEDULABLE {
                break;
            }
            self.parked.pop_first();
            let (_, seq, key) = first;
            if self.is_parked(&key, seq) {
                self.reactivate(&key, now);
            }
        }
    }

    fn is_parked(&self, key: &str, seq: u64) -> bool {
        self.pods
            .get(key)
            .is_some_and(|q| q.place == Place::Unschedulable && q.seq == seq)
    }

    /// The next pod to schedule, highest priority first.
    pub fn pop(&mut self, now: Instant) -> Option<Arc<PodInfo>> {
        self.flush(now);
        while let Some(e) = self.active.pop() {
            if let Some(q) = self.pods.get_mut(&e.key)
                && q.place == Place::Active
                && q.seq == e.order.timestamp
            {
                q.place = Place::InFlight;
                return Some(q.info.clone());
            }
        }
        None
    }

    /// The popped pod fits nowhere: park it until a cluster event (with its backoff counted).
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(q) = self.pods.get_mut(key) {
            q.attempts += 1;
            q.backoff_until = Some(now + backoff(q.attempts));
            q.place = Place::Unschedulable;
            q.seq = seq;
            self.parked.insert((now, seq, key.to_string()));
        }
    }

    /// The popped pod hit an error (e.g. binding failed): retry after its backoff.
    pub fn retry(&mut self, key: &str, now: Instant) {
        if let Some(q) = self.pods.get_mut(key) {
            q.attempts += 1;
            let until = now + backoff(q.attempts);
            q.backoff_until = Some(until);
            self.push_backoff(key, until);
        }
    }

    /// A cluster event that may help parked pods (node added or changed, pod deleted, …).
    pub fn move_all(&mut self, now: Instant) {
        for (_, seq, key) in std::mem::take(&mut self.parked) {
            if self.is_parked(&key, seq) {
                self.reactivate(&key, now);
            }
        }
    }

    /// When the next backoff ends (the loop sleeps until then when nothing else is ready).
    pub fn next_wake(&self) -> Option<Instant> {
        let backoff = self.backoff.first().map(|(t, _, _)| *t);
        let parked = self.parked.first().map(|(t, _, _)| *t + MAX_UNSCHEDULABLE);
        match (backoff, parked) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How many pods sit in each part.
    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for q in self.pods.values() {
            match q.place {
                Place::Active => c.active += 1,
                Place::Backoff => c.backoff += 1,
                Place::Unschedulable => c.unschedulable += 1,
                Place::InFlight => c.in_flight += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::pod;

    fn info(name: &str, prio: i32) -> Arc<PodInfo> {
        Arc::new(pod(name).priority(prio).build_info())
    }

    #[test]
    fn pops_by_priority_then_arrival() {
        let now = Instant::now();
        let mut q = Queue::new();
        q.upsert(info("low", 0), now);
        q.upsert(info("high", 100), now);
        q.upsert(info("low2", 0), now);
        let order: Vec<String> = std::iter::from_fn(|| q.pop(now))
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(order, ["high", "low", "low2"]);
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        let got: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn unschedulable_pods_wait_for_an_event_and_their_backoff() {
        let t0 = Instant::now();
        let mut q = Queue::new();
        q.upsert(info("p", 0), t0);
        assert!(q.pop(t0).is_some());
        q.unschedulable("default/p", t0);
        assert!(
            q.pop(t0 + Duration::from_secs(5)).is_none(),
            "parked until an event"
        );
        // An event during the backoff: backoffQ, then activeQ once 1 s has passed.
        q.move_all(t0 + Duration::from_millis(500));
        assert_eq!(q.counts().backoff, 1);
        assert!(q.pop(t0 + Duration::from_millis(900)).is_none());
        assert_eq!(q.next_wake(), Some(t0 + Duration::from_secs(1)));
        assert!(q.pop(t0 + Duration::from_secs(1)).is_some());
        // Second failure: 2 s backoff; an event after it goes straight to activeQ.
        q.unschedulable("default/p", t0 + Duration::from_secs(1));
        q.move_all(t0 + Duration::from_secs(4));
        assert_eq!(q.counts().active, 1);
    }

    #[test]
    fn parked_pods_come_back_after_five_minutes_and_on_update() {
        let t0 = Instant::now();
        let mut q = Queue::new();
        q.upsert(info("p", 0), t0);
        q.pop(t0);
        q.unschedulable("default/p", t0);
        assert!(q.pop(t0 + Duration::from_secs(299)).is_none());
        assert!(q.pop(t0 + MAX_UNSCHEDULABLE).is_some());
        q.unschedulable("default/p", t0 + MAX_UNSCHEDULABLE);
        q.upsert(
            info("p", 0),
            t0 + MAX_UNSCHEDULABLE + Duration::from_secs(30),
        );
        assert_eq!(q.counts().active, 1);
        q.remove("default/p");
        assert!(q.pop(t0 + MAX_UNSCHEDULABLE * 2).is_none());
    }

    #[test]
    fn failed_bindings_retry_after_backoff() {
        let t0 = Instant::now();
        let mut q = Queue::new();
        q.upsert(info("p", 0), t0);
        q.pop(t0);
        q.retry("default/p", t0);
        assert!(q.pop(t0).is_none());
        assert!(q.pop(t0 + Duration::from_secs(1)).is_some());
    }
}
