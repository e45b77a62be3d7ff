//! Cursor's agent hooks as per-prompt traces.
//!
//! Cursor exports no OTLP. Its hooks (`hooks.json`) run `antenna-cursor-hook`, which posts each
//! hook invocation as one OTLP log record: scope `antenna.cursor-hook`, event name
//! `cursor.<hook_event_name>`, the hook's JSON fields as attributes. Every agent hook carries
//! `conversation_id` (the session) and `generation_id` (one user prompt and the agent's turn on
//! it), so a trace is keyed `prompt-<generation_id>`.
//!
//! Hook payloads carry no ids for shell commands or MCP calls and no timestamps: the before and
//! after reports of one call are paired by what they share (the command, or the MCP tool and
//! its input), and every fragment id comes from content, so a record sent twice (the hook's
//! spool retries) changes nothing. The price: one command run twice with the same text in one
//! turn shows as one tool call with the last result.
//!
//! Cursor reports no tokens and no cost: token fields stay 0 and cost null. The records'
//! `model` names the model, through one model-call fragment without usage per model and prompt.

use antenna_sdk::{
    Attribution, AttributionOverrides, Attrs, Channel, Claims, Event, Fragment, FragmentBody, Fragments, LogRecord,
    ModelCall, Parser, PluginInfo, Prompt, ResourceBatch, ScopeRecords, ToolCall, Visitor, attribution_with,
    bounded_id, not_exported, stable_id, visit,
};

/// The Cursor parser.
pub struct Cursor;

/// How placeholders name the agent: `[response not exported by Cursor]`.
const AGENT: &str = "Cursor";

/// Hooks that belong to no prompt (session lifecycle, Tab completions): their raw batches stay
/// stored, but they make no trace.
const NO_PROMPT: [&str; 5] = ["sessionStart", "sessionEnd", "workspaceOpen", "beforeTabFileRead", "afterTabFileEdit"];

/// Fields every hook repeats; the trace already holds what they say.
const EXCLUDED_KEYS: [&str; 10] = [
    "conversation_id",
    "generation_id",
    "hook_event_name",
    "cursor_version",
    "workspace_roots",
    "user_email",
    "transcript_path",
    "model",
    "model_id",
    "model_params",
];

impl Parser for Cursor {
    fn describe() -> PluginInfo {
        let claims = Claims::new(&["antenna.cursor-hook"], &["cursor.*"], &["cursor"]);
        PluginInfo::new("cursor", "cursor", env!("CARGO_PKG_VERSION"), claims)
    }

    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        Ok(visit(batch, &mut Cursor))
    }
}

impl Visitor for Cursor {
    fn log(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, log: &LogRecord, out: &mut Fragments) {
        normalize_hook(resource, log, out);
    }
}

/// One hook invocation, with what every fragment of it needs.
struct Record<'a> {
    hook: &'a str,
    attrs: Attrs<'a>,
    time: u64,
    generation: &'a str,
    trace_key: String,
    who: Attribution,
    /// Identifies the record by content, for ids of things that have no id of their own.
    digest: String,
}

impl Record<'_> {
    fn push(&self, id: String, report: String, body: FragmentBody, out: &mut Fragments) {
        out.push(self.trace_key.clone(), id, report, self.who.clone(), body);
    }

    /// When a call started: the before-hook's time. An after-hook's time minus the duration
    /// would say about the same, but the host keeps the earliest start, and hook and process
    /// start-up make that guess run early.
    fn start(&self, after: bool) -> Option<u64> {
        (!after).then_some(self.time)
    }
}

/// The hook's name: the event name without `cursor.`, else the payload's `hook_event_name`.
fn hook_name(log: &LogRecord) -> Option<&str> {
    [log.name_field(), log.name_attribute(), log.body_name("cursor.")]
        .into_iter()
        .flatten()
        .find_map(|name| name.strip_prefix("cursor."))
        .filter(|name| !name.is_empty())
        .or_else(|| Attrs::new(&log.attributes).str("hook_event_name"))
}

/// Who: the SDK's rules, with Cursor's `conversation_id` as the session and Cursor's own login
/// (`user_email`); a resource-level `user.email` is never the user (the SDK ignores it).
/// A resource `user.id` (the hook's environment) still wins.
const WHO: AttributionOverrides = AttributionOverrides {
    session: &["conversation_id", "session_id"],
    login: &["user_email"],
    ..AttributionOverrides::NONE
};

fn normalize_hook(resource: &Attrs<'_>, log: &LogRecord, out: &mut Fragments) {
    let Some(hook) = hook_name(log) else { return };
    if NO_PROMPT.contains(&hook) {
        return;
    }
    let attrs = Attrs::new(&log.attributes);
    let Some(generation) = attrs.first_str(&["generation_id", "prompt.id"]) else {
        return;
    };
    let record = Record {
        hook,
        attrs,
        time: log.time(),
        generation,
        trace_key: format!("prompt-{}", bounded_id(generation)),
        who: attribution_with(resource, &attrs, &WHO),
        digest: stable_id(&[hook, &attrs.to_json(&[])]),
    };
    if let Some(model) = attrs.str("model") {
        model_call(&record, model, out);
    }
    match hook {
        "beforeSubmitPrompt" => {
            let prompt = Prompt {
                text: attrs.string("prompt"),
                response: None,
                start_unix_nano: Some(record.time),
                end_unix_nano: None,
            };
            record.push("prompt".into(), "0-beforeSubmitPrompt".into(), FragmentBody::Prompt(prompt), out);
        }
        "afterAgentResponse" => {
            // An agent turn may answer in several messages; the host keeps the latest.
            let Some(text) = attrs.string("text") else { return };
            let report = format!("1-response-{}", stable_id(&[&text]));
            let prompt =
                Prompt { text: None, response: Some(text), start_unix_nano: None, end_unix_nano: Some(record.time) };
            record.push("prompt".into(), report, FragmentBody::Prompt(prompt), out);
        }
        "stop" => {
            // The end of the turn. A real response (afterAgentResponse) beats this placeholder,
            // which stays where none came (Cursor's headless CLI does not dispatch that hook).
            let prompt = Prompt {
                text: None,
                response: Some(not_exported("response", AGENT)),
                start_unix_nano: None,
                end_unix_nano: Some(record.time),
            };
            record.push("prompt".into(), "2-stop".into(), FragmentBody::Prompt(prompt), out);
            let error = (attrs.str("status") == Some("error"))
                .then(|| "Cursor's agent loop ended with status error".to_owned());
            event(&record, error, out);
        }
        "beforeShellExecution" | "afterShellExecution" => shell(&record, out),
        "beforeMCPExecution" | "afterMCPExecution" => mcp(&record, out),
        "preToolUse" | "postToolUse" | "postToolUseFailure" => generic_tool(&record, out),
        "subagentStop" => {
            let error = (attrs.str("status") == Some("error")).then(|| {
                let kind = attrs.str("subagent_type").unwrap_or("subagent");
                format!("{kind} subagent ended with status error")
            });
            event(&record, error, out);
        }
        // Thoughts, file reads and edits, compactions, subagent starts, hooks added later.
        _ => event(&record, None, out),
    }
}

/// The model that worked on the prompt: no usage (Cursor reports none), so tokens stay 0.
/// The prompt's record gives its start, `stop` its end.
fn model_call(record: &Record<'_>, model: &str, out: &mut Fragments) {
    let call = ModelCall {
        channel: Channel::Log,
        model: Some(model.to_owned()),
        usage: None,
        cost_usd: None,
        start_unix_nano: (record.hook == "beforeSubmitPrompt").then_some(record.time),
        end_unix_nano: (record.hook == "stop").then_some(record.time),
        duration_ms: None,
        error: None,
    };
    record.push(
        format!("model-{}", bounded_id(model)),
        format!("{}-{}", bounded_id(record.hook), record.digest),
        FragmentBody::ModelCall(call),
        out,
    );
}

/// Which report of a tool call wins a field both have (lower first): a failure's verdict, then
/// the specific after-hooks (richest), the generic one, the before-hooks.
fn tool_rank(hook: &str) -> u8 {
    match hook {
        "postToolUseFailure" => 0,
        "afterShellExecution" | "afterMCPExecution" => 1,
        "postToolUse" => 2,
        "beforeShellExecution" | "beforeMCPExecution" => 3,
        _ => 4,
    }
}

fn push_tool(record: &Record<'_>, id: String, call: ToolCall, out: &mut Fragments) {
    let report = format!("{}-{}", tool_rank(record.hook), record.hook);
    record.push(id, report, FragmentBody::ToolCall(call), out);
}

fn shell_id(generation: &str, command: &str) -> String {
    format!("shell-{}", stable_id(&[generation, command]))
}

fn mcp_id(generation: &str, tool: &str, input: &str) -> String {
    format!("mcp-{}", stable_id(&[generation, tool, input]))
}

/// A duration in milliseconds, whole or not.
fn millis(attrs: &Attrs<'_>, key: &str) -> Option<u64> {
    attrs.float(key).filter(|ms| *ms >= 0.0).map(|ms| ms.round() as u64)
}

fn shell(record: &Record<'_>, out: &mut Fragments) {
    let attrs = &record.attrs;
    let Some(command) = attrs.string("command") else {
        return event(record, None, out);
    };
    let after = record.hook == "afterShellExecution";
    let duration = millis(attrs, "duration").filter(|_| after);
    let call = ToolCall {
        name: Some("Shell".into()),
        args: Some(command.clone()),
        result: attrs.string("output").filter(|_| after),
        duration_ms: duration,
        // The command ran; an exit code, where Cursor sends one, says how it went.
        success: after.then(|| attrs.int("exit_code").is_none_or(|code| code == 0)),
        decision: None,
        start_unix_nano: record.start(after),
    };
    push_tool(record, shell_id(record.generation, &command), call, out);
}

/// An MCP result that says it failed (`"isError": true`).
fn is_mcp_error(result: &str) -> bool {
    let compact: String = result.split_whitespace().collect();
    compact.contains("\"isError\":true")
}

fn mcp(record: &Record<'_>, out: &mut Fragments) {
    let attrs = &record.attrs;
    let Some(tool) = attrs.string("tool_name") else {
        return event(record, None, out);
    };
    let input = attrs.string("tool_input");
    let after = record.hook == "afterMCPExecution";
    let duration = millis(attrs, "duration").filter(|_| after);
    let result = attrs.string("result_json").filter(|_| after);
    let call = ToolCall {
        success: after.then(|| !result.as_deref().is_some_and(is_mcp_error)),
        name: Some(tool.clone()),
        result,
        duration_ms: duration,
        decision: None,
        start_unix_nano: record.start(after),
        args: input.clone(),
    };
    let id = mcp_id(record.generation, &tool, input.as_deref().unwrap_or(""));
    push_tool(record, id, call, out);
}

/// preToolUse / postToolUse / postToolUseFailure: every tool, with Cursor's `tool_use_id`.
fn generic_tool(record: &Record<'_>, out: &mut Fragments) {
    let attrs = &record.attrs;
    let name = attrs.string("tool_name");
    let input = attrs.string("tool_input");
    let failed = record.hook == "postToolUseFailure";
    let after = record.hook != "preToolUse";
    let duration = millis(attrs, "duration").or_else(|| millis(attrs, "duration_ms")).filter(|_| after);
    // A shell command or MCP call also comes through its own hooks: share their id (and the
    // shell hooks' plain-command args) so the reports meet in one tool call.
    let mcp_tool = name.as_deref().and_then(|n| n.strip_prefix("MCP:"));
    let (id, name, args) = match (name.as_deref(), attrs.string("command"), mcp_tool) {
        (Some("Shell"), Some(command), _) => (shell_id(record.generation, &command), name.clone(), Some(command)),
        (_, _, Some(tool)) => {
            (mcp_id(record.generation, tool, input.as_deref().unwrap_or("")), Some(tool.to_owned()), input.clone())
        }
        _ => {
            let id = match attrs.str("tool_use_id") {
                Some(use_id) => format!("tool-{}", bounded_id(use_id)),
                None => format!(
                    "tool-{}",
                    stable_id(&[record.generation, name.as_deref().unwrap_or(""), input.as_deref().unwrap_or(""),])
                ),
            };
            (id, name.clone(), input.clone())
        }
    };
    let result = if failed {
        let message = attrs.string("error_message");
        let kind = attrs.string("failure_type");
        Some(match (kind, message) {
            (Some(kind), Some(message)) => format!("{kind}: {message}"),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => "tool call failed".into(),
        })
    } else {
        attrs.string("tool_output").filter(|_| after)
    };
    let call = ToolCall {
        name,
        args,
        result,
        duration_ms: duration,
        success: after.then_some(!failed),
        decision: None,
        start_unix_nano: record.start(after),
    };
    push_tool(record, id, call, out);
}

fn event(record: &Record<'_>, error: Option<String>, out: &mut Fragments) {
    let event = Event {
        name: format!("cursor.{}", bounded_id(record.hook)),
        time_unix_nano: record.time,
        attributes_json: record.attrs.to_json(&EXCLUDED_KEYS),
        error,
    };
    record.push(format!("{}-{}", bounded_id(record.hook), record.digest), "0".into(), FragmentBody::Event(event), out);
}

antenna_sdk::export_parser!(Cursor);

#[cfg(test)]
mod tests;
