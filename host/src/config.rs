//! Server settings, from flags or the environment (see `antenna serve --help`), and the checks
//! that refuse settings which would expose the host ([`Config::check`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::bail;
pub use ipnet::IpNet;

/// Shortest admin token accepted (it guards replay and the plugin list).
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;
/// Shortest bootstrap secret accepted when the host listens beyond loopback (the secret is
/// chosen by a person, unlike generated ones: `antenna project create` makes 48 hex digits).
pub const MIN_EXPOSED_SECRET_CHARS: usize = 32;

/// A secret setting (secret key, admin token): `Debug` never shows it. It derefs to `str`
/// where the value is needed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::ops::Deref for Secret {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

/// Limits on what a client may send; beyond them the request gets a 4xx.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body on the wire (413 beyond).
    pub max_body_bytes: usize,
    /// Largest body after gzip decompression (413 beyond; decompression stops there).
    pub max_decoded_bytes: usize,
    /// CPU time a plugin gets per call before it is interrupted.
    pub plugin_timeout_ms: u64,
    /// Linear memory a plugin instance may grow to.
    pub plugin_memory_bytes: usize,
    /// Most fragments a plugin may return for one resource batch.
    pub max_fragments: usize,
    /// Longest id or key a plugin may return.
    pub max_id_len: usize,
    /// Longest text field a plugin may return (longer text is truncated).
    pub max_text_len: usize,
    /// Batches read, stored and normalized at once.
    pub max_concurrent_batches: usize,
    /// Requests that may wait for a slot (beyond: 429).
    pub max_queued_batches: usize,
    /// How long a request waits for a slot (beyond: 503).
    pub queue_wait_ms: u64,
    /// Failed authentications per (client address, public key or admin token) and minute before
    /// that pair's failures get 429. Valid credentials are always let in; requests without
    /// credentials are no strike; IPv6 clients count by their /64.
    pub auth_failures_per_minute: u32,
    /// Most attributes on one resource, scope, record or event.
    pub max_attributes: usize,
    /// Longest string value or key in a request.
    pub max_string_len: usize,
    /// Most records in one request: resources, scopes, spans, span events and links, log records,
    /// metrics and data points together (413 / RESOURCE_EXHAUSTED beyond).
    pub max_records_per_request: usize,
    /// How long a client may take to send a body once it is being read (408 / DEADLINE_EXCEEDED
    /// beyond).
    pub body_read_timeout_ms: u64,
    /// How long a connection may take to send its first bytes, and an HTTP/1 request its headers
    /// (idle keep-alive time included); the connection is closed beyond.
    pub header_read_timeout_ms: u64,
    /// Bodies being received at once; slow senders hold these, not processing slots (others
    /// wait `queue_wait_ms`, then 503).
    pub max_concurrent_reads: usize,
    /// Open connections on each port (OTLP/HTTP with the API, OTLP/gRPC: one budget each);
    /// beyond, new connections wait in the listen backlog.
    pub max_connections: usize,
    /// Open connections from one client address (IPv6: one /64) on each port; beyond, a new
    /// one is closed at once. A trusted proxy's own address is not capped.
    pub max_connections_per_address: usize,
    /// How long a connection may stay open without a request in flight (HTTP/2 gets a GOAWAY).
    pub idle_timeout_ms: u64,
    /// How long a connection may stay open at all; it is then asked to go (GOAWAY) and closed
    /// once its requests are answered.
    pub max_connection_age_ms: u64,
    /// Decoded export requests in memory at once, by their estimated size (requests wait for
    /// room, as for a processing slot).
    pub max_decoded_bytes_in_flight: usize,
    /// HTTP/2 streams open at once on one connection (HTTP and gRPC).
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams a client reset before they were handled, per connection (beyond: the
    /// connection is closed with ENHANCE_YOUR_CALM).
    pub max_pending_reset_streams: usize,
    /// HTTP/2 streams the host itself reset because of a client's protocol error, per connection
    /// (the "MadeYouReset" attack, CVE-2025-8671; beyond: the connection is closed).
    pub max_local_reset_streams: usize,
    /// Replace credentials in plugin output text before it is stored (`ANTENNA_SCRUB_SECRETS`).
    pub scrub_secrets: bool,
    /// How long a plugin that keeps failing on one project's batches is put aside for that
    /// project; the batches turned away meanwhile are retried when it ends.
    pub breaker_cool_down_ms: u64,
    /// How long compiling a component from the plugins directory may take (the compiler
    /// process is killed beyond; the file is refused).
    pub compile_timeout_ms: u64,
    /// Address space the compiler process may use.
    pub compile_memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 << 20,
            max_decoded_bytes: 64 << 20,
            plugin_timeout_ms: 5_000,
            plugin_memory_bytes: 256 << 20,
            max_fragments: 100_000,
            max_id_len: 512,
            max_text_len: 1 << 20,
            max_concurrent_batches: 32,
            max_queued_batches: 256,
            queue_wait_ms: 10_000,
            auth_failures_per_minute: 30,
            max_attributes: 4096,
            max_string_len: 4 << 20,
            max_records_per_request: 100_000,
            body_read_timeout_ms: 30_000,
            header_read_timeout_ms: 10_000,
            max_concurrent_reads: 128,
            max_connections: 1024,
            max_connections_per_address: 256,
            idle_timeout_ms: 10_000,
            max_connection_age_ms: 600_000,
            max_decoded_bytes_in_flight: 512 << 20,
            max_concurrent_streams: 100,
            max_pending_reset_streams: 20,
            max_local_reset_streams: 1024,
            scrub_secrets: false,
            breaker_cool_down_ms: 30_000,
            compile_timeout_ms: 60_000,
            compile_memory_bytes: 4 << 30,
        }
    }
}

impl Limits {
    /// [`Limits::breaker_cool_down_ms`] as a duration.
    pub fn breaker_cool_down(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.breaker_cool_down_ms)
    }
}

/// Everything `serve` needs. `Debug` redacts the secrets and the database password.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// OTLP/gRPC address (`None`: no gRPC listener).
    pub grpc_listen: Option<SocketAddr>,
    /// `sqlite://path` (created when missing).
    pub database_url: String,
    /// Extra and replacement plugins (`*.wasm`), watched for changes.
    pub plugins_dir: Option<PathBuf>,
    /// Compiled plugin code, reused across restarts (`None`: compile every start).
    pub cache_dir: Option<PathBuf>,
    /// Bearer token of the admin API (`/api/admin/...`); the admin API is off without one.
    /// At least [`MIN_ADMIN_TOKEN_CHARS`] characters.
    pub admin_token: Option<Secret>,
    /// Bootstrap key pair: a project with these keys exists after start. Beyond loopback the
    /// secret needs [`MIN_EXPOSED_SECRET_CHARS`] characters.
    pub bootstrap_keys: Option<(String, Secret)>,
    /// Proxies whose `X-Forwarded-For` names the client (addresses or CIDRs); from any other
    /// peer the header is ignored. Empty: the peer is the client.
    pub trusted_proxies: Vec<IpNet>,
    /// The user of traces that carry no user at all.
    pub fallback_user: Option<String>,
    pub limits: Limits,
    /// A file of SHA-256 hex digests, one a line: only listed components load from the plugins
    /// directory (`None`: any component that passes the other checks).
    pub plugins_allowlist: Option<PathBuf>,
    /// Bearer token `/metrics` requires (`None`: `/metrics` is open).
    pub metrics_token: Option<Secret>,
    /// A TOML file of model prices over the built-in table (`ANTENNA_PRICES`).
    pub prices: Option<PathBuf>,
    /// How often budgets are checked and their alerts delivered.
    pub budget_interval: std::time::Duration,
    /// The hosts budget webhooks may post to (`ANTENNA_WEBHOOK_HOSTS`; empty: any).
    pub webhook_hosts: Vec<String>,
    /// Certificates budget webhooks' TLS may chain to besides the public (webpki) roots
    /// (`ANTENNA_WEBHOOK_CA_FILE`).
    pub webhook_roots: Vec<reqwest::Certificate>,
    /// The host's own binary, run to compile components from the plugins directory in a
    /// bounded child process (`None`: they compile in this process, unbounded: tests, tools).
    pub plugin_compiler: Option<PathBuf>,
}

impl Config {
    /// Defaults for a local run with the database at `database_url`.
    pub fn local(database_url: impl Into<String>) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 4318)),
            grpc_listen: None,
            database_url: database_url.into(),
            plugins_dir: None,
            cache_dir: None,
            admin_token: None,
            bootstrap_keys: None,
            trusted_proxies: Vec::new(),
            fallback_user: None,
            limits: Limits::default(),
            plugins_allowlist: None,
            metrics_token: None,
            prices: None,
            budget_interval: std::time::Duration::from_secs(60),
            webhook_hosts: Vec::new(),
            webhook_roots: Vec::new(),
            plugin_compiler: None,
        }
    }

    /// Whether any listener accepts connections from beyond this machine.
    pub fn listens_beyond_loopback(&self) -> bool {
        !self.listen.ip().is_loopback() || self.grpc_listen.is_some_and(|a| !a.ip().is_loopback())
    }

    /// Refuse settings that would leave the host open to guessing: an empty or short admin
    /// token, a short bootstrap secret on a host reachable from other machines. Returns the
    /// warnings to log (a short secret on loopback only).
    pub fn check(&self) -> anyhow::Result<Vec<String>> {
        let mut warnings = Vec::new();
        if let Some(token) = &self.admin_token {
            let chars = token.chars().count();
            if chars == 0 {
                bail!(
                    "ANTENNA_ADMIN_TOKEN (--admin-token) is empty: unset it to turn the admin API off, or set a random token of at least {MIN_ADMIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`)"
                );
            }
            if chars < MIN_ADMIN_TOKEN_CHARS {
                bail!(
                    "ANTENNA_ADMIN_TOKEN (--admin-token) has {chars} characters: use a random token of at least {MIN_ADMIN_TOKEN_CHARS} (e.g. `openssl rand -hex 32`)"
                );
            }
        }
        if let Some((_, secret)) = &self.bootstrap_keys {
            let chars = secret.chars().count();
            if chars < MIN_EXPOSED_SECRET_CHARS {
                if self.listens_beyond_loopback() {
                    bail!(
                        "ANTENNA_SECRET_KEY (--secret-key) has {chars} characters and the host listens beyond loopback ({}{}): use a random secret of at least {MIN_EXPOSED_SECRET_CHARS} characters (e.g. `openssl rand -hex 24`), or `antenna project create NAME`",
                        self.listen,
                        self.grpc_listen.map(|a| format!(", gRPC {a}")).unwrap_or_default()
                    );
                }
                warnings.push(format!("the bootstrap secret key has {chars} characters: fine on loopback, but use at least {MIN_EXPOSED_SECRET_CHARS} before listening beyond it"));
            }
        }
        warnings.extend(postgres_tls_warning(&self.database_url));
        Ok(warnings)
    }
}

/// A warning for a PostgreSQL URL that reaches another machine without a verified TLS
/// connection: prompts and raw bodies would cross the network in clear (`disable`, `allow`,
/// `prefer` when the server offers no TLS) or to a server nobody checked (`require`).
fn postgres_tls_warning(url: &str) -> Option<String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return None;
    }
    let parsed = reqwest::Url::parse(url).ok()?;
    let param = |name: &str| parsed.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    let host = param("host").unwrap_or_else(|| parsed.host_str().unwrap_or_default().to_owned());
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let local = host.is_empty()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    let mode = param("sslmode").or_else(|| param("ssl-mode")).unwrap_or_else(|| "prefer".into()).to_ascii_lowercase();
    match mode.as_str() {
        _ if local => None,
        "verify-full" | "verify-ca" => None,
        "require" => Some(format!(
            "PostgreSQL at {host}: sslmode=require encrypts but does not verify the server; use sslmode=verify-full (sslrootcert=FILE for a private CA)"
        )),
        mode => Some(format!(
            "PostgreSQL at {host}: sslmode={mode} may send prompts and raw bodies in clear; use sslmode=verify-full (sslrootcert=FILE for a private CA)"
        )),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Config {
            listen,
            grpc_listen,
            database_url,
            plugins_dir,
            cache_dir,
            admin_token,
            bootstrap_keys,
            trusted_proxies,
            fallback_user,
            limits,
            plugins_allowlist,
            metrics_token,
            prices,
            budget_interval,
            webhook_hosts,
            webhook_roots,
            plugin_compiler,
        } = self;
        f.debug_struct("Config")
            .field("listen", listen)
            .field("grpc_listen", grpc_listen)
            .field("database_url", &redact_url_password(database_url))
            .field("plugins_dir", plugins_dir)
            .field("cache_dir", cache_dir)
            .field("admin_token", admin_token)
            .field("bootstrap_keys", bootstrap_keys)
            .field("trusted_proxies", trusted_proxies)
            .field("fallback_user", fallback_user)
            .field("limits", limits)
            .field("plugins_allowlist", plugins_allowlist)
            .field("metrics_token", metrics_token)
            .field("prices", prices)
            .field("budget_interval", budget_interval)
            .field("webhook_hosts", webhook_hosts)
            .field("webhook_roots", &webhook_roots.len())
            .field("plugin_compiler", plugin_compiler)
            .finish()
    }
}

/// `scheme://user:[redacted]@host/...` for a URL with a password; other text unchanged. Every
/// database URL the host prints or logs goes through this.
pub fn redact_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:[redacted]@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_postgresql_url_beyond_this_machine_without_verified_tls_is_warned_about() {
        assert_eq!(postgres_tls_warning("sqlite://antenna.db"), None);
        assert_eq!(postgres_tls_warning("postgres://u@127.0.0.1/db"), None);
        assert_eq!(postgres_tls_warning("postgres://u@localhost:5433/db?sslmode=disable"), None);
        assert_eq!(postgres_tls_warning("postgres:///db?host=/var/run/postgresql"), None);
        assert_eq!(postgres_tls_warning("postgres://u@db.internal/db?sslmode=verify-full&sslrootcert=/ca.pem"), None);
        let default = postgres_tls_warning("postgres://u:pw@db.internal/db").expect("warned");
        assert!(
            default.contains("db.internal") && default.contains("sslmode=prefer") && !default.contains("pw"),
            "{default}"
        );
        let require = postgres_tls_warning("postgresql://u@10.0.0.5/db?sslmode=require").expect("warned");
        assert!(require.contains("does not verify"), "{require}");
    }

    use super::*;

    #[test]
    fn debug_shows_no_secret() {
        let mut config = Config::local("postgres://antenna:db-password-1@db:5432/antenna");
        config.admin_token = Some("admin-token-value-0123".into());
        config.bootstrap_keys = Some(("pk-visible".into(), "sk-secret-value-0123456789".into()));
        let shown = format!("{config:?} {config:#?}");
        for secret in ["admin-token-value-0123", "sk-secret-value-0123456789", "db-password-1"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("pk-visible") && shown.contains("[redacted]"));
        assert_eq!(redact_url_password("sqlite://antenna-data/antenna.db"), "sqlite://antenna-data/antenna.db");
        assert_eq!(redact_url_password("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact_url_password("postgres://u:p@h:1/d?x=@"), "postgres://u:[redacted]@h:1/d?x=@");
    }

    #[test]
    fn weak_secrets_are_refused_where_they_would_be_exposed() {
        let local = |adjust: fn(&mut Config)| {
            let mut config = Config::local("sqlite://x.db");
            config.bootstrap_keys = Some(("pk-local".into(), "sk-local".into()));
            adjust(&mut config);
            config.check()
        };
        // The README's short local key on loopback: accepted, with a warning.
        assert_eq!(local(|_| {}).expect("accepted").len(), 1);
        let exposed = local(|c| c.listen = "0.0.0.0:4318".parse().expect("address"));
        assert!(exposed.expect_err("refused").to_string().contains("at least 32"));
        let grpc_exposed = local(|c| c.grpc_listen = Some("[::]:4317".parse().expect("address")));
        assert!(grpc_exposed.is_err());
        let strong = local(|c| {
            c.listen = "0.0.0.0:4318".parse().expect("address");
            c.bootstrap_keys = Some(("pk".into(), "0123456789abcdef0123456789abcdef".into()));
        });
        assert!(strong.expect("accepted").is_empty());
        // Admin tokens: never empty, never short, wherever the host listens.
        assert!(local(|c| c.admin_token = Some("".into())).expect_err("empty").to_string().contains("empty"));
        let short = local(|c| c.admin_token = Some("fifteen-chars-x".into()));
        assert!(short.expect_err("short").to_string().contains("at least 16"));
        assert!(local(|c| c.admin_token = Some("sixteen-chars-xx".into())).is_ok());
    }
}
