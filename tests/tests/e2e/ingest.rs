//! The OTLP/HTTP contract: paths, auth, encodings, limits, status codes and response bodies.

use std::io::Write;

use antenna_e2e::{Capture, PUBLIC_KEY, SECRET_KEY, TestHost, basic};
use prost::Message;

const LOGS_JSON: &str = "claude-code/json-content-off";

fn logs_json() -> Vec<u8> {
    Capture::load(LOGS_JSON).only(&["logs"]).requests[0].body.clone()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

async fn reason(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    let message = body["message"].as_str().or(body["error"].as_str()).expect("a reason").to_owned();
    assert!(!message.contains('\n'), "one line: {message}");
    message
}

#[tokio::test]
async fn both_paths_accept_protobuf_and_json_and_answer_in_kind() {
    let host = TestHost::start().await;
    let capture = Capture::load("claude-code/protobuf-content-on");
    let traces = &capture.only(&["traces"]).requests[0];
    let response = host.post("/api/public/otel/v1/traces", "application/x-protobuf", traces.body.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let body = response.bytes().await.expect("body");
    opentelemetry_proto_response(&body);

    let response = host.post("/v1/logs", "application/json; charset=utf-8", logs_json()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.expect("JSON response");
    assert!(body.is_object());
}

/// A protobuf `ExportTraceServiceResponse` decodes (an empty message is valid).
fn opentelemetry_proto_response(body: &[u8]) {
    #[derive(Clone, PartialEq, Message)]
    struct ExportResponse {
        #[prost(bytes = "vec", optional, tag = "1")]
        partial_success: Option<Vec<u8>>,
    }
    ExportResponse::decode(body).expect("an Export*ServiceResponse");
}

#[tokio::test]
async fn gzip_and_chunked_bodies_are_accepted() {
    let host = TestHost::start().await;
    let response = host
        .client
        .post(host.url("/v1/logs"))
        .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gzip(&logs_json()))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);

    // A streamed body has no Content-Length: it goes out chunked, as Claude Code sends it.
    let capture = Capture::load("claude-code/protobuf-content-on").only(&["traces"]);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        capture.requests[0].body.chunks(512).map(|c| Ok(c.to_vec())).collect();
    let response = host
        .client
        .post(host.url("/v1/traces"))
        .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
        .header("content-type", "application/x-protobuf")
        .body(reqwest::Body::wrap_stream(futures_stream(chunks)))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);
    // Two prompts: the content-off logs (gzip) and the content-on spans (chunked).
    assert_eq!(host.traces().await.len(), 2);
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    struct Chunks(std::vec::IntoIter<Result<Vec<u8>, std::io::Error>>);
    impl futures_core::Stream for Chunks {
        type Item = Result<Vec<u8>, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.next())
        }
    }
    Chunks(chunks.into_iter())
}

#[tokio::test]
async fn integers_as_strings_or_numbers_and_hex_ids_decode() {
    let host = TestHost::start().await;
    let body = serde_json::json!({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "claude-code"}},
        {"key": "user.id", "value": {"stringValue": "u1"}}]},
      "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": [
        {"timeUnixNano": "1795545686598000000", "traceId": "B141B9B87D9C7CCDFBA025F4185D793F", "spanId": "04ee6f544cf06a4f",
         "body": {"stringValue": "claude_code.api_request"},
         "attributes": [
           {"key": "event.name", "value": {"stringValue": "api_request"}},
           {"key": "prompt.id", "value": {"stringValue": "p-1"}},
           {"key": "session.id", "value": {"stringValue": "s-1"}},
           {"key": "model", "value": {"stringValue": "claude-sonnet-4-6"}},
           {"key": "input_tokens", "value": {"intValue": "10"}},
           {"key": "output_tokens", "value": {"intValue": 5}},
           {"key": "cache_read_tokens", "value": {"stringValue": "2"}},
           {"key": "cache_creation_tokens", "value": {"doubleValue": 1}},
           {"key": "event.sequence", "value": {"intValue": 1}}]}]}]}]});
    let response = host.post("/v1/logs", "application/json", serde_json::to_vec(&body).expect("json")).await;
    assert_eq!(response.status(), 200);
    let trace = &host.traces().await[0];
    assert_eq!((trace["input_tokens"].as_u64(), trace["output_tokens"].as_u64()), (Some(10), Some(5)));
    assert_eq!((trace["cache_read_tokens"].as_u64(), trace["cache_creation_tokens"].as_u64()), (Some(2), Some(1)));
    assert_eq!(trace["id"], "otel-b141b9b87d9c7ccdfba025f4185d793f", "hex ids, case-insensitive");
}

#[tokio::test]
async fn missing_or_wrong_keys_get_401_with_a_challenge() {
    let host = TestHost::start().await;
    let cases = [
        None,
        Some(basic(PUBLIC_KEY, "sk-wrong")),
        Some(basic("pk-unknown", SECRET_KEY)),
        Some("Bearer sk-local".to_owned()),
        Some("Basic not-base64!".to_owned()),
    ];
    for auth in cases {
        for path in ["/v1/logs", "/api/public/otel/v1/traces"] {
            let mut request =
                host.client.post(host.url(path)).header("content-type", "application/json").body(logs_json());
            if let Some(auth) = &auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.expect("send");
            assert_eq!(response.status(), 401, "{auth:?} {path}");
            assert_eq!(response.headers()["www-authenticate"], "Basic realm=\"antenna\"");
            reason(response).await;
        }
        let mut request = host.client.get(host.url("/api/public/traces"));
        if let Some(auth) = &auth {
            request = request.header("authorization", auth);
        }
        assert_eq!(request.send().await.expect("send").status(), 401);
    }
    assert!(host.traces().await.is_empty(), "nothing unauthenticated was stored");
}

#[tokio::test]
async fn unknown_paths_get_404() {
    let host = TestHost::start().await;
    for path in ["/v1/profiles", "/v2/traces", "/api/public/otel/v1/spans", "/nothing"] {
        let response = host.post(path, "application/json", b"{}".to_vec()).await;
        assert_eq!(response.status(), 404, "{path}");
    }
    let response = host.client.get(host.url("/api/public/nothing")).send().await.expect("send");
    assert_eq!(response.status(), 404);
    let response = host
        .client
        .get(host.url("/api/public/traces/no-such-trace"))
        .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn unsupported_media_gets_415() {
    let host = TestHost::start().await;
    for content_type in ["text/plain", "application/xml", ""] {
        let response = host.post("/v1/logs", content_type, logs_json()).await;
        assert_eq!(response.status(), 415, "{content_type:?}");
        assert!(reason(response).await.contains("Content-Type"));
    }
    let response = host
        .client
        .post(host.url("/v1/logs"))
        .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(logs_json())
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn oversized_bodies_get_413_before_and_after_decompression() {
    let host = TestHost::start_with(|c| {
        c.limits.max_body_bytes = 64 * 1024;
        c.limits.max_decoded_bytes = 256 * 1024;
    })
    .await;
    let response = host.post("/v1/logs", "application/json", vec![b' '; 100 * 1024]).await;
    assert_eq!(response.status(), 413);
    reason(response).await;

    // A small gzip body that inflates past the limit: refused without inflating it all.
    let bomb = gzip(&vec![b' '; 8 * 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let response = host
        .client
        .post(host.url("/v1/logs"))
        .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 413);
    assert!(reason(response).await.contains("after decompression"));
}

#[tokio::test]
async fn malformed_bodies_get_400_and_nothing_is_lost() {
    let host = TestHost::start().await;
    host.replay(&Capture::load(LOGS_JSON)).await;
    let before = host.traces().await;

    let protobuf = Capture::load("claude-code/protobuf-content-on").only(&["logs"]).requests[0].body.clone();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{not json".to_vec()),
        ("application/json", br#"{"resourceLogs": "wrong type"}"#.to_vec()),
        ("application/json", br#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}"#.to_vec()),
        ("application/x-protobuf", protobuf[..protobuf.len() / 2].to_vec()),
        ("application/x-protobuf", vec![0xff; 32]),
    ];
    for (content_type, body) in cases {
        let response = host.post("/v1/logs", content_type, body).await;
        assert_eq!(response.status(), 400, "{content_type}");
        if content_type == "application/json" {
            assert!(reason(response).await.starts_with("malformed OTLP JSON"));
        } else {
            assert_eq!(response.headers()["content-type"], "application/x-protobuf", "a google.rpc.Status in kind");
        }
    }
    let bad_gzip = host
        .client
        .post(host.url("/v1/logs"))
        .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(b"not gzip".to_vec())
        .send()
        .await
        .expect("send");
    assert_eq!(bad_gzip.status(), 400);
    assert_eq!(host.traces().await, before, "bad input changes nothing already accepted");

    // An empty request is a valid (empty) export.
    assert_eq!(host.post("/v1/logs", "application/json", b"{}".to_vec()).await.status(), 200);
    assert_eq!(host.post("/v1/traces", "application/x-protobuf", Vec::new()).await.status(), 200);
}

#[tokio::test]
async fn health_and_readiness_need_no_keys() {
    let host = TestHost::start().await;
    for path in ["/healthz", "/readyz"] {
        let response = host.client.get(host.url(path)).send().await.expect("send");
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn failed_authentication_is_limited_per_client_and_key_and_valid_keys_always_get_in() {
    let host = TestHost::start_with(|c| c.limits.auth_failures_per_minute = 3).await;
    for _ in 0..3 {
        let response = host.post_as(Some((PUBLIC_KEY, "guess")), "/v1/logs", "application/json", logs_json()).await;
        assert_eq!(response.status(), 401);
    }
    // Wrong keys for this public key from this address now get 429 for the rest of the minute...
    let response = host.post_as(Some((PUBLIC_KEY, "guess")), "/v1/logs", "application/json", logs_json()).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert!(reason(response).await.contains("too many failed authentications"));
    let api = host.client.get(host.url("/api/public/traces")).header("authorization", basic(PUBLIC_KEY, "guess"));
    assert_eq!(api.send().await.expect("send").status(), 429);
    // ...but someone else's failures lock no one out: valid keys from the same address get in,
    // on ingest and on the API alike.
    assert_eq!(host.post("/v1/logs", "application/json", logs_json()).await.status(), 200);
    let api = host.client.get(host.url("/api/public/traces")).header("authorization", basic(PUBLIC_KEY, SECRET_KEY));
    assert_eq!(api.send().await.expect("send").status(), 200);
    // Another public key from the same address has a count of its own.
    let other = host.post_as(Some(("pk-other", "guess")), "/v1/logs", "application/json", logs_json()).await;
    assert_eq!(other.status(), 401);
}

#[tokio::test]
async fn requests_too_complex_get_400() {
    let host = TestHost::start_with(|c| {
        c.limits.max_attributes = 8;
        c.limits.max_string_len = 1024;
    })
    .await;
    let with_attrs = |attrs: Vec<serde_json::Value>| {
        serde_json::to_vec(&serde_json::json!({"resourceLogs": [{"resource": {"attributes": attrs},
            "scopeLogs": [{"scope": {"name": "x"}, "logRecords": [{"timeUnixNano": "1"}]}]}]}))
        .expect("json")
    };
    let many: Vec<serde_json::Value> =
        (0..9).map(|i| serde_json::json!({"key": format!("k{i}"), "value": {"intValue": i}})).collect();
    let long = vec![serde_json::json!({"key": "k", "value": {"stringValue": "x".repeat(2048)}})];
    let mut nested = serde_json::json!({"stringValue": "leaf"});
    for _ in 0..20 {
        nested = serde_json::json!({"arrayValue": {"values": [nested]}});
    }
    let deep = vec![serde_json::json!({"key": "deep", "value": nested})];
    for (what, attrs) in [("attributes", many), ("string", long), ("nested", deep)] {
        let response = host.post("/v1/logs", "application/json", with_attrs(attrs)).await;
        assert_eq!(response.status(), 400, "{what}");
        assert!(reason(response).await.starts_with("request too complex"), "{what}");
    }
}
