//! The OpenTelemetry GenAI semantic conventions (`gen_ai.*`), which several agents follow in
//! part: the operation of a span, its token usage, and the text of its messages.
//!
//! Span names follow `{operation} {subject}`: `invoke_agent Copilot`, `chat gpt-4.1`,
//! `execute_tool bash`; `gen_ai.operation.name` says the operation explicitly.

use serde_json::Value;

use crate::{Attrs, Channel, ModelCall, Span, Usage};

/// The switch that turns message content capture on in the GenAI instrumentations; without it
/// the [`CONTENT_KEYS`] are left out.
pub const CONTENT_FLAG: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// The content attributes: opt-in, often large (system prompt, tool schemas).
pub const CONTENT_KEYS: [&str; 6] = [
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
];

/// The span's operation: `gen_ai.operation.name`, else the span name's first word.
pub fn operation(span: &Span) -> &str {
    Attrs::new(&span.attributes)
        .str("gen_ai.operation.name")
        .unwrap_or_else(|| span.name.split(' ').next().unwrap_or_default())
}

/// What the span name says after the operation: the model of `chat gpt-4.1`, the tool of
/// `execute_tool bash`, the agent of `invoke_agent Copilot`.
pub fn subject(span: &Span) -> Option<&str> {
    span.name.split_once(' ').map(|(_, rest)| rest.trim()).filter(|s| !s.is_empty())
}

/// The model call an inference span (`chat gpt-4.1`) reports, on the `Span` channel: the
/// response's model, else the request's, else the span name's; its [`usage`]; its timing; its
/// failure ([`Span::failure`]). No cost: the conventions define none.
pub fn model_call(span: &Span) -> ModelCall {
    let attrs = Attrs::new(&span.attributes);
    ModelCall {
        channel: Channel::Span,
        model: attrs
            .first_str(&["gen_ai.response.model", "gen_ai.request.model"])
            .or_else(|| subject(span))
            .map(str::to_owned),
        usage: usage(&attrs),
        cost_usd: None,
        start_unix_nano: Some(span.start_time_unix_nano),
        end_unix_nano: span.end_time(),
        duration_ms: span.duration_ms(),
        error: span.failure(),
    }
}

/// The token usage of a record (`gen_ai.usage.*`), each token counted once: in the
/// conventions `input_tokens` includes the cache reads and writes, and `output_tokens` the
/// reasoning (see [`Usage::inclusive`]). The deprecated `prompt_tokens` / `completion_tokens`
/// are read too. `None` when the record reports neither input nor output.
///
/// ```
/// use antenna_sdk::{AttrValue, Attrs, KeyValue, genai};
/// let attrs = vec![
///     KeyValue { key: "gen_ai.usage.input_tokens".into(), value: AttrValue::Integer(1234) },
///     KeyValue { key: "gen_ai.usage.cache_read.input_tokens".into(), value: AttrValue::Integer(200) },
///     KeyValue { key: "gen_ai.usage.output_tokens".into(), value: AttrValue::Text("56".into()) },
/// ];
/// let u = genai::usage(&Attrs::new(&attrs)).expect("usage");
/// assert_eq!((u.input, u.cache_read, u.output), (1034, 200, 56));
/// ```
pub fn usage(attrs: &Attrs<'_>) -> Option<Usage> {
    let first = |keys: &[&str]| keys.iter().find_map(|k| attrs.uint(k));
    let input = first(&["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"]);
    let output = first(&["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"]);
    if input.is_none() && output.is_none() {
        return None;
    }
    Some(Usage::inclusive(
        input.unwrap_or(0),
        first(&["gen_ai.usage.cache_read.input_tokens"]).unwrap_or(0),
        first(&["gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens"]).unwrap_or(0),
        output.unwrap_or(0),
        first(&["gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"]).unwrap_or(0),
    ))
}

/// The text of the last message with `role` that has any text, from a messages attribute
/// (`gen_ai.input.messages` / `gen_ai.output.messages`: one message or a list, each with `role`
/// and `parts`; the `text` parts' `content` is joined with newlines). `None` for text that is
/// not JSON of that shape.
///
/// ```
/// let messages = r#"[{"role":"user","parts":[{"type":"text","content":"List the files."}]},
///                    {"role":"assistant","parts":[{"type":"tool_call","name":"bash"}]}]"#;
/// assert_eq!(antenna_sdk::genai::last_text(messages, "user").as_deref(), Some("List the files."));
/// assert_eq!(antenna_sdk::genai::last_text(messages, "assistant"), None);
/// ```
pub fn last_text(messages: &str, role: &str) -> Option<String> {
    let value: Value = serde_json::from_str(messages).ok()?;
    let list = match &value {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    list.iter().rev().filter(|m| m.get("role").and_then(Value::as_str) == Some(role)).find_map(message_text)
}

/// The text parts of one message, joined.
fn message_text(message: &Value) -> Option<String> {
    let parts = message.get("parts")?.as_array()?;
    let texts: Vec<&str> = parts
        .iter()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|p| p.get("content").and_then(Value::as_str))
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_in_every_shape() {
        let two_parts = r#"[{"role":"user","parts":[{"type":"text","content":"a"},{"type":"text","content":"b"}]}]"#;
        assert_eq!(last_text(two_parts, "user").as_deref(), Some("a\nb"));
        assert_eq!(
            last_text(r#"{"role":"user","parts":[{"type":"text","content":"one"}]}"#, "user").as_deref(),
            Some("one")
        );
        assert_eq!(last_text("not json", "user"), None);
        assert_eq!(last_text("[{\"role\":\"user\",\"parts\":", "user"), None);
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        assert_eq!(last_text(&deep, "user"), None, "deep nesting is refused, not recursed into");
    }
}
