//! Gemini CLI's real capture through a real host: each model call counted once although
//! Gemini reports it three times, logs alone and spans alone agree on what they both know, any
//! order and re-posting give the same trace.

use antenna_e2e::{Capture, TestHost};
use serde_json::{Value, json};

const CAPTURE: &str = "gemini-cli/json-content-on";
const SESSION: &str = "bb835694-72ea-4e64-928c-e5ad661ee18d";
const PROMPT: &str = "List the files in the current directory using the shell, then summarize.";
const RESPONSE: &str = "Done. The directory listing shows the files in the current working directory.";
const ARGS: &str = r#"{"command":"ls","description":"List files in current directory"}"#;

/// The capture (Gemini CLI 0.61.0, API key): one prompt, three model calls (the
/// `gemini-3.5-flash-lite` routing classifier and two `gemini-3.8-flash` main-loop calls).
/// Each `api_response` says input 1234 (which includes the 200 cached), output 56, thoughts 10.
fn assert_totals(trace: &Value) {
    assert_eq!(trace["agent"], "gemini", "{trace}");
    assert_eq!(trace["input_tokens"], 3 * (1234 - 200), "{trace}");
    assert_eq!(trace["cache_read_tokens"], 3 * 200);
    assert_eq!(trace["cache_creation_tokens"], 0);
    assert_eq!(trace["output_tokens"], 3 * 56);
    assert_eq!(trace["reasoning_tokens"], 3 * 10);
    assert_common(trace);
}

fn assert_common(trace: &Value) {
    assert_eq!(trace["models"], json!(["gemini-3.5-flash-lite", "gemini-3.8-flash"]));
    // Gemini sends no cost: the price table's.
    assert_eq!(trace["cost_source"], "price-table");
    assert!(trace["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{trace}");
    assert_eq!(trace["user_id"], "dev@example.com", "from the resource: Gemini names no user itself");
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

#[tokio::test]
async fn the_capture_gives_one_exact_trace() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CAPTURE)).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    let id = trace["id"].as_str().expect("id");
    assert!(
        id.starts_with(&format!("prompt-{SESSION}-")),
        "keyed by prompt_id (= the session id in -p mode) and the process: {id}"
    );
    assert_eq!(trace["prompt"], PROMPT);
    assert_eq!(trace["response"], RESPONSE);
    assert_eq!(trace["errors"], json!([]));
    let tools = trace["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1, "the tool_call event and span are one call: {tools:#?}");
    let shell = &tools[0];
    assert_eq!(shell["name"], "run_shell_command");
    assert_eq!(shell["args"], ARGS);
    assert_eq!(shell["result"], "README.md\nmain.py", "the span's output carries the result");
    assert_eq!(shell["success"], true);
    assert_eq!(shell["decision"], "accept");
    assert_eq!(shell["duration_ms"], 56);
    assert!(trace["start_time"].as_str().is_some_and(|t| t.starts_with("2026-11-24T18:43:37")));

    let id = trace["id"].as_str().expect("id");
    let detail = host.get_json(&format!("/api/public/traces/{id}")).await;
    let observations = detail["observations"].as_array().expect("observations");
    let llm: Vec<&Value> = observations.iter().filter(|o| o["type"] == "llm_call").collect();
    assert_eq!(llm.len(), 3, "api_response + operation.details + llm_call = one call each");
    assert!(llm.iter().all(|o| o["reported_via"] == json!(["log", "span"])), "{llm:#?}");
    let models: Vec<&Value> = llm.iter().map(|o| &o["model"]).collect();
    assert_eq!(models, [&json!("gemini-3.5-flash-lite"), &json!("gemini-3.8-flash"), &json!("gemini-3.8-flash")]);
    let times: Vec<&str> = observations.iter().filter_map(|o| o["start_time"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "observations in time order");
}

#[tokio::test]
async fn logs_alone_and_spans_alone() {
    let capture = Capture::load(CAPTURE);

    let host = TestHost::start().await;
    host.replay(&capture.only(&["logs"])).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["prompt"], PROMPT);
    assert_eq!(trace["response"], RESPONSE);
    let shell = &trace["tool_calls"][0];
    assert_eq!(shell["args"], ARGS);
    assert_eq!(shell["result"], "[result not exported by Gemini CLI]", "the event has the length only");
    assert_eq!(shell["success"], true);
    assert_eq!(shell["decision"], "accept");

    // The spans say input and output only: without the events, the cached part and the
    // thoughts are unknown and the input counts as fresh.
    let host = TestHost::start().await;
    host.replay(&capture.only(&["traces"])).await;
    let trace = only_trace(&host).await;
    assert_eq!(trace["input_tokens"], 3 * 1234);
    assert_eq!(trace["output_tokens"], 3 * 56);
    assert_eq!(trace["cache_read_tokens"], 0);
    assert_eq!(trace["reasoning_tokens"], 0);
    assert_common(&trace);
    assert_eq!(trace["prompt"], Value::Null, "the prompt is in the user_prompt event");
    assert_eq!(trace["tool_calls"][0]["result"], "README.md\nmain.py");
}

#[tokio::test]
async fn any_order_gives_the_same_trace() {
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
async fn a_stale_claude_code_service_name_is_still_gemini() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(CAPTURE).with_service_name("claude-code")).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["tool_calls"][0]["name"], "run_shell_command");
}

#[tokio::test]
async fn prompt_logging_off_gives_placeholders_and_the_same_tokens() {
    // With telemetry.logPrompts off Gemini leaves these keys out.
    let content =
        ["prompt", "response_text", "request_text", "function_args", "gen_ai.input.messages", "gen_ai.output.messages"];
    let capture = Capture::load(CAPTURE).map_json(|body| {
        for (resource_key, scope_key, records_key) in
            [("resourceSpans", "scopeSpans", "spans"), ("resourceLogs", "scopeLogs", "logRecords")]
        {
            for resource in body[resource_key].as_array_mut().into_iter().flatten() {
                for scope in resource[scope_key].as_array_mut().into_iter().flatten() {
                    for record in scope[records_key].as_array_mut().into_iter().flatten() {
                        if let Some(attrs) = record["attributes"].as_array_mut() {
                            attrs.retain(|a| !content.iter().any(|k| a["key"] == *k));
                        }
                    }
                }
            }
        }
    });
    let host = TestHost::start().await;
    host.replay(&capture).await;
    let trace = only_trace(&host).await;
    assert_totals(&trace);
    assert_eq!(trace["prompt"], "[prompt not captured: telemetry.logPrompts is off]");
    assert_eq!(trace["response"], "[response not captured: telemetry.logPrompts is off]");
    let tools = trace["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["args"], "[args not captured: telemetry.logPrompts is off]");
    assert_eq!(tools[0]["result"], "[result not exported by Gemini CLI]");
    assert_eq!(tools[0]["success"], true);
}

#[tokio::test]
async fn without_a_resource_user_the_fallback_applies() {
    let capture = Capture::load(CAPTURE).map_json(|body| {
        for key in ["resourceSpans", "resourceLogs", "resourceMetrics"] {
            for resource in body[key].as_array_mut().into_iter().flatten() {
                if let Some(attrs) = resource["resource"]["attributes"].as_array_mut() {
                    attrs.retain(|a| a["key"] != "user.id");
                }
            }
        }
    });
    let host = TestHost::start_with(|config| config.fallback_user = Some("ops@example.com".into())).await;
    host.replay(&capture).await;
    assert_eq!(only_trace(&host).await["user_id"], "ops@example.com");
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

/// Gemini CLI 0.61 continued with `gemini --resume latest -p ...` (conformance suite): every
/// record of both prompts carries one `prompt_id`, the session id. Each prompt is its own
/// trace, with its own calls' tokens and its own tool call.
#[tokio::test]
async fn a_continued_session_is_one_trace_per_prompt() {
    const TWO: &str = "gemini-cli/session-two-prompts-json";
    let host = TestHost::start().await;
    host.replay(&Capture::load(TWO)).await;
    let traces = traces_in_order(&host).await;
    assert_eq!(traces.len(), 2, "two prompts, two traces: {traces:#?}");
    let served = served(TWO);
    for (i, trace) in traces.iter().enumerate() {
        assert_eq!(trace["agent"], "gemini");
        assert_eq!(
            trace["session_id"], "1952f358-828d-4ecd-9920-3297fadbe315",
            "as `gemini --output-format json` said"
        );
        assert_eq!(tokens(trace), served[i], "prompt {}: the tokens of its own calls", i + 1);
        let prompt = trace["prompt"].as_str().expect("prompt");
        assert!(prompt.contains(&format!("(prompt {})", i + 1)), "{prompt}");
        assert_eq!(trace["tool_calls"].as_array().map(Vec::len), Some(1), "{trace}");
        assert_eq!(trace["tool_calls"][0]["success"], true);
    }
    assert_ne!(traces[0]["id"], traces[1]["id"]);
    let sessions = host.get_json("/api/public/sessions").await;
    assert_eq!(sessions["data"].as_array().map(Vec::len), Some(1), "{sessions}");
}

/// A shell command that exits 1 (conformance suite): Gemini CLI says `success=true` on the
/// tool_call event and span, with `{"exitCode":1,"isError":true}` in the event's metadata and
/// `Exit Code: 1` in the span's output. The tool call failed.
#[tokio::test]
async fn a_failed_shell_command_is_a_failed_tool_call() {
    const FAIL: &str = "gemini-cli/failing-tool-json";
    let host = TestHost::start().await;
    host.replay(&Capture::load(FAIL)).await;
    let traces = traces_in_order(&host).await;
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let trace = &traces[0];
    assert_eq!(tokens(trace), served(FAIL)[0]);
    let tools = trace["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1, "{tools:#?}");
    assert_eq!(tools[0]["name"], "run_shell_command");
    assert_eq!(tools[0]["args"], r#"{"command":"cat missing.txt"}"#);
    assert_eq!(tools[0]["success"], false, "{tools:#?}");
    assert!(tools[0]["result"].as_str().is_some_and(|r| r.contains("No such file")), "{tools:#?}");
}
