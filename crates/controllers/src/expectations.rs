//! Expectations (upstream's `ControllerExpectations`): after issuing creates or deletes a controller
//! waits until its informer has seen them all before computing a new diff, so slow watches never cause
//! double creates. Expectations expire after five minutes, as upstream's.

use std::collections::HashMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use parking_lot::Mutex;

use crate::clock::SharedClock;

/// How long unmet expectations hold a controller back.
pub const EXPECTATIONS_TTL: SignedDuration = SignedDuration::from_secs(300);

#[derive(Debug, Clone, Copy)]
struct Expected {
    add: i64,
    del: i64,
    at: Timestamp,
}

/// Outstanding creates/deletes per controller key; cheap to clone.
#[derive(Debug, Clone)]
pub struct Expectations<K> {
    inner: Arc<Mutex<HashMap<K, Expected>>>,
    clock: SharedClock,
}

impl<K: std::hash::Hash + Eq + Clone> Expectations<K> {
    /// No expectations, timed by `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Expectations {
            inner: Arc::new(Mutex::new(HashMap::new())),
            clock,
        }
    }

    /// Records that `adds` creates and `dels` deletes are about to be issued for `key`.
    pub fn expect(&self, key: &K, adds: i64, dels: i64) {
        self.inner.lock().insert(
            key.clone(),
            Expected {
                add: adds,
                del: dels,
                at: self.clock.now(),
            },
        );
    }

    /// One create seen (or known to have failed).
    pub fn creation_observed(&self, key: &K) {
        if let Some(e) = self.inner.lock().get_mut(key) {
            e.add -= 1;
        }
    }

    /// One delete seen (or known to have failed).
    pub fn deletion_observed(&self, key: &K) {
        if let Some(e) = self.inner.lock().get_mut(key) {
            e.del -= 1;
        }
    }

    /// Whether `key` may sync: nothing outstanding, or the record expired.
    pub fn satisfied(&self, key: &K) -> bool {
        match self.inner.lock().get(key) {
            None => true,
            Some(e) => {
                (e.add <= 0 && e.del <= 0)
                    || self.clock.now().duration_since(e.at) > EXPECTATIONS_TTL
            }
        }
    }

    /// Forgets `key` (its owner is gone).
    pub fn delete(&self, key: &K) {
        self.inner.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FakeClock;

    #[test]
    fn satisfied_once_observed_or_expired() {
        let clock = FakeClock::new("2026-01-01T00:00:00Z".parse().expect("time"));
        let exp = Expectations::new(Arc::new(clock.clone()));
        assert!(exp.satisfied(&"rs"));
        exp.expect(&"rs", 2, 0);
        assert!(!exp.satisfied(&"rs"));
        exp.creation_observed(&"rs");
        assert!(!exp.satisfied(&"rs"));
        exp.creation_observed(&"rs");
        assert!(exp.satisfied(&"rs"));
        exp.expect(&"rs", 0, 1);
        assert!(!exp.satisfied(&"rs"));
        clock.step(SignedDuration::from_secs(301));
        assert!(exp.satisfied(&"rs"));
    }
}
