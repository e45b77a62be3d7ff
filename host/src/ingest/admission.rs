//! Admission control: what keeps an overloaded host answering. Three stages: at most
//! `max_concurrent_reads` bodies are received at once (a slow sender holds one of these under a
//! deadline, never a processing slot); then at most `max_concurrent` batches are decoded, stored
//! and normalized at once, and up to `max_queued` more wait for `queue_wait`; and what they
//! decode to is admitted by its estimated size ([`super::prescan`]) against a budget of
//! `max_decoded_bytes_in_flight`, so that memory is bounded by bytes, not by a request count.
//! Reading slots are shared fairly: one project, and one client address, holds at most a quarter
//! of them ([`READ_SHARE`]), so one key holder trickling bodies cannot make every other project
//! wait. Beyond the queue or its share a request gets 429, after a wait 503, both with
//! `Retry-After` (see `reply.rs`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    /// The project or the client address holds its share of reading slots: 429.
    Share,
}

/// The part of the reading slots one project, or one client address, may hold.
pub const READ_SHARE: usize = 4;

/// Reading slots held per project and per client address.
#[derive(Default)]
struct Holders(Mutex<HashMap<Holder, usize>>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Project(String),
    Address(IpAddr),
}

/// A reading slot, with its place in its project's and its address's shares.
pub struct Reading {
    _permit: OwnedSemaphorePermit,
    _share: Share,
}

/// A place in the shares of a project and an address, given back when dropped.
struct Share {
    holders: Arc<Holders>,
    held: Vec<Holder>,
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut counts = self.holders.0.lock().unwrap_or_else(PoisonError::into_inner);
        for holder in &self.held {
            if let Some(count) = counts.get_mut(holder) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(holder);
                }
            }
        }
    }
}

/// The decoded-bytes budget counts in KiB (a semaphore takes at most `u32` permits at once).
const BUDGET_UNIT: usize = 1024;

pub struct Admission {
    reading: Arc<Semaphore>,
    holders: Arc<Holders>,
    read_share: usize,
    decoded: Semaphore,
    decoded_units: usize,
    permits: Semaphore,
    max_concurrent: usize,
    queued: AtomicUsize,
    max_queued: usize,
    queue_wait: Duration,
    metrics: Arc<Metrics>,
}

impl Admission {
    pub fn new(limits: &Limits, metrics: Arc<Metrics>) -> Self {
        let decoded_units = (limits.max_decoded_bytes_in_flight / BUDGET_UNIT).max(1);
        Admission {
            reading: Arc::new(Semaphore::new(limits.max_concurrent_reads.max(1))),
            holders: Arc::default(),
            read_share: (limits.max_concurrent_reads / READ_SHARE).max(1),
            decoded: Semaphore::new(decoded_units),
            decoded_units,
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
    /// A request of `project` from `client` beyond their share is refused at once.
    pub async fn reading(&self, project: &str, client: Option<IpAddr>) -> Result<Reading, Busy> {
        let held: Vec<Holder> =
            std::iter::once(Holder::Project(project.to_owned())).chain(client.map(Holder::Address)).collect();
        {
            let mut counts = self.holders.0.lock().unwrap_or_else(PoisonError::into_inner);
            if held.iter().any(|h| counts.get(h).copied().unwrap_or(0) >= self.read_share) {
                self.metrics.rejected_overload.inc();
                return Err(Busy::Share);
            }
            for holder in &held {
                *counts.entry(holder.clone()).or_insert(0) += 1;
            }
        }
        let share = Share { holders: self.holders.clone(), held };
        let permit = match self.reading.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => match tokio::time::timeout(self.queue_wait, self.reading.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                _ => {
                    self.metrics.rejected_overload.inc();
                    return Err(Busy::Timeout);
                }
            },
        };
        Ok(Reading { _permit: permit, _share: share })
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

    /// Wait (at most `queue_wait`) for room for `bytes` of decoded request in the budget. A
    /// request larger than the whole budget waits for all of it.
    pub async fn decoded(&self, bytes: usize) -> Result<SemaphorePermit<'_>, Busy> {
        let units = bytes.div_ceil(BUDGET_UNIT).clamp(1, self.decoded_units);
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        if let Ok(permit) = self.decoded.try_acquire_many(units) {
            return Ok(permit);
        }
        match tokio::time::timeout(self.queue_wait, self.decoded.acquire_many(units)).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                self.metrics.rejected_overload.inc();
                Err(Busy::Timeout)
            }
        }
    }

    /// Bytes of decoded requests admitted now (by their estimates).
    pub fn decoded_bytes(&self) -> usize {
        self.decoded_units.saturating_sub(self.decoded.available_permits()) * BUDGET_UNIT
    }

    /// Batches being processed and waiting now.
    pub fn load(&self) -> (usize, usize) {
        let in_flight = self.max_concurrent.saturating_sub(self.permits.available_permits());
        (in_flight, self.queued.load(Ordering::SeqCst))
    }
}
