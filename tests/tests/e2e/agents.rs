//! Several agents into one host: each detected as what it is, and one user across agents.

use antenna_e2e::{Capture, TestHost};
use serde_json::json;

#[tokio::test]
async fn one_user_across_claude_code_codex_and_copilot() {
    let host = TestHost::start().await;
    host.replay(&Capture::load("claude-code/protobuf-content-on")).await;
    // Codex ignores OTEL_RESOURCE_ATTRIBUTES; the same person set user.id some other way.
    host.replay(&Capture::load("codex/binary-content-on").with_resource_attribute("user.id", "dev@example.com")).await;
    host.replay(&Capture::load("copilot-cli/json-content-on")).await;

    let traces = host.traces().await;
    let mut agents: Vec<&str> = traces.iter().filter_map(|t| t["agent"].as_str()).collect();
    agents.sort_unstable();
    assert_eq!(agents, ["claude-code", "codex", "copilot"]);

    let users = host.get_json("/api/public/users").await;
    let users = users["data"].as_array().expect("data");
    assert_eq!(users.len(), 1, "{users:#?}");
    let user = &users[0];
    assert_eq!(user["id"], "dev@example.com");
    assert_eq!(user["traces"], 3);
    assert_eq!(user["sessions"], 3);
    assert_eq!(user["agents"], json!({"claude-code": 1, "codex": 1, "copilot": 1}));
    let tokens = |t: &serde_json::Value| t["input_tokens"].as_i64().unwrap_or(0);
    assert_eq!(user["input_tokens"].as_i64(), Some(traces.iter().map(tokens).sum::<i64>()));

    let only_codex = host.get_json("/api/public/traces?agent=codex&user_id=dev@example.com").await;
    assert_eq!(only_codex["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_stale_service_name_never_turns_another_agent_into_claude_code() {
    let host = TestHost::start().await;
    for (capture, agent) in [
        ("codex/binary-content-on", "codex"),
        ("copilot-cli/json-content-on", "copilot"),
        ("gemini-cli/json-content-on", "gemini"),
    ] {
        host.replay(&Capture::load(capture).with_service_name("claude-code")).await;
        let traces = host.get_json(&format!("/api/public/traces?agent={agent}")).await;
        assert_eq!(traces["data"].as_array().map(Vec::len), Some(1), "{capture} was not detected as {agent}");
    }
    let claude = host.get_json("/api/public/traces?agent=claude-code").await;
    assert_eq!(claude["data"], json!([]));
}
