//! GitHub Copilot CLI's real capture through a real host: one exact trace in any order,
//! idempotent under re-posting, placeholders when content capture is off, never a dollar
//! figure from Copilot's billing multiplier.

use antenna_e2e::{Capture, TestHost};
use serde_json::{Value, json};

const CAPTURE: &str = "copilot-cli/json-content-on";
const SESSION: &str = "b73fe7d9-0115-42d7-a406-d026322ae8f5";
const FLAG: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";

/// What Copilot leaves out when OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is off.
const CONTENT_KEYS: [&str; 6] = [
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
];

/// The capture (Copilot CLI 1.0.102, BYOK gpt-4.1): one prompt, two `chat` calls, each
/// `gen_ai.usage.input_tokens` 1234 (which includes the 200 cache-read tokens, as the GenAI
/// conventions say), output 56. Copilot exports no reasoning count for this model (its
/// reasoning metric says 0), so none is split out of the output. `invoke_agent` repeats the
/// sum (2468 / 112) and is not added on top.
fn assert_totals(trace: &Value) {
    assert_eq!(trace["agent"], "copilot", "{trace}");
    assert_eq!(trace["input_tokens"], 2 * (1234 - 200), "{trace}");
    assert_eq!(trace["cache_read_tokens"], 2 * 200);
    assert_eq!(trace["cache_creation_tokens"], 0);
    assert_eq!(trace["output_tokens"], 2 * 56);
    assert_eq!(trace["reasoning_tokens"], 0);
    assert_eq!(trace["models"], json!(["gpt-4.1"]));
    // github.copilot.cost is a multiplier, not dollars: the cost is the price table's.
    assert_eq!(trace["cost_source"], "price-table");
    assert!(trace["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{trace}");
    assert_eq!(trace["user_id"], "dev@example.com");
    assert_eq!(trace["device_id"], "device-1234");
    assert_eq!(trace["session_id"], SESSION);
}

/// Each host makes its own project: the rest of the trace must be equal.
fn without_project(mut trace: Value) -> Value {
    if let Some(fields) = trace.as_object_mut() {
        fields.remove("project_id");
    }
    trace
}

async fn only_trace(host: &TestHost) -> Value {
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1, "one prompt, one trace: {traces:#?}");
    traces[0].clone()
}

/// Apply `f` to the attribute list of every span.
fn for_each_span(body: &mut Value, f: &dyn Fn(&Value, &mut Vec<Value>)) {
    for resource in body["resourceSpans"].as_array_mut().into_iter().flatten() {
        for scope in resource["scopeSpans"].as_array_mut().into_iter().flatten() {
            for span in scope["spans"].as_array_mut().into_iter().flatten() {
                let name = span["name"].clone();
                if let Some(attrs) = span["attributes"].as_array_mut() {
                    f(&name, attrs);
                }
            }
        }
    }
}

fn content_off(capture: &Capture) -> Capture {
    capture.map_json(|body| {
        for_each_span(body, &|_, attrs| attrs.retain(|a| !CONTENT_KEYS.iter().any(|k| a["key"] == *k)))
    })
}

#[tokio::test]
async fn content_on_capture_gives_one_exact_trace() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CAPTURE)).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["id"], "otel-6b064063a932d08f630c1f649aabcbc2", "keyed by the invoke_agent trace id");
    assert_eq!(
        trace["prompt"], "List the files in the current directory using the shell, then summarize.",
        "the user's words, without the <current_datetime> block Copilot adds"
    );
    assert_eq!(trace["response"], "Done. The directory listing shows the files in the current working directory.");
    assert_eq!(trace["errors"], json!([]));
    let tools = trace["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1);
    let bash = &tools[0];
    assert_eq!(bash["id"], "call_f3714c5b509f4157addc");
    assert_eq!(bash["name"], "bash");
    assert_eq!(bash["args"], r#"{"command":"ls","description":"List files","mode":"sync","initial_wait":10}"#);
    assert_eq!(bash["result"], "README.md\nmain.py\n<shellId: 0 completed with exit code 0>");
    assert_eq!(bash["success"], true);
    assert_eq!(bash["decision"], Value::Null, "Copilot reports no permission decision");
    assert_eq!(bash["duration_ms"], 64);
    assert!(trace["start_time"].as_str().is_some_and(|t| t.starts_with("2026-11-24T18:44:31")));

    // The detail view: each chat once (spans are Copilot's only channel), the billing
    // multiplier and the agent summary on the timeline, in time order.
    let detail = host.get_json("/api/public/traces/otel-6b064063a932d08f630c1f649aabcbc2").await;
    let observations = detail["observations"].as_array().expect("observations");
    let llm: Vec<&Value> = observations.iter().filter(|o| o["type"] == "llm_call").collect();
    assert_eq!(llm.len(), 2);
    // The multiplier is never dollars: a chat's cost is the price table's, not the agent's.
    assert!(llm.iter().all(|o| o["reported_via"] == json!(["span"]) && o["cost_source"] == "price-table"), "{llm:#?}");
    let cost: Vec<&Value> = observations.iter().filter(|o| o["name"] == "github.copilot.cost").collect();
    assert_eq!(cost.len(), 2);
    assert_eq!(cost[0]["attributes"]["github.copilot.cost"], 0.0);
    assert!(
        observations.iter().any(|o| o["name"] == "invoke_agent" && o["attributes"]["github.copilot.turn_count"] == 2)
    );
    assert!(observations.iter().any(|o| o["name"] == "github.copilot.sandbox.enforcement_state"));
    let times: Vec<&str> = observations.iter().filter_map(|o| o["start_time"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "observations in time order");
}

#[tokio::test]
async fn reversed_order_gives_the_same_trace() {
    let capture = Capture::load(CAPTURE);
    let host = TestHost::start().await;
    host.replay(&capture).await;
    let in_order = only_trace(&host).await;

    let host = TestHost::start().await;
    host.replay(&capture.reversed()).await;
    let reversed = only_trace(&host).await;
    assert_totals(&reversed);
    assert_eq!(without_project(in_order), without_project(reversed));
}

#[tokio::test]
async fn posting_the_same_batches_twice_changes_nothing() {
    let host = TestHost::start().await;
    let capture = Capture::load(CAPTURE);
    host.replay(&capture).await;
    let first = only_trace(&host).await;
    let users_before = host.get_json("/api/public/users").await;
    host.replay(&capture).await;
    host.replay(&capture.reversed()).await;
    let second = only_trace(&host).await;
    assert_eq!(first, second);
    assert_totals(&second);
    assert_eq!(host.get_json("/api/public/users").await, users_before);
}

#[tokio::test]
async fn a_stale_claude_code_service_name_is_still_copilot() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CAPTURE).with_service_name("claude-code")).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["tool_calls"][0]["name"], "bash");
}

#[tokio::test]
async fn content_off_gives_placeholders_and_the_same_tokens() {
    let host = TestHost::start().await;
    host.replay(&content_off(&Capture::load(CAPTURE))).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["prompt"], format!("[prompt not captured: {FLAG} is off]"));
    assert_eq!(trace["response"], format!("[response not captured: {FLAG} is off]"));
    let bash = &trace["tool_calls"][0];
    assert_eq!(bash["name"], "bash");
    assert_eq!(bash["args"], format!("[args not captured: {FLAG} is off]"));
    assert_eq!(bash["result"], format!("[result not captured: {FLAG} is off]"));
    assert_eq!(bash["success"], true);
}

#[tokio::test]
async fn the_pseudonymous_id_is_the_user_when_no_user_id_is_set() {
    let capture = Capture::load(CAPTURE).map_json(|body| {
        for key in ["resourceSpans", "resourceMetrics"] {
            for resource in body[key].as_array_mut().into_iter().flatten() {
                if let Some(attrs) = resource["resource"]["attributes"].as_array_mut() {
                    attrs.retain(|a| a["key"] != "user.id");
                    attrs.push(json!({"key": "user.email", "value": {"stringValue": "someone@else.com"}}));
                }
            }
        }
        for_each_span(body, &|name, attrs| {
            if name == "invoke_agent" {
                attrs.push(json!({"key": "enduser.pseudo.id", "value": {"stringValue": "5f1d3c0a9b"}}));
            }
        });
    });
    let host = TestHost::start().await;
    host.replay(&capture).await;
    let trace = only_trace(&host).await;
    assert_eq!(trace["user_id"], "5f1d3c0a9b", "the hash, not the resource e-mail");
}

#[tokio::test]
async fn metrics_are_kept_but_make_no_trace() {
    let host = TestHost::start().await;
    let capture = Capture::load(CAPTURE);
    host.replay(&capture.only(&["metrics"])).await;
    assert!(host.traces().await.is_empty(), "metrics alone make no prompt trace");
    host.replay(&capture).await;
    assert_totals(&only_trace(&host).await);
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

/// A session continued with `copilot -p --continue` (conformance suite, Copilot 1.0.102):
/// `turn_id` restarts at "0" in the continued process, so conversation id + turn id would
/// collide; the OTel trace id of each `invoke_agent` does not. Two prompts, two traces.
#[tokio::test]
async fn a_continued_session_is_one_trace_per_prompt() {
    const TWO: &str = "copilot-cli/session-two-prompts-protobuf";
    let host = TestHost::start().await;
    host.replay(&Capture::load(TWO)).await;
    let traces = traces_in_order(&host).await;
    assert_eq!(traces.len(), 2, "{traces:#?}");
    let served = served(TWO);
    for (i, trace) in traces.iter().enumerate() {
        assert_eq!(trace["agent"], "copilot");
        assert_eq!(trace["session_id"], "b6581ca7-3901-4596-9e7c-a0b92240cdb8", "as `copilot --resume=` said");
        assert_eq!(tokens(trace), served[i], "prompt {}", i + 1);
        assert_eq!(trace["tool_calls"].as_array().map(Vec::len), Some(1), "{trace}");
    }
    assert_ne!(traces[0]["id"], traces[1]["id"]);
}

/// A shell command that exits 1: Copilot sets `process.exit.code` on the tool span.
#[tokio::test]
async fn a_failed_shell_command_is_a_failed_tool_call() {
    const FAIL: &str = "copilot-cli/failing-tool-protobuf";
    let host = TestHost::start().await;
    host.replay(&Capture::load(FAIL)).await;
    let traces = traces_in_order(&host).await;
    assert_eq!(traces.len(), 1, "{traces:#?}");
    assert_eq!(tokens(&traces[0]), served(FAIL)[0]);
    let tools = traces[0]["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1, "{tools:#?}");
    assert_eq!(tools[0]["name"], "bash");
    assert_eq!(tools[0]["success"], false, "{tools:#?}");
}
