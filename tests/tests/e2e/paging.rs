//! Bounded reads (security review finding 7): the problem-batch list paged by id without
//! bodies, replay and retries in chunks, trace lists with long texts clipped, the users list's
//! per-agent counts in one query. Real hosts, real HTTP, both engines.

use antenna_e2e::{ADMIN_TOKEN, Capture, Engine, EngineHost, TestHost};
use serde_json::{Value, json};

async fn host(engine: Engine) -> EngineHost {
    TestHost::on_engine(engine, |config| config.admin_token = Some(ADMIN_TOKEN.into())).await
}

/// A distinct body (so not deduplicated) with a resource no plugin claims: an unclaimed batch.
fn unclaimed_body(n: usize) -> Vec<u8> {
    let body = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "mystery-agent"}}]},
        "scopeLogs": [{"scope": {"name": "mystery"}, "logRecords": [{"timeUnixNano": n.to_string()}]}]}]});
    serde_json::to_vec(&body).expect("JSON")
}

async fn post_unclaimed(host: &TestHost, count: usize) {
    for n in 1..=count {
        let response = host.post("/v1/logs", "application/json", unclaimed_body(n)).await;
        assert_eq!(response.status(), 200);
    }
}

/// Every page of `/api/public/batches` with `limit` (none: the default), and the ids in order.
async fn all_pages(host: &TestHost, limit: Option<usize>) -> (Vec<usize>, Vec<i64>) {
    let (mut sizes, mut ids, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let mut path = "/api/public/batches?".to_owned();
        if let Some(limit) = limit {
            path.push_str(&format!("limit={limit}&"));
        }
        if let Some(cursor) = &cursor {
            path.push_str(&format!("cursor={cursor}"));
        }
        let page = host.get_json(&path).await;
        let data = page["data"].as_array().expect("data");
        sizes.push(data.len());
        for item in data {
            assert!(item.get("body").is_none(), "no body in a listing: {item}");
            assert_eq!(item["status"], "unclaimed");
            ids.push(item["id"].as_i64().expect("id"));
        }
        match &page["next_cursor"] {
            Value::Null => return (sizes, ids),
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor {other}"),
        }
        assert!(sizes.len() < 1_000, "paging never ends");
    }
}

async fn status_of(host: &TestHost, path: &str) -> u16 {
    let response = host
        .client
        .get(host.url(path))
        .header("authorization", antenna_e2e::basic(antenna_e2e::PUBLIC_KEY, antenna_e2e::SECRET_KEY))
        .send()
        .await
        .expect("GET");
    response.status().as_u16()
}

#[tokio::test]
async fn failed_batches_page_by_id_without_duplicates_or_gaps_on_both_engines() {
    for engine in Engine::ALL {
        let host = host(engine).await;
        post_unclaimed(&host, 7).await;
        let (sizes, ids) = all_pages(&host, Some(3)).await;
        assert_eq!(sizes, [3, 3, 1], "{engine:?}");
        assert_eq!(ids, (1..=7).collect::<Vec<i64>>(), "{engine:?}: every batch once, oldest first");
        // A page that holds exactly what is left is the last one: no empty page after it.
        let (sizes, ids) = all_pages(&host, Some(7)).await;
        assert_eq!((sizes.as_slice(), ids.len()), (&[7][..], 7), "{engine:?}");
        // Default limit 50, at most 500; a cursor that is not one is refused.
        let (sizes, _) = all_pages(&host, None).await;
        assert_eq!(sizes, [7], "{engine:?}");
        for bad in ["limit=0", "limit=501", "cursor=3", "cursor=id:x", "cursor=id:-1"] {
            assert_eq!(status_of(&host, &format!("/api/public/batches?{bad}")).await, 400, "{engine:?}: {bad}");
        }
    }
}

#[tokio::test]
async fn a_replay_of_more_batches_than_one_chunk_processes_them_all_on_both_engines() {
    let count = usize::try_from(antenna::pipeline::CHUNK).expect("chunk") + 21;
    for engine in Engine::ALL {
        let host = host(engine).await;
        post_unclaimed(&host, count).await;
        let (sizes, ids) = all_pages(&host, None).await;
        assert_eq!(sizes, [50, 50, count - 100], "{engine:?}: default pages of 50");
        assert_eq!(ids.len(), count);
        let report = host.replay_batches(json!({})).await;
        assert_eq!(report, json!({"batches": count, "done": 0, "failed": 0, "unclaimed": count}), "{engine:?}");
        let report = host.replay_batches(json!({"failed_only": true})).await;
        assert_eq!(report["batches"], count, "{engine:?}");
        let (_, after) = all_pages(&host, Some(500)).await;
        assert_eq!(after, ids, "{engine:?}: replayed batches stay as they were");
    }
}

const PROMPT_TAIL: &str = "<end of the huge prompt>";

/// The Gemini capture with a prompt and tool arguments far past what a list shows (multi-byte
/// characters, so a clip must land on a character boundary).
fn huge_texts() -> (Capture, String, String) {
    let prompt = format!("{}{PROMPT_TAIL}", "€".repeat(10_000));
    let args = format!("{{\"command\": \"{}\"}}", "é".repeat(10_000));
    let (p, a) = (prompt.clone(), args.clone());
    let capture = Capture::load("gemini-cli/json-content-on").map_json(move |body| {
        for resource in body["resourceLogs"].as_array_mut().into_iter().flatten() {
            for scope in resource["scopeLogs"].as_array_mut().into_iter().flatten() {
                for record in scope["logRecords"].as_array_mut().into_iter().flatten() {
                    for attribute in record["attributes"].as_array_mut().into_iter().flatten() {
                        match attribute["key"].as_str() {
                            Some("prompt") => attribute["value"] = json!({"stringValue": p}),
                            Some("function_args") => attribute["value"] = json!({"stringValue": a}),
                            _ => {}
                        }
                    }
                }
            }
        }
    });
    (capture, prompt, args)
}

fn assert_clipped(what: &str, listed: &Value, full: &str) {
    let listed = listed.as_str().unwrap_or_else(|| panic!("{what}: {listed}"));
    assert!(listed.len() <= antenna::api::LIST_TEXT_BYTES + antenna::api::CLIPPED_MARKER.len(), "{what}");
    assert!(listed.ends_with(antenna::api::CLIPPED_MARKER), "{what}");
    let kept = listed.strip_suffix(antenna::api::CLIPPED_MARKER).expect("marker");
    assert!(full.starts_with(kept) && kept.len() > antenna::api::LIST_TEXT_BYTES - 4, "{what}: a prefix of the text");
}

#[tokio::test]
async fn trace_lists_clip_huge_texts_and_the_detail_keeps_them_on_both_engines() {
    let (capture, prompt, args) = huge_texts();
    for engine in Engine::ALL {
        let host = host(engine).await;
        host.replay(&capture).await;
        let traces = host.traces().await;
        let listed = traces.iter().find(|t| t["prompt"].as_str().is_some_and(|p| p.starts_with('€'))).expect("trace");
        assert_eq!(listed["truncated"], true, "{engine:?}");
        assert_clipped("prompt", &listed["prompt"], &prompt);
        let id = listed["id"].as_str().expect("id");
        let detail = host.get_json(&format!("/api/public/traces/{id}")).await;
        assert_eq!(detail["prompt"], prompt.as_str(), "{engine:?}: the detail has the full prompt");
        assert!(detail.get("truncated").is_none(), "{engine:?}");
        // The plugin may rewrite the arguments (compact JSON): the detail keeps all of them.
        let calls = detail["tool_calls"].as_array().expect("tool calls");
        let long = calls.iter().position(|c| c["args"].as_str().is_some_and(|a| a.matches('é').count() == 10_000));
        let index = long.unwrap_or_else(|| panic!("{engine:?}: the detail has the full tool arguments: {calls:?}"));
        let full = calls[index]["args"].as_str().expect("args");
        assert!(full.len() > args.len() - 8, "{engine:?}");
        assert_clipped("tool args", &listed["tool_calls"][index]["args"], full);
        // The session detail lists its traces the same way.
        let session = listed["session_id"].as_str().expect("session");
        let session = host.get_json(&format!("/api/public/sessions/{session}")).await;
        let in_session = session["traces"].as_array().into_iter().flatten().find(|t| t["id"] == id).expect("trace");
        assert_eq!(in_session["truncated"], true);
        assert_clipped("prompt in a session", &in_session["prompt"], &prompt);
        // Traces with short texts are shown whole.
        assert!(traces.iter().filter(|t| t["id"] != id).all(|t| t["truncated"] == false), "{engine:?}");
    }
}

/// Every mention of the captures' user as another one.
fn as_other_user(value: &mut Value) {
    match value {
        Value::String(s) if s == "dev@example.com" => *s = "other@example.com".into(),
        Value::Array(items) => items.iter_mut().for_each(as_other_user),
        Value::Object(map) => map.values_mut().for_each(as_other_user),
        _ => {}
    }
}

#[tokio::test]
async fn the_users_list_counts_traces_per_agent_on_both_engines() {
    for engine in Engine::ALL {
        let host = host(engine).await;
        host.replay(&Capture::load("claude-code/protobuf-content-on")).await;
        host.replay(&Capture::load("codex/binary-content-on").with_resource_attribute("user.id", "dev@example.com"))
            .await;
        host.replay(&Capture::load("copilot-cli/json-content-on")).await;
        host.replay(&Capture::load("gemini-cli/json-content-on")).await;
        host.replay(&Capture::load("claude-code/json-content-off").map_json(as_other_user)).await;
        // What the trace list says, user by user and agent by agent.
        let mut expected: std::collections::BTreeMap<String, std::collections::BTreeMap<String, i64>> =
            Default::default();
        for trace in host.traces().await {
            if let (Some(user), Some(agent)) = (trace["user_id"].as_str(), trace["agent"].as_str()) {
                *expected.entry(user.to_owned()).or_default().entry(agent.to_owned()).or_default() += 1;
            }
        }
        assert!(expected.len() >= 2, "{engine:?}: {expected:?}");
        // Every page size, one user per page included.
        for limit in [1, 500] {
            let mut seen = std::collections::BTreeMap::new();
            let mut cursor = String::new();
            loop {
                let page = host.get_json(&format!("/api/public/users?limit={limit}{cursor}")).await;
                for user in page["data"].as_array().expect("data") {
                    let agents: std::collections::BTreeMap<String, i64> =
                        serde_json::from_value(user["agents"].clone()).expect("agents");
                    assert_eq!(user["traces"].as_i64(), Some(agents.values().sum::<i64>()), "{engine:?}: {user}");
                    seen.insert(user["id"].as_str().expect("id").to_owned(), agents);
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = format!("&cursor={next}"),
                    None => break,
                }
            }
            assert_eq!(seen, expected, "{engine:?}, limit {limit}");
        }
        let users = host.get_json("/api/public/users").await;
        let dev = users["data"].as_array().into_iter().flatten().find(|u| u["id"] == "dev@example.com").expect("dev");
        assert_eq!(dev["agents"]["codex"], 1, "{engine:?}: {dev}");
        assert_eq!(dev["agents"]["claude-code"], 1, "{engine:?}: {dev}");
    }
}
