//! The generic GenAI parser through a real host: an agent with no parser of its own still gets
//! per-prompt traces, and the dedicated parsers keep their batches.

use antenna_e2e::{Capture, TestHost, of_agent};
use serde_json::json;

/// The genai component as `host/build.rs` builds it (into `target/plugins`).
const COMPONENT: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../target/plugins/wasm32-wasip2/release/antenna_plugin_genai.wasm");

/// A host serving the generic parser: built in once `host/build.rs` lists it, else installed
/// into the plugins directory from the component that build writes.
async fn host_with_genai() -> TestHost {
    if antenna::builtin::PLUGINS.iter().any(|(file, _)| file.contains("genai")) {
        return TestHost::start().await;
    }
    assert!(
        std::path::Path::new(COMPONENT).exists(),
        "the genai component is neither built in nor built: add antenna-plugin-genai to host/build.rs, or run \
         `cargo build --release --target wasm32-wasip2 -p antenna-plugin-genai --target-dir target/plugins`"
    );
    let host = TestHost::with_plugins_dir().await;
    host.install_plugin(COMPONENT, "genai.wasm");
    host.wait_for_plugins("genai loaded", |p| {
        p["data"].as_array().is_some_and(|d| d.iter().any(|p| p["name"] == "genai" && p["active"] == true))
    })
    .await;
    host
}

/// Copilot's capture as if another agent had sent it: its own scope and service name, the
/// same GenAI-convention spans (`invoke_agent`, `chat gpt-4.1`, `execute_tool bash`).
fn unknown_agent() -> Capture {
    Capture::load("copilot-cli/json-content-on").with_service_name("acme-agent").map_json(|body| {
        for resource in body["resourceSpans"].as_array_mut().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array_mut().into_iter().flatten() {
                scope["scope"]["name"] = json!("acme.agent");
            }
        }
        for resource in body["resourceMetrics"].as_array_mut().into_iter().flatten() {
            for scope in resource["scopeMetrics"].as_array_mut().into_iter().flatten() {
                scope["scope"]["name"] = json!("acme.agent");
            }
        }
    })
}

#[tokio::test]
async fn an_agent_with_no_parser_of_its_own_gets_per_prompt_traces() {
    let host = host_with_genai().await;
    host.replay(&unknown_agent()).await;
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1, "one user message, one trace: {traces:#?}");
    let trace = &traces[0];
    // Copilot's parser claims these span names too (score 2, as genai): without its scope it is
    // a tie, and the generic parser is the one that should take an unknown agent.
    assert_eq!(trace["agent"], "genai", "{trace}");
    assert_eq!(trace["id"], "otel-6b064063a932d08f630c1f649aabcbc2");
    assert_eq!(trace["input_tokens"], 2 * (1234 - 200));
    assert_eq!(trace["cache_read_tokens"], 2 * 200);
    assert_eq!(trace["cache_creation_tokens"], 0);
    assert_eq!(trace["output_tokens"], 2 * 56);
    assert_eq!(trace["reasoning_tokens"], 0);
    assert_eq!(trace["models"], json!(["gpt-4.1"]));
    assert_eq!(trace["cost_source"], "price-table", "the generic parser reports no cost: the table prices gpt-4.1");
    assert_eq!(trace["user_id"], "dev@example.com");
    assert_eq!(trace["device_id"], "device-1234");
    assert_eq!(trace["session_id"], "b73fe7d9-0115-42d7-a406-d026322ae8f5");
    assert!(
        trace["prompt"]
            .as_str()
            .is_some_and(|p| p.ends_with("List the files in the current directory using the shell, then summarize.")),
        "{}",
        trace["prompt"]
    );
    assert_eq!(trace["response"], "Done. The directory listing shows the files in the current working directory.");
    let tools = trace["tool_calls"].as_array().expect("tool_calls");
    assert_eq!(tools.len(), 1);
    assert_eq!(tools[0]["id"], "call_f3714c5b509f4157addc");
    assert_eq!(tools[0]["name"], "bash");
    assert_eq!(tools[0]["args"], r#"{"command":"ls","description":"List files","mode":"sync","initial_wait":10}"#);
    assert_eq!(tools[0]["result"], "README.md\nmain.py\n<shellId: 0 completed with exit code 0>");
    assert_eq!(tools[0]["success"], true);
}

#[tokio::test]
async fn the_dedicated_parsers_keep_their_batches() {
    let host = host_with_genai().await;
    // Copilot's spans carry the GenAI names, Gemini's logs `gen_ai.*` events: their scopes win.
    for capture in ["copilot-cli/json-content-on", "gemini-cli/json-content-on", "claude-code/protobuf-content-on"] {
        host.replay(&Capture::load(capture)).await;
    }
    let traces = host.traces().await;
    assert!(of_agent(&traces, "genai").is_empty(), "{traces:#?}");
    for agent in ["copilot", "gemini", "claude-code"] {
        assert_eq!(of_agent(&traces, agent).len(), 1, "{agent}: {traces:#?}");
    }
}
