//! # The generic GenAI parser
//!
//! Per-prompt traces for any agent that follows the [OpenTelemetry GenAI semantic
//! conventions](https://opentelemetry.io/docs/specs/semconv/gen-ai/) and has no parser of its
//! own. It is also the SDK's worked example: it reads top to bottom, and every step says why.
//!
//! ## What the conventions give
//!
//! | record | becomes |
//! |---|---|
//! | `invoke_agent` span (one per user message) | the prompt: the last user text of `gen_ai.input.messages`, the last assistant text of `gen_ai.output.messages`; its attributes as a timeline event |
//! | inference span (`chat`, `generate_content`, `text_completion`, `embeddings`) | a model call (channel `Span`): model, `gen_ai.usage.*`, timing, error |
//! | `gen_ai.client.inference.operation.details` event with its response | a model call (channel `Log`) |
//! | `execute_tool` span | a tool call: `gen_ai.tool.name`, `gen_ai.tool.call.arguments` / `.result`, timing, success |
//! | any other span that failed | an error event on the timeline |
//!
//! The operation is `gen_ai.operation.name`, else the span name's first word (`chat gpt-4.1`).
//! An agent that names its operations otherwise is judged by what its records carry: token
//! usage makes a model call, `gen_ai.tool.name` a tool call.
//!
//! ## Keys
//!
//! The spans of one user message share the OTel trace id of their `invoke_agent` root, and
//! events emitted inside them carry it too: a trace is keyed `otel-<trace id>`. A record with
//! no trace id cannot be placed in a prompt and is left out (its raw batch stays stored). An
//! agent that starts a new OTel trace per model call (Gemini CLI does) gets one trace per call.
//!
//! ## Counting tokens once
//!
//! - `invoke_agent` repeats the sum of its calls' usage: it is shown, never added.
//! - `input_tokens` includes the cache reads and writes and `output_tokens` the reasoning;
//!   the SDK's [`genai::usage`] splits them so that every token counts once.
//! - A call reported both as a span and as an inference-details event is one call: the two
//!   share an id when both carry `gen_ai.response.id`, else the host pairs the `Span` and
//!   `Log` reports of one trace in time order.
//!
//! ## Content
//!
//! Message content is opt-in in the conventions, with no switch common to all agents: when
//! it is absent, the prompt, response, arguments and result stay null (no placeholder naming
//! a flag the agent may not have).
//!
//! ## Claims
//!
//! Only span and event names (score 2 in the host's detection). A dedicated parser claims its
//! agent's instrumentation scope (score 3), so batches of Claude Code, Codex, Copilot, Gemini
//! CLI and Cursor stay with their own parser even though some carry `gen_ai.*` names too.
//! Metric batches carry neither span nor event names, so detection never routes them here:
//! their raw batches stay stored.

use antenna_sdk::genai;
use antenna_sdk::{
    Attrs, Channel, Claims, Event, Fragment, FragmentBody, Fragments, LogRecord, ModelCall, Parser, PluginInfo, Prompt,
    ResourceBatch, ScopeRecords, Span, ToolCall, Visitor, attribution, bounded_id, otel_key, stable_id, visit,
};

/// The generic GenAI parser.
pub struct GenAi;

impl Parser for GenAi {
    fn describe() -> PluginInfo {
        let claims = Claims::new(
            &[],
            &[
                "invoke_agent",
                "invoke_agent *",
                "chat *",
                "generate_content *",
                "text_completion *",
                "embeddings *",
                "execute_tool *",
                "gen_ai.*",
            ],
            &[],
        );
        PluginInfo::new("genai", "genai", env!("CARGO_PKG_VERSION"), claims)
    }

    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        // Never `Err`: a record this parser does not understand is skipped, not fatal.
        Ok(visit(batch, &mut GenAi))
    }
}

/// The SDK walks the batch scope by scope and hands each record to one of these; metric
/// points keep the default, nothing (detection never routes metric batches here).
impl Visitor for GenAi {
    fn span(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, span: &Span, out: &mut Fragments) {
        normalize_span(resource, span, out);
    }

    fn log(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, log: &LogRecord, out: &mut Fragments) {
        normalize_event(resource, log, out);
    }
}

/// What a record reports, by its GenAI operation.
#[derive(Debug, PartialEq)]
enum Kind {
    /// `invoke_agent`: one user message and the agent's whole answer to it.
    Agent,
    /// One call to a model.
    Inference,
    /// One tool call.
    Tool,
    /// Anything else.
    Other,
}

/// The kind of a record from its operation, else from what it carries.
fn kind(operation: &str, attrs: &Attrs<'_>) -> Kind {
    match operation {
        "invoke_agent" => Kind::Agent,
        "chat" | "generate_content" | "text_completion" | "embeddings" => Kind::Inference,
        "execute_tool" => Kind::Tool,
        // An operation outside the conventions: judge by what the record carries.
        _ if genai::usage(attrs).is_some() => Kind::Inference,
        _ if attrs.str("gen_ai.tool.name").is_some() => Kind::Tool,
        _ => Kind::Other,
    }
}

// Report ids order the reports of one thing: per field, the first present value in report-id
// order wins (the host merges them). Prompt reports: the agent span ("0-"), then the model calls
// ("1-"), each by start time, so the user's own turn beats a subagent's and a call's input.
// Model and tool calls: spans ("2-") before events ("3-").

fn normalize_span(resource: &Attrs<'_>, span: &Span, out: &mut Fragments) {
    let Some(trace_key) = otel_key(&span.trace_id) else { return };
    let attrs = Attrs::new(&span.attributes);
    let who = attribution(resource, &attrs);
    let span_key = format!("span-{}", span.span_id);
    let report = format!("2-{span_key}");
    let failure = span.failure();

    match kind(genai::operation(span), &attrs) {
        Kind::Agent => {
            let prompt = prompt(&attrs, Some(span.start_time_unix_nano), span.end_time());
            let rank = format!("0-{:020}-{}", span.start_time_unix_nano, span.span_id);
            out.push(trace_key.clone(), "prompt", rank, who.clone(), FragmentBody::Prompt(prompt));
            // Its summed usage, turn count and the like: on the timeline, never in the totals.
            let event = Event {
                name: span.name.clone(),
                time_unix_nano: span.start_time_unix_nano,
                attributes_json: attrs.to_json(&genai::CONTENT_KEYS),
                error: failure,
            };
            out.push(trace_key, span_key, report, who, FragmentBody::Event(event));
        }
        Kind::Inference => {
            // Model, usage (each token once), timing and failure, as the conventions put them.
            let call = genai::model_call(span);
            let id = call_id(&attrs).unwrap_or(span_key);
            out.push(trace_key.clone(), id, report, who.clone(), FragmentBody::ModelCall(call));
            // An agent without `invoke_agent` spans still says what the user asked and what the
            // model answered in its calls' messages.
            if let Some(hint) = prompt_hint(&attrs, Some(span.start_time_unix_nano), span.end_time()) {
                let rank = format!("1-{:020}-{}", span.start_time_unix_nano, span.span_id);
                out.push(trace_key, "prompt", rank, who, FragmentBody::Prompt(hint));
            }
        }
        Kind::Tool => {
            // A shell tool's exit code (OTel's process conventions): the span may say OK anyway.
            let exit_code = attrs.int("process.exit.code");
            let call = ToolCall {
                name: attrs.str("gen_ai.tool.name").or_else(|| genai::subject(span)).map(str::to_owned),
                args: attrs.string("gen_ai.tool.call.arguments"),
                result: attrs.string("gen_ai.tool.call.result").or_else(|| failure.clone()),
                duration_ms: span.duration_ms(),
                success: Some(failure.is_none() && exit_code.is_none_or(|code| code == 0)),
                decision: None,
                start_unix_nano: Some(span.start_time_unix_nano),
            };
            // The model's tool-call id names the call in every report of it.
            let id = attrs.str("gen_ai.tool.call.id").map_or(span_key, |id| bounded_id(id).into_owned());
            out.push(trace_key, id, report, who, FragmentBody::ToolCall(call));
        }
        // Most other spans are the agent's plumbing; only a failure is worth showing.
        Kind::Other => {
            let Some(error) = failure else { return };
            let event = Event {
                name: span.name.clone(),
                time_unix_nano: span.start_time_unix_nano,
                attributes_json: attrs.to_json(&genai::CONTENT_KEYS),
                error: Some(error),
            };
            out.push(trace_key, span_key, report, who, FragmentBody::Event(event));
        }
    }
}

/// The inference-details event (`gen_ai.client.inference.operation.details`): the same call a
/// span reports, as a log record. Other events are left to dedicated parsers.
fn normalize_event(resource: &Attrs<'_>, log: &LogRecord, out: &mut Fragments) {
    if log.name() != Some("gen_ai.client.inference.operation.details") {
        return;
    }
    let Some(trace_key) = otel_key(&log.trace_id) else { return };
    let attrs = Attrs::new(&log.attributes);
    let operation = attrs.str("gen_ai.operation.name").unwrap_or_default();
    let usage = genai::usage(&attrs);
    // Some agents also send the request half of a call (no usage, no response yet): one call
    // must make one report per channel, so only the response half counts.
    let responded = usage.is_some() || attrs.str("gen_ai.response.id").is_some();
    if kind(operation, &attrs) != Kind::Inference || !responded {
        return;
    }
    let who = attribution(resource, &attrs);
    let time = log.time();
    let call = ModelCall {
        channel: Channel::Log,
        model: attrs.first_str(&["gen_ai.response.model", "gen_ai.request.model"]).map(str::to_owned),
        usage,
        cost_usd: None,
        start_unix_nano: None,
        end_unix_nano: Some(time),
        duration_ms: None,
        error: attrs.string("error.type"),
    };
    // Without a response id, the time and the attributes name this record stably.
    let id = call_id(&attrs).unwrap_or_else(|| format!("log-{time}-{}", stable_id(&[&attrs.to_json(&[])])));
    let report = format!("3-log-{time}");
    out.push(trace_key.clone(), id, report, who.clone(), FragmentBody::ModelCall(call));
    if let Some(hint) = prompt_hint(&attrs, None, Some(time)) {
        out.push(trace_key, "prompt", format!("1-{time:020}-log"), who, FragmentBody::Prompt(hint));
    }
}

/// A model call's id from its response id, so that a span and an event of one call merge.
fn call_id(attrs: &Attrs<'_>) -> Option<String> {
    attrs.str("gen_ai.response.id").map(|id| format!("response-{}", bounded_id(id)))
}

/// What a record's messages say of the prompt: the user's last words in, the assistant's
/// last text out (null when content is not captured).
fn prompt(attrs: &Attrs<'_>, start: Option<u64>, end: Option<u64>) -> Prompt {
    Prompt {
        text: attrs.str("gen_ai.input.messages").and_then(|m| genai::last_text(m, "user")),
        response: attrs.str("gen_ai.output.messages").and_then(|m| genai::last_text(m, "assistant")),
        start_unix_nano: start,
        end_unix_nano: end,
    }
}

/// [`prompt`], when the messages say anything.
fn prompt_hint(attrs: &Attrs<'_>, start: Option<u64>, end: Option<u64>) -> Option<Prompt> {
    Some(prompt(attrs, start, end)).filter(|p| p.text.is_some() || p.response.is_some())
}

antenna_sdk::export_parser!(GenAi);

#[cfg(test)]
mod tests;
