//! The host's counters, written by ingest and auth and rendered at `/metrics` by the server.

use std::sync::atomic::AtomicU64;

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
