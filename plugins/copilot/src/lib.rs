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

use antenna_sdk::genai::{self, CONTENT_FLAG, CONTENT_KEYS};
use antenna_sdk::{
    AttrValue, Attribution, Attrs, Claims, Event, Fragment, FragmentBody, Fragments, KeyValue, MetricPoint, Parser,
    PluginInfo, Prompt, ResourceBatch, ScopeRecords, Span, SpanEvent, ToolCall, Visitor, attribution, bounded_id,
    not_captured, otel_key, visit_with_resource,
};

/// The Copilot parser.
pub struct Copilot;

/// The money-like attributes of a `chat` span, shown as an event with some context.
const BILLING_KEYS: [&str; 3] = ["github.copilot.cost", "github.copilot.aiu", "github.copilot.nano_aiu"];
const BILLING_CONTEXT: [&str; 4] =
    ["gen_ai.response.model", "gen_ai.request.model", "github.copilot.initiator", "github.copilot.turn_id"];

impl Parser for Copilot {
    fn describe() -> PluginInfo {
        let claims = Claims::new(
            &["github.copilot*"],
            &["invoke_agent", "invoke_agent *", "chat *", "execute_tool *", "github.copilot.*"],
            &["github-copilot", "copilot-chat"],
        );
        PluginInfo::new("copilot", "copilot", env!("CARGO_PKG_VERSION"), claims)
    }

    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        let resource_attributes = with_pseudonymous_user(batch);
        Ok(visit_with_resource(batch, &Attrs::new(&resource_attributes), &mut Copilot))
    }
}

impl Visitor for Copilot {
    fn span(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, span: &Span, out: &mut Fragments) {
        normalize_span(resource, span, out);
    }

    fn metric(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, point: &MetricPoint, out: &mut Fragments) {
        out.usage_metric(point, attribution(resource, &Attrs::new(&point.attributes)), &[]);
    }
}

/// The resource attributes, plus the pseudonymous user id (`enduser.pseudo.id`) that only the
/// `invoke_agent` span carries: it names the user of every span of the batch. The SDK's rules
/// then put it after a resource `user.id` and a login; a resource `user.email` is never the user.
fn with_pseudonymous_user(batch: &ResourceBatch) -> Vec<KeyValue> {
    let mut attributes = batch.resource_attributes.clone();
    let pseudo =
        batch.scopes.iter().flat_map(|s| &s.spans).find_map(|s| Attrs::new(&s.attributes).str("enduser.pseudo.id"));
    if let Some(pseudo) = pseudo {
        attributes.push(KeyValue { key: "enduser.pseudo.id".into(), value: AttrValue::Text(pseudo.to_owned()) });
    }
    attributes
}

/// The agent's own view of a span (the `invoke_agent` summary, a subagent, ...) on the
/// timeline, without the bulky content attributes.
fn timeline_event(span: &Span, attrs: &Attrs<'_>, error: Option<String>) -> FragmentBody {
    FragmentBody::Event(Event {
        name: span.name.clone(),
        time_unix_nano: span.start_time_unix_nano,
        attributes_json: attrs.to_json(&CONTENT_KEYS),
        error,
    })
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

fn normalize_span(resource: &Attrs<'_>, span: &Span, out: &mut Fragments) {
    let Some(trace_key) = otel_key(&span.trace_id) else {
        return;
    };
    let attrs = Attrs::new(&span.attributes);
    let who = attribution(resource, &attrs);
    let span_key = format!("span-{}", span.span_id);
    let report = format!("1-{span_key}");
    let error = span.failure();

    for (index, event) in span.events.iter().enumerate() {
        normalize_span_event(&trace_key, &span_key, index, event, &who, out);
    }

    match genai::operation(span) {
        "invoke_agent" => {
            // Subagents are `invoke_agent` spans too; report ids order by start time, so the
            // first (the user's own turn) gives the prompt text, and the last to end (the
            // same turn) gives the response.
            let prompt = Prompt {
                text: match attrs.str("gen_ai.input.messages") {
                    Some(messages) => genai::last_text(messages, "user").map(|t| strip_injected_context(&t)),
                    None => Some(not_captured("prompt", CONTENT_FLAG)),
                },
                response: match attrs.str("gen_ai.output.messages") {
                    Some(messages) => genai::last_text(messages, "assistant"),
                    None => Some(not_captured("response", CONTENT_FLAG)),
                },
                start_unix_nano: Some(span.start_time_unix_nano),
                end_unix_nano: span.end_time(),
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
            out.push(trace_key, span_key, report, who, timeline_event(span, &attrs, error));
        }
        "chat" => {
            // No `cost_usd`: `github.copilot.cost` is a multiplier of premium requests, not dollars.
            let call = genai::model_call(span);
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
                    time_unix_nano: span.end_time().unwrap_or(span.start_time_unix_nano),
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
                name: attrs.string("gen_ai.tool.name").or_else(|| genai::subject(span).map(str::to_owned)),
                args: attrs.string("gen_ai.tool.call.arguments").or_else(|| Some(not_captured("args", CONTENT_FLAG))),
                result: attrs
                    .string("gen_ai.tool.call.result")
                    .or_else(|| error.clone())
                    .or_else(|| Some(not_captured("result", CONTENT_FLAG))),
                duration_ms: span.duration_ms(),
                success: Some(error.is_none() && exit_code.is_none_or(|c| c == 0)),
                decision: None,
                start_unix_nano: Some(span.start_time_unix_nano),
            };
            let id =
                attrs.str("gen_ai.tool.call.id").map_or_else(|| span_key.clone(), |id| bounded_id(id).into_owned());
            out.push(trace_key, id, report, who, FragmentBody::ToolCall(call));
        }
        _ => {
            out.push(trace_key, span_key, report, who, timeline_event(span, &attrs, error));
        }
    }
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

antenna_sdk::export_parser!(Copilot);

#[cfg(test)]
mod tests;
