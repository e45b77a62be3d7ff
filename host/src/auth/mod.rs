//! Who is calling: one [`Authenticator`] for OTLP/HTTP, OTLP/gRPC and the query API (a project's
//! Basic `public:secret` keys) and for the admin API (its bearer token). A valid credential is
//! always let in; failures are limited per (client address, credential) ([`limiter`]), so one
//! client's failures never lock out another behind the same address. The client's address
//! is the peer's, or behind a trusted proxy the one it forwards ([`client_address`]). The
//! project key pairs themselves are in [`keys`] (generation, salted hashes, constant-time checks).

pub mod keys;
pub mod limiter;
pub mod session;

use std::collections::hash_map::RandomState;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use hashlink::LruCache;
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::storage::{ProjectKey, Storage, StorageError};
use limiter::{Credential, FailureLimiter};

/// The window of the failure limit: `auth_failures_per_minute` failures per window.
pub const AUTH_WINDOW: Duration = Duration::from_secs(60);
/// How long a project's key row is reused without asking storage again. The secret is still
/// checked on every request; a rotated secret takes effect within this time.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Most cached key rows (least recently used beyond).
const KEY_CACHE_MAX: usize = 10_000;
/// Most (address, credential) pairs whose failures are tracked (least recently used beyond).
pub const AUTH_TRACKED_MAX: usize = 10_000;

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
    #[error("not signed in, or the session has expired or was ended: sign in again")]
    NoSession,
}

/// Project keys checked against storage and the admin token, failures limited per
/// (client address, credential).
pub struct Authenticator {
    storage: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    failures: FailureLimiter,
    trusted_proxies: Vec<IpNet>,
    /// Recently read key rows: most requests need no storage round trip to authenticate.
    keys: Mutex<LruCache<String, (ProjectKey, Instant), RandomState>>,
}

impl Authenticator {
    /// The authenticator of a host with `config`, whose auth settings are checked first
    /// ([`Config::check`]: a weak admin token or an exposed weak bootstrap secret is refused).
    pub fn new(storage: Arc<dyn Storage>, metrics: Arc<Metrics>, config: &Config) -> anyhow::Result<Self> {
        for warning in config.check()? {
            tracing::warn!("{warning}");
        }
        Ok(Authenticator {
            storage,
            metrics,
            failures: FailureLimiter::new(config.limits.auth_failures_per_minute, AUTH_WINDOW, AUTH_TRACKED_MAX),
            trusted_proxies: config.trusted_proxies.clone(),
            keys: Mutex::new(LruCache::with_hasher(KEY_CACHE_MAX, RandomState::new())),
        })
    }

    /// The client of a request from `peer` with these headers: see [`client_address`].
    pub fn client_address(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        // A value that is not text counts as an entry that is not an address.
        let forwarded: Vec<&str> =
            headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("")).collect();
        client_address(peer, &forwarded, &self.trusted_proxies)
    }

    /// The project of an `Authorization` value (HTTP header or gRPC metadata). Valid keys are
    /// always let in; a wrong key pair is a strike against (client, public key), and beyond
    /// the limit the answer is 429 instead of 401. A request without credentials is no strike.
    pub async fn authenticate(&self, authorization: Option<&str>, client: Option<IpAddr>) -> Result<String, AuthError> {
        let Some(value) = authorization else {
            return Err(self.rejected(AuthError::Missing));
        };
        let Some((public, secret)) = keys::parse_basic(value) else {
            return Err(self.rejected(AuthError::Malformed));
        };
        self.check_keys(&public, &secret, client).await
    }

    /// The project of a key pair (what [`Authenticator::authenticate`] checks; also the web
    /// UI's sign-in), failures limited the same way.
    pub async fn check_keys(&self, public: &str, secret: &str, client: Option<IpAddr>) -> Result<String, AuthError> {
        match self.project_key(public).await {
            Ok(Some(key)) if keys::verify_secret(secret, &key.secret_hash) => Ok(key.project_id),
            Ok(_) => {
                let error = self.failed(client, Credential::project(public));
                if matches!(error, AuthError::WrongKeys) {
                    // Never log the secret; the public key is the caller's text: quoted, clipped.
                    let shown: String = public.chars().take(64).collect();
                    tracing::warn!(public_key = ?shown, client = ?client, "authentication failed");
                }
                Err(error)
            }
            Err(e) => {
                tracing::error!(error = %e, "authentication lookup failed");
                Err(AuthError::Unavailable)
            }
        }
    }

    /// The project of a query API request: its `Authorization` (Basic keys) when it has one,
    /// else its web UI session cookie ([`session`]). An unknown or expired session is no strike
    /// (a 256-bit token cannot be guessed).
    pub async fn authenticate_request(&self, headers: &HeaderMap, client: Option<IpAddr>) -> Result<String, AuthError> {
        if let Some(value) = headers.get(axum::http::header::AUTHORIZATION) {
            return self.authenticate(Some(value.to_str().unwrap_or("")), client).await;
        }
        let Some(token) = session::cookie_token(headers) else {
            return Err(self.rejected(AuthError::Missing));
        };
        match self.storage.ui_session(&session::token_digest(&token), session::now_ns()).await {
            Ok(Some(project)) => Ok(project),
            Ok(None) => Err(self.rejected(AuthError::NoSession)),
            Err(e) => {
                tracing::error!(error = %e, "session lookup failed");
                Err(AuthError::Unavailable)
            }
        }
    }

    /// Start a web UI session for `project_id`: returns the token for the cookie (only its
    /// digest is stored).
    pub async fn start_session(&self, project_id: &str) -> Result<String, AuthError> {
        let token = session::new_token();
        let now = session::now_ns();
        self.storage
            .insert_ui_session(&session::token_digest(&token), project_id, now, session::expiry_ns(now))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "storing a UI session failed");
                AuthError::Unavailable
            })?;
        Ok(token)
    }

    /// End the web UI session of these request headers, if any.
    pub async fn end_session(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let Some(token) = session::cookie_token(headers) else { return Ok(()) };
        self.storage.delete_ui_session(&session::token_digest(&token)).await.map_err(|e| {
            tracing::error!(error = %e, "ending a UI session failed");
            AuthError::Unavailable
        })
    }

    /// Check an `Authorization: Bearer` value against the admin token, in constant time. Like
    /// [`Authenticator::authenticate`]: the right token is always let in, a wrong one is a
    /// strike against the client address (429 beyond the limit), no token is no strike.
    pub fn authorize_admin(
        &self,
        expected: &str,
        authorization: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        let Some(value) = authorization else {
            return Err(self.rejected(AuthError::Missing));
        };
        let Some(given) = bearer(value) else {
            return Err(self.rejected(AuthError::Malformed));
        };
        // Digests: equal lengths, so the comparison tells nothing about the token's length.
        if bool::from(Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(expected.as_bytes()))) {
            return Ok(());
        }
        let error = self.failed(client, Credential::Admin);
        if matches!(error, AuthError::WrongKeys) {
            tracing::warn!(client = ?client, "admin authentication failed");
        }
        Err(error)
    }

    /// The key row of `public`, from the cache when fresh.
    async fn project_key(&self, public: &str) -> Result<Option<ProjectKey>, StorageError> {
        {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((key, read)) = keys.get(public)
                && read.elapsed() < KEY_CACHE_TTL
            {
                return Ok(Some(key.clone()));
            }
        }
        let key = self.storage.project_key(public).await?;
        if let Some(key) = &key {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            keys.insert(public.to_owned(), (key.clone(), Instant::now()));
        }
        Ok(key)
    }

    /// A refusal that is no guess (no credentials, or none readable): counted, no strike.
    fn rejected(&self, error: AuthError) -> AuthError {
        self.metrics.rejected_auth.inc();
        error
    }

    /// A wrong credential from `client`: a strike; beyond the limit, 429 until the window ends.
    fn failed(&self, client: Option<IpAddr>, credential: Credential) -> AuthError {
        self.metrics.rejected_auth.inc();
        match client.and_then(|client| self.failures.fail(client, credential)) {
            Some(wait) => AuthError::TooManyFailures(wait.as_secs() + 1),
            None => AuthError::WrongKeys,
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The client of a request: the peer; or, when the peer is one of the `trusted` proxies, the
/// nearest address in `X-Forwarded-For` (its header values in order) that is not itself a
/// trusted proxy. Each proxy appends the address it was connected from, so the list is read
/// from the right; an entry that is no address stops the walk at the last trusted hop (what
/// is left of it is the client's own text). Without trusted proxies the header is ignored.
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |address: &IpAddr| trusted.iter().any(|net| net.contains(address));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    for entry in forwarded_for.iter().rev().flat_map(|value| value.rsplit(',')) {
        let Some(address) = forwarded_address(entry) else { break };
        client = address;
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]`, with or without a port.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let address = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(address.to_canonical())
}

/// `ANTENNA_TRUSTED_PROXIES`: comma-separated addresses or CIDRs (empty: none).
pub fn parse_trusted_proxies(text: &str) -> Result<Vec<IpNet>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .map(|net| net.trunc())
                .or_else(|_| item.parse::<IpAddr>().map(|a| IpNet::from(a.to_canonical())))
                .map_err(|_| format!("{item:?} is neither an IP address nor a CIDR (like 10.0.0.0/8 or fd00::/8)"))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy() {
        let trusted = parse_trusted_proxies("10.0.0.0/8, 192.168.1.7 ,fd00::/8").expect("list");
        // No trusted proxies, or an untrusted peer: the header is the client's own text.
        assert_eq!(client_address(ip("203.0.113.9"), &["198.51.100.1"], &[]), ip("203.0.113.9"));
        assert_eq!(client_address(ip("203.0.113.9"), &["198.51.100.1"], &trusted), ip("203.0.113.9"));
        // A trusted peer: the nearest untrusted address, read from the right.
        assert_eq!(client_address(ip("10.1.2.3"), &["198.51.100.1"], &trusted), ip("198.51.100.1"));
        let chain = ["6.6.6.6, 198.51.100.1, 10.9.9.9", "192.168.1.7"];
        assert_eq!(client_address(ip("10.1.2.3"), &chain, &trusted), ip("198.51.100.1"));
        // Ports and brackets; IPv4-mapped IPv6 is IPv4.
        assert_eq!(client_address(ip("10.0.0.1"), &["198.51.100.1:4711"], &trusted), ip("198.51.100.1"));
        assert_eq!(client_address(ip("fd00::1"), &["[2001:db8::5]:443"], &trusted), ip("2001:db8::5"));
        assert_eq!(client_address(ip("::ffff:10.0.0.1"), &["[2001:db8::5]"], &trusted), ip("2001:db8::5"));
        // Garbage stops the walk at the last trusted hop; no header: the proxy itself.
        assert_eq!(client_address(ip("10.0.0.1"), &["198.51.100.1, unknown, 10.0.0.2"], &trusted), ip("10.0.0.2"));
        assert_eq!(client_address(ip("10.0.0.1"), &[], &trusted), ip("10.0.0.1"));
        // Every hop trusted: the first one.
        assert_eq!(client_address(ip("10.0.0.1"), &["10.0.0.3, 10.0.0.2"], &trusted), ip("10.0.0.3"));
        assert!(parse_trusted_proxies("").expect("empty").is_empty());
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxies("proxy.local").is_err());
    }

    #[test]
    fn bearer_values() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
