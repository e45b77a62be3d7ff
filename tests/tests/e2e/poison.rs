//! Poison pills (security review item 8): the circuit breaker is per (plugin, project), so one
//! project's bad input never puts a parser aside for the others; the batches an open breaker
//! turned away are normalized automatically once it closes; a batch that keeps stopping the
//! host during start-up recovery is quarantined so that `/readyz` turns green. Real host, real
//! hostile component (tests/plugins/hostile).

use std::path::Path;
use std::time::{Duration, Instant};

use antenna::storage::{Batch, BatchSelection, BatchStatus, BatchWrite, ReplayFilter};
use antenna_e2e::{TestHost, components};
use serde_json::json;

/// A one-resource logs request for the hostile plugin, doing `behavior` (`ok`, `trap`, ...).
fn hostile_batch(behavior: &str, trace: &str) -> Vec<u8> {
    let attributes = [
        json!({"key": "service.name", "value": {"stringValue": "hostile"}}),
        json!({"key": "hostile.behavior", "value": {"stringValue": behavior}}),
        json!({"key": "hostile.trace", "value": {"stringValue": trace}}),
    ];
    let body = json!({"resourceLogs": [{"resource": {"attributes": attributes},
        "scopeLogs": [{"scope": {"name": "antenna.test.hostile"}, "logRecords": [{"timeUnixNano": "1"}]}]}]});
    serde_json::to_vec(&body).expect("json")
}

fn install_hostile(config: &mut antenna::Config, dir: &Path) {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("plugins dir");
    std::fs::copy(components::HOSTILE, plugins.join("hostile.wasm")).expect("install hostile");
    config.plugins_dir = Some(plugins);
    config.admin_token = Some(antenna_e2e::ADMIN_TOKEN.into());
}

async fn hostile_host_in(dir: tempfile::TempDir, adjust: impl FnOnce(&mut antenna::Config)) -> TestHost {
    let host = TestHost::start_in(dir, |config, dir| {
        install_hostile(config, dir);
        adjust(config);
    })
    .await;
    host.wait_for_plugins("hostile", |p| {
        p["data"].as_array().is_some_and(|d| d.iter().any(|x| x["name"] == "hostile" && x["active"] == true))
    })
    .await;
    host
}

/// Every stored batch, oldest first.
async fn all_batches(host: &TestHost) -> Vec<Batch> {
    host.server.state.storage.batches(&BatchSelection::Replay(ReplayFilter::default())).await.expect("batches")
}

async fn traces_of(host: &TestHost, keys: (&str, &str)) -> usize {
    host.get_json_as(keys, "/api/public/traces").await["data"].as_array().map_or(0, Vec::len)
}

/// Five failures in a row from the default project: its breaker for `hostile` opens.
async fn open_the_breaker(host: &TestHost) {
    for i in 0..antenna::plugins::BREAKER_THRESHOLD {
        let response = host.post("/v1/logs", "application/json", hostile_batch("trap", &format!("poison{i}"))).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(host.active_plugin("hostile").await.expect("listed")["put_aside"], true);
}

#[tokio::test]
async fn one_projects_poison_does_not_put_the_plugin_aside_for_another() {
    let host = hostile_host_in(tempfile::tempdir().expect("tempdir"), |_| {}).await;
    let (_, public, secret) =
        antenna::auth::create_project(&*host.server.state.storage, "other").await.expect("project");
    let other = (public.as_str(), secret.as_str());
    let ours = (antenna_e2e::PUBLIC_KEY, antenna_e2e::SECRET_KEY);

    open_the_breaker(&host).await;
    // Our project's next well-formed batch is turned away (the breaker is open for us) ...
    let response = host.post("/v1/logs", "application/json", hostile_batch("ok", "ours")).await;
    assert_eq!(response.status(), 200);
    let last = all_batches(&host).await.pop().expect("stored");
    assert_eq!(last.status, "failed");
    assert!(last.error.as_deref().is_some_and(|e| e.starts_with(antenna::plugins::PUT_ASIDE)), "{last:?}");
    assert_eq!(traces_of(&host, ours).await, 0);

    // ... while the other project's well-formed batches keep being normalized by the plugin.
    for i in 0..3 {
        let body = hostile_batch("ok", &format!("theirs{i}"));
        let response = host.post_as(Some(other), "/v1/logs", "application/json", body).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(traces_of(&host, other).await, 3, "the other project's batches are normalized");
    let theirs: Vec<Batch> = all_batches(&host).await.into_iter().filter(|b| b.project_id != last.project_id).collect();
    assert_eq!(theirs.len(), 3);
    assert!(theirs.iter().all(|b| b.status == "done" && b.error.is_none()), "{theirs:?}");
    // And the other project's own failures count for it alone: one does not open anything.
    let response = host.post_as(Some(other), "/v1/logs", "application/json", hostile_batch("trap", "t")).await;
    assert_eq!(response.status(), 200);
    let response = host.post_as(Some(other), "/v1/logs", "application/json", hostile_batch("ok", "theirs3")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(traces_of(&host, other).await, 4);
}

#[tokio::test]
async fn batches_turned_away_by_the_open_breaker_are_normalized_when_it_closes() {
    let cool_down = Duration::from_millis(1_500);
    let host = hostile_host_in(tempfile::tempdir().expect("tempdir"), |c| {
        c.limits.breaker_cool_down_ms = cool_down.as_millis() as u64;
    })
    .await;
    open_the_breaker(&host).await;
    for trace in ["late1", "late2"] {
        let response = host.post("/v1/logs", "application/json", hostile_batch("ok", trace)).await;
        assert_eq!(response.status(), 200);
    }
    let turned_away = |batches: &[Batch]| {
        batches
            .iter()
            .filter(|b| b.error.as_deref().is_some_and(|e| e.starts_with(antenna::plugins::PUT_ASIDE)))
            .count()
    };
    assert_eq!(turned_away(&all_batches(&host).await), 2);
    assert_eq!(host.traces().await.len(), 0);

    // No replay asked for: once the cool-down is over, the background loop retries them.
    let started = Instant::now();
    while host.traces().await.len() < 2 {
        assert!(
            started.elapsed() < cool_down + Duration::from_secs(15),
            "never retried: {:#?}",
            all_batches(&host).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let batches = all_batches(&host).await;
    assert_eq!(turned_away(&batches), 0, "{batches:#?}");
    // The poison itself is not retried: it failed on its own, and stays failed with its error.
    let failed: Vec<&Batch> = batches.iter().filter(|b| b.status == "failed").collect();
    assert_eq!(failed.len(), antenna::plugins::BREAKER_THRESHOLD as usize, "{batches:#?}");
    assert!(failed.iter().all(|b| b.error.as_deref().is_some_and(|e| e.contains("trapped"))), "{failed:#?}");
    assert_eq!(batches.iter().filter(|b| b.status == "done").count(), 2);
}

/// Store a batch as a crash would leave it: stored, not normalized.
async fn store_pending(host: &TestHost, body: Vec<u8>) -> i64 {
    let storage = &host.server.state.storage;
    let project_id = all_batches(host).await.first().map(|b| b.project_id.clone());
    let project_id = match project_id {
        Some(id) => id,
        None => {
            // The bootstrap project's id, through a batch of its own.
            let response = host.post("/v1/logs", "application/json", hostile_batch("ok", "first")).await;
            assert_eq!(response.status(), 200);
            all_batches(host).await[0].project_id.clone()
        }
    };
    let write = BatchWrite {
        id: None,
        project_id,
        signal: "logs".into(),
        encoding: "application/json".into(),
        body_sha256: antenna::ids::sha256_hex(&body),
        body,
        body_codec: "identity",
        status: BatchStatus::Pending,
        agents: Vec::new(),
        error: None,
        fragments: Vec::new(),
        unclaimed: Vec::new(),
        users: Vec::new(),
    };
    storage.commit(write).await.expect("stored")
}

#[tokio::test]
async fn a_batch_that_keeps_stopping_recovery_is_quarantined_and_readyz_turns_green() {
    let host = hostile_host_in(tempfile::tempdir().expect("tempdir"), |_| {}).await;
    let poison = store_pending(&host, hostile_batch("ok", "poison")).await;
    let fine = store_pending(&host, hostile_batch("ok", "fine")).await;
    let config = &host.server.state.config;
    let file = antenna::server::attempts_file(config.cache_dir.as_deref().expect("cache dir"), &config.database_url);
    let TestHost { server, dir, .. } = host;
    server.shutdown().await.expect("stopped");

    // What three start-ups that each died running `poison` would have left on disk: its attempt
    // counted before it ran, never cleared. (`fine`, after it, was never reached.)
    let attempts = antenna::server::MAX_RECOVERY_ATTEMPTS;
    std::fs::write(&file, format!("{poison} {attempts}\n")).expect("attempts file");

    // The restart does not run it a fourth time: it is quarantined, the rest is recovered, and
    // the host gets ready (TestHost::start_in waits for /readyz).
    let host = hostile_host_in(dir, |_| {}).await;
    let batches = all_batches(&host).await;
    let of = |id: i64| batches.iter().find(|b| b.id == id).expect("stored");
    assert_eq!(of(poison).status, "failed", "{batches:#?}");
    assert_eq!(of(poison).error.as_deref(), Some(format!("quarantined after {attempts} attempts").as_str()));
    assert_eq!(of(fine).status, "done", "{batches:#?}");
    let traces = host.traces().await;
    assert_eq!(traces.len(), 2, "first and fine, not the quarantined batch: {traces:#?}");
    assert!(!file.exists(), "nothing left to count");
    // An operator can still replay it by hand.
    let report = host.replay_batches(json!({"failed_only": true})).await;
    assert_eq!(report["done"], 1, "{report}");
    assert_eq!(host.traces().await.len(), 3);
}
