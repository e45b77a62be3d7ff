//! Gemini CLI's telemetry as per-prompt traces.
//!
//! Gemini CLI sends log events (attribute `event.name` = `gemini_cli.<name>`), spans
//! (`llm_call`, `tool_call`, ...) and metrics, all under scope `gemini-cli`. Every event of a
//! prompt carries `prompt_id`, and so do the spans in their own way (`gen_ai.prompt.name` on
//! `llm_call`, the request JSON of `tool_call`); each `llm_call` is its own OTel trace, so the
//! trace id ties nothing together. A trace is keyed `prompt-<prompt_id>`, and, when the
//! resource names the process, by the process too: Gemini CLI 0.61 reuses one `prompt_id` for
//! every prompt of a session (it equals the session id), so the prompts of a session continued
//! with `gemini --resume latest -p ...` would otherwise be one trace. In non-interactive runs a
//! prompt is a process (`process.pid` and `process.command_args` of the resource). Prompts of
//! one interactive process still share a key (nothing in the telemetry tells them apart across
//! batches but the order and time of the `user_prompt` events).
//!
//! One model call appears three times: an `api_response` event (the full usage: cached
//! content and thoughts), a `gen_ai.client.inference.operation.details` event (a GenAI
//! convention copy without them) and an `llm_call` span. The first is the call's `Log`
//! report, the span its `Span` report, and the host pairs the two and counts the call once;
//! the convention copy adds nothing and makes no fragment. No record of a call shares an id
//! with the others, so pairing (in time order, per prompt) is what joins them.

use antenna_sdk::serde_json::{self, Value};
use antenna_sdk::{
    AttrValue, Attribution, AttributionOverrides, Attrs, Channel, Claims, Event, Fragment, FragmentBody, Fragments,
    LogRecord, MetricPoint, ModelCall, Parser, PluginInfo, Prompt, ResourceBatch, ScopeRecords, Span, ToolCall, Usage,
    Visitor, attribution_with, bounded_id, not_captured, not_exported, stable_id, visit,
};

/// The Gemini parser.
pub struct Gemini;

const AGENT: &str = "Gemini CLI";

/// The setting (env `GEMINI_TELEMETRY_LOG_PROMPTS`) without which prompts and responses are
/// left out.
const PROMPTS_FLAG: &str = "telemetry.logPrompts";

/// Attributes every record repeats, and content already used: not copied into events.
const EXCLUDED_KEYS: [&str; 11] = [
    "session.id",
    "installation.id",
    "interactive",
    "auth_type",
    "user.email",
    "event.name",
    "event.timestamp",
    "prompt",
    "request_text",
    "response_text",
    "function_args",
];

/// Events that report a failure (listed in the trace's errors).
const ERROR_EVENTS: [&str; 4] =
    ["malformed_json_response", "chat.invalid_chunk", "chat.content_retry_failure", "loop_detected"];

impl Parser for Gemini {
    fn describe() -> PluginInfo {
        let claims = Claims::new(&["gemini-cli"], &["gemini_cli.*"], &["gemini-cli"]);
        PluginInfo::new("gemini", "gemini", env!("CARGO_PKG_VERSION"), claims)
    }

    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        Ok(visit(batch, &mut Gemini))
    }
}

impl Visitor for Gemini {
    fn span(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, span: &Span, out: &mut Fragments) {
        normalize_span(resource, span, out);
    }

    fn log(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, log: &LogRecord, out: &mut Fragments) {
        normalize_event(resource, log, out);
    }

    fn metric(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, point: &MetricPoint, out: &mut Fragments) {
        out.usage_metric(point, who(resource, &Attrs::new(&point.attributes)), &[]);
    }
}

/// Gemini names no user of its own: only the resource (`OTEL_RESOURCE_ATTRIBUTES`) does, and
/// without one the host applies its fallback. The session is the record's `session.id`.
fn who(resource: &Attrs<'_>, record: &Attrs<'_>) -> Attribution {
    attribution_with(resource, record, &AttributionOverrides { resource_user_only: true, ..AttributionOverrides::NONE })
}

/// The trace key of a prompt: its id, and the process that sent it when the resource says.
fn prompt_key(resource: &Attrs<'_>, prompt_id: &str) -> String {
    let pid = resource.int("process.pid");
    match pid {
        Some(pid) => {
            let args = resource.str("process.command_args").unwrap_or("");
            format!("prompt-{}-{}", bounded_id(prompt_id), stable_id(&[&pid.to_string(), args]))
        }
        None => format!("prompt-{}", bounded_id(prompt_id)),
    }
}

/// Gemini CLI reports a shell command that ran and failed (exit 1) as `success=true`; the
/// `tool_call` event's `metadata` says `{"exitCode":1,"isError":true}`.
fn metadata_failed(attrs: &Attrs<'_>) -> bool {
    attrs.json("metadata").is_some_and(|m| {
        m.get("isError").and_then(Value::as_bool) == Some(true)
            || m.get("exitCode").and_then(Value::as_i64).is_some_and(|c| c != 0)
    })
}

/// The same on the `tool_call` span: the response's `data` (`exitCode`, `isError`), else the
/// `Exit Code: N` line of what the model was given.
fn output_failed(output: &Value) -> bool {
    let Some(response) = output.get("response") else {
        return false;
    };
    if let Some(data) = response.get("data")
        && (data.get("isError").and_then(Value::as_bool) == Some(true)
            || data.get("exitCode").and_then(Value::as_i64).is_some_and(|c| c != 0))
    {
        return true;
    }
    let parts = response.get("responseParts").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    parts.iter().any(|p| {
        let text = p
            .get("functionResponse")
            .and_then(|f| f.get("response"))
            .and_then(|r| r.get("output"))
            .and_then(Value::as_str)
            .unwrap_or("");
        text.lines().any(|line| {
            line.trim().strip_prefix("Exit Code:").and_then(|n| n.trim().parse::<i64>().ok()).is_some_and(|c| c != 0)
        })
    })
}

/// The event's full name: the `event.name` attribute, else the LogRecord field, else a body
/// that is a name.
fn event_name(log: &LogRecord) -> Option<String> {
    log.name().or_else(|| log.body_name("gemini_cli.")).map(str::to_owned)
}

/// Tool arguments as compact JSON: the event pretty-prints them, the span does not, and both
/// must name the same call.
fn canonical_args(raw: &str) -> String {
    serde_json::from_str::<Value>(raw).map_or_else(|_| raw.to_owned(), |v| v.to_string())
}

/// Neither the tool_call event nor every Gemini version carries the call id, so the event and
/// the span of one call meet on the tool name and its arguments (within one prompt). Two
/// calls with the same tool and arguments in one prompt merge into one.
fn tool_id(name: &str, args: &str) -> String {
    format!("tool-{}", stable_id(&[name, args]))
}

/// The answer's text from `response_text`: the Gemini API response (one, or a list of stream
/// chunks) whose candidate parts hold the text; thought parts are not the answer. Older
/// versions logged the plain text.
fn response_text(raw: &str) -> Option<String> {
    let Ok(value) = serde_json::from_str::<Value>(raw) else {
        return Some(raw.to_owned());
    };
    let chunks = match &value {
        Value::Array(items) => items.as_slice(),
        single => std::slice::from_ref(single),
    };
    if !chunks.iter().any(|c| c.get("candidates").is_some()) {
        return Some(raw.to_owned());
    }
    let mut text = String::new();
    for chunk in chunks {
        let parts = chunk
            .get("candidates")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .and_then(|c| c.get("content"))
            .and_then(|c| c.get("parts"))
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for part in parts {
            if part.get("thought").and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(t) = part.get("text").and_then(Value::as_str) {
                text.push_str(t);
            }
        }
    }
    (!text.is_empty()).then_some(text)
}

/// Gemini's convention: `input_token_count` includes the cached part, thoughts are apart;
/// tool-use prompt tokens are input reported apart.
fn event_usage(attrs: &Attrs<'_>) -> Option<Usage> {
    let input = attrs.uint("input_token_count");
    let output = attrs.uint("output_token_count");
    if input.is_none() && output.is_none() {
        return None;
    }
    let mut usage = Usage::gemini(
        input.unwrap_or(0),
        attrs.uint("cached_content_token_count").unwrap_or(0),
        output.unwrap_or(0),
        attrs.uint("thoughts_token_count").unwrap_or(0),
    );
    usage.input = usage.input.saturating_add(attrs.uint("tool_token_count").unwrap_or(0));
    Some(usage)
}

fn normalize_event(resource: &Attrs<'_>, log: &LogRecord, out: &mut Fragments) {
    let Some(full_name) = event_name(log) else {
        return;
    };
    let name = full_name.strip_prefix("gemini_cli.").unwrap_or(&full_name);
    // The request side of a call adds nothing its response does not say.
    if matches!(name, "api_request" | "gen_ai.client.inference.operation.details") {
        return;
    }
    let attrs = Attrs::new(&log.attributes);
    // Start-up, configuration and routing events belong to no prompt; their raw batch stays.
    let Some(prompt_id) = attrs.str("prompt_id") else {
        return;
    };
    let trace_key = prompt_key(resource, prompt_id);
    let who = who(resource, &attrs);
    let time = log.time();
    // No sequence number: the time and the attributes name one record, stably across re-sends.
    let seq = format!("{time}-{}", stable_id(&[&attrs.to_json(&[])]));
    let duration = attrs.uint("duration_ms");
    let start = duration.map(|d| time.saturating_sub(d.saturating_mul(1_000_000)));

    match name {
        "user_prompt" => {
            let prompt = Prompt {
                text: attrs.string("prompt").or_else(|| Some(not_captured("prompt", PROMPTS_FLAG))),
                response: None,
                start_unix_nano: Some(time),
                end_unix_nano: None,
            };
            out.push(trace_key, "prompt", format!("0-log-{seq}"), who, FragmentBody::Prompt(prompt));
        }
        "api_response" => {
            let call = ModelCall {
                channel: Channel::Log,
                model: attrs.string("model"),
                usage: event_usage(&attrs),
                cost_usd: None,
                start_unix_nano: start,
                end_unix_nano: Some(time),
                duration_ms: duration,
                error: None,
            };
            let id =
                attrs.str("response_id").map_or_else(|| format!("log-{seq}"), |r| format!("resp-{}", bounded_id(r)));
            out.push(trace_key.clone(), id, format!("1-log-{seq}"), who.clone(), FragmentBody::ModelCall(call));
            // The answer is the main loop's last text; router, compressor and other side
            // calls are not it.
            if attrs.str("role").is_some_and(|r| r != "main") {
                return;
            }
            let response = match attrs.get("response_text") {
                Some(AttrValue::Text(raw)) if !raw.is_empty() => response_text(raw),
                Some(_) => None,
                None => Some(not_captured("response", PROMPTS_FLAG)),
            };
            if let Some(response) = response {
                let prompt =
                    Prompt { text: None, response: Some(response), start_unix_nano: None, end_unix_nano: Some(time) };
                out.push(trace_key, "prompt", format!("1-log-{seq}"), who, FragmentBody::Prompt(prompt));
            }
        }
        "api_error" => {
            let message = attrs.first_str(&["error.message", "error"]).unwrap_or("API error");
            let error = match attrs.string("status_code") {
                Some(code) => format!("{message} (status {code})"),
                None => message.to_owned(),
            };
            let call = ModelCall {
                channel: Channel::Log,
                model: attrs.first_str(&["model", "model_name"]).map(str::to_owned),
                // A failed call used no tokens. Saying so keeps the host's pairing from
                // borrowing the count of another call's span.
                usage: Some(Usage::gemini(0, 0, 0, 0)),
                cost_usd: None,
                start_unix_nano: start,
                end_unix_nano: Some(time),
                duration_ms: duration,
                error: Some(error),
            };
            out.push(trace_key, format!("log-{seq}"), format!("1-log-{seq}"), who, FragmentBody::ModelCall(call));
        }
        "tool_call" => {
            let tool = attrs.string("function_name");
            let args = attrs.str("function_args").map(canonical_args);
            let success = if metadata_failed(&attrs) { Some(false) } else { attrs.bool("success") };
            let error =
                attrs.first_str(&["error.message", "error"]).filter(|_| success == Some(false)).map(str::to_owned);
            let id = match (&tool, &args) {
                (Some(tool), Some(args)) => tool_id(tool, args),
                _ => format!("log-{seq}"),
            };
            let call = ToolCall {
                name: tool,
                args: args.or_else(|| Some(not_captured("args", PROMPTS_FLAG))),
                // The event gives the result's length only; the span may carry it.
                result: error.or_else(|| Some(not_exported("result", AGENT))),
                duration_ms: duration,
                success,
                decision: attrs.string("decision"),
                start_unix_nano: start,
            };
            out.push(trace_key, id, format!("0-log-{seq}"), who, FragmentBody::ToolCall(call));
        }
        _ => {
            let error = ERROR_EVENTS
                .contains(&name)
                .then(|| attrs.first_str(&["error.message", "error"]).unwrap_or(&full_name).to_owned());
            let event = Event {
                name: full_name.clone(),
                time_unix_nano: time,
                attributes_json: attrs.to_json(&EXCLUDED_KEYS),
                error,
            };
            out.push(trace_key, format!("log-{seq}"), format!("1-log-{seq}"), who, FragmentBody::Event(event));
        }
    }
}

/// A tool's result from the `tool_call` span's output JSON: what the user saw, else what the
/// model was given, else the error.
fn tool_result(output: &Value) -> Option<String> {
    let response = output.get("response")?;
    if let Some(display) = response.get("resultDisplay").and_then(Value::as_str) {
        return Some(display.to_owned());
    }
    let parts = response.get("responseParts").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
    let given = parts.iter().find_map(|p| {
        let r = p.get("functionResponse")?.get("response")?;
        ["output", "error"].iter().find_map(|k| r.get(k).and_then(Value::as_str).map(str::to_owned))
    });
    given.or_else(|| {
        let error = response.get("error")?;
        error.as_str().or_else(|| error.get("message").and_then(Value::as_str)).map(str::to_owned)
    })
}

fn normalize_span(resource: &Attrs<'_>, span: &Span, out: &mut Fragments) {
    let attrs = Attrs::new(&span.attributes);
    let who = who(resource, &attrs);
    let report = format!("2-span-{}", span.span_id);
    let error = span.failure();
    let operation = attrs.str("gen_ai.operation.name").unwrap_or(span.name.as_str());
    // A span with no prompt id would make a trace of its own: the events carry the same
    // call, so such spans are left to the raw batch.
    match operation {
        "llm_call" => {
            let Some(prompt_id) = attrs.str("gen_ai.prompt.name") else {
                return;
            };
            let input = attrs.uint("gen_ai.usage.input_tokens");
            let output = attrs.uint("gen_ai.usage.output_tokens");
            let call = ModelCall {
                channel: Channel::Span,
                model: attrs.first_str(&["gen_ai.response.model", "gen_ai.request.model"]).map(str::to_owned),
                // The span does not split out cached content or thoughts; the paired event
                // does and wins. Alone, its input counts as fresh.
                usage: (input.is_some() || output.is_some())
                    .then(|| Usage::gemini(input.unwrap_or(0), 0, output.unwrap_or(0), 0)),
                cost_usd: None,
                start_unix_nano: Some(span.start_time_unix_nano),
                end_unix_nano: span.end_time(),
                duration_ms: span.duration_ms(),
                error,
            };
            out.push(
                prompt_key(resource, prompt_id),
                format!("span-{}", span.span_id),
                report,
                who,
                FragmentBody::ModelCall(call),
            );
        }
        "tool_call" => {
            // The request (with prompt id and arguments) is there only with prompt logging on.
            let Some(request) = attrs.json("gen_ai.input.messages") else {
                return;
            };
            let (Some(prompt_id), Some(args)) =
                (request.get("prompt_id").and_then(Value::as_str), request.get("args").map(Value::to_string))
            else {
                return;
            };
            let Some(tool) = attrs.str("gen_ai.tool.name").or_else(|| request.get("name").and_then(Value::as_str))
            else {
                return;
            };
            let output = attrs.json("gen_ai.output.messages");
            let status = output.as_ref().and_then(|o| o.get("status")).and_then(Value::as_str);
            let command_failed = output.as_ref().is_some_and(output_failed);
            let call = ToolCall {
                name: Some(tool.to_owned()),
                args: Some(args.clone()),
                result: output.as_ref().and_then(tool_result),
                duration_ms: span.duration_ms(),
                success: if command_failed {
                    Some(false)
                } else {
                    status.map(|s| s == "success").or(error.is_some().then_some(false))
                },
                decision: None,
                start_unix_nano: Some(span.start_time_unix_nano),
            };
            out.push(prompt_key(resource, prompt_id), tool_id(tool, &args), report, who, FragmentBody::ToolCall(call));
        }
        _ => {}
    }
}

antenna_sdk::export_parser!(Gemini);

#[cfg(test)]
mod tests;
