//! Admission control: what keeps an overloaded host answering. At most `max_concurrent`
//! batches are read, stored and normalized at once; up to `max_queued` more wait (without their
//! bodies read) for `queue_wait`. Beyond the queue a request gets 429, after the wait 503, both
//! with `Retry-After` (see `reply.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::Limits;
use crate::metrics::Metrics;

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// The queue is full: 429.
    QueueFull,
    /// Waited `queue_wait` without a slot: 503.
    Timeout,
}

pub struct Admission {
    permits: Semaphore,
    max_concurrent: usize,
    queued: AtomicUsize,
    max_queued: usize,
    queue_wait: Duration,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(limits: &Limits, metrics: Arc<Metrics>) -> Self {
        Admission {
            permits: Semaphore::new(limits.max_concurrent_batches.max(1)),
            max_concurrent: limits.max_concurrent_batches.max(1),
            queued: AtomicUsize::new(0),
            max_queued: limits.max_queued_batches,
            queue_wait: Duration::from_millis(limits.queue_wait_ms),
            metrics,
        }
    }

    /// Wait for a slot, within the queue's bounds.
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>, Busy> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            self.metrics.rejected_overload.inc();
            return Err(Busy::QueueFull);
        }
        let waited = tokio::time::timeout(self.queue_wait, self.permits.acquire()).await;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                self.metrics.rejected_overload.inc();
                Err(Busy::Timeout)
            }
        }
    }

    /// Batches being processed and waiting now.
    pub fn load(&self) -> (usize, usize) {
        let in_flight = self.max_concurrent.saturating_sub(self.permits.available_permits());
        (in_flight, self.queued.load(Ordering::SeqCst))
    }
}
