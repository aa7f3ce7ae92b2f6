//! The rate-limited work queue every controller drains: keys are deduplicated while waiting, a key being
//! processed is never handed to a second worker (it is re-queued once `done`), and failed keys come
//! back after upstream's default controller backoff (per item 5 ms · 2^failures up to 1000 s, and an
//! overall token bucket of 10/s with a burst of 100; the longer of the two wins).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Per-item base delay of upstream's `DefaultControllerRateLimiter`.
pub const BASE_DELAY: Duration = Duration::from_millis(5);
/// Per-item maximum delay of upstream's `DefaultControllerRateLimiter`.
pub const MAX_DELAY: Duration = Duration::from_secs(1000);
/// Overall bucket: sustained rate of retries per second.
pub const BUCKET_QPS: f64 = 10.0;
/// Overall bucket: burst size.
pub const BUCKET_BURST: f64 = 100.0;

/// The per-item exponential delay after `failures` earlier failures.
pub fn item_delay(failures: u32) -> Duration {
    let factor = 2u64.checked_pow(failures).unwrap_or(u64::MAX);
    let nanos = (BASE_DELAY.as_nanos() as u64).saturating_mul(factor);
    Duration::from_nanos(nanos).min(MAX_DELAY)
}

/// A token bucket (upstream's `BucketRateLimiter`): how long a new retry must wait.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Bucket {
            tokens: BUCKET_BURST,
            last: now,
        }
    }

    /// Takes one token at `now`; the wait until that token is available.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * BUCKET_QPS).min(BUCKET_BURST) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / BUCKET_QPS)
        }
    }
}

#[derive(Debug)]
struct Inner<K> {
    queue: VecDeque<K>,
    dirty: HashSet<K>,
    processing: HashSet<K>,
    failures: HashMap<K, u32>,
    bucket: Bucket,
    shutting_down: bool,
}

/// A cheap-to-clone handle on one controller's queue.
#[derive(Debug)]
pub struct WorkQueue<K> {
    inner: Arc<Mutex<Inner<K>>>,
    notify: Arc<Notify>,
}

impl<K> Clone for WorkQueue<K> {
    fn clone(&self) -> Self {
        WorkQueue {
            inner: self.inner.clone(),
            notify: self.notify.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> Default for WorkQueue<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone + Send + 'static> WorkQueue<K> {
    /// An empty queue.
    pub fn new() -> Self {
        WorkQueue {
            inner: Arc::new(Mutex::new(Inner {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                bucket: Bucket::new(Instant::now()),
                shutting_down: false,
            })),
            notify: Arc::new(Notify::new()),
        }
    }

    /// Queues `key` unless it already waits; a key being processed comes back after `done`.
    pub fn add(&self, key: K) {
        let mut inner = self.inner.lock();
        if inner.shutting_down || !inner.dirty.insert(key.clone()) {
            return;
        }
        if inner.processing.contains(&key) {
            return;
        }
        inner.queue.push_back(key);
        drop(inner);
        self.notify.notify_one();
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: K, delay: Duration) {
        if delay.is_zero() {
            self.add(key);
            return;
        }
        let queue = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            queue.add(key);
        });
    }

    /// Queues `key` after its backoff, counting one more failure.
    pub fn add_rate_limited(&self, key: K) {
        let delay = {
            let mut inner = self.inner.lock();
            let failures = inner.failures.entry(key.clone()).or_insert(0);
            let item = item_delay(*failures);
            *failures += 1;
            let bucket = inner.bucket.reserve(Instant::now());
            item.max(bucket)
        };
        self.add_after(key, delay);
    }

    /// How many times `key` failed since it was last forgotten.
    pub fn num_requeues(&self, key: &K) -> u32 {
        self.inner.lock().failures.get(key).copied().unwrap_or(0)
    }

    /// Clears `key`'s failure count (it synced).
    pub fn forget(&self, key: &K) {
        self.inner.lock().failures.remove(key);
    }

    /// Waits for the next key; `None` once the queue is shut down and drained.
    pub async fn get(&self) -> Option<K> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.inner.lock();
                if let Some(key) = inner.queue.pop_front() {
                    inner.dirty.remove(&key);
                    inner.processing.insert(key.clone());
                    let more = !inner.queue.is_empty();
                    drop(inner);
                    if more {
                        self.notify.notify_one();
                    }
                    return Some(key);
                }
                if inner.shutting_down {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Marks `key` processed; if it was added meanwhile it is queued again.
    pub fn done(&self, key: &K) {
        let mut inner = self.inner.lock();
        inner.processing.remove(key);
        if inner.dirty.contains(key) {
            inner.queue.push_back(key.clone());
            drop(inner);
            self.notify.notify_one();
        }
    }

    /// Stops handing out keys once the waiting ones are drained; wakes every worker.
    pub fn shut_down(&self) {
        self.inner.lock().shutting_down = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// How many keys wait.
    pub fn len(&self) -> usize {
        self.inner.lock().queue.len()
    }

    /// Whether no key waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_delay_doubles_up_to_the_cap() {
        assert_eq!(item_delay(0), Duration::from_millis(5));
        assert_eq!(item_delay(1), Duration::from_millis(10));
        assert_eq!(item_delay(10), Duration::from_millis(5120));
        assert_eq!(item_delay(30), MAX_DELAY);
        assert_eq!(item_delay(200), MAX_DELAY);
    }

    #[test]
    fn bucket_allows_a_burst_then_ten_per_second() {
        let start = Instant::now();
        let mut bucket = Bucket::new(start);
        for _ in 0..100 {
            assert_eq!(bucket.reserve(start), Duration::ZERO);
        }
        let wait = bucket.reserve(start);
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
    }

    #[tokio::test]
    async fn dedups_waiting_keys_and_requeues_keys_added_while_processing() {
        let q = WorkQueue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let first = q.get().await.expect("key");
        assert_eq!(first, "a");
        q.add("a"); // while processing: not handed out twice
        assert_eq!(q.get().await, Some("b"));
        assert!(q.is_empty());
        q.done(&"a");
        assert_eq!(q.get().await, Some("a"));
        q.done(&"a");
        q.done(&"b");
        q.shut_down();
        assert_eq!(q.get().await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_keys_come_back_after_backoff_and_forget_resets() {
        let q = WorkQueue::new();
        q.add_rate_limited("k");
        q.add_rate_limited("k");
        assert_eq!(q.num_requeues(&"k"), 2);
        let got = tokio::time::timeout(Duration::from_secs(1), q.get()).await;
        assert_eq!(got.expect("requeued"), Some("k"));
        q.forget(&"k");
        q.done(&"k");
        assert_eq!(q.num_requeues(&"k"), 0);
    }
}
