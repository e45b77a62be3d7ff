//! The circuit breaker: a plugin that keeps failing is put aside for a while, so a broken
//! parser does not burn CPU on every batch; its batches are kept for replay.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Consecutive failures after which a plugin is put aside for [`BREAKER_COOL_DOWN`].
pub const BREAKER_THRESHOLD: u32 = 5;
pub const BREAKER_COOL_DOWN: Duration = Duration::from_secs(30);

#[derive(Default)]
pub(crate) struct Breaker {
    consecutive_failures: AtomicU32,
    open_until: Mutex<Option<Instant>>,
}

impl Breaker {
    pub(crate) fn success(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    /// Count a failure; returns true when this failure opened the breaker.
    pub(crate) fn failure(&self) -> bool {
        if self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1 < BREAKER_THRESHOLD {
            return false;
        }
        let Ok(mut open) = self.open_until.lock() else { return false };
        let opened = open.is_none();
        *open = Some(Instant::now() + BREAKER_COOL_DOWN);
        opened
    }

    /// Whether the breaker is open right now.
    pub(crate) fn is_open(&self) -> bool {
        self.open_until.lock().map(|open| open.is_some_and(|until| Instant::now() < until)).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_a_success_resets_the_count() {
        let breaker = Breaker::default();
        for _ in 0..BREAKER_THRESHOLD - 1 {
            assert!(!breaker.failure());
        }
        breaker.success();
        for _ in 0..BREAKER_THRESHOLD - 1 {
            assert!(!breaker.failure());
        }
        assert!(!breaker.is_open());
        assert!(breaker.failure(), "the threshold-th failure in a row opens it");
        assert!(breaker.is_open());
        assert!(!breaker.failure(), "already open: not reported again");
    }
}
