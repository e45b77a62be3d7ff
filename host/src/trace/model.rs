//! The host's own copy of the normalized output: plugin output is converted into these types
//! (and validated) at the sandbox boundary, then stored as JSON and merged into traces.

use serde::{Deserialize, Serialize};

/// A piece of a trace, as a plugin reported it (see `fragment` in the WIT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fragment {
    pub trace_key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_known_as: Vec<String>,
    pub id: String,
    pub report_id: String,
    pub attribution: Attribution,
    pub body: Body,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attribution {
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// Where the work happened: set by the host from the resource's attributes
    /// (`vcs.repository.url.full`, `vcs.ref.head.name`, `team`), not by plugins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Prompt(Prompt),
    ModelCall(ModelCall),
    ToolCall(ToolCall),
    Event(Event),
    UsageMetric(UsageMetric),
}

impl Body {
    /// The kind name stored with the fragment.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Prompt(_) => "prompt",
            Body::ModelCall(_) => "model_call",
            Body::ToolCall(_) => "tool_call",
            Body::Event(_) => "event",
            Body::UsageMetric(_) => "usage_metric",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    pub text: Option<String>,
    pub response: Option<String>,
    pub start_unix_nano: Option<u64>,
    pub end_unix_nano: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Log,
    Span,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    pub reasoning: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
        self.cache_read = self.cache_read.saturating_add(other.cache_read);
        self.cache_creation = self.cache_creation.saturating_add(other.cache_creation);
        self.reasoning = self.reasoning.saturating_add(other.reasoning);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCall {
    pub channel: Channel,
    pub model: Option<String>,
    pub usage: Option<Usage>,
    pub cost_usd: Option<f64>,
    pub start_unix_nano: Option<u64>,
    pub end_unix_nano: Option<u64>,
    pub duration_ms: Option<u64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub name: Option<String>,
    pub args: Option<String>,
    pub result: Option<String>,
    pub duration_ms: Option<u64>,
    pub success: Option<bool>,
    pub decision: Option<String>,
    pub start_unix_nano: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub name: String,
    pub time_unix_nano: u64,
    pub attributes_json: String,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageMetric {
    pub name: String,
    pub unit: String,
    pub value: f64,
    pub time_unix_nano: u64,
    pub attributes_json: String,
}

/// `value` cut to at most `max` bytes, on a character boundary.
pub fn clip(mut value: String, max: usize) -> String {
    if value.len() > max {
        let mut cut = max;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
    }
    value
}

/// A repository as one spelling, `host/owner/repo`, whatever the clone URL it came as: scheme,
/// credentials (`https://user:TOKEN@host/...`), port, query, fragment and a trailing `.git`
/// dropped, the host lowercased, the scp-like SSH form (`git@host:owner/repo.git`) read as a
/// URL. So clones over SSH and HTTPS group together and no credential is stored. Text that is
/// no URL (a local path, a bare name) keeps its path, without query or fragment.
pub fn repository_name(raw: &str) -> String {
    let text = raw.trim();
    let text = text.strip_prefix("git+").unwrap_or(text);
    let text = text.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match text.split_once("://") {
        Some((_, rest)) => rest.split_once('/').unwrap_or((rest, "")),
        // scp-like `user@host:path` (not a Windows drive letter, not a path with a colon later).
        None => match text.split_once(':') {
            Some((authority, path)) if authority.len() > 1 && !authority.contains('/') && !path.starts_with("//") => {
                (authority, path)
            }
            _ => ("", text),
        },
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    // A port after the host (not inside an IPv6 address's brackets).
    let host = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) && !name.ends_with(':') => name,
        _ => host,
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).trim_end_matches('/');
    match (host.is_empty(), path.is_empty()) {
        (true, _) => path.to_owned(),
        (false, true) => host.to_ascii_lowercase(),
        (false, false) => format!("{}/{path}", host.to_ascii_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::repository_name;

    #[test]
    fn every_clone_url_of_a_repository_is_one_name_without_credentials() {
        for url in [
            "https://github.com/acme/widgets.git",
            "https://user:ghp_SECRET0123456789@github.com/acme/widgets",
            "http://GitHub.com:443/acme/widgets/",
            "git@github.com:acme/widgets.git",
            "ssh://git@github.com:22/acme/widgets.git",
            "git+ssh://git@github.com/acme/widgets",
            "https://oauth2:TOKEN@github.com/acme/widgets.git?ref=main#readme",
            "  github.com/acme/widgets  ",
        ] {
            assert_eq!(repository_name(url), "github.com/acme/widgets", "{url}");
        }
        assert_eq!(repository_name("/home/dev/src/widgets"), "home/dev/src/widgets");
        assert_eq!(repository_name("widgets"), "widgets");
        assert_eq!(
            repository_name("https://gitlab.example.com/group/sub/proj.git"),
            "gitlab.example.com/group/sub/proj"
        );
    }
}
