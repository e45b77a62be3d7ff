//! A trace updated batch by batch from its stored state ends as the trace merged from all its
//! fragments at once, through real hosts on both engines: every capture's records split into
//! batches of one to three, sent in order and, to another host, scrambled with some batches
//! twice, give the same public JSON (every trace, detail, session and user), which a replay
//! (every trace merged whole again) leaves as it is.

use antenna_e2e::{ADMIN_TOKEN, CapturedRequest, Engine, TestHost};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{Value, json};

use crate::storage::{CAPTURES, assert_same, snapshot};

/// Captures beyond the storage suite's: several prompts of one session, failed tools.
const MORE: [&str; 4] = [
    "claude-code/session-two-prompts-protobuf",
    "copilot-cli/session-two-prompts-protobuf",
    "gemini-cli/session-two-prompts-json",
    "codex/failing-tool-binary",
];

/// A small deterministic generator (splitmix64): the same scramble on every run.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }

    /// `items` cut into runs of one to three.
    fn chunks<T: Clone>(&mut self, items: &[T]) -> Vec<Vec<T>> {
        let mut out = Vec::new();
        let mut rest = items;
        while !rest.is_empty() {
            let take = (1 + self.below(3)).min(rest.len());
            out.push(rest[..take].to_vec());
            rest = &rest[take..];
        }
        out
    }
}

/// One request's records in several requests of one to three records, each with its own
/// resource and scope.
fn split(request: &CapturedRequest, draw: &mut Draw) -> Vec<CapturedRequest> {
    let with_body = |body: Vec<u8>| CapturedRequest { body, ..request.clone() };
    let protobuf = request.content_type.contains("protobuf");
    match (request.signal.as_str(), protobuf) {
        ("logs", true) => {
            let message = ExportLogsServiceRequest::decode(&request.body[..]).expect("protobuf logs");
            let mut out = Vec::new();
            for resource in &message.resource_logs {
                for scope in &resource.scope_logs {
                    for records in draw.chunks(&scope.log_records) {
                        let mut resource = resource.clone();
                        resource.scope_logs = vec![scope.clone()];
                        resource.scope_logs[0].log_records = records;
                        out.push(with_body(ExportLogsServiceRequest { resource_logs: vec![resource] }.encode_to_vec()));
                    }
                }
            }
            out
        }
        ("traces", true) => {
            let message = ExportTraceServiceRequest::decode(&request.body[..]).expect("protobuf traces");
            let mut out = Vec::new();
            for resource in &message.resource_spans {
                for scope in &resource.scope_spans {
                    for spans in draw.chunks(&scope.spans) {
                        let mut resource = resource.clone();
                        resource.scope_spans = vec![scope.clone()];
                        resource.scope_spans[0].spans = spans;
                        out.push(with_body(
                            ExportTraceServiceRequest { resource_spans: vec![resource] }.encode_to_vec(),
                        ));
                    }
                }
            }
            out
        }
        (signal @ ("logs" | "traces"), false) => {
            let (resources, scopes, records) = if signal == "logs" {
                ("resourceLogs", "scopeLogs", "logRecords")
            } else {
                ("resourceSpans", "scopeSpans", "spans")
            };
            let body: Value = serde_json::from_slice(&request.body).expect("JSON");
            let mut out = Vec::new();
            for resource in body[resources].as_array().into_iter().flatten() {
                for scope in resource[scopes].as_array().into_iter().flatten() {
                    let items = scope[records].as_array().cloned().unwrap_or_default();
                    for part in draw.chunks(&items) {
                        let mut resource = resource.clone();
                        let mut scope = scope.clone();
                        scope[records] = Value::Array(part);
                        resource[scopes] = json!([scope]);
                        out.push(with_body(serde_json::to_vec(&json!({ resources: [resource] })).expect("JSON")));
                    }
                }
            }
            out
        }
        // Metrics: usage per session, not part of a trace's assembly.
        _ => vec![request.clone()],
    }
}

/// What the API shows of the traces (batches differ: there are more of them).
async fn traces_view(host: &TestHost) -> Value {
    let mut all = snapshot(host).await;
    if let Some(map) = all.as_object_mut() {
        map.remove("batches");
        map.remove("unclaimed");
    }
    all
}

/// A counter of the host's `/metrics`.
async fn counter(host: &TestHost, name: &str) -> u64 {
    let text = host.client.get(host.url("/metrics")).send().await.expect("GET /metrics").text().await.expect("text");
    let line = text.lines().find(|l| l.split_whitespace().next() == Some(name));
    line.and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {text}"))
}

#[tokio::test]
async fn any_split_and_order_of_the_batches_some_twice_gives_the_trace_of_one_merge_on_both_engines() {
    let captures: Vec<antenna_e2e::Capture> =
        CAPTURES.iter().chain(&MORE).map(|c| antenna_e2e::Capture::load(c)).collect();
    let mut draw = Draw(0x5EED_2026);
    let in_order: Vec<CapturedRequest> =
        captures.iter().flat_map(|c| c.requests.iter()).flat_map(|r| split(r, &mut draw)).collect();
    // Scrambled (Fisher-Yates), and every fifth batch again at the end (an OTLP retry).
    let mut scrambled = in_order.clone();
    for i in (1..scrambled.len()).rev() {
        let j = draw.below(i + 1);
        scrambled.swap(i, j);
    }
    let again: Vec<CapturedRequest> = scrambled.iter().step_by(5).cloned().collect();
    scrambled.extend(again);

    let mut views = Vec::new();
    for engine in Engine::ALL {
        let with_admin = |c: &mut antenna::config::Config| c.admin_token = Some(ADMIN_TOKEN.into());
        let (ordered, host) =
            (TestHost::on_engine(engine, with_admin).await, TestHost::on_engine(engine, with_admin).await);
        for (to, batches) in [(&ordered, &in_order), (&host, &scrambled)] {
            for request in batches {
                let response = to.post(&request.path, &request.content_type, request.body.clone()).await;
                assert_eq!(response.status(), 200, "{engine:?}: a batch of {}", request.file);
            }
        }
        let updated = traces_view(&host).await;
        assert!(updated["traces"]["data"].as_array().is_some_and(|t| t.len() >= 8), "{engine:?}: the captures' traces");
        assert_same(
            &format!("{engine:?}: {} batches scrambled, some twice, vs {} in order", scrambled.len(), in_order.len()),
            &updated,
            &traces_view(&ordered).await,
        );
        // Most writes took the incremental path (the rest: new traces, retries, the undecidable).
        let (by_state, whole) =
            (counter(&host, "antenna_traces_updated_total").await, counter(&host, "antenna_traces_merged_total").await);
        assert!(by_state > whole, "{engine:?}: {by_state} traces updated from their state, {whole} merged whole");
        // A replay merges every trace whole from all its fragments (the same fragments: what a
        // parser makes depends only on its batch).
        let replayed = host.replay_batches(json!({})).await;
        assert!(replayed["batches"].as_u64().is_some_and(|n| n >= in_order.len() as u64 / 2), "{replayed}");
        assert_same(
            &format!("{engine:?}: updated batch by batch vs merged whole"),
            &updated,
            &traces_view(&host).await,
        );
        views.push(updated);
    }
    assert_same("SQLite and PostgreSQL", &views[0], &views[1]);
}
