//! The parser on Gemini CLI 0.61.0's real capture (fixtures/gemini-cli/json-content-on): one
//! prompt, three model calls (a `gemini-3.5-flash-lite` routing call and two
//! `gemini-3.8-flash` main-loop calls; input 1234 incl. 200 cached, output 56, thoughts 10
//! each), one `run_shell_command` tool call.

use antenna_sdk::testing::{self, Capture, model_calls, prompts, tool_calls};
use antenna_sdk::{KeyValue, Signal};

use super::*;

const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/gemini-cli/json-content-on");
const PROMPT_KEY: &str = "prompt-bb835694-72ea-4e64-928c-e5ad661ee18d";

/// The capture's resource batches of these signals, as the host hands them to the parser.
fn capture(signals: &[Signal]) -> Vec<ResourceBatch> {
    let capture = Capture::load(CAPTURE).expect("the capture loads");
    capture.only(signals).resource_batches().expect("the capture decodes")
}

/// The parser on every batch, its output checked against the host's limits.
fn run(batches: &[ResourceBatch]) -> Vec<Fragment> {
    testing::normalize::<Gemini>(batches).expect("normalizes within the host's limits")
}

fn all() -> Vec<ResourceBatch> {
    capture(&[Signal::Metrics, Signal::Traces, Signal::Logs])
}

/// Remove these attribute keys from every log record and span.
fn strip(batches: &mut [ResourceBatch], keys: &[&str]) {
    for scope in batches.iter_mut().flat_map(|b| &mut b.scopes) {
        for log in &mut scope.logs {
            log.attributes.retain(|kv| !keys.contains(&kv.key.as_str()));
        }
        for span in &mut scope.spans {
            span.attributes.retain(|kv| !keys.contains(&kv.key.as_str()));
        }
    }
}

#[test]
fn claims_the_scope_and_the_event_prefix() {
    let claims = Gemini::describe().claims;
    assert_eq!(claims.scope_names, vec!["gemini-cli".to_owned()]);
    assert_eq!(claims.event_names, vec!["gemini_cli.*".to_owned()]);
    assert_eq!(Gemini::describe().agent, "gemini");
}

#[test]
fn every_report_of_the_prompt_is_keyed_by_prompt_id() {
    let fragments = run(&all());
    // The prompt id and the process that sent it (the capture's resource names it).
    let key = fragments
        .iter()
        .find(|f| !matches!(f.body, FragmentBody::UsageMetric(_)))
        .expect("a fragment")
        .trace_key
        .clone();
    assert!(key.starts_with(&format!("{PROMPT_KEY}-")), "{key}");
    for f in fragments.iter().filter(|f| !matches!(f.body, FragmentBody::UsageMetric(_))) {
        assert_eq!(f.trace_key, key, "{f:?}");
        assert!(f.also_known_as.is_empty());
        assert_eq!(f.attribution.user_id.as_deref(), Some("dev@example.com"));
        assert_eq!(f.attribution.device_id.as_deref(), Some("device-1234"));
        assert_eq!(f.attribution.session_id.as_deref(), Some("bb835694-72ea-4e64-928c-e5ad661ee18d"));
    }
}

#[test]
fn each_call_has_one_log_and_one_span_report() {
    let fragments = run(&all());
    let calls: Vec<&ModelCall> = model_calls(&fragments).into_iter().map(|(_, c)| c).collect();
    let logs: Vec<_> = calls.iter().filter(|c| c.channel == Channel::Log).collect();
    let spans: Vec<_> = calls.iter().filter(|c| c.channel == Channel::Span).collect();
    assert_eq!((logs.len(), spans.len()), (3, 3), "api_response and llm_call; the operation.details copy makes none");
    for log in &logs {
        let u = log.usage.expect("usage");
        assert_eq!((u.input, u.cache_read, u.output, u.reasoning, u.cache_creation), (1034, 200, 56, 10, 0));
        assert_eq!(log.cost_usd, None);
    }
    let models: Vec<_> = logs.iter().filter_map(|c| c.model.as_deref()).collect();
    assert_eq!(models, ["gemini-3.5-flash-lite", "gemini-3.8-flash", "gemini-3.8-flash"]);
    // Paired in time order, the log and span reports of each call line up.
    let end = |c: &&&ModelCall| c.end_unix_nano.unwrap_or(0);
    let mut logs_by_time = logs.clone();
    logs_by_time.sort_by_key(end);
    let mut spans_by_time = spans.clone();
    spans_by_time.sort_by_key(end);
    for (log, span) in logs_by_time.iter().zip(&spans_by_time) {
        assert_eq!(log.model, span.model);
    }
}

#[test]
fn prompt_and_the_main_loops_last_answer() {
    let fragments = run(&capture(&[Signal::Logs]));
    let prompts = prompts(&fragments);
    let texts: Vec<_> = prompts.iter().filter_map(|(_, p)| p.text.as_deref()).collect();
    assert_eq!(texts, ["List the files in the current directory using the shell, then summarize."]);
    let responses: Vec<_> = prompts.iter().filter_map(|(_, p)| p.response.as_deref()).collect();
    assert_eq!(
        responses,
        ["Done. The directory listing shows the files in the current working directory."],
        "the routing call's JSON and the tool-call turn are not answers"
    );
}

#[test]
fn the_tool_calls_event_and_span_meet() {
    let fragments = run(&all());
    let tools = tool_calls(&fragments);
    assert_eq!(tools.len(), 2);
    assert_eq!(tools[0].0.id, tools[1].0.id, "one call, two reports");
    let (event, span) =
        if tools[0].0.report_id.starts_with("0-log") { (tools[0].1, tools[1].1) } else { (tools[1].1, tools[0].1) };
    let args = r#"{"command":"ls","description":"List files in current directory"}"#;
    assert_eq!(event.name.as_deref(), Some("run_shell_command"));
    assert_eq!(event.args.as_deref(), Some(args));
    assert_eq!(span.args.as_deref(), Some(args));
    assert_eq!(event.result.as_deref(), Some("[result not exported by Gemini CLI]"));
    assert_eq!(span.result.as_deref(), Some("README.md\nmain.py"));
    assert_eq!(event.success, Some(true));
    assert_eq!(span.success, Some(true));
    assert_eq!(event.decision.as_deref(), Some("accept"));
    assert_eq!(event.duration_ms, Some(56));
}

#[test]
fn prompt_logging_off_gives_placeholders() {
    let mut batches = all();
    strip(
        &mut batches,
        &[
            "prompt",
            "response_text",
            "request_text",
            "function_args",
            "gen_ai.input.messages",
            "gen_ai.output.messages",
        ],
    );
    let fragments = run(&batches);
    let prompts = prompts(&fragments);
    assert!(
        prompts
            .iter()
            .filter_map(|(_, p)| p.text.as_deref())
            .all(|t| t == "[prompt not captured: telemetry.logPrompts is off]")
    );
    let responses: Vec<_> = prompts.iter().filter_map(|(_, p)| p.response.as_deref()).collect();
    assert_eq!(
        responses, ["[response not captured: telemetry.logPrompts is off]"; 2],
        "both main-loop calls, not the router"
    );
    let tools = tool_calls(&fragments);
    assert_eq!(tools.len(), 1, "the span has no request to name its call by");
    assert_eq!(tools[0].1.args.as_deref(), Some("[args not captured: telemetry.logPrompts is off]"));
    assert_eq!(model_calls(&fragments).len(), 6, "tokens are not content");
}

#[test]
fn a_record_login_is_not_the_user() {
    let mut batches = capture(&[Signal::Logs]);
    for batch in &mut batches {
        batch.resource_attributes.retain(|kv| kv.key != "user.id");
        for log in batch.scopes.iter_mut().flat_map(|s| &mut s.logs) {
            log.attributes
                .push(KeyValue { key: "user.email".into(), value: AttrValue::Text("login@example.com".into()) });
        }
    }
    let fragments = run(&batches);
    assert!(!fragments.is_empty());
    assert!(fragments.iter().all(|f| f.attribution.user_id.is_none()));
}

#[test]
fn api_errors_are_failed_calls_with_no_tokens() {
    let attrs = [
        ("event.name", "gemini_cli.api_error"),
        ("prompt_id", "p1"),
        ("model", "gemini-3.8-flash"),
        ("error", "quota exceeded"),
        ("status_code", "429"),
        ("duration_ms", "12"),
    ];
    let log = LogRecord {
        time_unix_nano: 2_000_000_000,
        observed_time_unix_nano: 0,
        severity_number: 0,
        severity_text: String::new(),
        event_name: String::new(),
        body: AttrValue::Text("API error".into()),
        attributes: attrs
            .iter()
            .map(|(k, v)| KeyValue { key: (*k).into(), value: AttrValue::Text((*v).into()) })
            .collect(),
        trace_id: String::new(),
        span_id: String::new(),
    };
    let mut out = Fragments::default();
    normalize_event(&Attrs::new(&[]), &log, &mut out);
    let fragments = out.into_vec();
    let (_, call) = model_calls(&fragments)[0];
    assert_eq!(call.error.as_deref(), Some("quota exceeded (status 429)"));
    assert_eq!(call.usage.map(|u| u.total()), Some(0));
    assert_eq!(call.start_unix_nano, Some(1_988_000_000));
    assert_eq!(fragments[0].trace_key, "prompt-p1");
}

#[test]
fn response_text_in_every_shape() {
    assert_eq!(response_text("plain words").as_deref(), Some("plain words"));
    assert_eq!(
        response_text(r#"{"a":1}"#).as_deref(),
        Some(r#"{"a":1}"#),
        "a JSON answer logged as text by older versions"
    );
    let chunks = r#"[{"candidates":[{"content":{"parts":[{"text":"thinking","thought":true},{"text":"Hel"}]}}]},
                     {"candidates":[{"content":{"parts":[{"text":"lo"}]}}]}]"#;
    assert_eq!(response_text(chunks).as_deref(), Some("Hello"));
    let call_only = r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"x"}}]}}]}"#;
    assert_eq!(response_text(call_only), None);
}

#[test]
fn metrics_are_usage_metrics_of_the_session() {
    let fragments = run(&capture(&[Signal::Metrics]));
    assert!(!fragments.is_empty());
    for f in &fragments {
        assert!(matches!(f.body, FragmentBody::UsageMetric(_)));
        assert_eq!(f.trace_key, "session-bb835694-72ea-4e64-928c-e5ad661ee18d");
        assert!(f.report_id.len() < 64, "long routing attributes are hashed");
    }
}

#[test]
fn hostile_input_never_panics() {
    let mut batches = all();
    for scope in batches.iter_mut().flat_map(|b| &mut b.scopes) {
        for log in &mut scope.logs {
            for kv in &mut log.attributes {
                match kv.key.as_str() {
                    "response_text" | "function_args" => kv.value = AttrValue::Text("[{\"candidates\":".into()),
                    "prompt_id" => kv.value = AttrValue::Text("p".repeat(10_000)),
                    "duration_ms" => kv.value = AttrValue::Integer(i64::MAX),
                    _ => {}
                }
            }
        }
        for span in &mut scope.spans {
            for kv in &mut span.attributes {
                if kv.key == "gen_ai.output.messages" {
                    kv.value = AttrValue::Text("{\"response\":[]}".into());
                }
            }
        }
    }
    let fragments = run(&batches);
    assert!(!fragments.is_empty());
    assert!(fragments.iter().all(|f| f.trace_key.len() <= 512 && f.id.len() <= 512 && f.report_id.len() <= 512));
}
