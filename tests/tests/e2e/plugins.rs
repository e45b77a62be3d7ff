//! Operators hot-load, replace, refuse, remove and roll back parsers without a restart, and
//! replay stored batches through them.

use antenna_e2e::{ADMIN_TOKEN, Capture, TestHost, components};
use serde_json::{Value, json};

const CLAUDE: &str = "claude-code/protobuf-content-on";

fn active_version(plugins: &Value, name: &str) -> Option<String> {
    plugins["data"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name && p["active"] == true)
        .map(|p| format!("{} {}", p["version"].as_str().unwrap_or(""), p["source"]["kind"].as_str().unwrap_or("")))
}

async fn only_trace(host: &TestHost) -> Value {
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1, "{traces:#?}");
    traces[0].clone()
}

#[tokio::test]
async fn a_dropped_in_plugin_loads_and_claims_what_was_waiting() {
    let host = TestHost::with_plugins_dir().await;
    // A batch no plugin claims yet: stored, listed, counted — not dropped.
    let batch = json!({"resourceLogs": [{"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "hostile"}},
            {"key": "hostile.trace", "value": {"stringValue": "waiting"}}]},
        "scopeLogs": [{"scope": {"name": "antenna.test.hostile"}, "logRecords": [{"timeUnixNano": "1"}]}]}]});
    let response = host.post("/v1/logs", "application/json", serde_json::to_vec(&batch).expect("json")).await;
    assert_eq!(response.status(), 200);
    assert!(host.traces().await.is_empty());
    let problems = host.get_json("/api/public/batches").await;
    assert_eq!(problems["data"][0]["status"], "unclaimed");
    let unclaimed = host.get_json("/api/public/unclaimed").await;
    assert_eq!(unclaimed["data"][0]["service_name"], "hostile");
    assert_eq!(unclaimed["data"][0]["scope_name"], "antenna.test.hostile");

    host.install_plugin(components::HOSTILE, "hostile.wasm");
    let plugins = host.wait_for_plugins("hostile loaded", |p| active_version(p, "hostile").is_some()).await;
    let hostile = plugins["data"].as_array().and_then(|d| d.iter().find(|p| p["name"] == "hostile")).expect("listed");
    assert_eq!(hostile["wit_version"], "0.1.0");
    assert_eq!(hostile["source"]["kind"], "file");
    assert_eq!(hostile["claims"]["scope_names"], json!(["antenna.test.hostile"]));

    // The waiting batch is normalized automatically once a plugin claims it.
    for _ in 0..100 {
        if !host.traces().await.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let trace = only_trace(&host).await;
    assert_eq!(trace["id"], "waiting");
    assert_eq!(trace["agent"], "hostile");
    assert_eq!(host.get_json("/api/public/batches").await["data"], json!([]));
}

#[tokio::test]
async fn broken_components_are_refused_and_the_serving_version_keeps_serving() {
    let host = TestHost::with_plugins_dir().await;
    std::fs::write(host.plugins_dir().join("garbage.wasm"), b"\0asm not really").expect("write");
    host.install_plugin(components::WRONG_WIT, "wrong-wit.wasm");
    host.install_plugin(components::NO_NORMALIZE, "no-normalize.wasm");
    let plugins =
        host.wait_for_plugins("three refusals", |p| p["refused"].as_array().is_some_and(|r| r.len() == 3)).await;
    let reasons: Vec<String> = plugins["refused"]
        .as_array()
        .expect("refused")
        .iter()
        .map(|r| format!("{} {}", r["file"].as_str().unwrap_or(""), r["reason"].as_str().unwrap_or("")))
        .collect();
    assert!(reasons.iter().any(|r| r.contains("garbage.wasm") && r.contains("not a valid component")), "{reasons:#?}");
    assert!(
        reasons.iter().any(|r| r.contains("wrong-wit.wasm") && r.contains("antenna:normalizer@0.9.0")),
        "{reasons:#?}"
    );
    assert!(reasons.iter().any(|r| r.contains("no-normalize.wasm") && r.contains("normalize")), "{reasons:#?}");
    for name in ["wrong-wit", "no-normalize"] {
        assert!(host.active_plugin(name).await.is_none());
    }

    // A broken replacement of a serving plugin: the old version keeps serving.
    host.install_plugin(components::CLAUDE_CODE_NEXT, "claude-code.wasm");
    host.wait_for_plugins("v2", |p| active_version(p, "claude-code").as_deref() == Some("0.2.0 file")).await;
    std::fs::write(host.plugins_dir().join("claude-code.wasm"), b"truncated").expect("write");
    host.wait_for_plugins("refusal", |p| {
        p["refused"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["file"].as_str().is_some_and(|f| f.ends_with("claude-code.wasm"))))
    })
    .await;
    assert_eq!(active_version(&host.admin_plugins().await, "claude-code").as_deref(), Some("0.2.0 file"));
    host.replay(&Capture::load(CLAUDE)).await;
    assert!(only_trace(&host).await["response"].as_str().is_some_and(|r| r.starts_with("[v2] ")));
}

#[tokio::test]
async fn replace_fix_replay_and_roll_back() {
    let host = TestHost::with_plugins_dir().await;
    assert_eq!(active_version(&host.admin_plugins().await, "claude-code").as_deref(), Some("0.1.0 built_in"));

    // A buggy release: every Claude Code batch fails, and is kept with its error.
    host.install_plugin(components::CLAUDE_CODE_BROKEN, "claude-code.wasm");
    host.wait_for_plugins("broken", |p| active_version(p, "claude-code").as_deref() == Some("0.1.1 file")).await;
    let capture = Capture::load(CLAUDE);
    host.replay(&capture).await;
    assert!(host.traces().await.is_empty());
    let problems = host.get_json("/api/public/batches").await;
    let problems = problems["data"].as_array().expect("data").clone();
    assert_eq!(problems.len(), 3);
    for batch in &problems {
        assert_eq!(batch["status"], "failed");
        let error = batch["error"].as_str().expect("error");
        assert!(error.contains("claude-code@0.1.1") && error.contains("simulated parser bug"), "{error}");
    }
    let status = host.active_plugin("claude-code").await.expect("active");
    assert_eq!(status["failures"], 3);
    assert!(status["last_error"].as_str().is_some_and(|e| e.contains("simulated parser bug")));

    // The fix goes live without a restart; replaying the failed batches normalizes them once.
    host.install_plugin(components::CLAUDE_CODE_NEXT, "claude-code.wasm");
    host.wait_for_plugins("fix", |p| active_version(p, "claude-code").as_deref() == Some("0.2.0 file")).await;
    let report = host.replay_batches(json!({"failed_only": true})).await;
    assert_eq!(report, json!({"batches": 3, "done": 3, "failed": 0, "unclaimed": 0}));
    let fixed = only_trace(&host).await;
    assert_eq!(fixed["input_tokens"], 3 * 1234);
    assert_eq!(fixed["output_tokens"], 3 * 56);
    assert!(fixed["response"].as_str().is_some_and(|r| r.starts_with("[v2] Done.")));
    assert_eq!(host.get_json("/api/public/batches").await["data"], json!([]));

    // Replaying everything again changes nothing.
    let report = host.replay_batches(json!({"agent": "claude-code"})).await;
    assert_eq!(report["batches"], 3);
    assert_eq!(only_trace(&host).await, fixed);

    // Removing the file rolls back to the built-in; a replay then replaces v2's output.
    std::fs::remove_file(host.plugins_dir().join("claude-code.wasm")).expect("remove");
    host.wait_for_plugins("built-in back", |p| active_version(p, "claude-code").as_deref() == Some("0.1.0 built_in"))
        .await;
    host.replay_batches(json!({})).await;
    let rolled_back = only_trace(&host).await;
    assert_eq!(
        rolled_back["response"],
        "Done. The directory listing shows the files in the current working directory."
    );
    assert_eq!(rolled_back["input_tokens"], 3 * 1234);
}

#[tokio::test]
async fn no_request_fails_while_plugins_are_swapped() {
    let host = std::sync::Arc::new(TestHost::with_plugins_dir().await);
    let capture = Capture::load(CLAUDE);
    let poster = {
        let host = host.clone();
        let capture = capture.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..15 {
                for request in &capture.requests {
                    let response = host.post(&request.path, &request.content_type, request.body.clone()).await;
                    statuses.push(response.status().as_u16());
                }
            }
            statuses
        })
    };
    for i in 0..6 {
        host.install_plugin(components::CLAUDE_CODE_NEXT, "claude-code.wasm");
        host.wait_for_plugins("v2", |p| active_version(p, "claude-code").as_deref() == Some("0.2.0 file")).await;
        std::fs::remove_file(host.plugins_dir().join("claude-code.wasm")).expect("remove");
        host.wait_for_plugins("built-in", |p| active_version(p, "claude-code").as_deref() == Some("0.1.0 built_in"))
            .await;
        assert!(i < 6);
    }
    let statuses = poster.await.expect("poster");
    assert_eq!(statuses.len(), 45);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let problems = host.get_json("/api/public/batches").await;
    assert_eq!(problems["data"], json!([]), "no batch failed during the swaps");
    let trace = only_trace(&host).await;
    assert_eq!(trace["input_tokens"], 3 * 1234, "each call counted once whichever version ran");
}

#[tokio::test]
async fn compiled_code_is_cached_for_the_next_start() {
    let host = TestHost::with_plugins_dir().await;
    host.install_plugin(components::HOSTILE, "hostile.wasm");
    host.wait_for_plugins("hostile", |p| active_version(p, "hostile").is_some()).await;
    let cache = host.dir.path().join("cache");
    let entries: Vec<String> = std::fs::read_dir(&cache)
        .expect("cache dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    // Every built-in parser and the dropped-in one, each keyed by its SHA-256 and the engine.
    let expected = antenna::builtin::PLUGINS.len() + 1;
    assert_eq!(entries.iter().filter(|e| e.ends_with(".cwasm")).count(), expected, "{entries:?}");
}

#[tokio::test]
async fn the_admin_api_needs_the_admin_token() {
    let host = TestHost::with_plugins_dir().await;
    let no_token = host.client.get(host.url("/api/admin/plugins")).send().await.expect("send");
    assert_eq!(no_token.status(), 401);
    let wrong = host.client.get(host.url("/api/admin/plugins")).bearer_auth("nope").send().await.expect("send");
    assert_eq!(wrong.status(), 401);
    let project_keys = host
        .client
        .post(host.url("/api/admin/replay"))
        .header("authorization", antenna_e2e::basic(antenna_e2e::PUBLIC_KEY, antenna_e2e::SECRET_KEY))
        .send()
        .await
        .expect("send");
    assert_eq!(project_keys.status(), 401, "project keys are not admin keys");
    let ok = host.client.get(host.url("/api/admin/plugins")).bearer_auth(ADMIN_TOKEN).send().await.expect("send");
    assert_eq!(ok.status(), 200);

    let off = TestHost::start().await;
    let response = off.client.get(off.url("/api/admin/plugins")).bearer_auth(ADMIN_TOKEN).send().await.expect("send");
    assert_eq!(response.status(), 403, "no admin token configured: the admin API is off");
}
