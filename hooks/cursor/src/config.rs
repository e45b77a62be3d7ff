//! Settings, from the environment Cursor gives its hooks. Everything has a default, so a bare
//! `hooks.json` entry works against a host on this machine.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;

/// Where the host listens by default (its logs endpoint is `<endpoint>/v1/logs`).
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:4318/api/public/otel";
/// How long one post may take in all (connect, send, answer).
pub const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// After a post timed out, how long later hooks only spool instead of waiting on the host again.
pub const DEFAULT_BACKOFF_MS: u64 = 30_000;

/// What one run of the hook needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Full URL of the OTLP logs endpoint.
    pub logs_url: String,
    /// `Basic base64(pk:sk)`, when both keys are set.
    pub authorization: Option<String>,
    pub timeout: Duration,
    pub backoff: Duration,
    /// Unsent records wait here for the next successful post: `ANTENNA_SPOOL_DIR`, else the
    /// user's state directory. `None` when neither can be had; then nothing is spooled (never a
    /// shared temporary directory, where other users could read or plant records).
    pub spool_dir: Option<PathBuf>,
    /// Extra resource attributes (`OTEL_RESOURCE_ATTRIBUTES`).
    pub resource: Vec<(String, String)>,
    /// The user, when the environment names one; else the payload's `user_email` is used.
    pub user_id: Option<String>,
    /// The device.
    pub host_id: Option<String>,
    /// Forward file contents (`content` of beforeReadFile / beforeTabFileRead); off by default,
    /// as a file the agent reads may hold secrets.
    pub file_content: bool,
}

impl Config {
    /// From the process environment.
    pub fn from_env() -> Self {
        let mut config = Self::from_lookup(|key| std::env::var(key).ok());
        if config.host_id.is_none() {
            config.host_id = machine_id();
        }
        config
    }

    /// From any lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |key: &str| get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let millis = |key: &str, default: u64| {
            Duration::from_millis(var(key).and_then(|v| v.parse::<u64>().ok()).unwrap_or(default))
        };
        let resource = var("OTEL_RESOURCE_ATTRIBUTES").map(|v| parse_resource_attributes(&v)).unwrap_or_default();
        let from_resource =
            |key: &str| resource.iter().rev().find(|(k, v)| k == key && !v.is_empty()).map(|(_, v)| v.clone());
        let endpoint = var("ANTENNA_ENDPOINT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
        let authorization = match (var("ANTENNA_PUBLIC_KEY"), var("ANTENNA_SECRET_KEY")) {
            (Some(public), Some(secret)) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{public}:{secret}"))
            )),
            _ => None,
        };
        Config {
            logs_url: logs_url(&endpoint),
            authorization,
            timeout: millis("ANTENNA_TIMEOUT_MS", DEFAULT_TIMEOUT_MS),
            backoff: millis("ANTENNA_BACKOFF_MS", DEFAULT_BACKOFF_MS),
            spool_dir: var("ANTENNA_SPOOL_DIR").map(PathBuf::from).or_else(|| default_spool_dir(&var)),
            user_id: var("ANTENNA_USER_ID").or_else(|| from_resource("user.id")),
            host_id: var("ANTENNA_HOST_ID").or_else(|| from_resource("host.id")),
            file_content: var("ANTENNA_CURSOR_FILE_CONTENT")
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes")),
            resource,
        }
    }
}

/// `<endpoint>/v1/logs`, unless the endpoint already is the logs URL.
pub fn logs_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/logs") { base.to_owned() } else { format!("{base}/v1/logs") }
}

/// `key1=value1,key2=value2`, values percent-encoded (the OpenTelemetry SDK convention).
pub fn parse_resource_attributes(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (percent_decode(k.trim()), percent_decode(v.trim())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits make at most 255.
                out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The user's own state directory, per platform, without a crate for it: `%LOCALAPPDATA%` on
/// Windows, else `$XDG_STATE_HOME`, else `~/.local/state`. Only absolute paths count; with none,
/// `None` (no fallback to the temporary directory, which every user shares).
fn default_spool_dir(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let absolute = |v: String| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    let base = if cfg!(windows) {
        var("LOCALAPPDATA").and_then(absolute)
    } else {
        var("XDG_STATE_HOME")
            .and_then(absolute)
            .or_else(|| var("HOME").and_then(absolute).map(|h| h.join(".local").join("state")))
    };
    base.map(|b| b.join("antenna").join("cursor-spool"))
}

/// The OpenTelemetry convention for `host.id` outside a cloud: the machine id.
fn machine_id() -> Option<String> {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_lookup(|key| map.get(key).cloned())
    }

    #[test]
    fn defaults_point_at_a_local_host() {
        let c = config(&[("HOME", "/home/dev")]);
        assert_eq!(c.logs_url, "http://127.0.0.1:4318/api/public/otel/v1/logs");
        assert_eq!(c.timeout, Duration::from_millis(2_000));
        assert_eq!(c.authorization, None);
        assert!(!c.file_content);
        if cfg!(unix) {
            assert_eq!(c.spool_dir, Some(PathBuf::from("/home/dev/.local/state/antenna/cursor-spool")));
        }
    }

    #[test]
    fn the_spool_is_per_user_or_nowhere() {
        if cfg!(unix) {
            let c = config(&[("HOME", "/home/dev"), ("XDG_STATE_HOME", "/home/dev/state")]);
            assert_eq!(c.spool_dir, Some(PathBuf::from("/home/dev/state/antenna/cursor-spool")));
            // A relative XDG_STATE_HOME is ignored, as the XDG spec says.
            let c = config(&[("HOME", "/home/dev"), ("XDG_STATE_HOME", "state")]);
            assert_eq!(c.spool_dir, Some(PathBuf::from("/home/dev/.local/state/antenna/cursor-spool")));
        }
        // No home, no state directory: no spool, and never the shared temporary directory.
        assert_eq!(config(&[]).spool_dir, None);
        assert_eq!(config(&[("HOME", "relative")]).spool_dir, None);
    }

    #[test]
    fn environment_overrides() {
        let c = config(&[
            ("ANTENNA_ENDPOINT", "https://antenna.example.com/api/public/otel/"),
            ("ANTENNA_PUBLIC_KEY", "pk-local"),
            ("ANTENNA_SECRET_KEY", "sk-local"),
            ("ANTENNA_TIMEOUT_MS", "500"),
            ("ANTENNA_SPOOL_DIR", "/tmp/spool"),
            ("OTEL_RESOURCE_ATTRIBUTES", "user.id=dev%40example.com, host.id=device-1,deployment.environment=test"),
            ("ANTENNA_CURSOR_FILE_CONTENT", "true"),
        ]);
        assert_eq!(c.logs_url, "https://antenna.example.com/api/public/otel/v1/logs");
        assert_eq!(c.authorization.as_deref(), Some("Basic cGstbG9jYWw6c2stbG9jYWw="));
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.spool_dir, Some(PathBuf::from("/tmp/spool")));
        assert_eq!(c.user_id.as_deref(), Some("dev@example.com"));
        assert_eq!(c.host_id.as_deref(), Some("device-1"));
        assert!(c.file_content);
        assert_eq!(c.resource.len(), 3);

        let c = config(&[
            ("ANTENNA_USER_ID", "me@example.com"),
            ("OTEL_RESOURCE_ATTRIBUTES", "user.id=other"),
            ("ANTENNA_ENDPOINT", "http://h:1/v1/logs"),
        ]);
        assert_eq!(c.user_id.as_deref(), Some("me@example.com"));
        assert_eq!(c.logs_url, "http://h:1/v1/logs");
    }

    #[test]
    fn percent_decoding_tolerates_junk() {
        assert_eq!(percent_decode("a%20b%2Cc"), "a b,c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
