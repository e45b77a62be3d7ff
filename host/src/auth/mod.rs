//! Who is calling: one [`Authenticator`] for OTLP/HTTP, OTLP/gRPC and the query API (a project's
//! Basic `public:secret` keys, failures limited per client address), and the project key pairs
//! themselves ([`keys`]: generation, salted hashes, constant-time checks).

pub mod keys;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::storage::{ProjectKey, Storage, StorageError};

const AUTH_WINDOW: Duration = Duration::from_secs(60);
/// How long a project's key row is reused without asking storage again. The secret is still
/// checked on every request; a rotated secret takes effect within this time.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Most cached key rows (the cache is emptied when full: it refills from storage).
const KEY_CACHE_MAX: usize = 10_000;
/// Above this many tracked addresses, expired entries are swept (memory stays bounded).
const AUTH_TRACKED_MAX: usize = 10_000;

/// Why a caller was not let in.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization: send Basic base64(public_key:secret_key)")]
    Missing,
    #[error("malformed Authorization: send Basic base64(public_key:secret_key)")]
    Malformed,
    #[error("unknown public key or wrong secret key")]
    WrongKeys,
    #[error("too many failed authentications from this address; retry in {0} s")]
    TooManyFailures(u64),
    #[error("storage unavailable, retry later")]
    Unavailable,
}

/// Project keys checked against storage, with failures limited per client address.
pub struct Authenticator {
    storage: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    max_failures: u32,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    /// Recently read key rows: most requests need no storage round trip to authenticate.
    keys: Mutex<HashMap<String, (ProjectKey, Instant)>>,
}

impl Authenticator {
    pub fn new(storage: Arc<dyn Storage>, metrics: Arc<Metrics>, failures_per_minute: u32) -> Self {
        Authenticator {
            storage,
            metrics,
            max_failures: failures_per_minute,
            failures: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The project of an `Authorization` value (HTTP header or gRPC metadata); a client
    /// address that failed too often is refused first.
    pub async fn authenticate(&self, authorization: Option<&str>, client: Option<IpAddr>) -> Result<String, AuthError> {
        if let Some(wait) = self.blocked(client) {
            return Err(AuthError::TooManyFailures(wait.as_secs() + 1));
        }
        let Some(value) = authorization else {
            return Err(self.failed(client, AuthError::Missing));
        };
        let Some((public, secret)) = keys::parse_basic(value) else {
            return Err(self.failed(client, AuthError::Malformed));
        };
        match self.project_key(&public).await {
            Ok(Some(key)) if keys::verify_secret(&secret, &key.secret_hash) => Ok(key.project_id),
            Ok(_) => {
                // Never log the secret.
                tracing::warn!(public_key = %public, client = ?client, "authentication failed");
                Err(self.failed(client, AuthError::WrongKeys))
            }
            Err(e) => {
                tracing::error!(error = %e, "authentication lookup failed");
                Err(AuthError::Unavailable)
            }
        }
    }

    /// The key row of `public`, from the cache when fresh.
    async fn project_key(&self, public: &str) -> Result<Option<ProjectKey>, StorageError> {
        if let Ok(keys) = self.keys.lock()
            && let Some((key, read)) = keys.get(public)
            && read.elapsed() < KEY_CACHE_TTL
        {
            return Ok(Some(key.clone()));
        }
        let key = self.storage.project_key(public).await?;
        if let (Some(key), Ok(mut keys)) = (&key, self.keys.lock()) {
            if keys.len() >= KEY_CACHE_MAX {
                keys.clear();
            }
            keys.insert(public.to_owned(), (key.clone(), Instant::now()));
        }
        Ok(key)
    }

    /// If `client` failed authentication too often, how long until it may try again.
    fn blocked(&self, client: Option<IpAddr>) -> Option<Duration> {
        let client = client?;
        let failures = self.failures.lock().ok()?;
        let (since, count) = failures.get(&client)?;
        let elapsed = since.elapsed();
        (*count >= self.max_failures && elapsed < AUTH_WINDOW).then(|| AUTH_WINDOW - elapsed)
    }

    /// Count a failed authentication from `client`.
    fn failed(&self, client: Option<IpAddr>, error: AuthError) -> AuthError {
        self.metrics.rejected_auth.inc();
        let Some(client) = client else { return error };
        let Ok(mut failures) = self.failures.lock() else { return error };
        if failures.len() >= AUTH_TRACKED_MAX {
            failures.retain(|_, (since, _)| since.elapsed() < AUTH_WINDOW);
        }
        let entry = failures.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= AUTH_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
        error
    }
}

/// Create a project; returns (project id, public key, secret key). Only the secret's salted
/// hash is stored.
pub async fn create_project(storage: &dyn Storage, name: &str) -> Result<(String, String, String), StorageError> {
    let (public, secret) = keys::generate_key_pair();
    let id = insert_project(storage, name, &public, &secret).await?;
    Ok((id, public, secret))
}

/// Make sure a project with this key pair exists (the bootstrap keys). If the public key
/// exists with another secret, the secret is replaced: the environment is the truth.
pub async fn ensure_project(
    storage: &dyn Storage,
    name: &str,
    public: &str,
    secret: &str,
) -> Result<String, StorageError> {
    match storage.project_key(public).await? {
        Some(key) => {
            if !keys::verify_secret(secret, &key.secret_hash) {
                storage.set_secret_hash(&key.project_id, &keys::hash_secret(secret)).await?;
            }
            Ok(key.project_id)
        }
        // Several replicas starting on a fresh database race to create it: the loser finds
        // the winner's row.
        None => match insert_project(storage, name, public, secret).await {
            Ok(id) => Ok(id),
            Err(e) => match storage.project_key(public).await? {
                Some(key) if keys::verify_secret(secret, &key.secret_hash) => Ok(key.project_id),
                _ => Err(e),
            },
        },
    }
}

async fn insert_project(storage: &dyn Storage, name: &str, public: &str, secret: &str) -> Result<String, StorageError> {
    let id = format!("proj-{}", crate::ids::random_hex(8));
    storage.insert_project(&id, name, public, &keys::hash_secret(secret)).await?;
    Ok(id)
}
