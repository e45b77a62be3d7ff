//! What every parser asks of a span or a log record: when, how long, and whether it failed.

use crate::{AttrValue, Attrs, LogRecord, Span, StatusCode};

impl Span {
    /// The end time, or `None` for a span that reports none (0).
    pub fn end_time(&self) -> Option<u64> {
        Some(self.end_time_unix_nano).filter(|t| *t > 0)
    }

    /// How long the span took, in whole milliseconds (`None` without an end time).
    pub fn duration_ms(&self) -> Option<u64> {
        self.end_time().map(|end| end.saturating_sub(self.start_time_unix_nano) / 1_000_000)
    }

    /// Why the span failed, when it did: its status is `Error` or it carries `error.type` (the
    /// OpenTelemetry convention). The reason is the status message, else `error.type`, else
    /// `<span name> failed`.
    pub fn failure(&self) -> Option<String> {
        let error_type = Attrs::new(&self.attributes).string("error.type");
        if self.status != StatusCode::Error && error_type.is_none() {
            return None;
        }
        Some(
            Some(self.status_message.clone())
                .filter(|m| !m.is_empty())
                .or(error_type)
                .unwrap_or_else(|| format!("{} failed", self.name)),
        )
    }
}

impl LogRecord {
    /// When the event happened: `time_unix_nano`, else (0, unset) when it was observed.
    pub fn time(&self) -> u64 {
        if self.time_unix_nano > 0 { self.time_unix_nano } else { self.observed_time_unix_nano }
    }

    /// The event's name: the `event.name` attribute (where most agents put it, and the one to
    /// trust: Codex fills the `event_name` field with a source location), else the `event_name`
    /// field. Some agents also repeat the name in `body`; that is left to the parser.
    ///
    /// Agents disagree on where the name goes, so the three places are also available one by
    /// one ([`name_attribute`](Self::name_attribute), [`name_field`](Self::name_field),
    /// [`body_name`](Self::body_name)) for a parser that must look in another order.
    ///
    /// ```
    /// # use antenna_sdk::*;
    /// let log = LogRecord {
    ///     time_unix_nano: 0, observed_time_unix_nano: 0, severity_number: 9, severity_text: String::new(),
    ///     event_name: "src/codex.rs:12".into(), body: AttrValue::Text("codex.user_prompt".into()),
    ///     attributes: vec![KeyValue { key: "event.name".into(), value: AttrValue::Text("codex.user_prompt".into()) }],
    ///     trace_id: String::new(), span_id: String::new(),
    /// };
    /// assert_eq!(log.name(), Some("codex.user_prompt"));
    /// assert_eq!(log.name_field(), Some("src/codex.rs:12"));
    /// assert_eq!(log.body_name("codex."), Some("codex.user_prompt"));
    /// assert_eq!(log.body_name("claude_code."), None);
    /// ```
    pub fn name(&self) -> Option<&str> {
        self.name_attribute().or_else(|| self.name_field())
    }

    /// The `event.name` attribute, when it is a non-empty string.
    pub fn name_attribute(&self) -> Option<&str> {
        Attrs::new(&self.attributes).str("event.name")
    }

    /// The LogRecord `event_name` field, when it is set (not empty).
    pub fn name_field(&self) -> Option<&str> {
        Some(self.event_name.as_str()).filter(|n| !n.is_empty())
    }

    /// The body, when it is text starting with `prefix`: some agents repeat the event's name
    /// there (`claude_code.user_prompt`), others put the message itself, so only a body in the
    /// agent's own namespace counts as a name.
    pub fn body_name(&self, prefix: &str) -> Option<&str> {
        match &self.body {
            AttrValue::Text(s) if s.starts_with(prefix) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyValue;

    fn span(status: StatusCode, message: &str, attributes: Vec<KeyValue>) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: "s".into(),
            parent_span_id: String::new(),
            name: "chat gpt-4.1".into(),
            kind: 3,
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_064_900_000,
            attributes,
            events: Vec::new(),
            status,
            status_message: message.into(),
        }
    }

    #[test]
    fn times_and_failures() {
        let ok = span(StatusCode::Unset, "", Vec::new());
        assert_eq!(ok.duration_ms(), Some(64));
        assert_eq!(ok.failure(), None);
        assert_eq!(span(StatusCode::Error, "", Vec::new()).failure().as_deref(), Some("chat gpt-4.1 failed"));
        assert_eq!(span(StatusCode::Error, "upstream 500", Vec::new()).failure().as_deref(), Some("upstream 500"));
        let typed = vec![KeyValue { key: "error.type".into(), value: AttrValue::Text("timeout".into()) }];
        assert_eq!(span(StatusCode::Unset, "", typed).failure().as_deref(), Some("timeout"));
        let mut open = span(StatusCode::Ok, "", Vec::new());
        open.end_time_unix_nano = 0;
        assert_eq!((open.end_time(), open.duration_ms()), (None, None));
    }
}
