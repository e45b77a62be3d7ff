use antenna_sdk::{AttrValue, KeyValue, Scope, Signal};

use super::*;

const GEN: &str = "gen-1";

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: AttrValue::Text(value.into()) }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.into(), value: AttrValue::Integer(value) }
}

/// One hook record with the common fields.
fn hook(name: &str, time: u64, fields: Vec<KeyValue>) -> LogRecord {
    let mut attributes = vec![
        text("conversation_id", "conv-1"),
        text("generation_id", GEN),
        text("hook_event_name", name),
        text("model", "claude-4.5-sonnet"),
        text("user_email", "login@example.com"),
    ];
    attributes.extend(fields);
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: time,
        severity_number: 9,
        severity_text: "INFO".into(),
        event_name: format!("cursor.{name}"),
        body: AttrValue::Empty,
        attributes,
        trace_id: String::new(),
        span_id: String::new(),
    }
}

fn normalize(resource: Vec<KeyValue>, logs: Vec<LogRecord>) -> Vec<Fragment> {
    let batch = ResourceBatch {
        signal: Signal::Logs,
        resource_attributes: resource,
        scopes: vec![ScopeRecords {
            scope: Scope { name: "antenna.cursor-hook".into(), version: String::new(), attributes: Vec::new() },
            spans: Vec::new(),
            logs,
            metrics: Vec::new(),
        }],
    };
    Cursor::normalize(&batch).expect("normalizes")
}

fn tools(fragments: &[Fragment]) -> Vec<(&str, &str, &ToolCall)> {
    fragments
        .iter()
        .filter_map(|f| match &f.body {
            FragmentBody::ToolCall(t) => Some((f.id.as_str(), f.report_id.as_str(), t)),
            _ => None,
        })
        .collect()
}

#[test]
fn shell_before_and_after_share_one_id() {
    let out = normalize(
        vec![text("user.id", "dev@example.com"), text("host.id", "dev-1")],
        vec![
            hook("beforeShellExecution", 1_000_000_000, vec![text("command", "ls")]),
            hook(
                "afterShellExecution",
                3_000_000_000,
                vec![text("command", "ls"), text("output", "a\nb"), int("duration", 1500)],
            ),
        ],
    );
    let calls = tools(&out);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].0, calls[1].0, "before and after pair up");
    assert!(calls[0].0.starts_with("shell-"));
    let after = calls[1].2;
    assert_eq!(after.result.as_deref(), Some("a\nb"));
    assert_eq!(after.duration_ms, Some(1500));
    assert_eq!(after.success, Some(true));
    assert_eq!(after.start_unix_nano, None, "the before-hook says when");
    assert_eq!(calls[0].2.start_unix_nano, Some(1_000_000_000));
    let first = &out[0];
    assert_eq!(first.trace_key, "prompt-gen-1");
    assert_eq!(first.attribution.session_id.as_deref(), Some("conv-1"));
    assert_eq!(first.attribution.user_id.as_deref(), Some("dev@example.com"));
    assert_eq!(first.attribution.device_id.as_deref(), Some("dev-1"));
}

#[test]
fn generic_tool_hooks_meet_the_shell_hooks_and_failures_win() {
    let out = normalize(
        Vec::new(),
        vec![
            hook(
                "preToolUse",
                1,
                vec![
                    text("tool_name", "Shell"),
                    text("tool_input", r#"{"command":"npm test"}"#),
                    text("command", "npm test"),
                    text("tool_use_id", "tu-1"),
                ],
            ),
            hook("beforeShellExecution", 2, vec![text("command", "npm test")]),
            hook(
                "postToolUseFailure",
                9,
                vec![
                    text("tool_name", "Shell"),
                    text("command", "npm test"),
                    text("failure_type", "timeout"),
                    text("error_message", "timed out after 30s"),
                ],
            ),
            hook(
                "preToolUse",
                3,
                vec![
                    text("tool_name", "Read"),
                    text("tool_input", r#"{"file_path":"a.ts"}"#),
                    text("tool_use_id", "tu-2"),
                ],
            ),
        ],
    );
    let calls = tools(&out);
    let shell: Vec<_> = calls.iter().filter(|c| c.0.starts_with("shell-")).collect();
    assert_eq!(shell.len(), 3, "three reports of one shell call");
    assert!(shell.iter().all(|c| c.0 == shell[0].0));
    let failure = shell.iter().find(|c| c.1.starts_with("0-")).expect("failure");
    assert_eq!(failure.2.success, Some(false));
    assert_eq!(failure.2.result.as_deref(), Some("timeout: timed out after 30s"));
    assert_eq!(failure.2.args.as_deref(), Some("npm test"));
    let read = calls.iter().find(|c| c.0 == "tool-tu-2").expect("read");
    assert_eq!(read.2.name.as_deref(), Some("Read"));
    assert_eq!(read.2.args.as_deref(), Some(r#"{"file_path":"a.ts"}"#));
    assert_eq!(read.2.success, None);
}

#[test]
fn prompt_response_stop_and_user_email_fallback() {
    let out = normalize(
        vec![text("user.email", "someone@else.com")],
        vec![
            hook("beforeSubmitPrompt", 1, vec![text("prompt", "fix it")]),
            hook("afterAgentResponse", 5, vec![text("text", "fixed")]),
            hook("stop", 6, vec![text("status", "completed"), int("loop_count", 0)]),
        ],
    );
    let prompts: Vec<&Prompt> = out
        .iter()
        .filter_map(|f| match &f.body {
            FragmentBody::Prompt(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(prompts.len(), 3);
    assert_eq!(prompts[0].text.as_deref(), Some("fix it"));
    assert_eq!(prompts[1].response.as_deref(), Some("fixed"));
    assert_eq!(prompts[2].response.as_deref(), Some("[response not exported by Cursor]"));
    assert!(
        out.iter().all(|f| f.attribution.user_id.as_deref() == Some("login@example.com")),
        "Cursor's login beats a resource user.email"
    );
    let models: Vec<&ModelCall> = out
        .iter()
        .filter_map(|f| match &f.body {
            FragmentBody::ModelCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(models.len(), 3);
    assert!(models.iter().all(|c| c.usage.is_none() && c.cost_usd.is_none()));
    assert!(out.iter().any(|f| matches!(&f.body,
        FragmentBody::Event(e) if e.name == "cursor.stop" && e.error.is_none())));
}

#[test]
fn session_and_tab_hooks_make_no_trace_and_unknown_hooks_are_events() {
    let mut start = hook("sessionStart", 1, vec![text("session_id", "conv-1")]);
    start.attributes.retain(|kv| kv.key != "generation_id");
    let out = normalize(
        Vec::new(),
        vec![
            start,
            hook("afterTabFileEdit", 2, vec![text("file_path", "a.ts")]),
            hook("somethingNew", 3, vec![text("detail", "x")]),
        ],
    );
    let events: Vec<&Event> = out
        .iter()
        .filter_map(|f| match &f.body {
            FragmentBody::Event(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].name, "cursor.somethingNew");
    assert_eq!(events[0].attributes_json, r#"{"detail":"x"}"#);
}

#[test]
fn mcp_errors_and_long_ids() {
    let long = "g".repeat(600);
    let mut record = hook(
        "afterMCPExecution",
        10,
        vec![
            text("tool_name", "query"),
            text("tool_input", "{}"),
            text("result_json", r#"{"content": [], "isError": true}"#),
        ],
    );
    for kv in &mut record.attributes {
        if kv.key == "generation_id" {
            kv.value = AttrValue::Text(long.clone());
        }
    }
    let out = normalize(Vec::new(), vec![record]);
    let call = tools(&out)[0].2;
    assert_eq!(call.success, Some(false));
    assert!(out.iter().all(|f| f.trace_key.len() <= 512 && f.id.len() <= 512));
}
