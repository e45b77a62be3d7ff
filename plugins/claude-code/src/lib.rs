//! Claude Code's telemetry as per-prompt traces.
//!
//! Claude Code sends log events (scope `com.anthropic.claude_code.events`), beta spans
//! (`com.anthropic.claude_code.tracing`) and metrics (`com.anthropic.claude_code`). Every event
//! of one prompt carries `prompt.id`; the spans of one prompt share the OTel trace id of the
//! `claude_code.interaction` root span, and events recorded inside it carry that trace id too.
//! So a trace is keyed `prompt-<prompt.id>` and also known as `otel-<trace id>`: logs alone,
//! spans alone, and both meet in one trace.
//!
//! Each model call is reported twice (an `api_request` event and an `llm_request` span); the
//! fragments say through which channel, and the host counts each call once.

use antenna_sdk::{
    Attrs, Channel, Claims, Event, Fragment, FragmentBody, Fragments, LogRecord, MetricPoint, ModelCall, Parser,
    PluginInfo, Prompt, ResourceBatch, ScopeRecords, Span, StatusCode, ToolCall, Usage, Visitor, attribution,
    not_captured, otel_key, visit,
};

/// The Claude Code parser.
pub struct ClaudeCode;

const REDACTED: &str = "<REDACTED>";

impl Parser for ClaudeCode {
    fn describe() -> PluginInfo {
        let claims =
            Claims::new(&["com.anthropic.claude_code*"], &["claude_code.*"], &["claude-code", "claude-code-desktop"]);
        PluginInfo::new("claude-code", "claude-code", env!("CARGO_PKG_VERSION"), claims)
    }

    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        Ok(visit(batch, &mut ClaudeCode))
    }
}

impl Visitor for ClaudeCode {
    fn span(&mut self, resource: &Attrs<'_>, scope: &ScopeRecords, span: &Span, out: &mut Fragments) {
        normalize_span(resource, span, &scope.spans, out);
    }

    fn log(&mut self, resource: &Attrs<'_>, scope: &ScopeRecords, log: &LogRecord, out: &mut Fragments) {
        normalize_event(resource, log, &scope.logs, out);
    }

    /// A usage metric of the session. Its report id is the point's time and a digest of its
    /// attributes: the attributes themselves can make an id longer than the host accepts.
    fn metric(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, point: &MetricPoint, out: &mut Fragments) {
        out.usage_metric(point, attribution(resource, &Attrs::new(&point.attributes)), &EXCLUDED_KEYS);
    }
}

/// The event's short name: the `event.name` attribute, else the body or the LogRecord field
/// without the `claude_code.` prefix.
fn event_name(log: &LogRecord) -> Option<String> {
    let name = log.name_attribute().or_else(|| log.body_name("claude_code.")).or_else(|| log.name_field());
    name.map(|s| s.trim_start_matches("claude_code.").to_owned())
}

/// Claude Code appends the context-window size to span models (`claude-opus-4-8[1m]`); the
/// events say `claude-opus-4-8`. One model, one name.
fn model_name(raw: &str) -> String {
    match raw.find('[') {
        Some(i) if raw.ends_with(']') => raw[..i].to_owned(),
        _ => raw.to_owned(),
    }
}

/// Text an operator may have redacted: the literal `<REDACTED>` becomes a placeholder.
fn content(value: Option<String>, field: &str, flag: &str) -> Option<String> {
    match value {
        Some(v) if v == REDACTED => Some(not_captured(field, flag)),
        other => other,
    }
}

fn usage(attrs: &Attrs<'_>) -> Option<Usage> {
    let input = attrs.uint("input_tokens");
    let output = attrs.uint("output_tokens");
    if input.is_none() && output.is_none() {
        return None;
    }
    Some(Usage::anthropic(
        input.unwrap_or(0),
        output.unwrap_or(0),
        attrs.uint("cache_read_tokens").unwrap_or(0),
        attrs.uint("cache_creation_tokens").unwrap_or(0),
    ))
}

/// The prompt a model call outside any prompt was made for: Claude Code sends the session-title
/// side query (`query_source=generate_session_title`) as the user submits a prompt, without
/// `prompt.id` and outside the interaction's OTel trace, while its span is inside it. Its
/// `api_request` event belongs to the `user_prompt` of the same session in the same batch
/// nearest in time (the latest before it, else the first after it). None when the batch has
/// no such prompt: the call then makes no trace, as before.
fn prompt_of_side_call(log: &LogRecord, attrs: &Attrs<'_>, siblings: &[LogRecord]) -> Option<String> {
    let session = attrs.str("session.id")?;
    let time = log.time_unix_nano.max(log.observed_time_unix_nano);
    let mut before: Option<(u64, String)> = None;
    let mut after: Option<(u64, String)> = None;
    for other in siblings {
        let other_attrs = Attrs::new(&other.attributes);
        if event_name(other).as_deref() != Some("user_prompt") || other_attrs.str("session.id") != Some(session) {
            continue;
        }
        let Some(id) = other_attrs.string("prompt.id") else { continue };
        let t = other.time_unix_nano.max(other.observed_time_unix_nano);
        if t <= time {
            if before.as_ref().is_none_or(|(b, _)| t > *b) {
                before = Some((t, id));
            }
        } else if after.as_ref().is_none_or(|(a, _)| t < *a) {
            after = Some((t, id));
        }
    }
    before.or(after).map(|(_, id)| id)
}

fn normalize_event(resource: &Attrs<'_>, log: &LogRecord, siblings: &[LogRecord], out: &mut Fragments) {
    let Some(name) = event_name(log) else { return };
    let attrs = Attrs::new(&log.attributes);
    let who = attribution(resource, &attrs);
    let time = log.time_unix_nano.max(log.observed_time_unix_nano);
    let otel = otel_key(&log.trace_id);
    let side_call = || {
        matches!(name.as_str(), "api_request" | "api_error")
            .then(|| prompt_of_side_call(log, &attrs, siblings))
            .flatten()
            .map(|p| format!("prompt-{p}"))
    };
    // Events outside any prompt (start-up, MCP connections) belong to no trace; their raw
    // batch stays stored. A side query's model call joins the prompt it was made for.
    let Some(trace_key) =
        attrs.str("prompt.id").map(|p| format!("prompt-{p}")).or_else(|| otel.clone()).or_else(side_call)
    else {
        return;
    };
    let seq = attrs.string("event.sequence").unwrap_or_else(|| time.to_string());
    // Report ids order the reports of one thing: the first present value wins per field.
    // A tool_result outranks a tool_decision (it has the real input), logs outrank spans.
    let report = format!("{}-log-{seq}", if name == "tool_result" { 0 } else { 1 });

    let body = match name.as_str() {
        "user_prompt" => FragmentBody::Prompt(Prompt {
            text: content(attrs.string("prompt"), "prompt", "OTEL_LOG_USER_PROMPTS")
                .or_else(|| Some(not_captured("prompt", "OTEL_LOG_USER_PROMPTS"))),
            response: None,
            start_unix_nano: Some(time),
            end_unix_nano: None,
        }),
        // The answer to the user: side queries (session titles, ...) are not it.
        "assistant_response" if is_main_query(&attrs) => FragmentBody::Prompt(Prompt {
            text: None,
            response: content(attrs.string("response"), "response", "OTEL_LOG_ASSISTANT_RESPONSES"),
            start_unix_nano: None,
            end_unix_nano: Some(time),
        }),
        "api_request" | "api_error" => {
            let duration = attrs.uint("duration_ms");
            let error = (name == "api_error").then(|| {
                let message = attrs.string("error").unwrap_or_else(|| "API error".into());
                match attrs.string("status_code") {
                    Some(code) => format!("{message} (status {code})"),
                    None => message,
                }
            });
            let call = ModelCall {
                channel: Channel::Log,
                model: attrs.str("model").map(model_name),
                usage: usage(&attrs),
                cost_usd: attrs
                    .float("cost_usd")
                    .or_else(|| attrs.float("cost_usd_micros").map(|m| m / 1e6))
                    .filter(|c| *c >= 0.0),
                start_unix_nano: duration.map(|d| time.saturating_sub(d * 1_000_000)),
                end_unix_nano: Some(time),
                duration_ms: duration,
                error,
            };
            let id = attrs.str("request_id").map_or_else(|| format!("log-{seq}"), |r| format!("req-{r}"));
            let fragment = out.push(trace_key, id, report, who, FragmentBody::ModelCall(call));
            fragment.also_known_as.extend(otel);
            return;
        }
        "tool_decision" | "tool_result" => {
            let decision = attrs.str("decision").or(attrs.str("decision_type")).map(|d| {
                match attrs.str("source").or(attrs.str("decision_source")) {
                    Some(source) => format!("{d} ({source})"),
                    None => d.to_owned(),
                }
            });
            let is_result = name == "tool_result";
            let args = attrs
                .string("tool_input")
                .or_else(|| attrs.string("tool_parameters"))
                .or_else(|| Some(not_captured("args", "OTEL_LOG_TOOL_DETAILS")));
            let call = ToolCall {
                name: attrs.string("tool_name"),
                args,
                result: attrs.string("error").filter(|_| is_result),
                duration_ms: attrs.uint("duration_ms").filter(|_| is_result),
                success: attrs.bool("success").filter(|_| is_result),
                decision: if is_result { None } else { decision },
                start_unix_nano: None,
            };
            let id = attrs.str("tool_use_id").map_or_else(|| format!("log-{seq}"), str::to_owned);
            if is_result {
                // The output rides only on the beta spans' `tool.output` event: without spans
                // the result is not captured. Ranked after every other report, so the span's
                // output (or its own placeholder) wins whenever spans are exported.
                let placeholder = ToolCall {
                    name: None,
                    args: None,
                    result: Some(not_captured("result", "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA")),
                    duration_ms: None,
                    success: None,
                    decision: None,
                    start_unix_nano: None,
                };
                let fragment = out.push(
                    trace_key.clone(),
                    id.clone(),
                    format!("9-log-{seq}"),
                    who.clone(),
                    FragmentBody::ToolCall(placeholder),
                );
                fragment.also_known_as.extend(otel.clone());
            }
            let fragment = out.push(trace_key, id, report, who, FragmentBody::ToolCall(call));
            fragment.also_known_as.extend(otel);
            return;
        }
        _ => {
            let error = ["internal_error", "api_retries_exhausted", "api_refusal"]
                .contains(&name.as_str())
                .then(|| attrs.string("error").unwrap_or_else(|| name.clone()));
            FragmentBody::Event(Event {
                name: format!("claude_code.{name}"),
                time_unix_nano: time,
                attributes_json: attrs.to_json(&EXCLUDED_KEYS),
                error,
            })
        }
    };
    let id = match &body {
        FragmentBody::Prompt(_) => "prompt".to_owned(),
        _ => format!("log-{seq}"),
    };
    let fragment = out.push(trace_key, id, report, who, body);
    fragment.also_known_as.extend(otel);
}

/// Attributes every record repeats; not worth storing per event.
const EXCLUDED_KEYS: [&str; 6] =
    ["user.id", "session.id", "host.id", "terminal.type", "deployment.environment", "event.timestamp"];

fn is_main_query(attrs: &Attrs<'_>) -> bool {
    matches!(attrs.str("query_source"), None | Some("sdk" | "main" | "repl_main_thread" | "subagent"))
        || attrs.str("query_source").is_some_and(|q| q.starts_with("repl_main"))
}

fn normalize_span(resource: &Attrs<'_>, span: &Span, siblings: &[Span], out: &mut Fragments) {
    let attrs = Attrs::new(&span.attributes);
    let who = attribution(resource, &attrs);
    let Some(trace_key) = otel_key(&span.trace_id) else {
        return;
    };
    let duration = attrs.uint("duration_ms").or_else(|| span.duration_ms());
    let failed = span.status == StatusCode::Error || attrs.bool("success") == Some(false);
    let error = failed.then(|| {
        attrs
            .string("error")
            .or_else(|| (!span.status_message.is_empty()).then(|| span.status_message.clone()))
            .unwrap_or_else(|| format!("{} failed", span.name))
    });
    let report = format!("2-span-{}", span.span_id);
    let tool_id = |attrs: &Attrs<'_>| attrs.first_str(&["tool_use_id", "gen_ai.tool.call.id"]).map(str::to_owned);
    match span.name.as_str() {
        "claude_code.interaction" => {
            let prompt = Prompt {
                text: content(attrs.string("user_prompt"), "prompt", "OTEL_LOG_USER_PROMPTS")
                    .or_else(|| Some(not_captured("prompt", "OTEL_LOG_USER_PROMPTS"))),
                response: None,
                start_unix_nano: Some(span.start_time_unix_nano),
                end_unix_nano: span.end_time(),
            };
            out.push(trace_key, "prompt", report, who, FragmentBody::Prompt(prompt));
        }
        "claude_code.llm_request" => {
            let call = ModelCall {
                channel: Channel::Span,
                model: attrs.first_str(&["model", "gen_ai.request.model"]).map(model_name),
                usage: usage(&attrs),
                cost_usd: None,
                start_unix_nano: Some(span.start_time_unix_nano),
                end_unix_nano: span.end_time(),
                duration_ms: duration,
                error,
            };
            let id = attrs.str("request_id").map_or_else(|| format!("span-{}", span.span_id), |r| format!("req-{r}"));
            out.push(trace_key, id, report, who, FragmentBody::ModelCall(call));
        }
        "claude_code.tool" => {
            let output = span.events.iter().find(|e| e.name == "tool.output").map(|e| Attrs::new(&e.attributes));
            let call = ToolCall {
                name: attrs.string("tool_name"),
                args: attrs.first_str(&["full_command", "file_path", "skill_name", "subagent_type"]).map(str::to_owned),
                result: Some(
                    output
                        .and_then(|o| o.first_str(&["output", "result"]).map(str::to_owned))
                        .unwrap_or_else(|| not_captured("result", "OTEL_LOG_TOOL_CONTENT")),
                ),
                duration_ms: duration,
                success: None,
                decision: None,
                start_unix_nano: Some(span.start_time_unix_nano),
            };
            let id = tool_id(&attrs).unwrap_or_else(|| format!("span-{}", span.span_id));
            out.push(trace_key, id, report, who, FragmentBody::ToolCall(call));
        }
        "claude_code.tool.execution" => {
            let Some(id) = tool_id(&attrs) else { return };
            let call = ToolCall {
                name: None,
                args: None,
                result: error.clone(),
                duration_ms: None,
                success: Some(!failed),
                decision: None,
                start_unix_nano: None,
            };
            out.push(trace_key, id, report, who, FragmentBody::ToolCall(call));
        }
        "claude_code.tool.blocked_on_user" => {
            // The decision belongs to the parent `claude_code.tool` span's call, when known.
            let decision = attrs.str("decision").filter(|d| *d != "unknown");
            let parent = siblings.iter().find(|s| s.span_id == span.parent_span_id);
            let (Some(decision), Some(id)) = (decision, parent.and_then(|p| tool_id(&Attrs::new(&p.attributes))))
            else {
                return;
            };
            let decision = match attrs.str("source").filter(|s| *s != "unknown") {
                Some(source) => format!("{decision} ({source})"),
                None => decision.to_owned(),
            };
            let call = ToolCall {
                name: None,
                args: None,
                result: None,
                duration_ms: None,
                success: None,
                decision: Some(decision),
                start_unix_nano: None,
            };
            out.push(trace_key, id, report, who, FragmentBody::ToolCall(call));
        }
        other => {
            let event = Event {
                name: other.to_owned(),
                time_unix_nano: span.start_time_unix_nano,
                attributes_json: attrs.to_json(&EXCLUDED_KEYS),
                error,
            };
            out.push(trace_key, format!("span-{}", span.span_id), report, who, FragmentBody::Event(event));
        }
    }
}

#[cfg(feature = "component")]
antenna_sdk::export_parser!(ClaudeCode);

#[cfg(test)]
mod tests;
