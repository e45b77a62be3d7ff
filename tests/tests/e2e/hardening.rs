//! The smaller findings of the third security review, each against a real host: repositories
//! stored without credentials in one spelling (M3), token counts bounded and sums that cannot
//! overflow on either engine (M5), unclaimed resources paged with clipped names (L6), JSON
//! answers that are neither sniffed nor cached (L7).

use antenna::storage::{BatchStatus, BatchWrite};
use antenna::trace::model::{Attribution, Body, Channel, Fragment, ModelCall, Usage};
use antenna_e2e::{Capture, Engine, TestHost};
use serde_json::{Value, json};

#[tokio::test]
async fn repositories_are_one_spelling_without_credentials() {
    let host = TestHost::start().await;
    let https = "https://dev:ghp_0123456789abcdefghijklmnopqrstuvwxyzAB@GitHub.com/acme/widgets.git?ref=main";
    let ssh = "git@github.com:acme/widgets.git";
    let claude =
        Capture::load("claude-code/protobuf-content-on").with_resource_attribute("vcs.repository.url.full", https);
    let codex = Capture::load("codex/binary-content-on").with_resource_attribute("vcs.repository.url.full", ssh);
    host.replay(&claude).await;
    host.replay(&codex).await;

    let traces = host.traces().await;
    assert!(traces.len() >= 2);
    for trace in &traces {
        assert_eq!(trace["repository"], "github.com/acme/widgets", "{}", trace["id"]);
    }
    let everything = host.get_json("/api/public/traces?limit=500").await.to_string();
    assert!(!everything.contains("ghp_0123"), "the token is not served");
    let usage = host.get_json("/api/public/usage?group_by=repository").await;
    assert_eq!(usage["data"].as_array().map(Vec::len), Some(1), "{usage}");
    // A clone URL given as the filter finds its repository.
    let filtered = host.get_json("/api/public/traces?repository=https%3A%2F%2Fgithub.com%2Facme%2Fwidgets.git").await;
    assert_eq!(filtered["data"].as_array().map(Vec::len), Some(traces.len()));
}

/// Set every attribute `key` of a JSON capture to `value`.
fn set_attribute(value: &mut Value, key: &str, to: &Value) {
    match value {
        Value::Object(map) => {
            if map.get("key").and_then(Value::as_str) == Some(key) {
                map.insert("value".into(), to.clone());
            }
            map.values_mut().for_each(|v| set_attribute(v, key, to));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| set_attribute(v, key, to)),
        _ => {}
    }
}

/// A model call of `tokens` input tokens, as a plugin that did not bound it would report it.
fn huge_call(trace: &str, tokens: u64) -> (String, Fragment) {
    let call = ModelCall {
        channel: Channel::Log,
        model: Some("claude-sonnet-4-5".into()),
        usage: Some(Usage { input: tokens, ..Usage::default() }),
        cost_usd: None,
        start_unix_nano: Some(1_700_000_000_000_000_000),
        end_unix_nano: Some(1_700_000_000_000_000_001),
        duration_ms: None,
        error: None,
    };
    let attribution =
        Attribution { session_id: Some("s-huge".into()), user_id: Some("u-huge".into()), ..Attribution::default() };
    let fragment = Fragment {
        trace_key: trace.into(),
        also_known_as: Vec::new(),
        id: format!("call-{trace}"),
        report_id: "r".into(),
        attribution,
        body: Body::ModelCall(call),
    };
    ("claude-code".into(), fragment)
}

#[tokio::test]
async fn absurd_token_counts_are_refused_and_sums_saturate_on_both_engines() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |_| {}).await;
        // Through the API: the parser's absurd count is a validation error on the batch.
        let absurd = json!({"intValue": "9223372036854775807"});
        let capture = Capture::load("claude-code/json-content-off").only(&["logs"]);
        host.replay(&capture.map_json(|body| set_attribute(body, "input_tokens", &absurd))).await;
        let batches = host.get_json("/api/public/batches").await;
        let errors: Vec<&str> =
            batches["data"].as_array().into_iter().flatten().filter_map(|b| b["error"].as_str()).collect();
        assert!(errors.iter().any(|e| e.contains("at most 1000000000")), "{engine:?}: {batches}");

        // Below the API, stored counts near the top of the range (as before the bound): every
        // aggregate still answers, saturated.
        for trace in ["t-huge-1", "t-huge-2"] {
            let write = BatchWrite {
                id: None,
                project_id: host
                    .server
                    .state
                    .storage
                    .project_key(antenna_e2e::PUBLIC_KEY)
                    .await
                    .expect("key")
                    .expect("project")
                    .project_id,
                signal: "logs".into(),
                encoding: "json".into(),
                body: trace.as_bytes().to_vec(),
                body_codec: "identity",
                body_sha256: trace.into(),
                status: BatchStatus::Done,
                agents: vec!["claude-code".into()],
                error: None,
                fragments: vec![huge_call(trace, u64::MAX >> 1)],
                unclaimed: Vec::new(),
                users: Vec::new(),
            };
            host.server.state.storage.commit(write).await.expect("stored");
        }
        for path in [
            "/api/public/usage?group_by=agent",
            "/api/public/usage?group_by=model",
            "/api/public/usage?group_by=day",
            "/api/public/sessions",
            "/api/public/users",
        ] {
            let answer = host
                .client
                .get(host.url(path))
                .basic_auth(antenna_e2e::PUBLIC_KEY, Some(antenna_e2e::SECRET_KEY))
                .send()
                .await
                .expect("answer");
            assert_eq!(answer.status(), 200, "{engine:?} {path}");
            let body: Value = answer.json().await.expect("JSON");
            let row = &body["data"][0];
            assert_eq!(row["input_tokens"], i64::MAX, "{engine:?} {path}: {row}");
        }
    }
}

#[tokio::test]
async fn unclaimed_resources_are_paged_with_clipped_names() {
    let host = TestHost::start().await;
    let long = "x".repeat(10_000);
    for service in ["mystery-a", "mystery-b", long.as_str()] {
        let body = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
            "scopeLogs": [{"scope": {"name": "mystery"}, "logRecords": [{"timeUnixNano": "1"}]}]}]});
        let response = host.post("/v1/logs", "application/json", serde_json::to_vec(&body).expect("JSON")).await;
        assert_eq!(response.status(), 200);
    }
    let first = host.get_json("/api/public/unclaimed?limit=2").await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(2), "{first}");
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let rest = host.get_json(&format!("/api/public/unclaimed?limit=2&cursor={cursor}")).await;
    assert_eq!(rest["data"].as_array().map(Vec::len), Some(1), "{rest}");
    let names: Vec<usize> = [&first, &rest]
        .iter()
        .flat_map(|page| page["data"].as_array().into_iter().flatten())
        .filter_map(|r| r["service_name"].as_str().map(str::len))
        .collect();
    assert!(names.iter().all(|len| *len <= 256), "{names:?}");
}

#[tokio::test]
async fn json_answers_are_not_sniffed_or_cached() {
    let host = TestHost::start().await;
    for path in ["/api/public/traces", "/api/public/unclaimed", "/healthz", "/api/nope"] {
        let response = host
            .client
            .get(host.url(path))
            .basic_auth(antenna_e2e::PUBLIC_KEY, Some(antenna_e2e::SECRET_KEY))
            .send()
            .await
            .expect("answer");
        let headers = response.headers();
        assert_eq!(headers.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{path}");
        assert_eq!(headers.get("cache-control").map(|v| v.as_bytes()), Some(&b"no-store"[..]), "{path}");
    }
    // The UI's own files keep their own rule.
    let page = host.client.get(host.url("/")).send().await.expect("the UI");
    assert_eq!(page.headers().get("cache-control").map(|v| v.as_bytes()), Some(&b"no-cache"[..]));
}
