//! The clock seam: every controller reads "now" through [`Clock`], so pure cores and their tests can run
//! on a [`FakeClock`] instead of the wall clock.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use parking_lot::Mutex;

/// Where controllers read the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealClock;

impl Clock for RealClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Clone)]
pub struct FakeClock {
    now: Arc<Mutex<Timestamp>>,
}

impl FakeClock {
    /// A clock stopped at `at`.
    pub fn new(at: Timestamp) -> Self {
        FakeClock {
            now: Arc::new(Mutex::new(at)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn step(&self, by: SignedDuration) {
        let mut now = self.now.lock();
        *now = now.saturating_add(by).unwrap_or(*now);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        *self.now.lock()
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

/// Formats a timestamp as Kubernetes does (RFC 3339, seconds precision, `Z`).
pub fn format_time(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_clock_moves_only_when_stepped() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("time");
        let clock = FakeClock::new(start);
        assert_eq!(clock.now(), start);
        clock.step(SignedDuration::from_secs(90));
        assert_eq!(format_time(clock.now()), "2026-01-01T00:01:30Z");
    }
}
