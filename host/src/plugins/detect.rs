//! Which plugin handles one resource. An instrumentation scope claim is the strongest evidence,
//! an event/span name claim next (generic names like `chat *` may be shared), `service.name` the
//! weakest (a stale `OTEL_SERVICE_NAME` must not decide); ties go to the earlier plugin in
//! precedence order.

use std::sync::Arc;

use super::Loaded;
use crate::sandbox::Claims;
use crate::sandbox::wit::{AttrValue, KeyValue, ResourceBatch};

/// The names detection looks at in one resource batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature<'a> {
    pub service_name: Option<&'a str>,
    pub scope_names: Vec<&'a str>,
    /// Log event names (field, `event.name` attribute, string body) and span names.
    pub event_names: Vec<&'a str>,
}

impl<'a> Signature<'a> {
    pub fn of(batch: &'a ResourceBatch) -> Self {
        let text = |attrs: &'a [KeyValue], key: &str| {
            attrs.iter().find(|kv| kv.key == key).and_then(|kv| match &kv.value {
                AttrValue::Text(s) => Some(s.as_str()),
                _ => None,
            })
        };
        let mut event_names = Vec::new();
        for scope in &batch.scopes {
            for log in &scope.logs {
                if !log.event_name.is_empty() {
                    event_names.push(log.event_name.as_str());
                }
                event_names.extend(text(&log.attributes, "event.name"));
                if let AttrValue::Text(body) = &log.body
                    && body.len() <= 128
                {
                    event_names.push(body.as_str());
                }
            }
            event_names.extend(scope.spans.iter().map(|s| s.name.as_str()));
        }
        event_names.sort_unstable();
        event_names.dedup();
        Signature {
            service_name: text(&batch.resource_attributes, "service.name"),
            scope_names: batch.scopes.iter().map(|s| s.scope.name.as_str()).collect(),
            event_names,
        }
    }

    /// How strongly `claims` match: 3 scope, 2 event or span name, 1 service.name, 0 none.
    pub fn score(&self, claims: &Claims) -> u8 {
        if self.scope_names.iter().any(|s| matches(&claims.scope_names, s)) {
            3
        } else if self.event_names.iter().any(|e| matches(&claims.event_names, e)) {
            2
        } else if self.service_name.is_some_and(|s| matches(&claims.service_names, s)) {
            1
        } else {
            0
        }
    }
}

/// A claim pattern: exact, or a prefix when it ends in `*`.
fn matches(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => p == value,
    })
}

/// The plugin for one resource, among `plugins` in precedence order.
pub fn detect(plugins: &[Arc<Loaded>], signature: &Signature<'_>) -> Option<Arc<Loaded>> {
    let mut best: Option<(u8, &Arc<Loaded>)> = None;
    for plugin in plugins {
        let s = signature.score(&plugin.plugin.info.claims);
        if s > 0 && best.is_none_or(|(b, _)| s > b) {
            best = Some((s, plugin));
        }
    }
    best.map(|(_, p)| p.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::wit::{LogRecord, Scope, ScopeRecords, Signal};

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue { key: key.into(), value: AttrValue::Text(value.into()) }
    }

    fn batch(service: &str, scope: &str, event: &str) -> ResourceBatch {
        ResourceBatch {
            signal: Signal::Logs,
            resource_attributes: vec![kv("service.name", service)],
            scopes: vec![ScopeRecords {
                scope: Scope { name: scope.into(), version: String::new(), attributes: Vec::new() },
                spans: Vec::new(),
                logs: vec![LogRecord {
                    time_unix_nano: 0,
                    observed_time_unix_nano: 0,
                    severity_number: 0,
                    severity_text: String::new(),
                    event_name: String::new(),
                    body: AttrValue::Text(event.into()),
                    attributes: vec![kv("event.name", event)],
                    trace_id: String::new(),
                    span_id: String::new(),
                }],
                metrics: Vec::new(),
            }],
        }
    }

    fn claims(scopes: &[&str], events: &[&str], services: &[&str]) -> Claims {
        let own = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Claims { scope_names: own(scopes), event_names: own(events), service_names: own(services) }
    }

    #[test]
    fn scope_beats_event_name_beats_service_name() {
        let b = batch("claude-code", "codex_otel", "codex.sse_event");
        let s = Signature::of(&b);
        assert_eq!(s.score(&claims(&["codex_*"], &[], &[])), 3);
        assert_eq!(s.score(&claims(&[], &["codex.*"], &[])), 2);
        assert_eq!(s.score(&claims(&[], &[], &["claude-code"])), 1);
        assert_eq!(s.score(&claims(&["other"], &["other.*"], &["other"])), 0);
    }

    #[test]
    fn signature_collects_names_once() {
        let b = batch("svc", "scope", "user_prompt");
        let s = Signature::of(&b);
        assert_eq!(s.service_name, Some("svc"));
        assert_eq!(s.scope_names, vec!["scope"]);
        // Body and event.name attribute name the same event: listed once.
        assert_eq!(s.event_names, vec!["user_prompt"]);
    }

    #[test]
    fn patterns_are_exact_or_prefix() {
        assert!(matches(&["a.*".into()], "a.b"));
        assert!(!matches(&["a.*".into()], "b.a"));
        assert!(matches(&["exact".into()], "exact"));
        assert!(!matches(&["exact".into()], "exactly"));
    }
}
