//! A prompt that runs for hours: hundreds of small log batches, one tool result or a few each,
//! in any order, some twice. Its trace stays exact, its detail stays bounded (the first 100
//! tool calls, the first 500 observations) and the rest of its timeline pages in order, on
//! both engines.

use std::collections::BTreeSet;

use antenna_e2e::{Capture, Engine};
use serde_json::{Value, json};

const TOOLS: usize = 720;
const PER_BATCH: usize = 24;

/// The Claude Code logs body of a capture, with its prompt and one tool result as templates.
fn templates() -> (Value, Value, Value) {
    let capture = Capture::load("claude-code/json-content-off");
    let logs = capture.requests.iter().find(|r| r.signal == "logs").expect("a logs request");
    let body: Value = serde_json::from_slice(&logs.body).expect("JSON");
    let records = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"].as_array().cloned().unwrap_or_default();
    let event = |name: &str| {
        records
            .iter()
            .find(|r| {
                r["attributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|a| a["key"] == "event.name" && a["value"]["stringValue"] == name)
            })
            .cloned()
            .unwrap_or_else(|| panic!("a {name} record"))
    };
    (body, event("user_prompt"), event("tool_result"))
}

fn set(record: &mut Value, key: &str, value: Value) {
    if let Some(attributes) = record["attributes"].as_array_mut() {
        for a in attributes.iter_mut().filter(|a| a["key"] == key) {
            a["value"] = value.clone();
        }
    }
}

/// A logs body of `template`'s resource and scope carrying `records`.
fn body_of(template: &Value, records: Vec<Value>) -> Vec<u8> {
    let mut body = template.clone();
    body["resourceLogs"] = json!([body["resourceLogs"][0].clone()]);
    body["resourceLogs"][0]["scopeLogs"] = json!([body["resourceLogs"][0]["scopeLogs"][0].clone()]);
    body["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = Value::Array(records);
    serde_json::to_vec(&body).expect("JSON")
}

/// The batches of one long prompt, scrambled, one sent twice, the prompt itself in the middle.
fn batches() -> Vec<Vec<u8>> {
    let (template, prompt, tool) = templates();
    let start: u64 = prompt["timeUnixNano"].as_str().and_then(|t| t.parse().ok()).expect("time");
    let tools: Vec<Value> = (0..TOOLS)
        .map(|i| {
            let mut record = tool.clone();
            let time = (start + 1_000_000 * (i as u64 + 1)).to_string();
            record["timeUnixNano"] = json!(time);
            record["observedTimeUnixNano"] = json!(time);
            set(&mut record, "tool_use_id", json!({"stringValue": format!("toolu_{i:05}")}));
            set(&mut record, "event.sequence", json!({"intValue": i + 1}));
            record
        })
        .collect();
    let mut chunks: Vec<Vec<u8>> = tools.chunks(PER_BATCH).map(|c| body_of(&template, c.to_vec())).collect();
    // Scrambled: odd chunks backwards, then even ones.
    let mut order: Vec<usize> = (0..chunks.len()).filter(|i| i % 2 == 1).rev().collect();
    order.extend((0..chunks.len()).filter(|i| i % 2 == 0));
    let mut out: Vec<Vec<u8>> = order.iter().map(|&i| std::mem::take(&mut chunks[i])).collect();
    out.insert(out.len() / 2, body_of(&template, vec![prompt]));
    let again = out[3].clone();
    out.push(again);
    out
}

/// Every page of a trace's timeline at `limit`, and the ids in order.
async fn all_pages(host: &antenna_e2e::TestHost, id: &str, limit: usize) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/public/traces/{id}/observations?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = host.get_json(&path).await;
        let data = page["data"].as_array().cloned().unwrap_or_default();
        assert!(data.len() <= limit);
        all.extend(data);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

#[tokio::test]
async fn a_long_prompt_stays_exact_and_its_detail_bounded_with_the_rest_paged_on_both_engines() {
    let batches = batches();
    for engine in Engine::ALL {
        let host =
            antenna_e2e::TestHost::on_engine(engine, |c| c.admin_token = Some(antenna_e2e::ADMIN_TOKEN.into())).await;
        for body in &batches {
            let response = host.post("/v1/logs", "application/json", body.clone()).await;
            assert_eq!(response.status(), 200, "{engine:?}");
        }
        let traces = host.traces().await;
        assert_eq!(traces.len(), 1, "{engine:?}: one trace for the prompt");
        let id = traces[0]["id"].as_str().expect("id").to_owned();
        let detail = host.get_json(&format!("/api/public/traces/{id}")).await;

        // Exact counts, bounded lists.
        assert_eq!(detail["tool_call_count"], TOOLS, "{engine:?}");
        let listed: Vec<&str> =
            detail["tool_calls"].as_array().expect("tool calls").iter().filter_map(|t| t["id"].as_str()).collect();
        let first: Vec<String> = (0..100).map(|i| format!("toolu_{i:05}")).collect();
        assert_eq!(listed, first, "{engine:?}: the first 100 tool calls by start");
        let count = detail["observation_count"].as_u64().expect("observation_count") as usize;
        assert!(count >= TOOLS, "{engine:?}: {count}");
        let shown = detail["observations"].as_array().expect("observations");
        assert_eq!(shown.len(), 500, "{engine:?}");
        let next = detail["observations_next_cursor"].as_str().expect("more to page").to_owned();

        // Paged at an odd size: every observation once, in timeline order, the first 500 as shown.
        let all = all_pages(&host, &id, 97).await;
        assert_eq!(all.len(), count, "{engine:?}");
        let ids: BTreeSet<(String, String)> = all
            .iter()
            .map(|o| (o["type"].as_str().unwrap_or("").to_owned(), o["id"].as_str().unwrap_or("").to_owned()))
            .collect();
        assert_eq!(ids.len(), count, "{engine:?}: no observation twice");
        let starts: Vec<&str> = all.iter().map(|o| o["start_time"].as_str().unwrap_or("~")).collect();
        assert!(starts.windows(2).all(|w| w[0] <= w[1]), "{engine:?}: in order");
        assert_eq!(&all[..500], &shown[..], "{engine:?}");
        let tools: Vec<&Value> = all.iter().filter(|o| o["type"] == "tool_call").collect();
        assert_eq!(tools.len(), TOOLS);
        assert_eq!(tools[TOOLS - 1]["id"], format!("toolu_{:05}", TOOLS - 1));
        assert_eq!(tools[TOOLS - 1]["attributes"]["success"], true, "a tool call's detail is in its observation");

        // The detail's cursor goes on where it stopped.
        let rest = host.get_json(&format!("/api/public/traces/{id}/observations?cursor={next}")).await;
        assert_eq!(rest["data"].as_array().map(Vec::as_slice), Some(&all[500..]), "{engine:?}");
        assert_eq!(rest["next_cursor"], Value::Null);

        // Re-sent (an exporter's retries) and replayed: the same trace.
        let before = detail.clone();
        for body in &batches {
            assert_eq!(host.post("/v1/logs", "application/json", body.clone()).await.status(), 200);
        }
        assert_eq!(host.get_json(&format!("/api/public/traces/{id}")).await, before, "{engine:?}: re-sent");
        let replayed = host.replay_batches(json!({})).await;
        assert_eq!(replayed["batches"].as_u64(), Some(batches.len() as u64 - 1), "{replayed}");
        assert_eq!(host.get_json(&format!("/api/public/traces/{id}")).await, before, "{engine:?}: replayed");

        // Bad paging is a 400 that says so; an unknown trace a 404.
        for bad in ["limit=0", "limit=501", "limit=x", "cursor=not-a-cursor"] {
            let response = host
                .client
                .get(host.url(&format!("/api/public/traces/{id}/observations?{bad}")))
                .basic_auth(antenna_e2e::PUBLIC_KEY, Some(antenna_e2e::SECRET_KEY))
                .send()
                .await
                .expect("request");
            assert_eq!(response.status(), 400, "{engine:?}: {bad}");
        }
        let response = host
            .client
            .get(host.url("/api/public/traces/no-such-trace/observations"))
            .basic_auth(antenna_e2e::PUBLIC_KEY, Some(antenna_e2e::SECRET_KEY))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 404);
    }
}
