//! Server settings, from flags or the environment (see `antenna serve --help`).

use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// Failed authentications per client address and minute before that address gets 429.
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
    /// Open connections, OTLP/HTTP and OTLP/gRPC together; beyond, new connections wait in the
    /// listen backlog.
    pub max_connections: usize,
    /// HTTP/2 streams open at once on one connection (HTTP and gRPC).
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams a client reset before they were handled, per connection (beyond: the
    /// connection is closed with ENHANCE_YOUR_CALM).
    pub max_pending_reset_streams: usize,
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
            max_concurrent_streams: 100,
            max_pending_reset_streams: 20,
        }
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
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
    pub admin_token: Option<String>,
    /// Bootstrap key pair: a project with these keys exists after start.
    pub bootstrap_keys: Option<(String, String)>,
    /// The user of traces that carry no user at all.
    pub fallback_user: Option<String>,
    pub limits: Limits,
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
            fallback_user: None,
            limits: Limits::default(),
        }
    }
}
