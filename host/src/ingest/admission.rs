//! Admission control: what keeps an overloaded host answering. Two stages: at most
//! `max_concurrent_reads` bodies are received at once (a slow sender holds one of these under a
//! deadline, never a processing slot); then at most `max_concurrent` batches are decoded, stored
//! and normalized at once, and up to `max_queued` more wait for `queue_wait`. Beyond the queue a
//! request gets 429, after a wait 503, both with `Retry-After` (see `reply.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

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
    reading: Arc<Semaphore>,
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
            reading: Arc::new(Semaphore::new(limits.max_concurrent_reads.max(1))),
            permits: Semaphore::new(limits.max_concurrent_batches.max(1)),
            max_concurrent: limits.max_concurrent_batches.max(1),
            queued: AtomicUsize::new(0),
            max_queued: limits.max_queued_batches,
            queue_wait: Duration::from_millis(limits.queue_wait_ms),
            metrics,
        }
    }

    /// Wait (at most `queue_wait`) for a slot to receive a body in. Held until the request has a
    /// processing slot, so bodies in memory are bounded by both limits together.
    pub async fn reading(&self) -> Result<OwnedSemaphorePermit, Busy> {
        if let Ok(permit) = self.reading.clone().try_acquire_owned() {
            return Ok(permit);
        }
        match tokio::time::timeout(self.queue_wait, self.reading.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                self.metrics.rejected_overload.inc();
                Err(Busy::Timeout)
            }
        }
    }

    /// Wait for a processing slot, within the queue's bounds.
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
