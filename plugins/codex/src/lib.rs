//! OpenAI Codex CLI's telemetry as per-prompt traces.
//!
//! Codex (`service.name` = its originator: `codex_exec`, `codex_cli_rs`, `codex_tui`, ...) sends
//! log events (scope `codex_otel.log_only`; the name is the `event.name` attribute, the LogRecord
//! `event_name` field holds a source location), its internal tracing spans (scope = the
//! originator, e.g. `codex_exec`) and metrics (scope `codex`). A prompt is a Codex *turn*.
//!
//! # What ties the records of one prompt together
//!
//! - Spans: the turn's spans carry `turn.id` (or `turn_id`) and share one OTel trace (rooted
//!   at the `turn/start` request). A span is keyed `prompt-<turn id>`, also known as
//!   `otel-<trace id>`; spans without a turn id are keyed `otel-<trace id>`.
//! - Logs carry no turn id, but the events emitted inside the turn's span (`codex.user_prompt`,
//!   `codex.api_request`, `codex.tool_decision`, `codex.tool_result`, ...) carry its OTel trace
//!   id, so they are keyed `otel-<trace id>` and meet the spans in one trace.
//! - `codex.sse_event` records (the ones with the token counts) are emitted from the stream
//!   task, outside any span: no trace id. They belong to the latest turn-scoped event of the
//!   same `conversation.id` before them in the batch (the `codex.api_request` whose response
//!   they stream; a conversation's turns run one at a time, and the batch keeps emission order).
//! - Without a trace exporter the log events may carry no trace id at all: then a
//!   `codex.user_prompt` opens the key `codex-<conversation.id>-<time>` and the records of that
//!   conversation after it in the batch follow it.
//! - A record with nothing before it in its own batch (the exporter flushed between a request
//!   and its response) cannot be placed by a pure per-batch parser. Its token counts are kept
//!   as the session usage metric `codex.response.usage` (never added into a prompt's totals, so
//!   never counted twice with the span that reports the same call); other such records are
//!   skipped (their raw batch stays stored).
//!
//! `conversation.id` is the session. The user comes from the SDK's attribution rules
//! (`user.email` / `user.account_id` on events when logged in to ChatGPT; a resource `user.id`
//! overrides). Codex never exports the assistant's text (except the newest `codex.agent_response`
//! event), so `response` is the "not exported" placeholder unless that event says otherwise.
//!
//! # Model calls, counted once
//!
//! Each model call is reported on logs by a `codex.sse_event` with `event.kind` =
//! `response.completed` and token counts (channel `Log`), and on spans by the one
//! `handle_responses` span that carries `gen_ai.usage.*` (channel `Span`). Neither carries a
//! shared request id, so the host pairs them per channel in time order and counts each once.
//!
//! # Spans kept
//!
//! Of the hundreds of runtime spans per prompt, only these become fragments: `session_task.turn`
//! (the prompt's start and end), `handle_responses` with token usage (a model call; its model
//! and start come from the enclosing sampling-request span), the tool dispatch span
//! (`call_id` + `codex.tool.phase`, e.g. `exec_command`: a tool call), the `codex.tool_result` /
//! `codex.tool_decision` span events (success, duration, decision of that tool call), and any
//! failed span of a turn (an error event). Everything else is dropped; no span becomes a
//! timeline event just for existing.

use std::collections::HashMap;

use antenna_sdk::{
    AttrValue, Attribution, AttributionOverrides, Attrs, Channel, Claims, Event, Fragment, FragmentBody, Fragments,
    KeyValue, LogRecord, MetricPoint, ModelCall, Parser, PluginInfo, Prompt, ResourceBatch, Span, SpanEvent, ToolCall,
    Usage, UsageMetric, attribution_with, not_captured, not_exported, otel_key, session_key,
};

/// The Codex parser.
pub struct Codex;

/// The agent's name in placeholders.
const AGENT: &str = "Codex";
/// What Codex logs instead of the prompt when `[otel] log_user_prompt` is false.
const REDACTED: &str = "[REDACTED]";
/// The config flag that turns prompt logging on (`[otel] log_user_prompt = true`).
const PROMPT_FLAG: &str = "log_user_prompt";

impl Parser for Codex {
    fn describe() -> PluginInfo {
        // `codex` (metrics), `codex_otel.log_only` and `codex_otel::metrics::client`
        // (logs), and the originator as the tracer's scope (`codex_exec`, `codex_tui`).
        let claims = Claims::new(&["codex", "codex_*"], &["codex.*"], &["codex*"]);
        PluginInfo::new("codex", "codex", env!("CARGO_PKG_VERSION"), claims)
    }

    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        let resource = Attrs::new(&batch.resource_attributes);
        let mut out = Fragments::default();
        normalize_logs(&resource, batch, &mut out);
        normalize_spans(&resource, batch, &mut out);
        for point in batch.scopes.iter().flat_map(|s| &s.metrics) {
            normalize_metric(&resource, point, &mut out);
        }
        Ok(out.into_vec())
    }
}

// ---- shared helpers ------------------------------------------------------------------------

/// The SDK's attribution, with Codex's session: `conversation.id` (`thread_id` on some spans).
const WHO: AttributionOverrides =
    AttributionOverrides { fallback_session: &["conversation.id", "thread_id"], ..AttributionOverrides::NONE };

fn push(
    out: &mut Fragments,
    key: &str,
    aka: &[String],
    id: impl Into<String>,
    report: impl Into<String>,
    who: Attribution,
    body: FragmentBody,
) {
    out.push(key, id, report, who, body).also_known_as.extend(aka.iter().cloned());
}

/// Attributes every Codex event repeats; not worth storing per event.
const EXCLUDED_KEYS: [&str; 12] = [
    "event.name",
    "event.timestamp",
    "conversation.id",
    "app.version",
    "originator",
    "terminal.type",
    "model",
    "slug",
    "auth_mode",
    "user.email",
    "user.account_id",
    "level",
];

fn tool_id(attrs: &Attrs<'_>, fallback: impl FnOnce() -> String) -> String {
    attrs.str("call_id").map_or_else(fallback, str::to_owned)
}

/// `approved (config)`: the decision with its source, as Claude Code's read.
fn decision(attrs: &Attrs<'_>) -> Option<String> {
    let decision = attrs.str("decision")?;
    Some(match attrs.str("source") {
        Some(source) => format!("{decision} ({})", source.to_lowercase()),
        None => decision.to_owned(),
    })
}

/// The exit status Codex writes into a shell call's output (`Process exited with code 1`).
/// Codex reports such a call with `success=true`: the call ran, the command failed.
fn exit_code(output: &str) -> Option<i64> {
    output.lines().find_map(|line| line.trim().strip_prefix("Process exited with code ")?.trim().parse().ok())
}

fn tool_result_call(attrs: &Attrs<'_>, time: u64, with_content: bool) -> ToolCall {
    let duration = attrs.uint("duration_ms");
    let failed_command = attrs.str("output").and_then(exit_code).is_some_and(|code| code != 0);
    ToolCall {
        name: attrs.string("tool_name"),
        // The trace-safe copy on spans carries only lengths.
        args: attrs.string("arguments").filter(|_| with_content),
        result: attrs.string("output").filter(|_| with_content),
        duration_ms: duration,
        success: if failed_command { Some(false) } else { attrs.bool("success") },
        decision: None,
        start_unix_nano: Some(duration.map_or(time, |d| time.saturating_sub(d.saturating_mul(1_000_000)))),
    }
}

fn decision_call(attrs: &Attrs<'_>) -> ToolCall {
    ToolCall {
        name: attrs.string("tool_name"),
        args: None,
        result: None,
        duration_ms: None,
        success: None,
        decision: decision(attrs),
        start_unix_nano: None,
    }
}

// ---- logs ----------------------------------------------------------------------------------

/// Log events that happen inside a turn. Session-level events (`codex.conversation_starts`,
/// `codex.startup_phase`, ...) belong to no prompt and carry another trace id: skipped.
const TURN_EVENTS: [&str; 10] = [
    "codex.user_prompt",
    "codex.api_request",
    "codex.websocket_request",
    "codex.websocket_event",
    "codex.sse_event",
    "codex.tool_decision",
    "codex.tool_result",
    "codex.sandbox_outcome",
    "codex.turn_ttft",
    "codex.agent_response",
];

/// Where one conversation's records go while walking a batch in emission order.
#[derive(Default)]
struct Cursor {
    key: Option<String>,
    /// The start of the latest API request, for the response streamed after it.
    request_start: Option<u64>,
}

/// The event's name: the `event.name` attribute, else a `codex.` body, else a `codex.`
/// LogRecord field (Codex fills the field with a source location).
fn event_name(log: &LogRecord) -> Option<&str> {
    let field = || log.name_field().filter(|n| n.starts_with("codex."));
    log.name_attribute().or_else(|| log.body_name("codex.")).or_else(field)
}

fn prompt_text(attrs: &Attrs<'_>) -> String {
    match attrs.string("prompt") {
        Some(p) if p != REDACTED => p,
        _ => not_captured("prompt", PROMPT_FLAG),
    }
}

fn log_usage(attrs: &Attrs<'_>) -> Option<Usage> {
    let input = attrs.uint("input_token_count");
    let output = attrs.uint("output_token_count");
    if input.is_none() && output.is_none() {
        return None;
    }
    // OpenAI's convention: input includes the cache reads and writes, output the reasoning.
    Some(Usage::inclusive(
        input.unwrap_or(0),
        attrs.uint("cached_token_count").unwrap_or(0),
        attrs.uint("cache_write_token_count").unwrap_or(0),
        output.unwrap_or(0),
        attrs.uint("reasoning_token_count").unwrap_or(0),
    ))
}

fn request_error(attrs: &Attrs<'_>) -> Option<String> {
    let status = attrs.int("http.response.status_code");
    let message = attrs.str("error.message");
    let failed = message.is_some() || status.is_some_and(|s| s >= 400) || attrs.bool("success") == Some(false);
    failed.then(|| {
        let message = message.unwrap_or("API request failed");
        match status {
            Some(status) => format!("{message} (status {status})"),
            None => message.to_owned(),
        }
    })
}

fn stream_error(attrs: &Attrs<'_>) -> Option<String> {
    let kind = attrs.str("event.kind");
    attrs
        .str("error.message")
        .map(str::to_owned)
        .or_else(|| kind.filter(|k| matches!(*k, "response.failed" | "response.incomplete")).map(str::to_owned))
}

fn normalize_logs(resource: &Attrs<'_>, batch: &ResourceBatch, out: &mut Fragments) {
    let mut cursors: HashMap<&str, Cursor> = HashMap::new();
    for log in batch.scopes.iter().flat_map(|s| &s.logs) {
        let Some(name) = event_name(log).filter(|n| TURN_EVENTS.contains(n)) else {
            continue;
        };
        let attrs = Attrs::new(&log.attributes);
        let time = log.time();
        let conversation = attrs.str("conversation.id").unwrap_or_default();
        let cursor = cursors.entry(conversation).or_default();

        // The record's own key, if it has one; it then places the records that follow.
        let otel = otel_key(&log.trace_id);
        let turn = attrs.first_str(&["turn.id", "turn_id"]).map(|t| format!("prompt-{t}"));
        let own = turn
            .clone()
            .or_else(|| otel.clone())
            .or_else(|| (name == "codex.user_prompt").then(|| format!("codex-{conversation}-{time}")));
        if let Some(key) = &own
            && cursor.key.as_ref() != Some(key)
        {
            cursor.key = Some(key.clone());
            cursor.request_start = None;
        }
        let aka: Vec<String> = if turn.is_some() { otel.into_iter().collect() } else { Vec::new() };
        let who = attribution_with(resource, &attrs, &WHO);
        let report = |rank: u8| format!("{rank}-log-{time}");

        let Some(key) = own.or_else(|| cursor.key.clone()) else {
            // Not placeable in this batch: keep the tokens at the session level only.
            if let Some(usage) = log_usage(&attrs) {
                orphan_usage(&attrs, usage, time, who, out);
            }
            continue;
        };
        match name {
            "codex.user_prompt" => {
                let prompt = Prompt {
                    text: Some(prompt_text(&attrs)),
                    response: Some(not_exported("response", AGENT)),
                    start_unix_nano: Some(time),
                    end_unix_nano: None,
                };
                push(out, &key, &aka, "prompt", report(1), who, FragmentBody::Prompt(prompt));
            }
            "codex.agent_response" => {
                // The newest Codex logs the final answer (opt-in); older ones never do.
                let Some(response) = attrs.string("response").filter(|r| r != REDACTED) else {
                    continue;
                };
                let prompt =
                    Prompt { text: None, response: Some(response), start_unix_nano: None, end_unix_nano: Some(time) };
                push(out, &key, &aka, "prompt", report(1), who, FragmentBody::Prompt(prompt));
            }
            "codex.api_request" | "codex.websocket_request" => {
                let duration = attrs.uint("duration_ms").unwrap_or(0);
                cursor.request_start = Some(time.saturating_sub(duration.saturating_mul(1_000_000)));
                if let Some(error) = request_error(&attrs) {
                    log_event(out, &key, &aka, name, &attrs, time, who, Some(error));
                }
            }
            "codex.sse_event" | "codex.websocket_event" => {
                if let Some(usage) = log_usage(&attrs) {
                    let start = cursor.request_start.take();
                    let call = ModelCall {
                        channel: Channel::Log,
                        model: attrs.str("model").map(str::to_owned),
                        usage: Some(usage),
                        cost_usd: None,
                        start_unix_nano: start,
                        end_unix_nano: Some(time),
                        duration_ms: start.map(|s| time.saturating_sub(s) / 1_000_000),
                        error: None,
                    };
                    let id = format!("log-{time}");
                    push(out, &key, &aka, id, report(1), who, FragmentBody::ModelCall(call));
                } else if let Some(error) = stream_error(&attrs) {
                    log_event(out, &key, &aka, name, &attrs, time, who, Some(error));
                }
            }
            "codex.tool_result" => {
                let id = tool_id(&attrs, || format!("log-{time}"));
                let call = tool_result_call(&attrs, time, true);
                // A result outranks a decision; logs outrank spans.
                push(out, &key, &aka, id, report(0), who, FragmentBody::ToolCall(call));
            }
            "codex.tool_decision" => {
                let id = tool_id(&attrs, || format!("log-{time}"));
                let call = decision_call(&attrs);
                push(out, &key, &aka, id, report(1), who, FragmentBody::ToolCall(call));
            }
            "codex.sandbox_outcome" => log_event(out, &key, &aka, name, &attrs, time, who, None),
            _ => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn log_event(
    out: &mut Fragments,
    key: &str,
    aka: &[String],
    name: &str,
    attrs: &Attrs<'_>,
    time: u64,
    who: Attribution,
    error: Option<String>,
) {
    let event =
        Event { name: name.to_owned(), time_unix_nano: time, attributes_json: attrs.to_json(&EXCLUDED_KEYS), error };
    push(out, key, aka, format!("log-{time}"), format!("1-log-{time}"), who, FragmentBody::Event(event));
}

/// Token counts of a response that cannot be placed in a prompt: a session usage metric.
fn orphan_usage(attrs: &Attrs<'_>, usage: Usage, time: u64, who: Attribution, out: &mut Fragments) {
    let int = |key: &str, value: u64| KeyValue {
        key: key.into(),
        value: AttrValue::Integer(i64::try_from(value).unwrap_or(i64::MAX)),
    };
    let mut fields = vec![
        int("input_tokens", usage.input),
        int("output_tokens", usage.output),
        int("cache_read_tokens", usage.cache_read),
        int("cache_creation_tokens", usage.cache_creation),
        int("reasoning_tokens", usage.reasoning),
    ];
    if let Some(model) = attrs.str("model") {
        fields.push(KeyValue { key: "model".into(), value: AttrValue::Text(model.into()) });
    }
    let metric = UsageMetric {
        name: "codex.response.usage".into(),
        unit: "{token}".into(),
        value: usage.total() as f64,
        time_unix_nano: time,
        attributes_json: Attrs::new(&fields).to_json(&[]),
    };
    out.push(session_key(&who), "codex.response.usage", format!("log-{time}"), who, FragmentBody::UsageMetric(metric));
}

// ---- spans ---------------------------------------------------------------------------------

fn span_usage(attrs: &Attrs<'_>) -> Option<Usage> {
    let input = attrs.uint("gen_ai.usage.input_tokens");
    let output = attrs.uint("gen_ai.usage.output_tokens");
    if input.is_none() && output.is_none() {
        return None;
    }
    // OpenAI's convention: input includes the cache reads and writes, output the reasoning.
    Some(Usage::inclusive(
        input.unwrap_or(0),
        attrs.uint("gen_ai.usage.cache_read.input_tokens").unwrap_or(0),
        attrs.uint("gen_ai.usage.cache_write.input_tokens").unwrap_or(0),
        output.unwrap_or(0),
        attrs.uint("codex.usage.reasoning_output_tokens").unwrap_or(0),
    ))
}

/// The nearest span, from `span` up through its ancestors in this batch, that has `key`.
fn ancestor_with<'a>(span: &'a Span, by_id: &HashMap<&str, &'a Span>, key: &str) -> Option<(&'a Span, &'a str)> {
    let mut current = span;
    // Bounded: a malformed batch may hold a parent cycle.
    for _ in 0..64 {
        if let Some(value) = Attrs::new(&current.attributes).str(key) {
            return Some((current, value));
        }
        current = by_id.get(current.parent_span_id.as_str())?;
    }
    None
}

/// The span that runs one tool call (`exec_command`, an MCP tool, ...).
fn is_tool_span(span: &Span, attrs: &Attrs<'_>) -> bool {
    attrs.str("call_id").is_some()
        && (attrs.str("codex.tool.phase").is_some() || attrs.str("tool_name") == Some(span.name.as_str()))
}

fn normalize_spans(resource: &Attrs<'_>, batch: &ResourceBatch, out: &mut Fragments) {
    let spans: Vec<&Span> = batch.scopes.iter().flat_map(|s| &s.spans).collect();
    if spans.is_empty() {
        return;
    }
    let by_id: HashMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    // Only some spans of a turn name the conversation; the others share their trace id.
    let mut sessions: HashMap<&str, &str> = HashMap::new();
    for span in &spans {
        if let Some(c) = Attrs::new(&span.attributes).first_str(&["conversation.id", "thread_id"]) {
            sessions.entry(span.trace_id.as_str()).or_insert(c);
        }
    }

    for span in spans.iter().copied() {
        let attrs = Attrs::new(&span.attributes);
        let session = sessions.get(span.trace_id.as_str()).copied();
        let turn = attrs.first_str(&["turn.id", "turn_id"]);
        let otel = otel_key(&span.trace_id);
        let (key, aka): (String, Vec<String>) = match (turn, otel) {
            (Some(turn), otel) => (format!("prompt-{turn}"), otel.into_iter().collect()),
            (None, Some(otel)) => (otel, Vec::new()),
            (None, None) => continue,
        };
        let who = || attribution_with(resource, &attrs, &AttributionOverrides { default_session: session, ..WHO });
        let report = format!("3-span-{}", span.span_id);
        let end = span.end_time();
        let error = span.failure();
        let failed = error.is_some();

        let usage = (span.name == "handle_responses").then(|| span_usage(&attrs)).flatten();
        if let Some(usage) = usage {
            // The enclosing sampling request names the model and starts the call.
            let sampling = ancestor_with(span, &by_id, "model");
            let start = sampling.map_or(span.start_time_unix_nano, |(s, _)| s.start_time_unix_nano);
            let call = ModelCall {
                channel: Channel::Span,
                model: sampling.map(|(_, model)| model.to_owned()),
                usage: Some(usage),
                cost_usd: None,
                start_unix_nano: Some(start),
                end_unix_nano: end,
                duration_ms: end.map(|e| e.saturating_sub(start) / 1_000_000),
                error,
            };
            let id = format!("span-{}", span.span_id);
            push(out, &key, &aka, id, report, who(), FragmentBody::ModelCall(call));
        } else if is_tool_span(span, &attrs) {
            let call = ToolCall {
                name: attrs.string("tool_name").or_else(|| Some(span.name.clone())),
                args: None,
                result: error,
                duration_ms: span.duration_ms(),
                success: (failed || attrs.bool("aborted") == Some(true)).then_some(false),
                decision: None,
                start_unix_nano: Some(span.start_time_unix_nano),
            };
            let id = tool_id(&attrs, || format!("span-{}", span.span_id));
            push(out, &key, &aka, id, report, who(), FragmentBody::ToolCall(call));
        } else {
            if span.name == "session_task.turn" {
                let prompt = Prompt {
                    // Prompt text never rides on spans: the log event has it.
                    text: None,
                    response: Some(not_exported("response", AGENT)),
                    start_unix_nano: Some(span.start_time_unix_nano),
                    end_unix_nano: end,
                };
                push(out, &key, &aka, "prompt", report.clone(), who(), FragmentBody::Prompt(prompt));
            }
            if failed && turn.is_some() {
                let event = Event {
                    name: span.name.clone(),
                    time_unix_nano: span.start_time_unix_nano,
                    attributes_json: attrs.to_json(&[
                        "code.file.path",
                        "code.module.name",
                        "code.line.number",
                        "thread.id",
                        "thread.name",
                        "busy_ns",
                        "idle_ns",
                    ]),
                    error,
                };
                let id = format!("span-{}", span.span_id);
                push(out, &key, &aka, id, report, who(), FragmentBody::Event(event));
            }
        }

        for event in &span.events {
            normalize_span_event(span, event, &key, &aka, who(), out);
        }
    }
}

/// Codex's trace-safe events ride on spans: the tool result (success, duration) and decision.
fn normalize_span_event(
    span: &Span,
    event: &SpanEvent,
    key: &str,
    aka: &[String],
    who: Attribution,
    out: &mut Fragments,
) {
    let attrs = Attrs::new(&event.attributes);
    let name = attrs.str("event.name").unwrap_or(event.name.as_str());
    let time = event.time_unix_nano;
    // Span events rank after logs and before spans.
    let report = format!("2-event-{}-{time}", span.span_id);
    let id = || tool_id(&attrs, || format!("event-{}-{time}", span.span_id));
    let call = match name {
        "codex.tool_result" => tool_result_call(&attrs, time, false),
        "codex.tool_decision" => decision_call(&attrs),
        _ => return,
    };
    push(out, key, aka, id(), report, who, FragmentBody::ToolCall(call));
}

// ---- metrics -------------------------------------------------------------------------------

/// The metrics about usage; Codex's many internal histograms (skills, rollout sizes, SSE event
/// kinds, ...) are not kept.
const USAGE_METRICS: [&str; 11] = [
    "codex.turn.token_usage",
    "codex.api_request",
    "codex.api_request.duration_ms",
    "codex.tool.call",
    "codex.tool.call.duration_ms",
    "codex.turn.e2e_duration_ms",
    "codex.turn.ttft.duration_ms",
    "codex.turn.ttfm.duration_ms",
    "codex.turn.tool.call",
    "codex.conversation.turn.count",
    "codex.thread.started",
];

fn normalize_metric(resource: &Attrs<'_>, point: &MetricPoint, out: &mut Fragments) {
    if !USAGE_METRICS.contains(&point.name.as_str()) {
        return;
    }
    let who = attribution_with(resource, &Attrs::new(&point.attributes), &WHO);
    // The report id is a digest of the attributes: as text they can exceed the host's id limit.
    out.usage_metric(point, who, &[]);
}

antenna_sdk::export_parser!(Codex);

#[cfg(test)]
mod tests;
