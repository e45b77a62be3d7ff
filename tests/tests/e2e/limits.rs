//! Input limits a hostile or broken client meets before and around a request: slow bodies,
//! slow or absent headers, too many connections, too many records, oversized names and
//! attributes where the first shape checks did not look. Raw TCP (std, on blocking threads, so
//! the host keeps its runtime) plays the slow clients.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use antenna_e2e::{Capture, PUBLIC_KEY, SECRET_KEY, TestHost, basic};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;

fn logs_json() -> Vec<u8> {
    Capture::load("claude-code/json-content-off").only(&["logs"]).requests[0].body.clone()
}

/// Everything a raw connection receives until it is closed, the peer resets it, or `within`
/// passes (`None`: still open then), and how long that took.
fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (Option<String>, Duration) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (None, started.elapsed());
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (None, started.elapsed());
            }
            Err(_) => break,
        }
    }
    (Some(String::from_utf8_lossy(&received).into_owned()), started.elapsed())
}

/// The first response head on a raw connection, within `within`.
fn read_head(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() {
            return None;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
        }
    }
    Some(String::from_utf8_lossy(&received).into_owned())
}

/// A client that sends its headers at once, then its body one byte a second, and reports
/// the response head it got and when.
fn slow_upload(addr: SocketAddr) -> std::thread::JoinHandle<(Option<String>, Duration)> {
    std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let head = format!(
            "POST /v1/logs HTTP/1.1\r\nHost: antenna\r\nAuthorization: {}\r\nContent-Type: application/json\r\n\
             Content-Length: 1000\r\n\r\n{{",
            basic(PUBLIC_KEY, SECRET_KEY)
        );
        stream.write_all(head.as_bytes()).expect("headers");
        let started = Instant::now();
        let mut writer = stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            for _ in 0..60 {
                std::thread::sleep(Duration::from_secs(1));
                if writer.write_all(b" ").is_err() {
                    break;
                }
            }
        });
        let head = read_head(&mut stream, Duration::from_secs(30));
        (head, started.elapsed())
    })
}

#[tokio::test]
async fn slow_uploads_hold_no_one_up_and_get_408_at_the_deadline() {
    let host = TestHost::start_with(|c| {
        c.limits.max_concurrent_batches = 2;
        // A project's share is a quarter: room for the slow ones and the prompt one.
        c.limits.max_concurrent_reads = 32;
        c.limits.body_read_timeout_ms = 6_000;
    })
    .await;
    // More slow uploads than batches processed at once.
    let slow: Vec<_> = (0..4).map(|_| slow_upload(host.server.addr)).collect();
    tokio::time::sleep(Duration::from_millis(700)).await;

    let started = Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(5), host.post("/v1/logs", "application/json", logs_json()))
        .await
        .expect("a well-behaved client is answered while slow ones upload");
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    for client in slow {
        let (head, elapsed) =
            tokio::task::spawn_blocking(move || client.join().expect("slow client")).await.expect("join");
        let head = head.expect("the slow upload is answered");
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        assert!(elapsed >= Duration::from_millis(5_500), "not before the deadline: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(20), "at the deadline: {elapsed:?}");
    }
    // The host serves normally afterwards.
    assert_eq!(host.post("/v1/logs", "application/json", logs_json()).await.status(), 200);
}

#[tokio::test]
async fn connections_that_send_nothing_or_half_a_head_are_closed() {
    let host = TestHost::start_with(|c| c.limits.header_read_timeout_ms = 500).await;
    let addr = host.server.addr;
    let outcome = tokio::task::spawn_blocking(move || {
        let mut silent = TcpStream::connect(addr).expect("connect");
        let mut partial = TcpStream::connect(addr).expect("connect");
        partial.write_all(b"POST /v1/logs HTTP/1.1\r\nHost: antenna\r\n").expect("half a head");
        // A client that wants HTTP/2 but stops in the middle of its preface.
        let mut preface = TcpStream::connect(addr).expect("connect");
        preface.write_all(b"PRI * HTTP/2.0\r\n").expect("half a preface");
        [&mut silent, &mut partial, &mut preface].map(|s| read_until_closed(s, Duration::from_secs(5)))
    })
    .await
    .expect("clients");
    for (i, (closed, elapsed)) in outcome.into_iter().enumerate() {
        assert!(closed.is_some(), "connection {i} still open after {elapsed:?}");
        assert!(elapsed < Duration::from_secs(4), "connection {i}: {elapsed:?}");
    }
    // A prompt client is unaffected.
    assert_eq!(host.post("/v1/logs", "application/json", logs_json()).await.status(), 200);
}

#[tokio::test]
async fn open_connections_are_capped_and_the_next_waits_for_a_free_place() {
    let host = TestHost::start_with(|c| {
        c.limits.max_connections = 4;
        c.limits.header_read_timeout_ms = 30_000;
    })
    .await;
    let addr = host.server.addr;
    let (served, held, waiting) = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        for _ in 0..8 {
            let mut stream = TcpStream::connect(addr).expect("connect (the backlog takes it)");
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: antenna\r\n\r\n").expect("request");
            match read_head(&mut stream, Duration::from_secs(3)) {
                Some(head) => {
                    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
                    held.push(stream);
                }
                None => return (held.len(), held, Some(stream)),
            }
        }
        (held.len(), held, None)
    })
    .await
    .expect("clients");
    // The harness's own client may keep one pooled connection open.
    assert!((3..=4).contains(&served), "served {served} connections before one had to wait");
    let mut waiting = waiting.expect("beyond the cap a connection waits");
    let mut held = held;
    drop(held.pop());
    let head = tokio::task::spawn_blocking(move || read_head(&mut waiting, Duration::from_secs(5)))
        .await
        .expect("client")
        .expect("served once another connection closed");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
}

async fn post_protobuf(host: &TestHost, path: &str, body: Vec<u8>) -> (u16, String) {
    #[derive(Clone, PartialEq, Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let response = host.post(path, "application/x-protobuf", body).await;
    let status = response.status().as_u16();
    let body = response.bytes().await.expect("body");
    let message =
        if status == 200 { String::new() } else { RpcStatus::decode(&body[..]).expect("a google.rpc.Status").message };
    (status, message)
}

fn logs_with(records: usize) -> Vec<u8> {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope { name: "x".into(), ..Default::default() }),
                log_records: (0..records)
                    .map(|i| LogRecord { time_unix_nano: i as u64 + 1, ..Default::default() })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[tokio::test]
async fn records_beyond_the_cap_get_413() {
    let host = TestHost::start_with(|c| c.limits.max_records_per_request = 10).await;
    // One resource, one scope and 8 records: 10.
    assert_eq!(post_protobuf(&host, "/v1/logs", logs_with(8)).await.0, 200);
    let (status, message) = post_protobuf(&host, "/v1/logs", logs_with(9)).await;
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("11 records in one request (at most 10)"), "{message}");

    // Metric data points count as records.
    let points = |n: usize| {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "m".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint::default(); n],
                            ..Default::default()
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    };
    assert_eq!(post_protobuf(&host, "/v1/metrics", points(7)).await.0, 200);
    assert_eq!(post_protobuf(&host, "/v1/metrics", points(8)).await.0, 413);
}

fn attrs(n: usize) -> Vec<KeyValue> {
    (0..n)
        .map(|i| KeyValue {
            key: format!("k{i}"),
            value: Some(AnyValue { value: Some(any_value::Value::IntValue(i as i64)) }),
            ..Default::default()
        })
        .collect()
}

fn traces_with(span: Span) -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

#[tokio::test]
async fn names_messages_and_data_point_attributes_are_bounded_too() {
    let host = TestHost::start_with(|c| {
        c.limits.max_attributes = 8;
        c.limits.max_string_len = 1024;
    })
    .await;
    let long = "x".repeat(2048);
    let span = || Span { name: "ok".into(), ..Default::default() };
    assert_eq!(post_protobuf(&host, "/v1/traces", traces_with(span())).await.0, 200);

    let cases = [
        ("a span name", traces_with(Span { name: long.clone(), ..span() })),
        ("a status message", traces_with(Span { status: Some(Status { message: long.clone(), code: 2 }), ..span() })),
        (
            "a span event name",
            traces_with(Span { events: vec![span::Event { name: long.clone(), ..Default::default() }], ..span() }),
        ),
    ];
    for (what, body) in cases {
        let (status, message) = post_protobuf(&host, "/v1/traces", body).await;
        assert_eq!(status, 400, "{what}: {message}");
        assert!(message.contains(&format!("request too complex: {what} of 2048 bytes")), "{what}: {message}");
    }

    let metrics = |point: NumberDataPoint| {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: "m".into(),
                        data: Some(metric::Data::Sum(Sum { data_points: vec![point], ..Default::default() })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    };
    let point = |attributes| NumberDataPoint { attributes, ..Default::default() };
    assert_eq!(post_protobuf(&host, "/v1/metrics", metrics(point(attrs(8)))).await.0, 200);
    let (status, message) = post_protobuf(&host, "/v1/metrics", metrics(point(attrs(9)))).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("9 attributes on one element (at most 8)"), "{message}");
    let long_value = vec![KeyValue {
        key: "k".into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(long.clone())) }),
        ..Default::default()
    }];
    let (status, message) = post_protobuf(&host, "/v1/metrics", metrics(point(long_value))).await;
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("a string of 2048 bytes"), "{message}");
}

/// A protobuf field of `number` holding `inner` (length-delimited).
fn field(number: u32, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(inner.len() + 8);
    prost::encoding::encode_key(number, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.extend_from_slice(inner);
    out
}

/// A logs request of `resources` resources with `attributes` empty attributes each, written
/// on the wire directly (decoding it here would cost the test what it costs the host).
fn empty_attributes(resources: usize, attributes: usize) -> Vec<u8> {
    let resource = field(1, &field(1, &[]).repeat(attributes));
    field(1, &resource).repeat(resources)
}

fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(body).expect("gzip");
    encoder.finish().expect("gzip")
}

async fn post_gzip(host: &TestHost, content_type: &str, body: &[u8]) -> (u16, String) {
    let response = host
        .client
        .post(host.url("/v1/logs"))
        .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
        .header("content-type", content_type)
        .header("content-encoding", "gzip")
        .body(gzip(body))
        .send()
        .await
        .expect("response");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn bodies_that_decode_to_far_more_than_they_weigh_are_refused_before_decoding() {
    let host = TestHost::with_grpc().await;
    // Four million empty resources: 8 MiB inflated, a few KB on the wire.
    let empty_resources = field(1, &[]).repeat(4 << 20);
    let (status, message) = post_gzip(&host, "application/x-protobuf", &empty_resources).await;
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("4194304 records in one request (at most 100000)"), "{message}");
    // 4,096 empty attributes on each of 700 resources: within the record and attribute caps,
    // 5.6 MiB inflated, hundreds of MiB decoded.
    let wide = empty_attributes(700, 4_096);
    let (status, message) = post_gzip(&host, "application/x-protobuf", &wide).await;
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("once decoded (at most 67108864)"), "{message}");
    // The same in OTLP/JSON.
    let resource = format!("{{\"resource\":{{\"attributes\":[{}{{}}]}}}}", "{},".repeat(4_095));
    let json = format!("{{\"resourceLogs\":[{}{resource}]}}", format!("{resource},").repeat(1_000));
    let (status, message) = post_gzip(&host, "application/json", json.as_bytes()).await;
    assert_eq!(status, 413, "{message}");
    assert!(message.contains("once decoded"), "{message}");

    // Over gRPC, the message is decoded only after the same checks.
    let grpc = host.server.grpc_addr.expect("gRPC enabled");
    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}")).expect("uri");
    let mut client = tonic::client::Grpc::new(channel.connect().await.expect("connect"))
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    for (body, expected) in [(empty_resources, "4194304 records"), (wide, "once decoded")] {
        let mut request = tonic::Request::new(body);
        request.metadata_mut().insert("authorization", basic(PUBLIC_KEY, SECRET_KEY).parse().expect("metadata"));
        client.ready().await.expect("ready");
        let status = client
            .unary(request, path.parse().expect("path"), antenna::ingest::grpc::RawCodec)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains(expected), "{status:?}");
    }
    // What is within every bound is still accepted on both transports.
    assert_eq!(post_gzip(&host, "application/x-protobuf", &empty_attributes(2, 16)).await.0, 200);
    let mut request = tonic::Request::new(empty_attributes(2, 16));
    request.metadata_mut().insert("authorization", basic(PUBLIC_KEY, SECRET_KEY).parse().expect("metadata"));
    client.ready().await.expect("ready");
    client.unary(request, path.parse().expect("path"), antenna::ingest::grpc::RawCodec).await.expect("accepted");
}

#[tokio::test]
async fn one_project_trickling_bodies_holds_only_its_share_of_reading_slots() {
    let host = TestHost::start_with(|c| {
        // A quarter each: 2 slots per project and per address.
        c.limits.max_concurrent_reads = 8;
        c.limits.body_read_timeout_ms = 4_000;
    })
    .await;
    let storage = host.server.state.storage.clone();
    antenna::auth::ensure_project(&*storage, "other", "pk-other", "sk-other").await.expect("a second project");
    let slow: Vec<_> = (0..4).map(|_| slow_upload(host.server.addr)).collect();
    tokio::time::sleep(Duration::from_millis(700)).await;

    // Another project, from another address, is answered at once.
    let client =
        reqwest::Client::builder().local_address(std::net::IpAddr::from([127, 0, 0, 2])).build().expect("client");
    let post = client
        .post(host.url("/v1/logs"))
        .header("authorization", basic("pk-other", "sk-other"))
        .header("content-type", "application/json")
        .body(logs_json())
        .send();
    let response =
        tokio::time::timeout(Duration::from_secs(2), post).await.expect("answered at once").expect("a response");
    assert_eq!(response.status(), 200);

    // The trickler got two slots (408 at the deadline) and 429 beyond its share.
    let mut heads = Vec::new();
    for client in slow {
        let (head, _) = tokio::task::spawn_blocking(move || client.join().expect("slow client")).await.expect("join");
        heads.push(head.expect("answered").lines().next().unwrap_or("").to_owned());
    }
    heads.sort();
    assert_eq!(
        heads,
        [
            "HTTP/1.1 408 Request Timeout",
            "HTTP/1.1 408 Request Timeout",
            "HTTP/1.1 429 Too Many Requests",
            "HTTP/1.1 429 Too Many Requests"
        ],
        "{heads:?}"
    );
}
