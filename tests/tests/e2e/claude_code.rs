//! Claude Code's real captures through a real host: exact per-prompt totals with logs alone,
//! spans alone and both, in any order, and idempotent under re-posting.

use antenna_e2e::{Capture, TestHost};
use serde_json::Value;

const CONTENT_ON: &str = "claude-code/protobuf-content-on";
const CONTENT_OFF: &str = "claude-code/json-content-off";

/// The fixtures README: 3 model calls (a session-title side query and 2 main-loop calls), each
/// input 1234, output 56, cache read 200, cache creation 100; Claude Code's cost 0.008295 each.
fn assert_totals(trace: &Value, with_cost: bool) {
    assert_eq!(trace["agent"], "claude-code");
    assert_eq!(trace["input_tokens"], 3 * 1234, "{trace}");
    assert_eq!(trace["output_tokens"], 3 * 56);
    assert_eq!(trace["cache_read_tokens"], 3 * 200);
    assert_eq!(trace["cache_creation_tokens"], 3 * 100);
    assert_eq!(trace["reasoning_tokens"], 0);
    assert_eq!(trace["models"], serde_json::json!(["claude-opus-4-8"]));
    if with_cost {
        let cost = trace["cost_usd"].as_f64().expect("cost_usd");
        assert!((cost - 3.0 * 0.008295).abs() < 1e-9, "cost {cost}");
    } else {
        // Spans carry no cost: the price table's.
        assert_eq!(trace["cost_source"], "price-table");
        assert!(trace["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{trace}");
    }
    assert_eq!(trace["user_id"], "dev@example.com", "the resource user.id, not the installation hash");
    assert_eq!(trace["device_id"], "device-1234");
}

async fn only_trace(host: &TestHost) -> Value {
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1, "one prompt, one trace: {traces:#?}");
    traces[0].clone()
}

#[tokio::test]
async fn content_on_capture_gives_one_exact_trace() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CONTENT_ON)).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace, true);
    assert_eq!(trace["session_id"], "e4157771-01a7-45ad-824c-7791773150ef");
    assert_eq!(trace["prompt"], "List the files in the current directory using the Bash tool, then summarize.");
    assert_eq!(trace["response"], "Done. The directory listing shows the files in the current working directory.");
    let tools = trace["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1);
    let bash = &tools[0];
    assert_eq!(bash["name"], "Bash");
    assert_eq!(bash["args"], r#"{"command":"ls","description":"List files in current directory"}"#);
    assert_eq!(bash["result"], "README.md\nmain.py");
    assert_eq!(bash["success"], true);
    assert_eq!((bash["decision"].as_str(), bash["decision_source"].as_str()), (Some("accept"), Some("config")));
    assert_eq!(bash["duration_ms"], 123);
    assert!(trace["start_time"].as_str().is_some_and(|t| t.starts_with("2026-11-24T18:41:26")));

    // The detail view: observations in time order, each model call once, reported both ways.
    let id = trace["id"].as_str().expect("id");
    let detail = host.get_json(&format!("/api/public/traces/{id}")).await;
    let observations = detail["observations"].as_array().expect("observations");
    let llm: Vec<&Value> = observations.iter().filter(|o| o["type"] == "llm_call").collect();
    assert_eq!(llm.len(), 3);
    assert!(llm.iter().all(|o| o["reported_via"] == serde_json::json!(["log", "span"])), "{llm:#?}");
    assert_eq!(observations.iter().filter(|o| o["type"] == "tool_call").count(), 1);
    assert!(observations.iter().any(|o| o["name"] == "claude_code.api_request_body"), "other events are kept");
    let times: Vec<&str> = observations.iter().filter_map(|o| o["start_time"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "observations in time order");
}

#[tokio::test]
async fn content_off_capture_gives_placeholders_and_the_same_totals() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CONTENT_OFF)).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace, true);
    assert_eq!(trace["prompt"], "[prompt not captured: OTEL_LOG_USER_PROMPTS is off]");
    assert_eq!(trace["response"], "[response not captured: OTEL_LOG_ASSISTANT_RESPONSES is off]");
    let bash = &trace["tool_calls"][0];
    assert_eq!(bash["name"], "Bash");
    assert_eq!(bash["result"], "[result not captured: OTEL_LOG_TOOL_CONTENT is off]");
    assert_eq!(bash["args"], "[args not captured: OTEL_LOG_TOOL_DETAILS is off]");
    assert_eq!(bash["success"], true);
}

#[tokio::test]
async fn logs_alone_spans_alone_and_any_order_agree() {
    for capture in [CONTENT_ON, CONTENT_OFF] {
        let full = Capture::load(capture);

        let host = TestHost::start().await;
        host.replay(&full.only(&["logs"])).await;
        let trace = only_trace(&host).await;
        assert_totals(&trace, true);
        assert_eq!(trace["tool_calls"].as_array().map(Vec::len), Some(1));

        let host = TestHost::start().await;
        host.replay(&full.only(&["traces"])).await;
        let trace = only_trace(&host).await;
        assert_totals(&trace, false);
        assert_eq!(trace["tool_calls"][0]["name"], "Bash");

        let host = TestHost::start().await;
        host.replay(&full.reversed()).await;
        let reversed = only_trace(&host).await;
        assert_totals(&reversed, true);

        let host = TestHost::start().await;
        host.replay(&full).await;
        let in_order = only_trace(&host).await;
        for field in ["id", "prompt", "response", "tool_calls", "start_time", "end_time", "session_id"] {
            assert_eq!(reversed[field], in_order[field], "{capture}: {field} depends on arrival order");
        }
    }
}

#[tokio::test]
async fn posting_the_same_batches_twice_changes_nothing() {
    let host = TestHost::start().await;
    let capture = Capture::load(CONTENT_ON);
    host.replay(&capture).await;
    let first = only_trace(&host).await;
    let users_before = host.get_json("/api/public/users").await;
    host.replay(&capture).await;
    host.replay(&capture.reversed()).await;
    let second = only_trace(&host).await;
    assert_eq!(first, second);
    assert_totals(&second, true);
    assert_eq!(host.get_json("/api/public/users").await, users_before);
}

#[tokio::test]
async fn metrics_are_kept_but_never_added_into_prompt_totals() {
    let host = TestHost::start().await;
    let capture = Capture::load(CONTENT_ON);
    host.replay(&capture.only(&["metrics"])).await;
    assert!(host.traces().await.is_empty(), "metrics alone make no prompt trace");
    host.replay(&capture).await;
    assert_totals(&only_trace(&host).await, true);
}

#[tokio::test]
async fn sessions_and_users_group_the_traces() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CONTENT_ON)).await;
    host.replay(&Capture::load(CONTENT_OFF)).await;
    assert_eq!(host.traces().await.len(), 2);

    let sessions = host.get_json("/api/public/sessions").await;
    let sessions = sessions["data"].as_array().expect("data");
    assert_eq!(sessions.len(), 2);
    let session = host.get_json("/api/public/sessions/e4157771-01a7-45ad-824c-7791773150ef").await;
    assert_eq!(session["trace_count"], 1);
    assert_eq!(session["input_tokens"], 3 * 1234);
    assert_eq!(session["traces"].as_array().map(Vec::len), Some(1));

    let users = host.get_json("/api/public/users").await;
    let user = &users["data"][0];
    assert_eq!(user["id"], "dev@example.com");
    assert_eq!(user["traces"], 2);
    assert_eq!(user["sessions"], 2);
    assert_eq!(user["input_tokens"], 6 * 1234);
    assert_eq!(user["agents"]["claude-code"], 2);

    let filtered = host.get_json("/api/public/traces?session_id=e4157771-01a7-45ad-824c-7791773150ef").await;
    assert_eq!(filtered["data"].as_array().map(Vec::len), Some(1));
    let none = host.get_json("/api/public/traces?agent=codex").await;
    assert_eq!(none["data"].as_array().map(Vec::len), Some(0));
    let page = host.get_json("/api/public/traces?limit=1").await;
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let next = host.get_json(&format!("/api/public/traces?limit=1&cursor={cursor}")).await;
    assert_ne!(next["data"][0]["id"], page["data"][0]["id"]);
    let later = host.get_json("/api/public/traces?from=2026-11-24T18:41:50Z").await;
    assert_eq!(later["data"].as_array().map(Vec::len), Some(1), "from filters by start time");
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

/// The session-title side query (conformance suite, Claude Code 2.1.197 with distinct usage
/// per call): its `api_request` event has no `prompt.id` and no trace id, its span is inside
/// the interaction. Its call counts once, with the agent's cost: every token the model served
/// and the `total_cost_usd` the CLI printed.
#[tokio::test]
async fn the_side_query_counts_once_with_its_cost() {
    const SIDE: &str = "claude-code/side-query-protobuf";
    let host = TestHost::start().await;
    host.replay(&Capture::load(SIDE)).await;
    let traces = traces_in_order(&host).await;
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let trace = &traces[0];
    assert_eq!(trace["session_id"], "2be9fd9a-7333-4257-937a-f83ecc457d90", "as `claude -p --output-format json` said");
    assert_eq!(tokens(trace), served(SIDE)[0], "three calls, each once");
    assert_eq!(trace["cost_source"], "agent", "{trace}");
    let cost = trace["cost_usd"].as_f64().expect("cost_usd");
    assert!((cost - 0.0214155).abs() < 1e-9, "the CLI's total_cost_usd, got {cost}");
    let id = trace["id"].as_str().expect("id");
    let detail = host.get_json(&format!("/api/public/traces/{id}")).await;
    let calls: Vec<&Value> =
        detail["observations"].as_array().expect("observations").iter().filter(|o| o["type"] == "llm_call").collect();
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert!(calls.iter().all(|c| c["reported_via"] == serde_json::json!(["log", "span"])), "{calls:#?}");
}

/// A session continued with `claude -p --continue` (conformance suite): two prompts, two
/// traces, one session — the throw-away session id of the continued process's first
/// `claude_code.session.count` point (`start_type=continue`) is no second session.
#[tokio::test]
async fn a_continued_session_is_one_session_of_two_traces() {
    const TWO: &str = "claude-code/session-two-prompts-protobuf";
    let host = TestHost::start().await;
    host.replay(&Capture::load(TWO)).await;
    let traces = traces_in_order(&host).await;
    assert_eq!(traces.len(), 2, "{traces:#?}");
    let served = served(TWO);
    for (i, trace) in traces.iter().enumerate() {
        assert_eq!(trace["session_id"], "a415221d-5491-4336-82d9-2a0a30ebc24b", "as the first `claude -p` said");
        assert_eq!(tokens(trace), served[i], "prompt {}", i + 1);
        assert!(trace["prompt"].as_str().is_some_and(|p| p.contains(&format!("(prompt {})", i + 1))), "{trace}");
    }
    let sessions = host.get_json("/api/public/sessions").await;
    assert_eq!(sessions["data"].as_array().map(Vec::len), Some(1), "{sessions}");
    let users = host.get_json("/api/public/users").await;
    assert_eq!(users["data"][0]["sessions"], 1, "{users}");
}

/// Claude Code's default export, events without the beta spans (the side-query capture's logs
/// and metrics): the session-title call still counts, with the agent's cost, and the tool's
/// output, which rides only on spans, is a placeholder that says why.
#[tokio::test]
async fn events_alone_count_the_side_query_and_say_where_the_output_is() {
    const SIDE: &str = "claude-code/side-query-protobuf";
    let host = TestHost::start().await;
    host.replay(&Capture::load(SIDE).only(&["logs", "metrics"])).await;
    let traces = traces_in_order(&host).await;
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let trace = &traces[0];
    assert_eq!(tokens(trace), served(SIDE)[0], "three calls, the side query included");
    let cost = trace["cost_usd"].as_f64().expect("cost_usd");
    assert!((cost - 0.0214155).abs() < 1e-9, "the CLI's total_cost_usd, got {cost}");
    assert_eq!(trace["cost_source"], "agent");
    let bash = &trace["tool_calls"][0];
    assert_eq!(bash["name"], "Bash");
    assert_eq!(bash["args"], r#"{"command":"ls"}"#);
    assert_eq!(bash["result"], "[result not captured: CLAUDE_CODE_ENHANCED_TELEMETRY_BETA is off]");
    assert_eq!(bash["success"], true);
}
