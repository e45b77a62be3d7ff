//! kill -9 of the real `antenna` binary under load, on each storage engine: every batch that
//! got a 200 is there after a restart, and nothing stored is left un-normalized.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use antenna_e2e::{Capture, PUBLIC_KEY, PgDatabase, SECRET_KEY, basic};

const PROMPT_ID: &str = "4c7d120c-4d77-4067-aa16-e7a6671c3b57";
const TRACE_ID: &str = "a819e19a23e2b8ec2bac8f0d803272c6";

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

pub(crate) fn spawn_host(dir: &std::path::Path, database_url: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_antenna"))
        .arg("serve")
        .env("ANTENNA_LISTEN", format!("127.0.0.1:{port}"))
        .env("ANTENNA_GRPC_LISTEN", "off")
        .env("ANTENNA_DATABASE_URL", database_url)
        .env("ANTENNA_CACHE_DIR", dir.join("cache"))
        .env("ANTENNA_PUBLIC_KEY", PUBLIC_KEY)
        .env("ANTENNA_SECRET_KEY", SECRET_KEY)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start antenna")
}

pub(crate) async fn wait_ready(client: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the host did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_batch_survives_kill_9_on_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("antenna.db").display());
    kill_9_under_load(dir.path(), &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_batch_survives_kill_9_on_postgres() {
    let database = PgDatabase::create().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    kill_9_under_load(dir.path(), &database.url).await;
}

async fn kill_9_under_load(dir: &std::path::Path, database_url: &str) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut host = spawn_host(dir, database_url, port);
    wait_ready(&client, &base).await;

    // Distinct prompts: the content-off logs with a fresh prompt id and trace id each.
    let logs =
        String::from_utf8(Capture::load("claude-code/json-content-off").only(&["logs"]).requests[0].body.clone())
            .expect("UTF-8 JSON");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut posters = Vec::new();
    for worker in 0..4u32 {
        let (client, base, logs, acknowledged) = (client.clone(), base.clone(), logs.clone(), acknowledged.clone());
        posters.push(tokio::spawn(async move {
            for n in 0..10_000u32 {
                let trace = format!("{worker:08x}{n:024x}");
                let body = logs.replace(TRACE_ID, &trace).replace(PROMPT_ID, &format!("p-{worker}-{n}"));
                let sent = client
                    .post(format!("{base}/v1/logs"))
                    .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => acknowledged.lock().expect("lock").push(format!("otel-{trace}")),
                    _ => break, // the host is gone
                }
            }
        }));
    }
    // Let load build up, then kill -9 in the middle of it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    host.kill().expect("SIGKILL");
    host.wait().expect("reaped");
    for poster in posters {
        poster.await.expect("poster");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() > 5, "the load was real: {} batches acknowledged", acknowledged.len());

    let mut host = spawn_host(dir, database_url, port);
    wait_ready(&client, &base).await;
    let mut found = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/public/traces?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: serde_json::Value = client
            .get(url)
            .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
            .send()
            .await
            .expect("GET traces")
            .json()
            .await
            .expect("JSON");
        for trace in page["data"].as_array().expect("data") {
            assert_eq!(trace["input_tokens"], 3 * 1234, "each recovered prompt is complete: {trace}");
            found.insert(trace["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !found.contains(*id)).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged batches lost: {lost:?}", lost.len(), acknowledged.len());

    // Nothing stored is left un-normalized after the restart.
    let storage = antenna::storage::connect(database_url, Default::default(), Default::default())
        .await
        .expect("open the database");
    let pending = storage.batches(&antenna::storage::BatchSelection::Pending).await.expect("pending");
    assert!(pending.is_empty());
    host.kill().expect("stop");
    host.wait().expect("reaped");
}
