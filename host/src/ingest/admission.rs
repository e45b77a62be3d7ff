//! Admission control: what keeps an overloaded or attacked host answering.
//!
//! - Bounded concurrency: at most `max_concurrent` batches are read, stored and normalized at
//!   once; up to `max_queued` more wait (without their bodies read) for `queue_wait`. Beyond
//!   the queue a request gets 429, after the wait 503, both with `Retry-After`.
//! - Failed authentication is limited per client address: after `auth_failures_per_minute`
//!   failures in a minute, that address gets 429 until the minute is over.
//! - Counters for `/metrics`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::Limits;

const AUTH_WINDOW: Duration = Duration::from_secs(60);
/// Above this many tracked addresses, expired entries are swept (memory stays bounded).
const AUTH_TRACKED_MAX: usize = 10_000;

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
    max_auth_failures: u32,
    auth_failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    pub metrics: Counters,
}

/// Host-wide counters, exported at `/metrics`.
#[derive(Default)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub rejected_client: AtomicU64,
    pub rejected_auth: AtomicU64,
    pub rejected_overload: AtomicU64,
    pub batches_done: AtomicU64,
    pub batches_failed: AtomicU64,
    pub batches_unclaimed: AtomicU64,
}

impl Admission {
    pub fn new(limits: &Limits) -> Self {
        Admission {
            permits: Semaphore::new(limits.max_concurrent_batches.max(1)),
            max_concurrent: limits.max_concurrent_batches.max(1),
            queued: AtomicUsize::new(0),
            max_queued: limits.max_queued_batches,
            queue_wait: Duration::from_millis(limits.queue_wait_ms),
            max_auth_failures: limits.auth_failures_per_minute,
            auth_failures: Mutex::new(HashMap::new()),
            metrics: Counters::default(),
        }
    }

    /// Wait for a slot, within the queue's bounds.
    pub async fn enter(&self) -> Result<SemaphorePermit<'_>, Busy> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.max_queued {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            self.metrics.rejected_overload.fetch_add(1, Ordering::Relaxed);
            return Err(Busy::QueueFull);
        }
        let waited = tokio::time::timeout(self.queue_wait, self.permits.acquire()).await;
        self.queued.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                self.metrics.rejected_overload.fetch_add(1, Ordering::Relaxed);
                Err(Busy::Timeout)
            }
        }
    }

    /// Batches being processed and waiting now.
    pub fn load(&self) -> (usize, usize) {
        let in_flight = self.max_concurrent.saturating_sub(self.permits.available_permits());
        (in_flight, self.queued.load(Ordering::SeqCst))
    }

    /// If `client` failed authentication too often, how long until it may try again.
    pub fn auth_blocked(&self, client: Option<IpAddr>) -> Option<Duration> {
        let client = client?;
        let failures = self.auth_failures.lock().ok()?;
        let (since, count) = failures.get(&client)?;
        let elapsed = since.elapsed();
        (*count >= self.max_auth_failures && elapsed < AUTH_WINDOW).then(|| AUTH_WINDOW - elapsed)
    }

    /// Count a failed authentication from `client`.
    pub fn auth_failed(&self, client: Option<IpAddr>) {
        self.metrics.rejected_auth.fetch_add(1, Ordering::Relaxed);
        let Some(client) = client else { return };
        let Ok(mut failures) = self.auth_failures.lock() else { return };
        if failures.len() >= AUTH_TRACKED_MAX {
            failures.retain(|_, (since, _)| since.elapsed() < AUTH_WINDOW);
        }
        let entry = failures.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= AUTH_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}
