//! GitHub Copilot CLI's telemetry as per-prompt traces.
//!
//! Copilot sends GenAI-convention spans (scope `github.copilot`, renameable with
//! `COPILOT_OTEL_SOURCE_NAME`) with span events, and metrics; no log records. One user message
//! is one `invoke_agent` span, and every `chat <model>` (one per model call) and
//! `execute_tool <tool>` span of that message shares its OTel trace id: a trace is keyed
//! `otel-<trace id>`.
//!
//! Tokens come from the `chat` spans only; `invoke_agent` repeats their sum and is never added
//! on top. Each call is reported once (spans only), so there is nothing to pair.
//! `github.copilot.cost` is a billing multiplier, not money: it is kept as an event on the
//! timeline and never becomes `cost_usd`.

mod json;

use antenna_sdk::{
    Attribution, Attrs, Channel, Claims, Event, Fragment, FragmentBody, Fragments, MetricPoint, ModelCall, Parser,
    PluginInfo, Prompt, ResourceBatch, Span, SpanEvent, StatusCode, ToolCall, Usage, UsageMetric, attribution,
    not_captured,
};

use json::Value;

/// The Copilot parser.
pub struct Copilot;

/// What turns message content capture on; without it the content attributes are left out.
const CONTENT_FLAG: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// Content attributes: large (system prompt, tool schemas) and already used where they
/// matter, so not copied into event attributes.
const CONTENT_KEYS: [&str; 6] = [
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
];

/// The money-like attributes of a `chat` span, shown as an event with some context.
const BILLING_KEYS: [&str; 3] = ["github.copilot.cost", "github.copilot.aiu", "github.copilot.nano_aiu"];
const BILLING_CONTEXT: [&str; 4] =
    ["gen_ai.response.model", "gen_ai.request.model", "github.copilot.initiator", "github.copilot.turn_id"];

impl Parser for Copilot {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "copilot".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            agent: "copilot".into(),
            claims: Claims {
                scope_names: vec!["github.copilot*".into()],
                event_names: vec![
                    "invoke_agent".into(),
                    "invoke_agent *".into(),
                    "chat *".into(),
                    "execute_tool *".into(),
                    "github.copilot.*".into(),
                ],
                service_names: vec!["github-copilot".into(), "copilot-chat".into()],
            },
        }
    }

    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        let resource = Attrs::new(&batch.resource_attributes);
        // Only `invoke_agent` carries the pseudonymous user id; it names the user of every
        // span of the batch.
        let pseudo = batch
            .scopes
            .iter()
            .flat_map(|s| &s.spans)
            .find_map(|s| Attrs::new(&s.attributes).str("enduser.pseudo.id"))
            .or_else(|| resource.str("enduser.pseudo.id"));
        let mut out = Fragments::default();
        for scope in &batch.scopes {
            for span in &scope.spans {
                normalize_span(&resource, pseudo, span, &mut out);
            }
            for point in &scope.metrics {
                normalize_metric(&resource, pseudo, point, &mut out);
            }
        }
        Ok(out.into_vec())
    }
}

/// The SDK's rules, plus Copilot's own pseudonymous id: it stands in for a login, so it beats
/// only the resource `user.email` last resort, never a resource `user.id`.
fn who(resource: &Attrs<'_>, record: &Attrs<'_>, pseudo: Option<&str>) -> Attribution {
    let mut who = attribution(resource, record);
    let named = resource
        .first_str(&["user.id", "enduser.id", "user.account_id"])
        .or_else(|| record.first_str(&["user.email", "user.account_id"]));
    if named.is_none()
        && let Some(hash) = record.str("enduser.pseudo.id").or(pseudo)
    {
        who.user_id = Some(hash.to_owned());
    }
    who
}

/// The operation: `gen_ai.operation.name`, else the span name's first word.
fn operation<'a>(span: &'a Span, attrs: &Attrs<'a>) -> &'a str {
    attrs.str("gen_ai.operation.name").unwrap_or_else(|| span.name.split(' ').next().unwrap_or_default())
}

fn end_time(span: &Span) -> Option<u64> {
    Some(span.end_time_unix_nano).filter(|t| *t > 0)
}

fn duration_ms(span: &Span) -> Option<u64> {
    end_time(span).map(|end| end.saturating_sub(span.start_time_unix_nano) / 1_000_000)
}

/// The span's error, when it failed: status message, else `error.type`.
fn span_error(span: &Span, attrs: &Attrs<'_>) -> Option<String> {
    let error_type = attrs.string("error.type");
    if span.status != StatusCode::Error && error_type.is_none() {
        return None;
    }
    Some(
        Some(span.status_message.clone())
            .filter(|m| !m.is_empty())
            .or(error_type)
            .unwrap_or_else(|| format!("{} failed", span.name)),
    )
}

/// GenAI conventions: `input_tokens` includes cache reads and writes, and (OpenAI-style)
/// `output_tokens` includes reasoning. The blueprint counts every token once.
fn usage(attrs: &Attrs<'_>) -> Option<Usage> {
    let first = |keys: &[&str]| keys.iter().find_map(|k| attrs.uint(k));
    let input = first(&["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"]);
    let output = first(&["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"]);
    if input.is_none() && output.is_none() {
        return None;
    }
    let cache_read = first(&["gen_ai.usage.cache_read.input_tokens"]).unwrap_or(0);
    let cache_creation =
        first(&["gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens"]).unwrap_or(0);
    let reasoning = first(&["gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens"]).unwrap_or(0);
    let mut usage = Usage::openai(input.unwrap_or(0), cache_read, output.unwrap_or(0), reasoning);
    usage.input = usage.input.saturating_sub(cache_creation);
    usage.cache_creation = cache_creation;
    Some(usage)
}

/// The text parts of one GenAI-convention message, joined.
fn message_text(message: &Value) -> Option<String> {
    let parts = message.get("parts")?.as_array()?;
    let texts: Vec<&str> = parts
        .iter()
        .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|p| p.get("content").and_then(Value::as_str))
        .collect();
    (!texts.is_empty()).then(|| texts.join("\n"))
}

/// The text of the last message with `role` that has any text, from a messages attribute.
fn last_text(messages: &str, role: &str) -> Option<String> {
    let value = json::parse(messages)?;
    let list = match &value {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    list.iter().rev().filter(|m| m.get("role").and_then(Value::as_str) == Some(role)).find_map(message_text)
}

/// Copilot prefixes the user's words with context blocks it adds itself
/// (`<current_datetime>…</current_datetime>`): the prompt is what the user typed.
fn strip_injected_context(text: &str) -> String {
    let mut rest = text.trim_start();
    while let Some(inner) = rest.strip_prefix('<') {
        let Some(close) = inner.find('>') else { break };
        let tag = &inner[..close];
        if tag.is_empty() || !tag.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            break;
        }
        let end_tag = format!("</{tag}>");
        let Some(end) = inner.find(&end_tag) else {
            break;
        };
        rest = inner[end + end_tag.len()..].trim_start();
    }
    if rest.is_empty() { text.trim().to_owned() } else { rest.trim_end().to_owned() }
}

fn normalize_span(resource: &Attrs<'_>, pseudo: Option<&str>, span: &Span, out: &mut Fragments) {
    if span.trace_id.is_empty() {
        return;
    }
    let attrs = Attrs::new(&span.attributes);
    let who = who(resource, &attrs, pseudo);
    let trace_key = format!("otel-{}", span.trace_id);
    let span_key = format!("span-{}", span.span_id);
    let report = format!("1-{span_key}");
    let error = span_error(span, &attrs);

    for (index, event) in span.events.iter().enumerate() {
        normalize_span_event(&trace_key, &span_key, index, event, &who, out);
    }

    match operation(span, &attrs) {
        "invoke_agent" => {
            // Subagents are `invoke_agent` spans too; report ids order by start time, so the
            // first (the user's own turn) gives the prompt text, and the last to end (the
            // same turn) gives the response.
            let prompt = Prompt {
                text: match attrs.str("gen_ai.input.messages") {
                    Some(messages) => last_text(messages, "user").map(|t| strip_injected_context(&t)),
                    None => Some(not_captured("prompt", CONTENT_FLAG)),
                },
                response: match attrs.str("gen_ai.output.messages") {
                    Some(messages) => last_text(messages, "assistant"),
                    None => Some(not_captured("response", CONTENT_FLAG)),
                },
                start_unix_nano: Some(span.start_time_unix_nano),
                end_unix_nano: end_time(span),
            };
            out.push(
                trace_key.clone(),
                "prompt",
                format!("0-{:020}-{}", span.start_time_unix_nano, span.span_id),
                who.clone(),
                FragmentBody::Prompt(prompt),
            );
            // The agent's own summary (turn count, summed tokens, cost multiplier, skills):
            // kept on the timeline, never added into the totals.
            let event = Event {
                name: span.name.clone(),
                time_unix_nano: span.start_time_unix_nano,
                attributes_json: attrs.to_json(&CONTENT_KEYS),
                error,
            };
            out.push(trace_key, span_key, report, who, FragmentBody::Event(event));
        }
        "chat" => {
            let call = ModelCall {
                channel: Channel::Span,
                model: attrs
                    .first_str(&["gen_ai.response.model", "gen_ai.request.model"])
                    .or_else(|| span.name.strip_prefix("chat "))
                    .map(str::to_owned),
                usage: usage(&attrs),
                // `github.copilot.cost` is a multiplier of premium requests, not dollars.
                cost_usd: None,
                start_unix_nano: Some(span.start_time_unix_nano),
                end_unix_nano: end_time(span),
                duration_ms: duration_ms(span),
                error,
            };
            out.push(trace_key.clone(), span_key.clone(), report.clone(), who.clone(), FragmentBody::ModelCall(call));
            if BILLING_KEYS.iter().any(|k| attrs.get(k).is_some()) {
                let billing: Vec<_> = span
                    .attributes
                    .iter()
                    .filter(|kv| BILLING_KEYS.contains(&kv.key.as_str()) || BILLING_CONTEXT.contains(&kv.key.as_str()))
                    .cloned()
                    .collect();
                let event = Event {
                    name: "github.copilot.cost".into(),
                    time_unix_nano: end_time(span).unwrap_or(span.start_time_unix_nano),
                    attributes_json: Attrs::new(&billing).to_json(&[]),
                    error: None,
                };
                out.push(trace_key, format!("{span_key}-cost"), report, who, FragmentBody::Event(event));
            }
        }
        "execute_tool" => {
            // A shell command's exit code: Copilot marks the span OK even when it failed.
            let exit_code = attrs.int("process.exit.code");
            let call = ToolCall {
                name: attrs.string("gen_ai.tool.name").or_else(|| tool_name_from_span(&span.name)),
                args: attrs.string("gen_ai.tool.call.arguments").or_else(|| Some(not_captured("args", CONTENT_FLAG))),
                result: attrs
                    .string("gen_ai.tool.call.result")
                    .or_else(|| error.clone())
                    .or_else(|| Some(not_captured("result", CONTENT_FLAG))),
                duration_ms: duration_ms(span),
                success: Some(error.is_none() && exit_code.is_none_or(|c| c == 0)),
                decision: None,
                start_unix_nano: Some(span.start_time_unix_nano),
            };
            let id = attrs.str("gen_ai.tool.call.id").map_or_else(|| span_key.clone(), |id| json::bounded("", id));
            out.push(trace_key, id, report, who, FragmentBody::ToolCall(call));
        }
        _ => {
            let event = Event {
                name: span.name.clone(),
                time_unix_nano: span.start_time_unix_nano,
                attributes_json: attrs.to_json(&CONTENT_KEYS),
                error,
            };
            out.push(trace_key, span_key, report, who, FragmentBody::Event(event));
        }
    }
}

/// `execute_tool bash` -> `bash`.
fn tool_name_from_span(name: &str) -> Option<String> {
    name.strip_prefix("execute_tool ")
        .and_then(|rest| rest.split(' ').next())
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// Span events (`github.copilot.user.message`, `...session.usage_info`, `...sandbox.*`,
/// `exception`, ...) go on the timeline as they are. None is listed as an error: an
/// `exception`'s span status already says so.
fn normalize_span_event(
    trace_key: &str,
    span_key: &str,
    index: usize,
    event: &SpanEvent,
    who: &Attribution,
    out: &mut Fragments,
) {
    let attrs = Attrs::new(&event.attributes);
    let body = FragmentBody::Event(Event {
        name: event.name.clone(),
        time_unix_nano: event.time_unix_nano,
        attributes_json: attrs.to_json(&CONTENT_KEYS),
        error: None,
    });
    out.push(trace_key, format!("{span_key}-event-{index}"), format!("1-{span_key}"), who.clone(), body);
}

fn normalize_metric(resource: &Attrs<'_>, pseudo: Option<&str>, point: &MetricPoint, out: &mut Fragments) {
    let attrs = Attrs::new(&point.attributes);
    let who = who(resource, &attrs, pseudo);
    let metric = UsageMetric {
        name: point.name.clone(),
        unit: point.unit.clone(),
        value: point.value,
        time_unix_nano: point.time_unix_nano,
        attributes_json: attrs.to_json(&[]),
    };
    // Attributes can be long: a hash keeps the report id within the host's id limit.
    let report = format!("{}-{:016x}", point.time_unix_nano, json::hash(&metric.attributes_json));
    let session = who.session_id.as_deref().unwrap_or("unknown");
    out.push(
        json::bounded("session-", session),
        json::bounded("", &point.name),
        report,
        who,
        FragmentBody::UsageMetric(metric),
    );
}

antenna_sdk::export_parser!(Copilot);

#[cfg(test)]
mod tests;
