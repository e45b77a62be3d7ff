//! Data at rest (security review item 10): private database files, retention per project and
//! the erasure of one user's data, through a real host on both engines.

use std::os::unix::fs::PermissionsExt;

use antenna_e2e::{ADMIN_TOKEN, Capture, Engine, TestHost};
use serde_json::{Value, json};

async fn project_of(host: &TestHost) -> String {
    let traces = host.traces().await;
    traces.first().and_then(|t| t["project_id"].as_str()).expect("a trace").to_owned()
}

#[tokio::test]
async fn the_database_its_wal_and_its_directory_are_private() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let db = data.join("antenna.db");
    let host = TestHost::start_in(tempfile::tempdir().expect("temp dir"), |c, _| {
        c.database_url = format!("sqlite://{}", db.display());
    })
    .await;
    host.replay(&Capture::load("claude-code/json-content-off")).await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the directory a new database is made in");
    for file in ["antenna.db", "antenna.db-wal", "antenna.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    drop(host);
    // A database left readable by others is tightened at the next start.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let _again = TestHost::start_in(tempfile::tempdir().expect("temp dir"), |c, _| {
        c.database_url = format!("sqlite://{}", db.display());
    })
    .await;
    assert_eq!(mode(&db), 0o600);
}

#[tokio::test]
async fn retention_deletes_what_is_older_than_a_projects_days_on_both_engines() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |c| c.admin_token = Some(ADMIN_TOKEN.into())).await;
        let codex = Capture::load("codex/binary-content-on");
        host.replay(&codex).await;
        let project = project_of(&host).await;
        let path = format!("/api/admin/projects/{project}/retention");
        // The captures were made days ago: 30 days keeps them, 1 day does not.
        let (status, _) =
            host.admin(reqwest::Method::PUT, &path, Some(json!({"batch_days": 30, "trace_days": 30}))).await;
        assert_eq!(status, 200);
        let (_, kept) = host.admin(reqwest::Method::POST, "/api/admin/retention/run", None).await;
        assert_eq!(kept, json!({"batches": 0, "traces": 0, "usage_metrics": 0}), "{engine:?}");
        assert_eq!(host.traces().await.len(), 1);

        // Raw batches only (by the time they were received: just now, so a pass two days from
        // now expires them, run on the host's own database): the traces stay.
        let (status, _) =
            host.admin(reqwest::Method::PUT, &path, Some(json!({"batch_days": 1, "trace_days": null}))).await;
        assert_eq!(status, 200);
        let (_, fresh) = host.admin(reqwest::Method::POST, "/api/admin/retention/run", None).await;
        assert_eq!(fresh["batches"], 0, "{engine:?}: received just now: {fresh}");
        let url = host.database_url();
        let storage = antenna::storage::connect(&url, Default::default(), Default::default()).await.expect("database");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
        let in_two_days = i64::try_from(now).expect("ns") + 2 * 86_400 * 1_000_000_000;
        let expired = storage.enforce_retention(in_two_days).await.expect("retention pass");
        assert_eq!(expired.batches, codex.requests.len() as u64, "{engine:?}: {expired:?}");
        assert_eq!(expired.traces, 0);
        assert_eq!(host.traces().await.len(), 1);
        let replayed = host.replay_batches(json!({})).await;
        assert_eq!(replayed["batches"], 0, "no raw batch left to replay: {replayed}");

        // Traces by when the host received them (just now, though the agent dated them days ago).
        let (status, _) = host.admin(reqwest::Method::PUT, &path, Some(json!({"trace_days": 1}))).await;
        assert_eq!(status, 200);
        let (_, kept) = host.admin(reqwest::Method::POST, "/api/admin/retention/run", None).await;
        assert_eq!(kept["traces"], 0, "{engine:?}: {kept}");
        let expired = storage.enforce_retention(in_two_days).await.expect("retention pass");
        assert_eq!(expired.traces, 1, "{engine:?}: {expired:?}");
        assert!(host.traces().await.is_empty());

        // Bad settings are refused, an unknown project is a 404.
        let (status, body) = host.admin(reqwest::Method::PUT, &path, Some(json!({"trace_days": 0}))).await;
        assert_eq!(status, 400, "{body}");
        let (status, body) = host.admin(reqwest::Method::PUT, &path, Some(json!({"days": 3}))).await;
        assert_eq!(status, 400, "{body}");
        let (status, _) = host
            .admin(reqwest::Method::PUT, "/api/admin/projects/nope/retention", Some(json!({"trace_days": 3})))
            .await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn erasing_a_user_deletes_their_traces_metrics_and_raw_batches_only_on_both_engines() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |c| c.admin_token = Some(ADMIN_TOKEN.into())).await;
        let alice =
            Capture::load("claude-code/json-content-off").with_resource_attribute("user.id", "alice@example.com");
        let bob = Capture::load("gemini-cli/json-content-on").with_resource_attribute("user.id", "bob@example.com");
        host.replay(&alice).await;
        host.replay(&bob).await;
        let project = project_of(&host).await;
        let (status, erased) = host
            .admin(reqwest::Method::DELETE, &format!("/api/admin/projects/{project}/users/alice@example.com"), None)
            .await;
        assert_eq!(status, 200, "{erased}");
        assert_eq!(erased["traces"], 1, "{engine:?}: {erased}");
        assert_eq!(erased["batches"].as_u64(), Some(alice.requests.len() as u64), "{engine:?}: {erased}");
        assert!(erased["usage_metrics"].as_u64().unwrap_or(0) > 0, "Claude Code's metrics: {erased}");
        let users: Vec<Value> = host.traces().await.iter().map(|t| t["user_id"].clone()).collect();
        assert_eq!(users, vec![json!("bob@example.com")], "{engine:?}");
        let usage = host.get_json("/api/public/usage?group_by=user").await;
        let keys: Vec<&Value> = usage["data"].as_array().into_iter().flatten().map(|r| &r["key"]).collect();
        assert_eq!(keys, vec![&json!("bob@example.com")]);
        // What is left replays to the same: bob's raw batches only.
        let replayed = host.replay_batches(json!({})).await;
        assert_eq!(replayed["batches"].as_u64(), Some(bob.requests.len() as u64), "{replayed}");
        let users: Vec<Value> = host.traces().await.iter().map(|t| t["user_id"].clone()).collect();
        assert_eq!(users, vec![json!("bob@example.com")], "a replay brings nothing of alice back");
    }
}

async fn stored_batches(url: &str) -> Vec<antenna::storage::Batch> {
    let storage = antenna::storage::connect(url, Default::default(), Default::default()).await.expect("database");
    storage.batches(&antenna::storage::BatchSelection::Replay(Default::default())).await.expect("batches")
}

/// M1: erasure finds every raw body that named the user, whether a later body took over its
/// fragments or no plugin claimed it; nothing brings the user back; on SQLite the text is gone
/// from the database files.
#[tokio::test]
async fn erasure_finds_every_body_that_named_the_user_and_nothing_brings_them_back_on_both_engines() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |c| c.admin_token = Some(ADMIN_TOKEN.into())).await;
        let alice =
            Capture::load("claude-code/protobuf-content-on").with_resource_attribute("user.id", "alice@example.com");
        // The same records again in other bodies: their fragments then name the later batches.
        let again = alice.with_resource_attribute("host.name", "second-laptop");
        let bob = Capture::load("gemini-cli/json-content-on").with_resource_attribute("user.id", "bob@example.com");
        host.replay(&alice).await;
        host.replay(&again).await;
        host.replay(&bob).await;
        // A body no plugin claims, naming alice on a record.
        let secret = "alice-unclaimed-secret-4f1d2a";
        let unclaimed = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "mystery"}}]},
            "scopeLogs": [{"scope": {"name": "mystery"}, "logRecords": [{"timeUnixNano": "1", "body": {"stringValue": secret},
                "attributes": [{"key": "user.email", "value": {"stringValue": "alice@example.com"}}]}]}]}]});
        let response = host.post("/v1/logs", "application/json", unclaimed.to_string().into_bytes()).await;
        assert_eq!(response.status(), 200);

        let traces = host.traces().await;
        let alices = traces.iter().find(|t| t["user_id"] == "alice@example.com").expect("alice's trace");
        let detail = host.get_json(&format!("/api/public/traces/{}", alices["id"].as_str().expect("id"))).await;
        let prompt = detail["prompt"].as_str().expect("a captured prompt").to_owned();
        assert!(!prompt.is_empty());
        let url = host.database_url();
        let before = stored_batches(&url).await.len();
        let bobs = bob.requests.len();

        let project = project_of(&host).await;
        let (status, erased) = host
            .admin(reqwest::Method::DELETE, &format!("/api/admin/projects/{project}/users/alice@example.com"), None)
            .await;
        assert_eq!(status, 200, "{erased}");
        assert_eq!(
            erased["batches"].as_u64(),
            Some((before - bobs) as u64),
            "{engine:?}: every body that named alice: {erased}"
        );
        assert_eq!(stored_batches(&url).await.len(), bobs, "{engine:?}: bob's bodies only");

        // A replay, and a retry of what no plugin claimed, bring nothing of alice back.
        host.replay_batches(json!({})).await;
        let users: Vec<Value> = host.traces().await.iter().map(|t| t["user_id"].clone()).collect();
        assert_eq!(users, vec![json!("bob@example.com")], "{engine:?}");

        if engine == Engine::Sqlite {
            let dir = host.dir.path();
            for file in ["antenna.db", "antenna.db-wal"] {
                let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
                let has = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
                assert!(!has(&prompt), "{file} still holds alice's prompt {prompt:?}");
                assert!(!has(secret), "{file} still holds the unclaimed body's text");
            }
        }
    }
}

/// L2: trace retention counts from when the host received a trace's data, not from the agent's
/// timestamps, and a replay does not rebuild what it removed.
#[tokio::test]
async fn trace_retention_goes_by_the_hosts_clock_and_a_replay_respects_it_on_both_engines() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |c| c.admin_token = Some(ADMIN_TOKEN.into())).await;
        // Dated a year ahead by the agent's clock, received now.
        let future =
            Capture::load("claude-code/json-content-off").map_json(|v| shift_times(v, 365 * 86_400 * 1_000_000_000));
        host.replay(&future).await;
        let project = project_of(&host).await;
        let path = format!("/api/admin/projects/{project}/retention");
        let (status, _) = host.admin(reqwest::Method::PUT, &path, Some(json!({"trace_days": 1}))).await;
        assert_eq!(status, 200);
        let (_, kept) = host.admin(reqwest::Method::POST, "/api/admin/retention/run", None).await;
        assert_eq!(kept["traces"], 0, "{engine:?}: received just now: {kept}");

        // Received three days ago (set back in the database): expired, whatever the agent said.
        let back = 3 * 86_400 * 1_000_000_000i64;
        let url = host.database_url();
        let statements = [
            format!("UPDATE batches SET received_at = received_at - {back}"),
            format!("UPDATE traces SET received_ns = received_ns - {back}"),
        ];
        if engine == Engine::Sqlite {
            let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
            for sql in &statements {
                sqlx::query(sql).execute(&pool).await.expect("set back");
            }
        } else {
            let pool = sqlx::PgPool::connect(&url).await.expect("postgres");
            for sql in &statements {
                sqlx::query(sql).execute(&pool).await.expect("set back");
            }
        }
        let (_, expired) = host.admin(reqwest::Method::POST, "/api/admin/retention/run", None).await;
        assert_eq!(expired["traces"], 1, "{engine:?}: {expired}");
        assert!(host.traces().await.is_empty());
        // The raw batches are kept (no batch retention), but a replay does not rebuild the trace.
        let replayed = host.replay_batches(json!({})).await;
        assert_eq!(replayed["batches"].as_u64(), Some(future.requests.len() as u64), "{replayed}");
        assert!(host.traces().await.is_empty(), "{engine:?}: replay rebuilt an expired trace");
    }
}

/// Every `timeUnixNano`-like field of an OTLP JSON body moved by `by` nanoseconds.
fn shift_times(value: &mut Value, by: i64) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if key.ends_with("UnixNano") {
                    if let Some(n) = v.as_str().and_then(|s| s.parse::<i64>().ok()).filter(|n| *n > 0) {
                        *v = json!((n + by).to_string());
                    } else if let Some(n) = v.as_i64().filter(|n| *n > 0) {
                        *v = json!(n + by);
                    }
                } else {
                    shift_times(v, by);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| shift_times(v, by)),
        _ => {}
    }
}
