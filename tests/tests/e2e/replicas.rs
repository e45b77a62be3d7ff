//! Several replicas on one PostgreSQL database: two hosts (each its own storage pool) take the
//! parts of the same prompts at the same moment. Every round must end exactly as one SQLite
//! host given the same bodies one after another: the same trace ids, the same totals, the same
//! observations — no lost update, no double count, no split trace.
//!
//! Each round uses a project of its own (the same ids again, in a fresh key space). The bodies
//! are the captures' requests and, to make more writes meet on one trace, the same requests
//! cut into one body per log record or span.

use antenna_e2e::{ADMIN_TOKEN, Capture, CapturedRequest, Engine, PgDatabase, TestHost, basic};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use serde_json::{Value, json};

use crate::storage::{CAPTURES, assert_same};

const ROUNDS: usize = 20;

/// Every capture's requests, in order.
fn whole_bodies() -> Vec<CapturedRequest> {
    CAPTURES.iter().flat_map(|c| Capture::load(c).requests).collect()
}

/// The same requests with logs and spans cut into one body per record (metrics kept whole).
fn record_bodies() -> Vec<CapturedRequest> {
    let mut out = Vec::new();
    for request in whole_bodies() {
        let bodies: Vec<Vec<u8>> = match (request.signal.as_str(), request.content_type.contains("json")) {
            ("logs" | "traces", true) => split_json(&request.body, &request.signal),
            ("logs", false) => split_logs(&request.body),
            ("traces", false) => split_spans(&request.body),
            _ => vec![request.body.clone()],
        };
        out.extend(bodies.into_iter().map(|body| CapturedRequest { body, ..request.clone() }));
    }
    out
}

fn split_json(body: &[u8], signal: &str) -> Vec<Vec<u8>> {
    let (resources, scopes, records) = if signal == "logs" {
        ("resourceLogs", "scopeLogs", "logRecords")
    } else {
        ("resourceSpans", "scopeSpans", "spans")
    };
    let value: Value = serde_json::from_slice(body).expect("JSON capture");
    let mut out = Vec::new();
    for resource in value[resources].as_array().into_iter().flatten() {
        for scope in resource[scopes].as_array().into_iter().flatten() {
            for record in scope[records].as_array().into_iter().flatten() {
                let mut one_scope = scope.clone();
                one_scope[records] = json!([record]);
                let mut one_resource = resource.clone();
                one_resource[scopes] = json!([one_scope]);
                out.push(serde_json::to_vec(&json!({ resources: [one_resource] })).expect("JSON"));
            }
        }
    }
    out
}

fn split_logs(body: &[u8]) -> Vec<Vec<u8>> {
    let request = ExportLogsServiceRequest::decode(body).expect("protobuf logs");
    let mut out = Vec::new();
    for resource in &request.resource_logs {
        for scope in &resource.scope_logs {
            for record in &scope.log_records {
                let one = ExportLogsServiceRequest {
                    resource_logs: vec![ResourceLogs {
                        scope_logs: vec![ScopeLogs { log_records: vec![record.clone()], ..scope.clone() }],
                        ..resource.clone()
                    }],
                };
                out.push(one.encode_to_vec());
            }
        }
    }
    out
}

fn split_spans(body: &[u8]) -> Vec<Vec<u8>> {
    let request = ExportTraceServiceRequest::decode(body).expect("protobuf traces");
    let mut out = Vec::new();
    for resource in &request.resource_spans {
        for scope in &resource.scope_spans {
            for span in &scope.spans {
                let one = ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        scope_spans: vec![ScopeSpans { spans: vec![span.clone()], ..scope.clone() }],
                        ..resource.clone()
                    }],
                };
                out.push(one.encode_to_vec());
            }
        }
    }
    out
}

/// What the public API shows of one project: every trace with its observations, the
/// sessions and the users (project ids masked).
async fn project_view(host: &TestHost, keys: (&str, &str)) -> Value {
    let traces = host.get_json_as(keys, "/api/public/traces?limit=500").await;
    let mut details = serde_json::Map::new();
    for trace in traces["data"].as_array().into_iter().flatten() {
        let id = trace["id"].as_str().expect("trace id");
        let mut detail = host.get_json_as(keys, &format!("/api/public/traces/{id}")).await;
        detail["project_id"] = Value::Null;
        details.insert(id.to_owned(), detail);
    }
    let mut traces = traces;
    for trace in traces["data"].as_array_mut().into_iter().flatten() {
        trace["project_id"] = Value::Null;
    }
    json!({
        "traces": traces,
        "details": details,
        "sessions": host.get_json_as(keys, "/api/public/sessions?limit=500").await,
        "users": host.get_json_as(keys, "/api/public/users?limit=500").await,
    })
}

async fn post(client: &reqwest::Client, base: &str, keys: &(String, String), request: &CapturedRequest) {
    // Hundreds of bodies at once fill the admission queue: retry as an OTLP exporter does, also
    // when a pooled keep-alive connection was closed by the host (idle past its header-read
    // deadline) just as it was reused.
    for _ in 0..200 {
        let sent = client
            .post(format!("{base}{}", request.path))
            .header("content-type", &request.content_type)
            .header("authorization", basic(&keys.0, &keys.1))
            .body(request.body.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) if e.is_request() || e.is_connect() => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Err(e) => panic!("request sent: {e}"),
        };
        let status = response.status();
        if status == 429 || status == 503 {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 200, "{} {} to {base}: {text}", request.file, request.path);
        return;
    }
    panic!("{} {} to {base}: still refused after 200 attempts", request.file, request.path);
}

/// The single-host SQLite result of `bodies`, posted one after another.
async fn reference(bodies: &[CapturedRequest]) -> Value {
    let host = TestHost::on_engine(Engine::Sqlite, |_| {}).await;
    for request in bodies {
        let response = host.post(&request.path, &request.content_type, request.body.clone()).await;
        assert_eq!(response.status(), 200, "{}", request.file);
    }
    project_view(&host, (antenna_e2e::PUBLIC_KEY, antenna_e2e::SECRET_KEY)).await
}

/// Post `bodies` all at once, even ones to `a`, odd ones to `b`; with `twice`, each body also
/// to the other replica (an exporter retrying on another replica).
async fn post_split(a: &TestHost, b: &TestHost, keys: &(String, String), bodies: &[CapturedRequest], twice: bool) {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, request) in bodies.iter().enumerate() {
        let mut targets = vec![if i % 2 == 0 { a } else { b }];
        if twice {
            targets.push(if i % 2 == 0 { b } else { a });
        }
        for target in targets {
            let (client, base, keys, request) =
                (target.client.clone(), target.base.clone(), keys.clone(), request.clone());
            tasks.spawn(async move { post(&client, &base, &keys, &request).await });
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a post panicked");
    }
}

#[tokio::test]
async fn two_replicas_on_one_database_end_exactly_as_one_host() {
    let started = std::time::Instant::now();
    let whole = whole_bodies();
    let records = record_bodies();
    assert!(records.len() > 2 * whole.len(), "the captures cut into {} bodies", records.len());
    let expected_whole = reference(&whole).await;
    let expected_records = reference(&records).await;

    let database = PgDatabase::create().await;
    let with_admin = |c: &mut antenna::Config| c.admin_token = Some(ADMIN_TOKEN.into());
    // One after the other: both bootstrap the same project.
    let a = TestHost::start_on(&database.url, with_admin).await;
    let b = TestHost::start_on(&database.url, with_admin).await;

    let mut projects = Vec::new();
    for round in 0..ROUNDS {
        let (project_id, public, secret) =
            antenna::auth::create_project(&*a.server.state.storage, &format!("round-{round}")).await.expect("project");
        let keys = (public, secret);
        // Rounds alternate: records cut apart, split between the replicas (every fourth round
        // also each to both); whole requests, each to both replicas at once.
        let (bodies, expected, twice) = if round % 2 == 0 {
            (&records, &expected_records, round % 4 == 2)
        } else {
            (&whole, &expected_whole, true)
        };
        post_split(&a, &b, &keys, bodies, twice).await;
        let keys_ref = (keys.0.as_str(), keys.1.as_str());
        let seen_by_a = project_view(&a, keys_ref).await;
        assert_same(&format!("round {round}: replica A and one SQLite host"), expected, &seen_by_a);
        assert_same(&format!("round {round}: replica B and replica A"), &seen_by_a, &project_view(&b, keys_ref).await);
        projects.push((project_id, keys, expected));
    }
    let posted = started.elapsed();

    // Both replicas replaying the same stored batches at the same moment (recovery on several
    // replicas takes the same path): the projects of a records round and of a whole round.
    let replay = |host: &TestHost, project_id: String| {
        let (client, url) = (host.client.clone(), host.url("/api/admin/replay"));
        async move {
            let filter = json!({ "project_id": project_id });
            let response = client.post(url).bearer_auth(ADMIN_TOKEN).json(&filter).send().await.expect("replay");
            assert_eq!(response.status(), 200);
            let report: Value = response.json().await.expect("JSON");
            assert_eq!(report["failed"], 0, "{report}");
            assert!(report["done"].as_u64().is_some_and(|n| n > 0), "{report}");
        }
    };
    for (project_id, _, _) in &projects[..2] {
        tokio::join!(replay(&a, project_id.clone()), replay(&b, project_id.clone()));
    }
    for (round, (_, keys, expected)) in projects.iter().enumerate() {
        let keys_ref = (keys.0.as_str(), keys.1.as_str());
        assert_same(&format!("round {round} after concurrent replays"), expected, &project_view(&b, keys_ref).await);
    }
    eprintln!(
        "{ROUNDS} rounds on two replicas: posted and checked in {posted:?}, with the replays {:?}",
        started.elapsed()
    );
    drop((a, b));
    drop(database);
}
