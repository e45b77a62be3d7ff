//! Holding connections costs a credential (hardening round three, H1): one address's share of
//! each port, a deadline for the first request to authenticate, idle and old connections asked
//! to go, a budget per port. Raw TCP (std, on blocking threads) plays the hostile clients; the
//! well-behaved ones are reqwest and tonic. Why each connection was closed is read from
//! `/metrics`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use antenna_e2e::{Capture, PUBLIC_KEY, SECRET_KEY, TestHost, basic};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use prost::Message;
use tonic::transport::Channel;

const H2_PREFACE_AND_SETTINGS: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// An HTTP/2 client that says hello and then nothing: what an idle exporter, or an attacker
/// holding connections, looks like.
fn idle_h2(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(H2_PREFACE_AND_SETTINGS).expect("preface");
    stream
}

/// Whether the host closes `stream` within `within` (reading and dropping what it sends).
fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let started = Instant::now();
    let mut chunk = [0u8; 4096];
    loop {
        let left = within.saturating_sub(started.elapsed());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut chunk) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn logs_body() -> Vec<u8> {
    Capture::load("claude-code/protobuf-content-on").only(&["logs"]).requests[0].body.clone()
}

fn logs_request() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest::decode(&logs_body()[..]).expect("a logs capture")
}

fn authorized<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", basic(PUBLIC_KEY, SECRET_KEY).parse().expect("metadata"));
    request
}

/// An export over OTLP/HTTP from a client bound to `from` (any 127.0.0.0/8 address is this
/// machine): its status, within 5 s.
async fn export_from(host: &TestHost, from: IpAddr) -> u16 {
    let client = reqwest::Client::builder().local_address(from).build().expect("client");
    let post = client
        .post(host.url("/v1/logs"))
        .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
        .header("content-type", "application/x-protobuf")
        .body(logs_body())
        .send();
    tokio::time::timeout(Duration::from_secs(5), post)
        .await
        .expect("answered within 5 s")
        .expect("a response")
        .status()
        .as_u16()
}

/// Another address of this machine than the harness's 127.0.0.1.
fn other(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// `antenna_connections_closed_total` for one port and reason (asked from an address of its
/// own, so that a full share of 127.0.0.1 does not stop the question).
async fn closed(host: &TestHost, port: &str, reason: &str) -> u64 {
    let client = reqwest::Client::builder().local_address(other(9)).build().expect("client");
    let response = client.get(host.url("/metrics")).send().await.expect("metrics");
    let text = response.text().await.expect("text");
    let series = format!("antenna_connections_closed_total{{port=\"{port}\",reason=\"{reason}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&series)).map_or(0, |n| n.trim().parse().expect("a count"))
}

async fn wait_for_closed(host: &TestHost, port: &str, reason: &str, within: Duration) -> u64 {
    let started = Instant::now();
    loop {
        let count = closed(host, port, reason).await;
        if count > 0 || started.elapsed() > within {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_address_holding_idle_http2_connections_stops_neither_port() {
    let host = TestHost::start_with(|c| {
        c.grpc_listen = Some("127.0.0.1:0".parse().expect("address"));
        c.limits.max_connections = 24;
        c.limits.max_connections_per_address = 8;
        // Long enough that nothing here is closed for want of authentication.
        c.limits.header_read_timeout_ms = 30_000;
        c.limits.idle_timeout_ms = 30_000;
    })
    .await;
    let (http, grpc) = (host.server.addr, host.server.grpc_addr.expect("gRPC enabled"));
    // More idle HTTP/2 connections than the whole port takes, from one address, on both ports.
    let (held, refused) = tokio::task::spawn_blocking(move || {
        let mut held = Vec::new();
        let mut refused = 0;
        for addr in [http, grpc] {
            for _ in 0..30 {
                let mut stream = idle_h2(addr);
                if closed_within(&mut stream, Duration::from_millis(300)) {
                    refused += 1;
                } else {
                    held.push(stream);
                }
            }
        }
        (held, refused)
    })
    .await
    .expect("clients");
    // The harness's own client may hold one HTTP connection from the same address.
    assert!((15..=16).contains(&held.len()), "{} held", held.len());
    assert!(refused >= 44, "{refused} closed at once");
    assert!(closed(&host, "http", "per_address").await >= 22);

    // Another address still gets an export through on HTTP, and gRPC is its own budget: a
    // tonic client from the busy address is refused, one from another address served.
    assert_eq!(export_from(&host, other(2)).await, 200);
    let channel = Channel::from_shared(format!("http://{grpc}")).expect("uri").local_address(Some(other(3)));
    let channel = tokio::time::timeout(Duration::from_secs(5), channel.connect()).await.expect("in time");
    let mut client = LogsServiceClient::new(channel.expect("connected"));
    let exported = tokio::time::timeout(Duration::from_secs(5), client.export(authorized(logs_request()))).await;
    exported.expect("answered within 5 s").expect("accepted over gRPC");
    drop(held);
}

#[tokio::test]
async fn connections_that_do_not_authenticate_in_time_are_closed_on_both_ports() {
    let host = TestHost::start_with(|c| {
        c.grpc_listen = Some("127.0.0.1:0".parse().expect("address"));
        c.limits.header_read_timeout_ms = 500;
    })
    .await;
    let (http, grpc) = (host.server.addr, host.server.grpc_addr.expect("gRPC enabled"));
    let outcomes = tokio::task::spawn_blocking(move || {
        // HTTP/2 that sends its preface and no request, on each port.
        let mut silent = [idle_h2(http), idle_h2(grpc)];
        // HTTP/1 keep-alive after a request without keys: answered 401, then nothing.
        let mut refused = TcpStream::connect(http).expect("connect");
        refused
            .write_all(b"POST /v1/logs HTTP/1.1\r\nHost: antenna\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            .expect("request");
        let [a, b] = &mut silent;
        [a, b, &mut refused].map(|s| closed_within(s, Duration::from_secs(3)))
    })
    .await
    .expect("clients");
    assert_eq!(outcomes, [true, true, true], "closed: HTTP/2 on HTTP, on gRPC, HTTP/1 after a 401");
    // (hyper's own header deadline may close the HTTP/1 one first.)
    assert!(closed(&host, "http", "unauthenticated").await >= 1);
    assert!(closed(&host, "grpc", "unauthenticated").await >= 1);

    // An authenticated client outlives the deadline on both ports.
    let channel = Channel::from_shared(format!("http://{grpc}")).expect("uri").connect().await.expect("connect");
    let mut client = LogsServiceClient::new(channel);
    for _ in 0..3 {
        client.export(authorized(logs_request())).await.expect("accepted");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(closed(&host, "grpc", "unauthenticated").await, 1, "the tonic client's connection was kept");
    assert_eq!(host.post("/v1/logs", "application/x-protobuf", logs_body()).await.status(), 200);
}

#[tokio::test]
async fn idle_and_old_connections_are_asked_to_go_and_clients_reconnect() {
    let idle = TestHost::start_with(|c| {
        c.grpc_listen = Some("127.0.0.1:0".parse().expect("address"));
        c.limits.idle_timeout_ms = 300;
    })
    .await;
    let grpc = idle.server.grpc_addr.expect("gRPC enabled");
    let channel = Channel::from_shared(format!("http://{grpc}")).expect("uri").connect().await.expect("connect");
    let mut client = LogsServiceClient::new(channel);
    client.export(authorized(logs_request())).await.expect("accepted");
    // An authenticated HTTP/2 connection without a stream is closed although it would answer pings.
    assert!(wait_for_closed(&idle, "grpc", "idle", Duration::from_secs(5)).await >= 1);
    client.export(authorized(logs_request())).await.expect("the client reconnects");

    let old = TestHost::start_with(|c| {
        c.grpc_listen = Some("127.0.0.1:0".parse().expect("address"));
        c.limits.max_connection_age_ms = 500;
    })
    .await;
    let grpc = old.server.grpc_addr.expect("gRPC enabled");
    let channel = Channel::from_shared(format!("http://{grpc}")).expect("uri").connect().await.expect("connect");
    let mut client = LogsServiceClient::new(channel);
    // A busy connection is never idle; past its age it is asked to go, and the client moves on
    // (an export caught by the GOAWAY is retried, as an OTLP exporter does).
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1_500) {
        if client.export(authorized(logs_request())).await.is_err() {
            client.export(authorized(logs_request())).await.expect("accepted on a new connection");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed(&old, "grpc", "max_age").await >= 1);
    assert_eq!(closed(&old, "grpc", "idle").await, 0);
}

#[tokio::test]
async fn a_request_in_flight_past_the_deadline_is_not_cut_off() {
    let host = TestHost::start_with(|c| c.limits.header_read_timeout_ms = 500).await;
    let addr = host.server.addr;
    let head = tokio::task::spawn_blocking(move || {
        // A browser's first exchange is a refusal (who am I, before signing in), then the
        // sign-in on the same connection, its body still arriving when the deadline passes.
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.write_all(b"GET /api/ui/session HTTP/1.1\r\nHost: antenna\r\n\r\n").expect("who am I");
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).expect("answer");
        assert!(String::from_utf8_lossy(&chunk[..n]).starts_with("HTTP/1.1 401"));
        let body = format!("{{\"public_key\":\"{PUBLIC_KEY}\",\"secret_key\":\"{SECRET_KEY}\"}}");
        let head = format!(
            "POST /api/ui/session HTTP/1.1\r\nHost: antenna\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("sign-in head");
        for byte in body.as_bytes() {
            stream.write_all(&[*byte]).expect("body");
            std::thread::sleep(Duration::from_millis(20));
        }
        stream.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
        let n = stream.read(&mut chunk).unwrap_or(0);
        String::from_utf8_lossy(&chunk[..n]).into_owned()
    })
    .await
    .expect("client");
    assert!(head.starts_with("HTTP/1.1 204"), "signed in across the deadline: {head:?}");
}
