//! Codex CLI's real capture through a real host: one exact per-prompt trace from logs and
//! spans together, logs alone, spans alone (without flooding the trace list), in any order,
//! idempotent under re-posting, and still Codex under a stale `service.name`.

use antenna_e2e::{Capture, TestHost, of_agent};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;
use serde_json::{Value, json};

const CAPTURE: &str = "codex/binary-content-on";
const SESSION: &str = "01a20edd-bbd5-7062-9aa2-6854766387df";
/// The smallest key of the trace: the turn's OTel trace id.
const TRACE_ID: &str = "otel-89b68a01cebe081b6bfa21f9e3cd1ce8";
const PROMPT: &str = "List the files in the current directory using the shell, then summarize.";
const RESPONSE: &str = "[response not exported by Codex]";
const OUTPUT: &str = "Chunk ID: e144e2\nWall time: 0.0000 seconds\nProcess exited with code 0\nOriginal token count: 5\nOutput:\nREADME.md\nmain.py\n";

/// The capture holds one prompt with two model calls (the `ls` tool call, then the summary),
/// each reporting input 1234 (200 of them cached) and output 56 (10 of them reasoning). Codex
/// runs with an API key (no `user.email`) and ignores OTEL_RESOURCE_ATTRIBUTES (no `user.id`,
/// no `host.id`): the trace has no user and no device.
fn assert_totals(trace: &Value) {
    assert_eq!(trace["agent"], "codex", "{trace}");
    assert_eq!(trace["input_tokens"], 2 * (1234 - 200), "{trace}");
    assert_eq!(trace["cache_read_tokens"], 2 * 200);
    assert_eq!(trace["cache_creation_tokens"], 0);
    assert_eq!(trace["output_tokens"], 2 * (56 - 10));
    assert_eq!(trace["reasoning_tokens"], 2 * 10);
    assert_eq!(trace["models"], json!(["gpt-5-codex"]));
    // Codex sends no cost: the price table's, over the normalized tokens.
    assert_eq!(trace["cost_source"], "price-table");
    assert!(trace["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{trace}");
    assert_eq!(trace["session_id"], SESSION);
    assert_eq!(trace["user_id"], Value::Null);
    assert_eq!(trace["device_id"], Value::Null);
    assert_eq!(trace["response"], RESPONSE);
    assert_eq!(trace["id"], TRACE_ID);
}

fn assert_full_tool_call(trace: &Value) {
    let tools = trace["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1, "{tools:#?}");
    let exec = &tools[0];
    assert_eq!(exec["id"], "call_63f24db06c764e6d8c40");
    assert_eq!(exec["name"], "exec_command");
    assert_eq!(exec["args"], r#"{"cmd": "ls"}"#);
    assert_eq!(exec["result"], OUTPUT);
    assert_eq!(exec["success"], true);
    assert_eq!((exec["decision"].as_str(), exec["decision_source"].as_str()), (Some("approved"), Some("config")));
    assert_eq!(exec["duration_ms"], 62);
}

async fn only_trace(host: &TestHost) -> Value {
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1, "one prompt, one trace: {traces:#?}");
    traces[0].clone()
}

async fn observations(host: &TestHost, trace: &Value) -> Vec<Value> {
    let id = trace["id"].as_str().expect("id");
    let detail = host.get_json(&format!("/api/public/traces/{id}")).await;
    detail["observations"].as_array().cloned().expect("observations")
}

fn of_type<'a>(observations: &'a [Value], kind: &str) -> Vec<&'a Value> {
    observations.iter().filter(|o| o["type"] == kind).collect()
}

#[tokio::test]
async fn capture_gives_one_exact_trace() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CAPTURE)).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["prompt"], PROMPT);
    assert_full_tool_call(&trace);
    assert_eq!(trace["errors"], json!([]));
    // The turn span opens the trace (22.3286s), before the prompt event (22.4149s).
    assert!(
        trace["start_time"].as_str().is_some_and(|t| t.starts_with("2026-11-24T18:42:22.328")),
        "{}",
        trace["start_time"]
    );

    // Two model calls, each reported on logs and on spans, each counted once; no runtime span
    // became an observation.
    let observations = observations(&host, &trace).await;
    let llm = of_type(&observations, "llm_call");
    assert_eq!(llm.len(), 2, "{observations:#?}");
    for call in &llm {
        assert_eq!(call["reported_via"], json!(["log", "span"]), "{call}");
        assert_eq!(call["model"], "gpt-5-codex");
        assert_eq!(
            call["usage"],
            json!({"input": 1034, "output": 46, "cache_read": 200, "cache_creation": 0, "reasoning": 10})
        );
    }
    assert_eq!(of_type(&observations, "tool_call").len(), 1);
    assert_eq!(observations.len(), 3, "{observations:#?}");
    let times: Vec<&str> = observations.iter().filter_map(|o| o["start_time"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "observations in time order");

    let session = host.get_json(&format!("/api/public/sessions/{SESSION}")).await;
    assert_eq!(session["trace_count"], 1);
    assert_eq!(session["input_tokens"], 2 * 1034);
}

#[tokio::test]
async fn reversed_order_and_reposting_change_nothing() {
    let capture = Capture::load(CAPTURE);

    let host = TestHost::start().await;
    host.replay(&capture.reversed()).await;
    let reversed = only_trace(&host).await;
    assert_totals(&reversed);
    assert_full_tool_call(&reversed);
    let reversed_observations = observations(&host, &reversed).await;

    let host = TestHost::start().await;
    host.replay(&capture).await;
    let in_order = only_trace(&host).await;
    // Each host made its own project: everything but the project id must agree.
    let without_project = |trace: &Value| {
        let mut trace = trace.clone();
        trace.as_object_mut().map(|t| t.remove("project_id"));
        trace
    };
    assert_eq!(without_project(&reversed), without_project(&in_order), "the trace depends on arrival order");
    assert_eq!(observations(&host, &in_order).await, reversed_observations);

    let users_before = host.get_json("/api/public/users").await;
    let observations_before = observations(&host, &in_order).await;
    host.replay(&capture).await;
    host.replay(&capture.reversed()).await;
    let again = only_trace(&host).await;
    assert_eq!(again, in_order, "re-posting changed the trace");
    assert_eq!(observations(&host, &again).await, observations_before);
    assert_eq!(host.get_json("/api/public/users").await, users_before);
}

#[tokio::test]
async fn logs_alone_give_the_right_totals() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CAPTURE).only(&["logs"])).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["prompt"], PROMPT);
    assert_full_tool_call(&trace);
    // Without the turn span, the prompt event opens the trace.
    assert!(
        trace["start_time"].as_str().is_some_and(|t| t.starts_with("2026-11-24T18:42:22.414")),
        "{}",
        trace["start_time"]
    );
    let observations = observations(&host, &trace).await;
    let llm = of_type(&observations, "llm_call");
    assert_eq!(llm.len(), 2);
    assert!(llm.iter().all(|c| c["reported_via"] == json!(["log"])));
}

/// Codex's trace export here is 524 spans in 15 OTel traces (start-up, auth, file reads, the
/// turn, shutdown). They give exactly one trace: the turn, with its totals, model and tool call
/// (spans carry no prompt text, tool arguments, output or decision).
#[tokio::test]
async fn traces_alone_do_not_flood_the_trace_list() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CAPTURE).only(&["traces"])).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["prompt"], Value::Null, "spans carry no prompt text");
    let tools = trace["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1);
    let exec = &tools[0];
    assert_eq!(exec["name"], "exec_command");
    assert_eq!(exec["success"], true);
    assert_eq!(exec["duration_ms"], 62);
    assert_eq!(exec["args"], Value::Null);
    assert_eq!(exec["result"], Value::Null);
    assert_eq!(exec["decision"], Value::Null);

    let observations = observations(&host, &trace).await;
    let llm = of_type(&observations, "llm_call");
    assert_eq!(llm.len(), 2);
    assert!(llm.iter().all(|c| c["reported_via"] == json!(["span"])));
    assert_eq!(observations.len(), 3, "{observations:#?}");
}

#[tokio::test]
async fn metrics_alone_make_no_trace() {
    let host = TestHost::start().await;
    let capture = Capture::load(CAPTURE);
    host.replay(&capture.only(&["metrics"])).await;
    assert!(host.traces().await.is_empty());
    host.replay(&capture).await;
    assert_totals(&only_trace(&host).await);
}

#[tokio::test]
async fn a_stale_claude_code_service_name_is_still_codex() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CAPTURE).with_service_name("claude-code")).await;
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1, "{traces:#?}");
    assert!(of_agent(&traces, "claude-code").is_empty());
    assert_totals(&of_agent(&traces, "codex")[0].clone());
}

// ---- variants of the capture's logs ---------------------------------------------------------

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.into())) }),
        ..Default::default()
    }
}

/// Rewrite every logs request of `capture`.
fn with_logs(capture: &Capture, f: impl Fn(&mut ExportLogsServiceRequest)) -> Capture {
    let mut capture = capture.clone();
    for request in capture.requests.iter_mut().filter(|r| r.signal == "logs") {
        let mut message = ExportLogsServiceRequest::decode(&request.body[..]).expect("a protobuf capture");
        f(&mut message);
        request.body = message.encode_to_vec();
    }
    capture
}

fn log_attributes(message: &mut ExportLogsServiceRequest) -> impl Iterator<Item = &mut Vec<KeyValue>> {
    message
        .resource_logs
        .iter_mut()
        .flat_map(|r| &mut r.scope_logs)
        .flat_map(|s| &mut s.log_records)
        .map(|l| &mut l.attributes)
}

/// `log_user_prompt = false` and a ChatGPT login: the prompt is `[REDACTED]` and every event
/// carries `user.email` and `user.account_id`.
fn redacted_and_logged_in(capture: &Capture) -> Capture {
    with_logs(capture, |message| {
        for attrs in log_attributes(message) {
            for kv in attrs.iter_mut().filter(|kv| kv.key == "prompt") {
                *kv = text("prompt", "[REDACTED]");
            }
            attrs.push(text("user.email", "dev@example.com"));
            attrs.push(text("user.account_id", "acct-123"));
        }
    })
}

#[tokio::test]
async fn redacted_prompt_and_login_attribution() {
    let capture = redacted_and_logged_in(&Capture::load(CAPTURE));
    let host = TestHost::start().await;
    host.replay(&capture).await;
    let trace = only_trace(&host).await;
    assert_eq!(trace["prompt"], "[prompt not captured: log_user_prompt is off]");
    assert_eq!(trace["user_id"], "dev@example.com", "the login on the events");
    assert_eq!(trace["input_tokens"], 2 * 1034);
    assert_full_tool_call(&trace);

    // A resource `user.id` overrides the login.
    let overridden = with_logs(&capture, |message| {
        for resource in &mut message.resource_logs {
            if let Some(resource) = resource.resource.as_mut() {
                resource.attributes.push(text("user.id", "team@example.com"));
            }
        }
    });
    let host = TestHost::start().await;
    host.replay(&overridden).await;
    assert_eq!(only_trace(&host).await["user_id"], "team@example.com");
}

/// The exporter may flush between a request and its streamed response. The response's token
/// event carries no trace id, so it cannot be placed from its own batch: logs alone then
/// count only the call placed; with the spans also exported the trace is exact again.
#[tokio::test]
async fn a_log_batch_split_between_request_and_response() {
    let capture = Capture::load(CAPTURE);
    let logs = capture.only(&["logs"]);
    let message = ExportLogsServiceRequest::decode(&logs.requests[0].body[..]).expect("a protobuf capture");
    let mut requests_seen = 0;
    let mut is_second_request = |record: &opentelemetry_proto::tonic::logs::v1::LogRecord| {
        let request = record.attributes.iter().any(|kv| {
            kv.key == "event.name"
                && kv.value.as_ref().and_then(|v| v.value.as_ref())
                    == Some(&any_value::Value::StringValue("codex.api_request".into()))
        });
        if request {
            requests_seen += 1;
        }
        request && requests_seen == 2
    };
    // First part: up to the second API request; second part: its streamed response.
    let mut first = message.clone();
    let mut second = message.clone();
    for (i, resource) in message.resource_logs.iter().enumerate() {
        for (j, scope) in resource.scope_logs.iter().enumerate() {
            let cut =
                scope.log_records.iter().position(&mut is_second_request).map_or(scope.log_records.len(), |p| p + 1);
            first.resource_logs[i].scope_logs[j].log_records.truncate(cut);
            second.resource_logs[i].scope_logs[j].log_records.drain(..cut);
        }
    }
    let mut split = logs.clone();
    split.requests = vec![logs.requests[0].clone(), logs.requests[0].clone()];
    split.requests[0].body = first.encode_to_vec();
    split.requests[1].body = second.encode_to_vec();

    let host = TestHost::start().await;
    host.replay(&split).await;
    let trace = only_trace(&host).await;
    assert_eq!(trace["input_tokens"], 1034, "only the call placed: {trace}");
    assert_eq!(trace["prompt"], PROMPT);

    host.replay(&capture.only(&["traces"])).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["prompt"], PROMPT);
}

/// What the conformance suite's mock model served each prompt of a capture it made
/// (`mock-calls.jsonl` beside the bodies): per prompt, the five token counts of its calls,
/// summed, in the blueprint's convention (input fresh, output visible, cache read and creation,
/// reasoning) — the expectation, written by the mock, not by Antenna.
fn served(capture: &str) -> Vec<[u64; 5]> {
    let path = antenna_e2e::fixtures_dir().join(capture).join("mock-calls.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut per_prompt: Vec<[u64; 5]> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let call: Value = serde_json::from_str(line).expect("a JSON line");
        let prompt = call["prompt"].as_u64().expect("prompt") as usize;
        if per_prompt.len() < prompt {
            per_prompt.resize(prompt, [0; 5]);
        }
        let n = &call["normalized"];
        for (i, key) in ["input", "output", "cache_read", "cache_creation", "reasoning"].iter().enumerate() {
            per_prompt[prompt - 1][i] += n[*key].as_u64().expect("a count");
        }
    }
    per_prompt
}

/// A trace's five token counts, in the order of [`served`].
fn tokens(trace: &Value) -> [u64; 5] {
    ["input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens"]
        .map(|k| trace[k].as_u64().unwrap_or_else(|| panic!("{k} in {trace}")))
}

/// The traces of a host in prompt order (start time).
async fn traces_in_order(host: &TestHost) -> Vec<Value> {
    let mut traces = host.traces().await;
    traces.sort_by(|a, b| a["start_time"].as_str().cmp(&b["start_time"].as_str()));
    traces
}

/// A shell command that exits 1 (conformance suite, Codex 0.169.0): Codex reports the call
/// with `success=true` and writes `Process exited with code 1` into its output. The tool call
/// failed.
#[tokio::test]
async fn a_failed_shell_command_is_a_failed_tool_call() {
    const FAIL: &str = "codex/failing-tool-binary";
    let host = TestHost::start().await;
    host.replay(&Capture::load(FAIL)).await;
    let traces = traces_in_order(&host).await;
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let trace = &traces[0];
    assert_eq!(trace["session_id"], "01a22bfc-b1e6-7172-a011-bc1a3ed14718", "the thread id `codex exec --json` said");
    assert_eq!(tokens(trace), served(FAIL)[0]);
    let tools = trace["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1, "{tools:#?}");
    assert_eq!(tools[0]["name"], "exec_command");
    assert_eq!(tools[0]["success"], false, "{tools:#?}");
    assert!(tools[0]["result"].as_str().is_some_and(|r| r.contains("Process exited with code 1")), "{tools:#?}");
}
