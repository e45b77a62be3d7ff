//! Hostile plugins (real components from tests/plugins/hostile) against a running host, with a
//! well-behaved agent's traffic flowing at the same time: each failure fails that one call
//! only, keeps the raw batch with its error, and is visible in the API and the metrics.

use std::time::{Duration, Instant};

use antenna_e2e::{Capture, TestHost, components};
use serde_json::{Value, json};

/// A one-resource logs request for the hostile plugin, doing `behavior`.
fn hostile_batch(behavior: &str, trace: &str) -> Vec<u8> {
    hostile_batch_with(behavior, trace, &[])
}

/// The same with more resource attributes (`hostile.port` for `network`).
fn hostile_batch_with(behavior: &str, trace: &str, more: &[(&str, &str)]) -> Vec<u8> {
    let mut attributes = vec![
        json!({"key": "service.name", "value": {"stringValue": "hostile"}}),
        json!({"key": "hostile.behavior", "value": {"stringValue": behavior}}),
        json!({"key": "hostile.trace", "value": {"stringValue": trace}}),
    ];
    attributes.extend(more.iter().map(|(key, value)| json!({"key": key, "value": {"stringValue": value}})));
    let body = json!({"resourceLogs": [{"resource": {"attributes": attributes},
        "scopeLogs": [{"scope": {"name": "antenna.test.hostile"}, "logRecords": [{"timeUnixNano": "1"}]}]}]});
    serde_json::to_vec(&body).expect("json")
}

async fn hostile_host() -> TestHost {
    hostile_host_with(|_| {}).await
}

async fn hostile_host_with(adjust: impl FnOnce(&mut antenna::Config)) -> TestHost {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = TestHost::start_in(dir, |config, dir| {
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugins dir");
        std::fs::copy(components::HOSTILE, plugins.join("hostile.wasm")).expect("install hostile");
        config.plugins_dir = Some(plugins);
        config.admin_token = Some(antenna_e2e::ADMIN_TOKEN.into());
        config.limits.plugin_timeout_ms = 3_000;
        // Room for the `huge` output to be built, so that the host's own bound is what stops it.
        config.limits.plugin_memory_bytes = 256 << 20;
        adjust(config);
    })
    .await;
    host.wait_for_plugins("hostile", |p| {
        p["data"].as_array().is_some_and(|d| d.iter().any(|x| x["name"] == "hostile" && x["active"] == true))
    })
    .await;
    host
}

async fn batch_errors(host: &TestHost) -> Vec<String> {
    let problems = host.get_json("/api/public/batches").await;
    problems["data"].as_array().into_iter().flatten().filter_map(|b| b["error"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn each_hostile_behavior_fails_only_its_own_call() {
    let host = hostile_host().await;
    let claude = Capture::load("claude-code/protobuf-content-on");
    let cases = [
        ("loop", "ran out of time"),
        ("sleep", "ran out of time (3000 ms) waiting in WASI"),
        ("memory", "trapped"),
        ("trap", "trapped"),
        ("huge", "more than the limit"),
        ("long-id", "fragment id of 100000 bytes"),
        ("bad-utf8", "hostile@1.0.0"),
        ("reject", "hostile plugin rejects this batch"),
    ];
    for (i, (behavior, expected)) in cases.iter().enumerate() {
        // The well-behaved agent posts while the hostile call runs.
        let good = {
            let claude = claude.clone();
            let base = host.base.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let started = Instant::now();
                for r in &claude.requests {
                    let response = client
                        .post(format!("{base}{}", r.path))
                        .header("authorization", antenna_e2e::basic(antenna_e2e::PUBLIC_KEY, antenna_e2e::SECRET_KEY))
                        .header("content-type", &r.content_type)
                        .body(r.body.clone())
                        .send()
                        .await
                        .expect("send");
                    assert_eq!(response.status(), 200);
                }
                started.elapsed()
            })
        };
        // Every call ends, whatever the plugin does: a plugin running (`loop`) or waiting in
        // WASI (`sleep`, an hour) is stopped at its deadline (3 s here). The outer bound is
        // loose: under a loaded test run the host's own work (lifting `huge`) takes a while.
        let started = Instant::now();
        let response = tokio::time::timeout(
            Duration::from_secs(60),
            host.post("/v1/logs", "application/json", hostile_batch(behavior, &format!("t{i}"))),
        )
        .await
        .unwrap_or_else(|_| panic!("{behavior}: the call has not ended after 60 s"));
        let took = started.elapsed();
        assert_eq!(response.status(), 200, "{behavior}: the batch is stored whatever the plugin does");
        if matches!(*behavior, "loop" | "sleep") {
            assert!(
                took < Duration::from_secs(15),
                "{behavior}: stopped at its 3 s deadline, yet the call took {took:?}"
            );
        }
        let good_took = good.await.expect("good traffic");
        assert!(good_took < Duration::from_secs(20), "{behavior}: the other agent was held up for {good_took:?}");
        let errors = batch_errors(&host).await;
        let error = errors.last().cloned().unwrap_or_default();
        eprintln!("{behavior} ({took:?}): {error}");
        assert!(error.contains(expected) && error.contains("hostile"), "{behavior}: {error}; all: {errors:#?}");
        assert_eq!(host.client.get(host.url("/healthz")).send().await.expect("healthz").status(), 200);
        // The same plugin still serves the next, well-formed batch (which also resets its
        // circuit breaker, tested on its own below).
        let ok = host.post("/v1/logs", "application/json", hostile_batch("ok", &format!("ok{i}"))).await;
        assert_eq!(ok.status(), 200);
    }
    // Every failed batch is kept; the good agent's trace is exact.
    assert_eq!(batch_errors(&host).await.len(), cases.len());
    let traces = host.traces().await;
    let claude_traces: Vec<&Value> = traces.iter().filter(|t| t["agent"] == "claude-code").collect();
    assert_eq!(claude_traces.len(), 1);
    assert_eq!(claude_traces[0]["input_tokens"], 3 * 1234);
    let hostile: Vec<&str> =
        traces.iter().filter(|t| t["agent"] == "hostile").filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(hostile.len(), cases.len(), "only the well-formed batches made traces: {hostile:?}");
    assert!(hostile.iter().all(|id| id.starts_with("ok")), "nothing of a failed call was stored: {hostile:?}");

    let metrics = host.client.get(host.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("antenna_plugin_failures_total{plugin=\"hostile\",version=\"1.0.0\"}"), "{metrics}");
    assert!(metrics.contains(&format!("antenna_batches_failed_total {}", cases.len())), "{metrics}");
}

#[tokio::test]
async fn a_plugin_reaches_no_network_and_no_files() {
    let host = hostile_host().await;
    // A port on this machine the plugin is told about: nothing may arrive on it.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    tcp.set_nonblocking(true).expect("nonblocking");
    let port = tcp.local_addr().expect("address").port();
    let udp = std::net::UdpSocket::bind(("127.0.0.1", port)).expect("udp socket on the same port");
    udp.set_nonblocking(true).expect("nonblocking");

    let port = port.to_string();
    let body = hostile_batch_with("network", "net", &[("hostile.port", port.as_str())]);
    assert_eq!(host.post("/v1/logs", "application/json", body).await.status(), 200);
    let errors = batch_errors(&host).await;
    let error = errors.last().cloned().unwrap_or_default();
    assert!(error.contains("hostile@1.0.0 rejected the batch: network: tcp: "), "{error}");
    assert!(error.contains("; udp: ") && error.contains("; dns: "), "{error}");
    eprintln!("{error}");
    assert!(!error.contains("REACHED"), "the plugin reached the network: {error}");
    assert!(tcp.accept().is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "a TCP connection arrived");
    assert!(udp.recv(&mut [0; 64]).is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock), "a datagram arrived");

    assert_eq!(host.post("/v1/logs", "application/json", hostile_batch("files", "files")).await.status(), 200);
    let errors = batch_errors(&host).await;
    let error = errors.last().cloned().unwrap_or_default();
    assert!(error.contains("hostile@1.0.0 rejected the batch: files: list: "), "{error}");
    assert!(error.contains("; read: ") && error.contains("; create: "), "{error}");
    eprintln!("{error}");
    assert!(!error.contains("REACHED"), "the plugin reached the filesystem: {error}");
}

#[tokio::test]
async fn a_fresh_instance_per_call_leaks_nothing_between_batches() {
    let host = hostile_host().await;
    for i in 0..5 {
        let response = host.post("/v1/logs", "application/json", hostile_batch("count", &format!("c{i}"))).await;
        assert_eq!(response.status(), 200);
    }
    let traces = host.traces().await;
    assert_eq!(traces.len(), 5);
    // The plugin counts its own calls in a static: with a fresh instance per call it is always 1.
    assert!(traces.iter().all(|t| t["prompt"] == "1"), "{traces:#?}");
}

#[tokio::test]
async fn a_plugin_that_keeps_failing_is_put_aside_and_its_batches_kept() {
    let host = hostile_host().await;
    for i in 0..5 {
        host.post("/v1/logs", "application/json", hostile_batch("trap", &format!("f{i}"))).await;
    }
    let status = host.active_plugin("hostile").await.expect("listed");
    assert_eq!(status["put_aside"], true, "{status}");
    assert_eq!(status["failures"], 5);
    // Put aside: the next batch is not run at all (fast), and is kept for replay.
    let started = Instant::now();
    let response = host.post("/v1/logs", "application/json", hostile_batch("ok", "after")).await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2));
    let errors = batch_errors(&host).await;
    assert!(errors.last().is_some_and(|e| e.contains("put aside")), "{errors:#?}");
    assert_eq!(errors.len(), 6);
    // Other agents are not affected.
    host.replay(&Capture::load("claude-code/json-content-off")).await;
    assert_eq!(host.get_json("/api/public/traces?agent=claude-code").await["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn beyond_capacity_requests_get_429_or_503_with_retry_after() {
    // One batch at a time, two may wait 300 ms; each hostile `loop` batch holds its slot 1 s.
    let host = std::sync::Arc::new(
        hostile_host_with(|c| {
            c.limits.max_concurrent_batches = 1;
            c.limits.max_queued_batches = 2;
            c.limits.queue_wait_ms = 300;
            c.limits.plugin_timeout_ms = 1_000;
        })
        .await,
    );
    let mut load = Vec::new();
    for i in 0..12 {
        let host = host.clone();
        load.push(tokio::spawn(async move {
            let response = host.post("/v1/logs", "application/json", hostile_batch("loop", &format!("l{i}"))).await;
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_owned());
            (response.status().as_u16(), retry_after)
        }));
    }
    let mut statuses = Vec::new();
    for task in load {
        statuses.push(task.await.expect("request"));
    }
    let count = |code: u16| statuses.iter().filter(|(s, _)| *s == code).count();
    assert!(count(200) >= 1, "{statuses:?}");
    assert!(count(429) >= 1, "beyond the queue: 429 {statuses:?}");
    assert!(count(503) >= 1, "waited too long in the queue: 503 {statuses:?}");
    assert_eq!(count(200) + count(429) + count(503), statuses.len(), "nothing else, never a 500: {statuses:?}");
    assert!(
        statuses.iter().filter(|(s, _)| *s != 200).all(|(_, retry)| retry.as_deref().is_some_and(|r| !r.is_empty())),
        "every refusal says when to retry: {statuses:?}"
    );
    // Once the load is gone, the host serves normally.
    host.replay(&Capture::load("claude-code/json-content-off")).await;
    let metrics = host.client.get(host.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains(&format!("antenna_requests_overload_total {}", count(429) + count(503))), "{metrics}");
}
