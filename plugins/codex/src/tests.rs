//! Native tests of the parser on hand-made records shaped like Codex 0.169's.

use super::*;
use antenna_sdk::testing::model_calls;
use antenna_sdk::{Scope, ScopeRecords, Signal, StatusCode};

const TRACE: &str = "89b68a01cebe081b6bfa21f9e3cd1ce8";
const TURN: &str = "01a20edd-bbf4-7503-98ec-85d332d5e0bd";
const CONVERSATION: &str = "01a20edd-bbd5-7062-9aa2-6854766387df";

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: AttrValue::Text(value.into()) }
}

/// A log event as Codex writes it: the name in `event.name`, a source location in the field.
fn log(name: &str, trace: &str, time: u64, extra: &[(&str, &str)]) -> LogRecord {
    let mut attributes =
        vec![text("event.name", name), text("conversation.id", CONVERSATION), text("model", "gpt-5-codex")];
    attributes.extend(extra.iter().map(|(k, v)| text(k, v)));
    LogRecord {
        time_unix_nano: 0,
        observed_time_unix_nano: time,
        severity_number: 9,
        severity_text: "INFO".into(),
        event_name: "event otel/src/events/session_telemetry.rs:1200".into(),
        body: AttrValue::Empty,
        attributes,
        trace_id: trace.into(),
        span_id: String::new(),
    }
}

fn completed(time: u64) -> LogRecord {
    log(
        "codex.sse_event",
        "",
        time,
        &[
            ("event.kind", "response.completed"),
            ("input_token_count", "1234"),
            ("output_token_count", "56"),
            ("cached_token_count", "200"),
            ("cache_write_token_count", "0"),
            ("reasoning_token_count", "10"),
        ],
    )
}

fn batch(signal: Signal, resource: Vec<KeyValue>, records: ScopeRecords) -> ResourceBatch {
    ResourceBatch { signal, resource_attributes: resource, scopes: vec![records] }
}

fn scope(name: &str) -> Scope {
    Scope { name: name.into(), version: String::new(), attributes: Vec::new() }
}

fn logs(records: Vec<LogRecord>) -> ResourceBatch {
    batch(
        Signal::Logs,
        vec![text("service.name", "codex_exec")],
        ScopeRecords { scope: scope("codex_otel.log_only"), spans: Vec::new(), logs: records, metrics: Vec::new() },
    )
}

fn span(name: &str, id: &str, parent: &str, start: u64, end: u64, attrs: &[(&str, &str)]) -> Span {
    Span {
        trace_id: TRACE.into(),
        span_id: id.into(),
        parent_span_id: parent.into(),
        name: name.into(),
        kind: 1,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: attrs.iter().map(|(k, v)| text(k, v)).collect(),
        events: Vec::new(),
        status: StatusCode::Unset,
        status_message: String::new(),
    }
}

fn spans(records: Vec<Span>) -> ResourceBatch {
    batch(
        Signal::Traces,
        vec![text("service.name", "codex_exec")],
        ScopeRecords { scope: scope("codex_exec"), spans: records, logs: Vec::new(), metrics: Vec::new() },
    )
}

fn run(batch: &ResourceBatch) -> Vec<Fragment> {
    Codex::normalize(batch).expect("normalizes")
}

fn usage_tuple(u: &Usage) -> (u64, u64, u64, u64, u64) {
    (u.input, u.output, u.cache_read, u.cache_creation, u.reasoning)
}

/// The host's claim matching: a trailing `*` is a prefix.
fn claimed(patterns: &[String], value: &str) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => p == value,
    })
}

#[test]
fn claims_cover_every_scope_and_event_codex_sends() {
    let claims = Codex::describe().claims;
    for scope in ["codex", "codex_exec", "codex_otel.log_only", "codex_otel::metrics::client", "codex_tui"] {
        assert!(claimed(&claims.scope_names, scope), "{scope}");
    }
    for name in ["codex.user_prompt", "codex.sse_event", "codex.sampling"] {
        assert!(claimed(&claims.event_names, name), "{name}");
    }
    for other in ["com.anthropic.claude_code.events", "gemini-cli", "github.copilot"] {
        assert!(!claimed(&claims.scope_names, other), "{other}");
    }
    assert!(claimed(&claims.service_names, "codex_cli_rs"));
}

#[test]
fn tokens_follow_the_request_they_answer_and_count_once_per_response() {
    let fragments = run(&logs(vec![
        log("codex.conversation_starts", "5f8212a9", 1_000, &[]),
        log("codex.user_prompt", TRACE, 2_000_000_000, &[("prompt", "List the files")]),
        log("codex.api_request", TRACE, 2_100_000_000, &[("duration_ms", "9"), ("http.response.status_code", "200")]),
        log("codex.sse_event", "", 2_150_000_000, &[("event.kind", "response.created"), ("duration_ms", "0")]),
        // Codex logs `response.completed` twice: a timing record, then the one with tokens.
        log("codex.sse_event", "", 2_200_000_000, &[("event.kind", "response.completed"), ("duration_ms", "10")]),
        completed(2_200_000_100),
    ]));
    let calls = model_calls(&fragments);
    assert_eq!(calls.len(), 1, "{fragments:#?}");
    let (fragment, call) = calls[0];
    assert_eq!(fragment.trace_key, format!("otel-{TRACE}"));
    assert_eq!(call.channel, Channel::Log);
    assert_eq!(call.model.as_deref(), Some("gpt-5-codex"));
    assert_eq!(call.usage.as_ref().map(usage_tuple), Some((1034, 46, 200, 0, 10)));
    assert_eq!(call.start_unix_nano, Some(2_091_000_000), "the request's start");
    assert_eq!(fragment.attribution.session_id.as_deref(), Some(CONVERSATION));

    let prompts: Vec<&Fragment> = fragments.iter().filter(|f| matches!(f.body, FragmentBody::Prompt(_))).collect();
    assert_eq!(prompts.len(), 1, "session-level events belong to no prompt");
    let FragmentBody::Prompt(prompt) = &prompts[0].body else { unreachable!() };
    assert_eq!(prompt.text.as_deref(), Some("List the files"));
    assert_eq!(prompt.response.as_deref(), Some("[response not exported by Codex]"));
    assert_eq!(fragments.len(), 2, "{fragments:#?}");
}

#[test]
fn a_redacted_prompt_becomes_a_placeholder() {
    let fragments =
        run(&logs(vec![log("codex.user_prompt", TRACE, 1, &[("prompt", "[REDACTED]"), ("prompt_length", "72")])]));
    let FragmentBody::Prompt(prompt) = &fragments[0].body else { panic!("{fragments:#?}") };
    assert_eq!(prompt.text.as_deref(), Some("[prompt not captured: log_user_prompt is off]"));
}

#[test]
fn a_response_whose_request_went_in_an_earlier_batch_is_session_usage_only() {
    let fragments = run(&logs(vec![completed(5)]));
    assert!(model_calls(&fragments).is_empty());
    assert_eq!(fragments.len(), 1);
    let FragmentBody::UsageMetric(metric) = &fragments[0].body else { panic!("{fragments:#?}") };
    assert_eq!(metric.name, "codex.response.usage");
    assert_eq!(metric.value, 1290.0);
    assert_eq!(fragments[0].attribution.session_id.as_deref(), Some(CONVERSATION));
}

#[test]
fn without_trace_ids_the_records_follow_their_user_prompt() {
    let fragments = run(&logs(vec![
        log("codex.user_prompt", "", 100, &[("prompt", "hi")]),
        log("codex.api_request", "", 200, &[("duration_ms", "0")]),
        completed(300),
        log("codex.tool_result", "", 400, &[("call_id", "call_1"), ("tool_name", "exec_command"), ("success", "true")]),
    ]));
    assert_eq!(fragments.len(), 3);
    let key = format!("codex-{CONVERSATION}-100");
    assert!(fragments.iter().all(|f| f.trace_key == key), "{fragments:#?}");
}

#[test]
fn tool_result_and_decision_make_one_tool_call() {
    let fragments = run(&logs(vec![
        log(
            "codex.tool_decision",
            TRACE,
            100,
            &[("call_id", "call_1"), ("tool_name", "exec_command"), ("decision", "approved"), ("source", "Config")],
        ),
        log(
            "codex.tool_result",
            TRACE,
            62_000_100,
            &[
                ("call_id", "call_1"),
                ("tool_name", "exec_command"),
                ("arguments", r#"{"cmd": "ls"}"#),
                ("output", "README.md\n"),
                ("duration_ms", "62"),
                ("success", "true"),
            ],
        ),
    ]));
    let tools: Vec<(&Fragment, &ToolCall)> = fragments
        .iter()
        .filter_map(|f| match &f.body {
            FragmentBody::ToolCall(t) => Some((f, t)),
            _ => None,
        })
        .collect();
    assert_eq!(tools.len(), 2);
    assert!(tools.iter().all(|(f, _)| f.id == "call_1"));
    let decision = tools.iter().find_map(|(_, t)| t.decision.clone());
    assert_eq!(decision.as_deref(), Some("approved (config)"));
    let (result_fragment, result) = tools.iter().find(|(_, t)| t.result.is_some()).copied().expect("result");
    assert!(result_fragment.report_id.starts_with("0-"), "the result outranks the decision");
    assert_eq!(result.args.as_deref(), Some(r#"{"cmd": "ls"}"#));
    assert_eq!(result.success, Some(true));
    assert_eq!(result.start_unix_nano, Some(100));
}

#[test]
fn only_meaningful_spans_are_kept() {
    let turn = [("turn.id", TURN)];
    let mut dispatch = span("dispatch_tool_call_with_state", "d1", "e1", 500, 610, &[]);
    dispatch.events.push(SpanEvent {
        time_unix_nano: 575_000_000,
        name: "event otel/src/tool_result.rs:54".into(),
        attributes: vec![
            text("event.name", "codex.tool_result"),
            text("call_id", "call_1"),
            text("tool_name", "exec_command"),
            text("duration_ms", "62"),
            text("success", "true"),
            text("arguments_length", "13"),
        ],
    });
    let mut records = vec![
        span("turn/start", "ts", "", 100, 110, &turn),
        span("session_task.turn", "t1", "ts", 120, 900_000_000, &turn),
        span(
            "try_run_sampling_request",
            "r1",
            "t1",
            200_000_000,
            600_000_000,
            &[("turn_id", TURN), ("model", "gpt-5-codex")],
        ),
        span("receiving_stream", "rs", "r1", 210_000_000, 590_000_000, &[]),
        span("handle_responses", "h0", "rs", 220_000_000, 230_000_000, &[]),
        span(
            "handle_responses",
            "h1",
            "rs",
            300_000_000,
            400_000_000,
            &[
                ("gen_ai.usage.input_tokens", "1234"),
                ("gen_ai.usage.cache_read.input_tokens", "200"),
                ("gen_ai.usage.output_tokens", "56"),
                ("codex.usage.reasoning_output_tokens", "10"),
            ],
        ),
        span(
            "exec_command",
            "e1",
            "h1",
            496_000_000,
            605_000_000,
            &[
                ("tool_name", "exec_command"),
                ("call_id", "call_1"),
                ("turn.id", TURN),
                ("conversation.id", CONVERSATION),
                ("codex.tool.phase", "dispatch"),
                ("aborted", "false"),
            ],
        ),
        dispatch,
    ];
    for i in 0..100 {
        records.push(span("fs.read_file", &format!("f{i}"), "t1", 1, 2, &[]));
    }
    let fragments = run(&spans(records));
    assert_eq!(fragments.len(), 4, "{fragments:#?}");

    let calls = model_calls(&fragments);
    assert_eq!(calls.len(), 1);
    let (fragment, call) = calls[0];
    assert_eq!(call.channel, Channel::Span);
    assert_eq!(call.model.as_deref(), Some("gpt-5-codex"), "from the sampling span");
    assert_eq!(call.start_unix_nano, Some(200_000_000));
    assert_eq!(call.usage.as_ref().map(usage_tuple), Some((1034, 46, 200, 0, 10)));
    assert_eq!(fragment.trace_key, format!("otel-{TRACE}"));
    assert_eq!(
        fragment.attribution.session_id.as_deref(),
        Some(CONVERSATION),
        "the session, from another span of the same trace"
    );

    let prompt = fragments.iter().find(|f| matches!(f.body, FragmentBody::Prompt(_))).expect("the turn");
    assert_eq!(prompt.trace_key, format!("prompt-{TURN}"));
    assert_eq!(prompt.also_known_as, vec![format!("otel-{TRACE}")]);

    let tools: Vec<&ToolCall> = fragments
        .iter()
        .filter_map(|f| match &f.body {
            FragmentBody::ToolCall(t) if f.id == "call_1" => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(tools.len(), 2, "the dispatch span and its result event");
    assert!(tools.iter().any(|t| t.success == Some(true) && t.duration_ms == Some(62)));
    assert!(tools.iter().all(|t| t.args.is_none() && t.result.is_none()));
}

#[test]
fn the_login_attributes_unless_the_resource_names_the_user() {
    let record =
        log("codex.user_prompt", TRACE, 1, &[("user.email", "dev@example.com"), ("user.account_id", "acct-1")]);
    let fragments = run(&logs(vec![record.clone()]));
    assert_eq!(fragments[0].attribution.user_id.as_deref(), Some("dev@example.com"));

    let mut batch = logs(vec![record]);
    batch.resource_attributes.push(text("user.id", "override@example.com"));
    batch.resource_attributes.push(text("host.id", "device-1"));
    let fragments = run(&batch);
    assert_eq!(fragments[0].attribution.user_id.as_deref(), Some("override@example.com"));
    assert_eq!(fragments[0].attribution.device_id.as_deref(), Some("device-1"));
}

#[test]
fn cache_writes_count_once() {
    let attrs = [
        ("gen_ai.usage.input_tokens", "1000"),
        ("gen_ai.usage.cache_read.input_tokens", "200"),
        ("gen_ai.usage.cache_write.input_tokens", "100"),
        ("gen_ai.usage.output_tokens", "50"),
        ("codex.usage.reasoning_output_tokens", "10"),
    ]
    .map(|(k, v)| text(k, v));
    let usage = span_usage(&Attrs::new(&attrs)).expect("usage");
    assert_eq!(usage_tuple(&usage), (700, 40, 200, 100, 10));
    assert_eq!(usage.total(), 1050);
}

#[test]
fn failed_requests_are_errors_not_model_calls() {
    let fragments = run(&logs(vec![
        log("codex.user_prompt", TRACE, 1, &[("prompt", "x")]),
        log(
            "codex.api_request",
            TRACE,
            2,
            &[("http.response.status_code", "500"), ("error.message", "upstream failed")],
        ),
    ]));
    assert!(model_calls(&fragments).is_empty());
    let error = fragments.iter().find_map(|f| match &f.body {
        FragmentBody::Event(e) => e.error.clone(),
        _ => None,
    });
    assert_eq!(error.as_deref(), Some("upstream failed (status 500)"));
}

/// Codex 0.169's real capture (fixtures/codex/binary-content-on, protobuf): one prompt, two
/// model calls (input 1234 of which 200 cached, output 56 of which 10 reasoning), one
/// `exec_command`. Each call is reported on both channels; the host pairs them.
#[test]
fn the_real_capture_reports_each_call_once_per_channel() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/codex/binary-content-on");
    let capture = antenna_sdk::testing::Capture::load(dir).expect("the capture loads");
    let fragments = capture.normalize::<Codex>().expect("normalizes within the host's limits");
    let calls = model_calls(&fragments);
    for channel in [Channel::Log, Channel::Span] {
        let of_channel: Vec<_> = calls.iter().filter(|(_, c)| c.channel == channel).collect();
        assert_eq!(of_channel.len(), 2, "{channel:?}");
        for (f, call) in of_channel {
            assert_eq!(usage_tuple(&call.usage.expect("usage")), (1034, 46, 200, 0, 10));
            assert_eq!(call.model.as_deref(), Some("gpt-5-codex"));
            let keys: Vec<&String> = std::iter::once(&f.trace_key).chain(&f.also_known_as).collect();
            assert!(keys.iter().any(|k| *k == "otel-89b68a01cebe081b6bfa21f9e3cd1ce8"), "{keys:?}");
        }
    }
    let tools = antenna_sdk::testing::tool_calls(&fragments);
    assert!(tools.iter().all(|(f, _)| f.id == "call_63f24db06c764e6d8c40"), "{tools:#?}");
    assert!(tools.iter().any(|(_, t)| t.result.as_deref().is_some_and(|r| r.ends_with("README.md\nmain.py\n"))));
}
