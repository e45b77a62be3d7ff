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
