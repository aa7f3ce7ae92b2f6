//! PrioritySort: the queue's order: higher priority first, then the earlier-queued pod.

use std::cmp::Ordering;

/// What the queue knows of a pod when ordering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedOrder {
    pub priority: i32,
    /// When the pod was (re)added to activeQ, as a monotonic sequence number.
    pub timestamp: u64,
}

/// Upstream `PrioritySort.Less`, as an `Ordering` where `Less` means "schedule first".
pub fn compare(a: &QueuedOrder, b: &QueuedOrder) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.timestamp.cmp(&b.timestamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_first_then_older() {
        let q = |priority, timestamp| QueuedOrder {
            priority,
            timestamp,
        };
        let cases = [
            (q(10, 5), q(0, 1), Ordering::Less),
            (q(0, 1), q(10, 5), Ordering::Greater),
            (q(5, 1), q(5, 2), Ordering::Less),
            (q(5, 2), q(5, 2), Ordering::Equal),
            (q(-1, 0), q(0, 9), Ordering::Greater),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare(&a, &b), want, "{a:?} vs {b:?}");
        }
    }
}
