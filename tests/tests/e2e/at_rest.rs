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
        let url = match &host.database {
            Some(database) => database.url.clone(),
            None => format!("sqlite://{}", host.dir.path().join("antenna.db").display()),
        };
        let storage = antenna::storage::connect(&url, Default::default(), Default::default()).await.expect("database");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
        let in_two_days = i64::try_from(now).expect("ns") + 2 * 86_400 * 1_000_000_000;
        let expired = storage.enforce_retention(in_two_days).await.expect("retention pass");
        assert_eq!(expired.batches, codex.requests.len() as u64, "{engine:?}: {expired:?}");
        assert_eq!(expired.traces, 0);
        assert_eq!(host.traces().await.len(), 1);
        let replayed = host.replay_batches(json!({})).await;
        assert_eq!(replayed["batches"], 0, "no raw batch left to replay: {replayed}");

        let (status, _) = host.admin(reqwest::Method::PUT, &path, Some(json!({"trace_days": 1}))).await;
        assert_eq!(status, 200);
        let (_, expired) = host.admin(reqwest::Method::POST, "/api/admin/retention/run", None).await;
        assert_eq!(expired["traces"], 1, "{engine:?}: {expired}");
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
