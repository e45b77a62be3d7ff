//! Decode amplification against the real binary (hardening round three, H2): bodies a few KB on
//! the wire that would decode to gigabytes, several at once over both encodings, must leave the
//! host's peak memory (VmHWM, reset after warm-up) within 100 MiB of what it was.

use std::io::Write;
use std::time::Duration;

use antenna_e2e::{Capture, PUBLIC_KEY, SECRET_KEY, basic};

use crate::crash::{free_port, spawn_host, wait_ready};

/// A protobuf field of `number` holding `inner` (length-delimited).
fn field(number: u32, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(inner.len() + 8);
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.extend_from_slice(inner);
    out
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).expect("gzip");
    encoder.finish().expect("gzip")
}

/// A `/proc/PID/status` figure in KiB.
fn status_kib(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the host's status");
    let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name} in {status}"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number of kB")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decode_bombs_do_not_grow_the_host_by_more_than_100_mib() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("antenna.db").display());
    let port = free_port();
    let mut host = spawn_host(dir.path(), &url, port);
    let pid = host.id();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    wait_ready(&client, &base).await;
    let post = |body: Vec<u8>, content_type: &'static str| {
        client
            .post(format!("{base}/v1/logs"))
            .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
            .header("content-type", content_type)
            .header("content-encoding", "gzip")
            .body(body)
            .send()
    };
    // Warm up with a real capture, then reset the peak to what the host holds now.
    let capture = Capture::load("claude-code/protobuf-content-on").only(&["logs"]);
    let warm = post(gzip(&capture.requests[0].body), "application/x-protobuf").await.expect("response");
    assert_eq!(warm.status(), 200);
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS (Linux 4.0+)");
    let before = status_kib(pid, "VmHWM:");

    // Four million empty records; 4,096 empty attributes on each of 700 resources; the latter
    // in OTLP/JSON: each four times at once.
    let empty_records = gzip(&field(1, &[]).repeat(4 << 20));
    let wide = gzip(&field(1, &field(1, &field(1, &[]).repeat(4_096))).repeat(700));
    let resource = format!("{{\"resource\":{{\"attributes\":[{}{{}}]}}}}", "{},".repeat(4_095));
    let json = gzip(format!("{{\"resourceLogs\":[{}{resource}]}}", format!("{resource},").repeat(700)).as_bytes());
    let mut sent = tokio::task::JoinSet::new();
    for _ in 0..4 {
        sent.spawn(post(empty_records.clone(), "application/x-protobuf"));
        sent.spawn(post(wide.clone(), "application/x-protobuf"));
        sent.spawn(post(json.clone(), "application/json"));
    }
    while let Some(answer) = sent.join_next().await {
        let answer = answer.expect("joined").expect("a response");
        assert_eq!(answer.status(), 413, "{:?}", answer.text().await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = status_kib(pid, "VmHWM:");
    let _ = host.kill();
    let _ = host.wait();
    let grown_mib = after.saturating_sub(before) / 1024;
    eprintln!("peak RSS {} MiB before, {} MiB after (+{grown_mib} MiB)", before / 1024, after / 1024);
    assert!(grown_mib <= 100, "the host grew by {grown_mib} MiB");
}
