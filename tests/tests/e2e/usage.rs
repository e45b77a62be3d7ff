//! Cost for every agent, repository/branch/team, usage and outcomes grouped, decision sources:
//! real captures through a real host, checked through the public API on both engines.

use antenna_e2e::{Capture, Engine, TestHost};
use serde_json::{Value, json};

use crate::storage::CAPTURES;

const CLAUDE_METRICS: &str = "claude-code/json-content-off";

/// Every capture of every agent, each with its own repository, branch and team set the way
/// OTEL_RESOURCE_ATTRIBUTES sets them.
async fn post_all_with_places(host: &TestHost) {
    for (i, capture) in CAPTURES.iter().enumerate() {
        let capture = Capture::load(capture)
            .with_resource_attribute("vcs.repository.url.full", &format!("https://git.example.com/org/repo-{}", i % 2))
            .with_resource_attribute("vcs.ref.head.name", "main")
            .with_resource_attribute("team", if i < 2 { "platform" } else { "apps" });
        host.replay(&capture).await;
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

/// The sum of `field` over the traces.
fn total(traces: &[Value], field: &str) -> f64 {
    traces.iter().map(|t| num(&t[field])).sum()
}

#[tokio::test]
async fn every_agent_gets_a_cost_with_its_source() {
    let host = TestHost::start().await;
    for capture in CAPTURES {
        host.replay(&Capture::load(capture)).await;
    }
    let traces = host.traces().await;
    for trace in &traces {
        let agent = trace["agent"].as_str().unwrap_or("");
        let expected = if agent == "claude-code" { "agent" } else { "price-table" };
        assert_eq!(trace["cost_source"], expected, "{agent}: {trace}");
        assert!(num(&trace["cost_usd"]) > 0.0, "{agent} has a cost: {trace}");
    }
    let agents: std::collections::BTreeSet<&str> = traces.iter().filter_map(|t| t["agent"].as_str()).collect();
    assert_eq!(agents.len(), 4, "{agents:?}");
}

#[tokio::test]
async fn an_operator_price_file_overrides_the_table_and_unknown_models_cost_null() {
    let dir = tempfile::tempdir().expect("temp dir");
    let prices = dir.path().join("prices.toml");
    // Copilot's model at round prices, so the expected cost is worked out here by hand.
    std::fs::write(&prices, "[[model]]\nmatch = \"gpt-4.1\"\ninput = 2.0\noutput = 8.0\ncache_read = 0.5\n")
        .expect("write prices");
    let host = TestHost::start_with(|c| c.prices = Some(prices.clone())).await;
    host.replay(&Capture::load("copilot-cli/json-content-on")).await;
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1);
    let t = &traces[0];
    let expected = (num(&t["input_tokens"]) * 2.0
        + num(&t["output_tokens"]) * 8.0
        + num(&t["cache_read_tokens"]) * 0.5
        + num(&t["cache_creation_tokens"]) * 2.0
        + num(&t["reasoning_tokens"]) * 8.0)
        / 1e6;
    assert!(expected > 0.0);
    assert!((num(&t["cost_usd"]) - expected).abs() < 1e-9, "{} vs {expected}", t["cost_usd"]);
    assert_eq!(t["cost_source"], "price-table");

    // A model no table knows: no cost rather than a wrong one.
    let unknown = Capture::load("gemini-cli/json-content-on").map_json(|body| rename_models(body, "mystery-model-9"));
    let host = TestHost::start().await;
    host.replay(&unknown).await;
    for trace in host.traces().await {
        assert_eq!((trace["cost_usd"].clone(), trace["cost_source"].clone()), (Value::Null, Value::Null), "{trace}");
    }
}

/// Every string value naming a Gemini model, renamed.
fn rename_models(value: &mut Value, to: &str) {
    match value {
        Value::String(s) if s.starts_with("gemini-") => *s = to.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(|v| rename_models(v, to)),
        Value::Object(map) => map.values_mut().for_each(|v| rename_models(v, to)),
        _ => {}
    }
}

#[tokio::test]
async fn repository_branch_and_team_come_from_resource_attributes_and_filter_lists() {
    let host = TestHost::start().await;
    post_all_with_places(&host).await;
    let traces = host.traces().await;
    assert!(traces.iter().all(|t| t["branch"] == "main"), "{traces:?}");
    let platform = host.get_json("/api/public/traces?team=platform&limit=500").await;
    let platform = platform["data"].as_array().cloned().unwrap_or_default();
    assert!(!platform.is_empty());
    assert!(platform.iter().all(|t| t["team"] == "platform" && t["agent"] == "claude-code"), "{platform:?}");
    let repo = "https://git.example.com/org/repo-1";
    let by_repo = host.get_json(&format!("/api/public/traces?repository={repo}&limit=500")).await;
    // Stored as one spelling (`host/owner/repo`); the clone URL as a filter finds it.
    let expected = traces.iter().filter(|t| t["repository"] == "git.example.com/org/repo-1").count();
    assert!(expected > 0);
    assert_eq!(by_repo["data"].as_array().map(Vec::len), Some(expected));
    let sessions = host.get_json("/api/public/sessions?team=apps").await;
    let sessions = sessions["data"].as_array().cloned().unwrap_or_default();
    assert!(!sessions.is_empty());
    assert!(sessions.iter().all(|s| s["team"] == "apps" && s["agent"] != "claude-code"), "{sessions:?}");
}

#[tokio::test]
async fn usage_totals_of_every_grouping_equal_the_sum_over_the_traces_on_both_engines() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |_| {}).await;
        post_all_with_places(&host).await;
        let traces = host.traces().await;
        for group in ["user", "agent", "model", "repository", "team", "device", "day"] {
            let page = host.get_json(&format!("/api/public/usage?group_by={group}")).await;
            let rows = page["data"].as_array().cloned().unwrap_or_default();
            assert!(!rows.is_empty(), "{engine:?} {group}");
            for field in
                ["input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens"]
            {
                assert_eq!(total(&rows, field), total(&traces, field), "{engine:?} group_by={group}: {field}");
            }
            let cost = total(&rows, "cost_usd");
            assert!((cost - total(&traces, "cost_usd")).abs() < 1e-6, "{engine:?} group_by={group}: cost {cost}");
            if group != "model" {
                // A prompt is in exactly one group (by model it counts in each model it used).
                assert_eq!(total(&rows, "prompts"), traces.len() as f64, "{engine:?} group_by={group}");
                let calls: usize = traces.iter().map(|t| t["tool_calls"].as_array().map_or(0, Vec::len)).sum();
                assert_eq!(total(&rows, "tool_calls"), calls as f64, "{engine:?} group_by={group}");
            }
        }
        // Filters narrow the usage like the trace list.
        let agent = host.get_json("/api/public/usage?group_by=agent&agent=codex").await;
        let rows = agent["data"].as_array().cloned().unwrap_or_default();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["key"], "codex");
        let codex: Vec<Value> = traces.iter().filter(|t| t["agent"] == "codex").cloned().collect();
        assert_eq!(num(&rows[0]["input_tokens"]), total(&codex, "input_tokens"));
        let day = host.get_json("/api/public/usage?group_by=day").await;
        let key = day["data"][0]["key"].as_str().unwrap_or("");
        assert_eq!(key.len(), 10, "days are YYYY-MM-DD: {key}");
        let by_model = host.get_json("/api/public/usage?group_by=model&model=gpt-4.1").await;
        assert_eq!(by_model["data"].as_array().map(Vec::len), Some(1), "{by_model}");
        assert_eq!(by_model["data"][0]["key"], "gpt-4.1");
    }
}

#[tokio::test]
async fn a_bad_group_is_a_clear_400() {
    let host = TestHost::start().await;
    for path in ["/api/public/usage", "/api/public/usage?group_by=colour", "/api/public/outcomes?group_by=model"] {
        let response = reqwest::Client::new()
            .get(host.url(path))
            .header("Authorization", antenna_e2e::basic(antenna_e2e::PUBLIC_KEY, antenna_e2e::SECRET_KEY))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.expect("JSON");
        assert!(body["error"].as_str().unwrap_or("").contains("group_by must be one of"), "{path}: {body}");
    }
}

/// Claude Code's metrics capture with outcome points added beside its real
/// `claude_code.active_time.total` (same resource, same session): what an edit, a commit and a
/// pull request export. Claude Code exports deltas.
fn claude_with_outcomes() -> Capture {
    Capture::load(CLAUDE_METRICS).only(&["metrics"]).map_json(|body| {
        for resource in body["resourceMetrics"].as_array_mut().into_iter().flatten() {
            for scope in resource["scopeMetrics"].as_array_mut().into_iter().flatten() {
                let Some(metrics) = scope["metrics"].as_array_mut() else { continue };
                let Some(template) = metrics.iter().find(|m| m["name"] == "claude_code.active_time.total").cloned()
                else {
                    continue;
                };
                let point = |name: &str, extra: &[(&str, &str)], value: f64| {
                    let mut m = template.clone();
                    m["name"] = json!(name);
                    m["unit"] = json!("count");
                    let p = &mut m["sum"]["dataPoints"][0];
                    p["asDouble"] = json!(value);
                    let attrs = p["attributes"].as_array_mut().expect("attributes");
                    attrs.retain(|a| a["key"] != "type");
                    for (k, v) in extra {
                        attrs.push(json!({"key": k, "value": {"stringValue": v}}));
                    }
                    m
                };
                let added = [
                    point("claude_code.lines_of_code.count", &[("type", "added")], 12.0),
                    point("claude_code.lines_of_code.count", &[("type", "removed")], 3.0),
                    point("claude_code.commit.count", &[], 1.0),
                    point("claude_code.pull_request.count", &[], 1.0),
                    point("claude_code.code_edit_tool.decision", &[("decision", "accept"), ("tool_name", "Edit")], 3.0),
                    point("claude_code.code_edit_tool.decision", &[("decision", "reject"), ("tool_name", "Edit")], 1.0),
                ];
                metrics.extend(added);
            }
        }
    })
}

/// Gemini CLI's metrics with two exports of one cumulative `gemini_cli.lines.changed` series
/// (running totals 5 then 9): the outcome is the latest, not the sum.
fn gemini_with_lines() -> Capture {
    Capture::load("gemini-cli/json-content-on").only(&["metrics"]).map_json(|body| {
        for resource in body["resourceMetrics"].as_array_mut().into_iter().flatten() {
            for scope in resource["scopeMetrics"].as_array_mut().into_iter().flatten() {
                let Some(metrics) = scope["metrics"].as_array_mut() else { continue };
                let Some(template) = metrics.iter().find(|m| m["name"] == "gemini_cli.session.count").cloned() else {
                    continue;
                };
                let mut m = template.clone();
                m["name"] = json!("gemini_cli.lines.changed");
                let mut first = m["sum"]["dataPoints"][0].clone();
                first["attributes"]
                    .as_array_mut()
                    .expect("attributes")
                    .push(json!({"key": "type", "value": {"stringValue": "added"}}));
                first["asInt"] = json!(5);
                let mut second = first.clone();
                second["asInt"] = json!(9);
                second["timeUnixNano"] = json!("1795545827859000000");
                m["sum"]["dataPoints"] = json!([first, second]);
                metrics.push(m);
            }
        }
    })
}

#[tokio::test]
async fn outcomes_are_the_agents_numbers_deltas_summed_running_totals_once_on_both_engines() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |_| {}).await;
        host.replay(&claude_with_outcomes().with_resource_attribute("team", "platform")).await;
        host.replay(&gemini_with_lines().with_resource_attribute("team", "apps")).await;
        let page = host.get_json("/api/public/outcomes?group_by=agent").await;
        let rows = page["data"].as_array().cloned().unwrap_or_default();
        let row = |agent: &str| rows.iter().find(|r| r["key"] == agent).cloned().unwrap_or_default();
        let claude = row("claude-code");
        assert_eq!(num(&claude["lines_added"]), 12.0, "{engine:?} {claude}");
        assert_eq!(num(&claude["lines_removed"]), 3.0);
        assert_eq!(num(&claude["commits"]), 1.0);
        assert_eq!(num(&claude["pull_requests"]), 1.0);
        assert_eq!(num(&claude["edits_accepted"]), 3.0);
        assert_eq!(num(&claude["edits_rejected"]), 1.0);
        assert_eq!(num(&claude["acceptance_rate"]), 0.75);
        assert!((num(&claude["active_seconds"]) - 0.622).abs() < 1e-9, "the capture's real active time: {claude}");
        let gemini = row("gemini");
        assert_eq!(num(&gemini["lines_added"]), 9.0, "{engine:?}: the latest running total: {gemini}");
        assert_eq!(gemini["acceptance_rate"], Value::Null, "no decisions, no rate");
        let team = host.get_json("/api/public/outcomes?group_by=team&team=apps").await;
        assert_eq!(team["data"].as_array().map(Vec::len), Some(1), "{team}");
        assert_eq!(num(&team["data"][0]["lines_added"]), 9.0);
        // Outcomes never enter prompt totals: the metrics made no trace.
        assert!(host.traces().await.is_empty());
    }
}

#[tokio::test]
async fn a_decision_is_the_agents_word_and_its_source_apart() {
    let host = TestHost::start().await;
    host.replay(&Capture::load("claude-code/protobuf-content-on")).await;
    let traces = host.traces().await;
    let calls: Vec<&Value> = traces.iter().flat_map(|t| t["tool_calls"].as_array().into_iter().flatten()).collect();
    let decided: Vec<&&Value> = calls.iter().filter(|c| !c["decision"].is_null()).collect();
    assert!(!decided.is_empty(), "{calls:?}");
    for call in decided {
        let decision = call["decision"].as_str().unwrap_or("");
        assert!(!decision.contains('('), "the word alone: {call}");
        assert!(call["decision_source"].is_string(), "{call}");
    }
}
