//! OTLP/gRPC with a real tonic client: same auth, same pipeline, same results as OTLP/HTTP.

use antenna_e2e::{Capture, PUBLIC_KEY, SECRET_KEY, TestHost, basic};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

fn request<T>(message: T, auth: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(auth) = auth {
        request.metadata_mut().insert("authorization", auth.parse().expect("metadata value"));
    }
    request
}

/// Send every request of a capture over gRPC (gzip-compressed, as Gemini CLI does).
async fn send(channel: &Channel, capture: &Capture, auth: Option<&str>) -> Result<(), tonic::Status> {
    for r in &capture.requests {
        let json = r.content_type.contains("json");
        match r.signal.as_str() {
            "traces" => {
                let message: ExportTraceServiceRequest = if json {
                    serde_json::from_slice(&r.body).expect("json")
                } else {
                    Message::decode(&r.body[..]).expect("pb")
                };
                let mut client = TraceServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Gzip);
                client.export(request(message, auth)).await?;
            }
            "logs" => {
                let message: ExportLogsServiceRequest = if json {
                    serde_json::from_slice(&r.body).expect("json")
                } else {
                    Message::decode(&r.body[..]).expect("pb")
                };
                let mut client = LogsServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Gzip);
                client.export(request(message, auth)).await?;
            }
            _ => {
                let message: ExportMetricsServiceRequest = if json {
                    serde_json::from_slice(&r.body).expect("json")
                } else {
                    Message::decode(&r.body[..]).expect("pb")
                };
                let mut client = MetricsServiceClient::new(channel.clone()).send_compressed(CompressionEncoding::Gzip);
                client.export(request(message, auth)).await?;
            }
        }
    }
    Ok(())
}

async fn channel(host: &TestHost) -> Channel {
    let addr = host.server.grpc_addr.expect("gRPC enabled");
    Channel::from_shared(format!("http://{addr}")).expect("uri").connect().await.expect("connect")
}

#[tokio::test]
async fn grpc_and_http_give_the_same_trace() {
    let capture = Capture::load("claude-code/protobuf-content-on");
    let over_http = TestHost::start().await;
    over_http.replay(&capture).await;
    let expected = over_http.traces().await;

    let host = TestHost::with_grpc().await;
    let auth = basic(PUBLIC_KEY, SECRET_KEY);
    send(&channel(&host).await, &capture, Some(&auth)).await.expect("accepted");
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1);
    for field in
        ["id", "input_tokens", "output_tokens", "cache_read_tokens", "cost_usd", "prompt", "response", "tool_calls"]
    {
        assert_eq!(traces[0][field], expected[0][field], "{field}");
    }
}

#[tokio::test]
async fn gemini_points_straight_at_antenna_over_grpc() {
    let host = TestHost::with_grpc().await;
    let auth = basic(PUBLIC_KEY, SECRET_KEY);
    send(&channel(&host).await, &Capture::load("gemini-cli/json-content-on"), Some(&auth)).await.expect("accepted");
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0]["agent"], "gemini");
    assert_eq!(traces[0]["input_tokens"], 3 * (1234 - 200));
    assert_eq!(traces[0]["reasoning_tokens"], 30);
}

#[tokio::test]
async fn grpc_without_or_with_wrong_keys_is_unauthenticated() {
    let host = TestHost::with_grpc().await;
    let capture = Capture::load("claude-code/protobuf-content-on").only(&["logs"]);
    let channel = channel(&host).await;
    for auth in [None, Some(basic(PUBLIC_KEY, "wrong")), Some("Bearer x".to_owned())] {
        let status = send(&channel, &capture, auth.as_deref()).await.expect_err("refused");
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{auth:?}: {status:?}");
    }
    assert!(host.traces().await.is_empty());
}

fn logs_request(records: usize, body_bytes: usize) -> ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let body =
        (body_bytes > 0).then(|| AnyValue { value: Some(any_value::Value::StringValue("x".repeat(body_bytes))) });
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: (0..records)
                    .map(|i| LogRecord { time_unix_nano: i as u64 + 1, body: body.clone(), ..Default::default() })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn grpc_checks_keys_before_decoding_and_caps_messages_at_16_mib() {
    let host = TestHost::with_grpc().await;
    let mut client = LogsServiceClient::new(channel(&host).await);
    // Without keys, a message larger than any limit is refused for the keys, not decoded first.
    let status = client.export(request(logs_request(1, 65 << 20), None)).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    // With keys, a message beyond 16 MiB is refused from its length alone.
    let auth = basic(PUBLIC_KEY, SECRET_KEY);
    let status = client.export(request(logs_request(1, 17 << 20), Some(&auth))).await.expect_err("refused");
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    // The same connection still serves.
    client.export(request(logs_request(1, 0), Some(&auth))).await.expect("accepted");
}

#[tokio::test]
async fn grpc_caps_records_per_request() {
    let host = TestHost::start_with(|c| {
        c.grpc_listen = Some("127.0.0.1:0".parse().expect("address"));
        c.limits.max_records_per_request = 10;
    })
    .await;
    let auth = basic(PUBLIC_KEY, SECRET_KEY);
    let mut client = LogsServiceClient::new(channel(&host).await);
    // One resource, one scope, 8 records: 10.
    client.export(request(logs_request(8, 0), Some(&auth))).await.expect("at the cap");
    let status = client.export(request(logs_request(9, 0), Some(&auth))).await.expect_err("beyond the cap");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("11 records in one request (at most 10)"), "{status:?}");
}
