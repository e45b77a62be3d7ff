//! The generic parser natively, on the Copilot CLI and Gemini CLI captures "as if they had no
//! parser of their own", and on hand-made records for what those captures do not show.

use std::collections::BTreeMap;

use antenna_sdk::testing::{self, Capture, model_calls, prompts, tool_calls};
use antenna_sdk::{AttrValue, KeyValue, Scope, ScopeRecords, Signal, SpanEvent, StatusCode, Usage};

use super::*;

fn capture(run: &str) -> Vec<Fragment> {
    let dir = format!("{}/../../fixtures/{run}", env!("CARGO_MANIFEST_DIR"));
    Capture::load(&dir).and_then(|c| c.normalize::<GenAi>()).expect("normalizes within the host's limits")
}

fn usage_tuple(u: &Usage) -> (u64, u64, u64, u64, u64) {
    (u.input, u.cache_read, u.cache_creation, u.output, u.reasoning)
}

/// The usage the host would count per trace: reports of one call (same id) merge; calls seen
/// on one channel only are paired across channels in time order and counted once, the log
/// report preferred.
fn counted(fragments: &[Fragment]) -> BTreeMap<&str, Usage> {
    let mut calls: BTreeMap<(&str, &str), Vec<&ModelCall>> = BTreeMap::new();
    for (f, call) in model_calls(fragments) {
        calls.entry((f.trace_key.as_str(), f.id.as_str())).or_default().push(call);
    }
    let mut per_trace: BTreeMap<&str, [Vec<&ModelCall>; 3]> = BTreeMap::new();
    for ((trace, _), reports) in calls {
        let channel = match (
            reports.iter().any(|c| c.channel == Channel::Log),
            reports.iter().any(|c| c.channel == Channel::Span),
        ) {
            (true, true) => 0,
            (true, false) => 1,
            _ => 2,
        };
        per_trace.entry(trace).or_default()[channel].push(reports[0]);
    }
    let mut totals = BTreeMap::new();
    for (trace, [both, mut logs, mut spans]) in per_trace {
        let end = |c: &&ModelCall| c.end_unix_nano.unwrap_or(0);
        logs.sort_by_key(end);
        spans.sort_by_key(end);
        let mut counted: Vec<&ModelCall> = both;
        for i in 0..logs.len().max(spans.len()) {
            counted.extend(logs.get(i).or(spans.get(i)).copied());
        }
        let total: &mut Usage = totals.entry(trace).or_default();
        for usage in counted.iter().filter_map(|c| c.usage) {
            *total += usage;
        }
    }
    totals
}

#[test]
fn claims_only_span_and_event_names() {
    let info = GenAi::describe();
    assert_eq!((info.name.as_str(), info.agent.as_str()), ("genai", "genai"));
    assert!(info.claims.scope_names.is_empty(), "a scope claim would outrank the dedicated parsers");
    assert!(info.claims.service_names.is_empty());
    for name in ["invoke_agent", "chat *", "execute_tool *", "gen_ai.*"] {
        assert!(info.claims.event_names.iter().any(|c| c == name), "{name}");
    }
}

/// Copilot CLI's capture (GenAI spans only): the same tokens and tool call as the Copilot
/// parser (tests/tests/copilot.rs): two `chat gpt-4.1` calls of input 1234 (200 of them cache
/// reads) and output 56 each, one `bash` call. What genai does not know of Copilot: the
/// `<current_datetime>` block it adds to the prompt stays, and its billing multiplier
/// (`github.copilot.cost`) is not shown.
#[test]
fn copilot_as_if_it_had_no_parser() {
    let fragments = capture("copilot-cli/json-content-on");
    let trace = "otel-6b064063a932d08f630c1f649aabcbc2";
    assert!(fragments.iter().all(|f| f.trace_key == trace), "one user message, one trace");

    let calls = model_calls(&fragments);
    assert_eq!(calls.len(), 2, "the chat spans; invoke_agent's sum is not a call");
    for (f, call) in &calls {
        assert!(f.id.starts_with("response-chatcmpl-"));
        assert_eq!((call.channel, call.model.as_deref()), (Channel::Span, Some("gpt-4.1")));
        assert_eq!(usage_tuple(&call.usage.expect("usage")), (1034, 200, 0, 56, 0));
        assert_eq!(call.cost_usd, None);
    }
    let totals = counted(&fragments);
    assert_eq!(usage_tuple(&totals[trace]), (2 * 1034, 2 * 200, 0, 2 * 56, 0), "as the Copilot parser counts");

    let tools = tool_calls(&fragments);
    assert_eq!(tools.len(), 1);
    let (f, bash) = tools[0];
    assert_eq!(f.id, "call_f3714c5b509f4157addc");
    assert_eq!(bash.name.as_deref(), Some("bash"));
    assert_eq!(
        bash.args.as_deref(),
        Some(r#"{"command":"ls","description":"List files","mode":"sync","initial_wait":10}"#)
    );
    assert_eq!(bash.result.as_deref(), Some("README.md\nmain.py\n<shellId: 0 completed with exit code 0>"));
    assert_eq!((bash.success, bash.duration_ms), (Some(true), Some(64)));

    // The invoke_agent report ranks first, so its text is the prompt.
    let (first, prompt) = prompts(&fragments).into_iter().min_by_key(|(f, _)| &f.report_id).expect("a prompt");
    assert!(first.report_id.starts_with("0-"));
    assert!(prompt.text.as_deref().is_some_and(|t| t.starts_with("<current_datetime>")
        && t.ends_with("\n\nList the files in the current directory using the shell, then summarize.")));
    assert_eq!(
        prompt.response.as_deref(),
        Some("Done. The directory listing shows the files in the current working directory.")
    );
    for f in &fragments {
        assert_eq!(f.attribution.user_id.as_deref(), Some("dev@example.com"));
        assert_eq!(f.attribution.device_id.as_deref(), Some("device-1234"));
        assert_eq!(f.attribution.session_id.as_deref(), Some("b73fe7d9-0115-42d7-a406-d026322ae8f5"));
    }
}

/// Gemini CLI's capture: its spans name their operations `llm_call` and `tool_call` (not the
/// conventions' names), carry usage, and start a new OTel trace per call. Judged by what they
/// carry, they give three model calls and one tool call, each in a trace of its own. The spans
/// and the inference-details events report `gen_ai.usage.input_tokens` / `output_tokens` only:
/// without the cache-read count the 200 cached tokens of each call count as fresh input, and
/// the 10 thought tokens (in Gemini's own `api_response` event) are not there. So genai gives
/// input 3 × 1234, output 3 × 56, where the Gemini parser gives input 3 × 1034, cache reads
/// 3 × 200, output 3 × 56 and reasoning 3 × 10 (tests/tests/gemini.rs): the same calls and
/// models, 30 fewer tokens, 600 of them in the wrong column.
#[test]
fn gemini_as_if_it_had_no_parser() {
    let fragments = capture("gemini-cli/json-content-on");
    let calls = model_calls(&fragments);
    let spans: Vec<_> = calls.iter().filter(|(_, c)| c.channel == Channel::Span).collect();
    let models: Vec<_> = spans.iter().filter_map(|(_, c)| c.model.as_deref()).collect();
    assert_eq!(models, ["gemini-3.5-flash-lite", "gemini-3.8-flash", "gemini-3.8-flash"]);
    for (_, call) in &calls {
        assert_eq!(usage_tuple(&call.usage.expect("usage")), (1234, 0, 0, 56, 0));
    }
    // Of the three inference-details events with usage, only the first carries a trace id; it
    // meets its span in the same trace and the two count as one call.
    let logs: Vec<_> = calls.iter().filter(|(_, c)| c.channel == Channel::Log).collect();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0.trace_key, "otel-a0197301458857971fdcb7f440d5ce35");
    let totals = counted(&fragments);
    assert_eq!(totals.len(), 3, "one trace per model call");
    let sum = totals.values().fold((0, 0, 0, 0, 0), |acc, u| {
        let u = usage_tuple(u);
        (acc.0 + u.0, acc.1 + u.1, acc.2 + u.2, acc.3 + u.3, acc.4 + u.4)
    });
    assert_eq!(sum, (3 * 1234, 0, 0, 3 * 56, 0));

    let tools = tool_calls(&fragments);
    assert_eq!(tools.len(), 1);
    let (f, shell) = tools[0];
    assert_eq!(f.trace_key, "otel-239f8246118e5ae8ad5e2f3ea8008029", "its own trace too");
    assert_eq!(shell.name.as_deref(), Some("run_shell_command"));
    assert_eq!((shell.success, shell.duration_ms), (Some(true), Some(26)));
    assert_eq!((shell.args.as_deref(), shell.result.as_deref()), (None, None), "not in the conventions' attributes");
    for f in &fragments {
        assert_eq!(f.attribution.user_id.as_deref(), Some("dev@example.com"));
        assert_eq!(f.attribution.session_id.as_deref(), Some("bb835694-72ea-4e64-928c-e5ad661ee18d"));
    }
}

// ---- hand-made records --------------------------------------------------------------------

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue { key: key.into(), value: AttrValue::Text(value.into()) }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue { key: key.into(), value: AttrValue::Integer(value) }
}

fn span(name: &str, id: &str, start_ms: u64, end_ms: u64, attributes: Vec<KeyValue>) -> Span {
    Span {
        trace_id: TRACE.into(),
        span_id: id.into(),
        parent_span_id: String::new(),
        name: name.into(),
        kind: 3,
        start_time_unix_nano: start_ms * 1_000_000,
        end_time_unix_nano: end_ms * 1_000_000,
        attributes,
        events: Vec::<SpanEvent>::new(),
        status: StatusCode::Unset,
        status_message: String::new(),
    }
}

fn details(time_ms: u64, trace: &str, attributes: Vec<KeyValue>) -> LogRecord {
    LogRecord {
        time_unix_nano: time_ms * 1_000_000,
        observed_time_unix_nano: 0,
        severity_number: 9,
        severity_text: String::new(),
        event_name: "gen_ai.client.inference.operation.details".into(),
        body: AttrValue::Empty,
        attributes,
        trace_id: trace.into(),
        span_id: String::new(),
    }
}

fn run(spans: Vec<Span>, logs: Vec<LogRecord>) -> Vec<Fragment> {
    let batch = ResourceBatch {
        signal: if logs.is_empty() { Signal::Traces } else { Signal::Logs },
        resource_attributes: vec![kv("service.name", "acme-agent"), kv("host.id", "laptop-7")],
        scopes: vec![ScopeRecords {
            scope: Scope { name: "acme.agent".into(), version: String::new(), attributes: Vec::new() },
            spans,
            logs,
            metrics: Vec::new(),
        }],
    };
    testing::normalize::<GenAi>(&[batch]).expect("normalizes within the host's limits")
}

fn messages(role: &str, text: &str) -> String {
    format!(r#"[{{"role":"{role}","parts":[{{"type":"text","content":"{text}"}}]}}]"#)
}

/// An agent without `invoke_agent` spans: its calls' messages give the prompt, their usage
/// every token once (cache writes and reasoning included), a failed command a failed call.
#[test]
fn an_agent_with_inference_and_tool_spans_only() {
    let chat = |id: &str, start, response: &str, input: &str, output: &str| {
        span(
            "generate_content acme-large",
            id,
            start,
            start + 100,
            vec![
                kv("gen_ai.operation.name", "generate_content"),
                kv("gen_ai.conversation.id", "conv-9"),
                kv("gen_ai.response.id", response),
                int("gen_ai.usage.input_tokens", 1000),
                int("gen_ai.usage.cache_read.input_tokens", 300),
                int("gen_ai.usage.cache_creation.input_tokens", 100),
                int("gen_ai.usage.output_tokens", 50),
                int("gen_ai.usage.reasoning.output_tokens", 20),
                kv("gen_ai.input.messages", input),
                kv("gen_ai.output.messages", output),
                kv("enduser.pseudo.id", "hash-1"),
            ],
        )
    };
    let mut tool = span(
        "execute_tool run_tests",
        "t1",
        1150,
        1400,
        vec![kv("gen_ai.tool.call.id", "call-1"), kv("gen_ai.tool.call.arguments", "{}"), int("process.exit.code", 1)],
    );
    tool.attributes.push(kv("gen_ai.tool.call.result", "1 failed"));
    let fragments = run(
        vec![
            chat("c1", 1000, "r1", &messages("user", "Run the tests."), "[]"),
            tool,
            chat("c2", 1500, "r2", &messages("user", "Run the tests."), &messages("assistant", "One test fails.")),
        ],
        // The same second call as an event: it shares the response id, so it merges.
        vec![details(
            1600,
            TRACE,
            vec![
                kv("gen_ai.operation.name", "generate_content"),
                kv("gen_ai.response.id", "r2"),
                int("gen_ai.usage.input_tokens", 1000),
            ],
        )],
    );
    let calls = model_calls(&fragments);
    assert_eq!(calls.len(), 3);
    let span_usage: Vec<_> = calls
        .iter()
        .filter(|(_, c)| c.channel == Channel::Span)
        .map(|(_, c)| usage_tuple(&c.usage.expect("usage")))
        .collect();
    assert_eq!(span_usage, [(600, 300, 100, 30, 20); 2]);
    let models: Vec<_> = calls.iter().map(|(_, c)| c.model.as_deref()).collect();
    assert_eq!(models, [Some("acme-large"), Some("acme-large"), None], "from the span name; the event names none");
    assert_eq!(counted(&fragments).len(), 1);
    assert_eq!(
        usage_tuple(&counted(&fragments)[&*format!("otel-{TRACE}")]),
        (1200, 600, 200, 60, 40),
        "two calls, not three"
    );

    let texts: Vec<_> = prompts(&fragments).iter().filter_map(|(_, p)| p.text.as_deref()).collect();
    assert_eq!(texts, ["Run the tests.", "Run the tests."]);
    let responses: Vec<_> = prompts(&fragments).iter().filter_map(|(_, p)| p.response.as_deref()).collect();
    assert_eq!(responses, ["One test fails."]);

    let (f, tool) = tool_calls(&fragments)[0];
    assert_eq!((f.id.as_str(), tool.name.as_deref()), ("call-1", Some("run_tests")));
    assert_eq!((tool.success, tool.result.as_deref()), (Some(false), Some("1 failed")));

    let chats: Vec<_> = fragments.iter().filter(|f| f.report_id.starts_with("2-span-c")).collect();
    assert_eq!(chats.len(), 2);
    for f in chats {
        assert_eq!(f.attribution.session_id.as_deref(), Some("conv-9"), "gen_ai.conversation.id is the session");
        assert_eq!(f.attribution.user_id.as_deref(), Some("hash-1"), "the pseudonymous id, as the SDK's rules say");
        assert_eq!(f.attribution.device_id.as_deref(), Some("laptop-7"));
    }
}

#[test]
fn what_is_left_out() {
    let mut plumbing = span("load_config", "p1", 0, 1, Vec::new());
    let mut broken = span("load_config", "p2", 0, 1, Vec::new());
    broken.status = StatusCode::Error;
    broken.status_message = "config unreadable".into();
    let mut untraced = span("chat m", "u1", 0, 1, vec![int("gen_ai.usage.input_tokens", 5)]);
    untraced.trace_id.clear();
    plumbing.attributes.push(kv("gen_ai.conversation.id", "conv-9"));
    let request_half = details(5, TRACE, vec![kv("gen_ai.operation.name", "chat"), kv("gen_ai.request.model", "m")]);
    let no_trace = details(6, "", vec![kv("gen_ai.operation.name", "chat"), int("gen_ai.usage.input_tokens", 5)]);
    let other_event = LogRecord { event_name: "acme.startup".into(), ..details(7, TRACE, Vec::new()) };
    let fragments = run(vec![plumbing, broken, untraced], vec![request_half, no_trace, other_event]);
    assert_eq!(fragments.len(), 1, "{fragments:#?}");
    let event = fragments[0].event().expect("the failure, as an event");
    assert_eq!(event.error.as_deref(), Some("config unreadable"));
}

#[test]
fn hostile_input_never_panics_and_fits_the_host() {
    let long = "x".repeat(5_000);
    let spans = vec![
        span(
            &format!("chat {long}"),
            &long,
            2,
            1,
            vec![
                kv("gen_ai.response.id", &long),
                kv("gen_ai.usage.input_tokens", "-5"),
                kv("gen_ai.input.messages", "[{\"role\":\"user\",\"parts\":"),
            ],
        ),
        span("execute_tool", "t", 0, 0, vec![kv("gen_ai.tool.call.id", &long), kv("gen_ai.tool.name", "")]),
        span("invoke_agent", "a", 0, 0, vec![kv("gen_ai.input.messages", &"[".repeat(100_000))]),
    ];
    let fragments = run(spans, Vec::new());
    assert!(!fragments.is_empty());
    let (_, call) = model_calls(&fragments)[0];
    assert_eq!(call.duration_ms, Some(0), "an end before the start is no negative duration");
}
