//! OTLP/HTTP ingest: auth -> size and decompression limits -> decode -> durable raw store ->
//! normalize -> 200 with the `Export*ServiceResponse` in the request's encoding.

use std::io::Read;

use axum::body::{Body, Bytes};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use prost::Message;

use crate::admission::Busy;
use crate::otlp::{self, Encoding, Signal};
use crate::server::AppState;

/// `google.rpc.Status`, the body OTLP clients expect on failure.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// A rejected request: status and a one-line reason, encoded like the request.
pub struct Rejection {
    pub status: StatusCode,
    pub message: String,
    pub encoding: Option<Encoding>,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Rejection { status, message: message.into(), encoding: None }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        // gRPC codes: INVALID_ARGUMENT 3, UNAUTHENTICATED 16, RESOURCE_EXHAUSTED 8, UNAVAILABLE 14.
        let code = match self.status {
            StatusCode::UNAUTHORIZED => 16,
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => 8,
            StatusCode::SERVICE_UNAVAILABLE => 14,
            _ => 3,
        };
        let mut response = match self.encoding {
            Some(Encoding::Protobuf) => (
                self.status,
                [(header::CONTENT_TYPE, Encoding::Protobuf.content_type())],
                RpcStatus { code, message: self.message.clone() }.encode_to_vec(),
            )
                .into_response(),
            _ => {
                (self.status, axum::Json(serde_json::json!({ "code": code, "message": self.message }))).into_response()
            }
        };
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"antenna\""));
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE || self.status == StatusCode::TOO_MANY_REQUESTS {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// `POST /v1/{signal}` and `POST /api/public/otel/v1/{signal}`.
pub async fn export(
    State(state): State<AppState>,
    Path(signal): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let counters = &state.admission.metrics;
    match handle(&state, &signal, client.ip(), &headers, body).await {
        Ok(response) => {
            counters.accepted.fetch_add(1, Ordering::Relaxed);
            response
        }
        Err(rejection) => {
            if rejection.status.is_client_error() && rejection.status != StatusCode::TOO_MANY_REQUESTS {
                counters.rejected_client.fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(status = %rejection.status, reason = %rejection.message, "export rejected");
            rejection.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    signal: &str,
    client: IpAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Rejection> {
    let Some(signal) = Signal::parse(signal) else {
        return Err(Rejection::new(
            StatusCode::NOT_FOUND,
            format!("no such OTLP signal {signal:?}: use traces, logs or metrics"),
        ));
    };
    let project_id = crate::api::authenticate_from(state, headers, Some(client)).await?;
    // Bodies are read only by admitted requests, so memory stays bounded under overload.
    let _slot = state.admission.enter().await.map_err(|busy| match busy {
        Busy::QueueFull => Rejection::new(StatusCode::TOO_MANY_REQUESTS, "too many requests queued, retry later"),
        Busy::Timeout => Rejection::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded, retry later"),
    })?;

    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        return Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Type {content_type:?}: send application/x-protobuf or application/json"),
        ));
    };
    let reject = |status, message: String| Rejection { status, message, encoding: Some(encoding) };

    let limits = &state.config.limits;
    let wire = read_limited(body, limits.max_body_bytes).await.map_err(|e| match e {
        ReadError::TooLarge => {
            reject(StatusCode::PAYLOAD_TOO_LARGE, format!("body larger than {} bytes", limits.max_body_bytes))
        }
        ReadError::Io(message) => reject(StatusCode::BAD_REQUEST, format!("could not read the body: {message}")),
    })?;
    let encoding_header = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    let decoded = match encoding_header.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => wire.to_vec(),
        "gzip" | "x-gzip" => gunzip_limited(&wire, limits.max_decoded_bytes).map_err(|e| match e {
            ReadError::TooLarge => reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes after decompression", limits.max_decoded_bytes),
            ),
            ReadError::Io(message) => reject(StatusCode::BAD_REQUEST, format!("malformed gzip body: {message}")),
        })?,
        other => {
            return Err(reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported Content-Encoding {other:?}: send gzip or none"),
            ));
        }
    };

    // Decode once up front so that a malformed or oversized body is refused, not stored.
    let export =
        otlp::decode(signal, encoding, &decoded).map_err(|e| reject(StatusCode::BAD_REQUEST, e.to_string()))?;
    check_shape(&export, limits).map_err(|message| reject(StatusCode::BAD_REQUEST, message))?;

    accept(state, project_id, signal, encoding, decoded)
        .await
        .map_err(|message| reject(StatusCode::SERVICE_UNAVAILABLE, message.into()))?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], otlp::success_response(signal, encoding))
        .into_response())
}

/// Store a decoded, valid body durably, then normalize it. Shared by OTLP/HTTP and OTLP/gRPC.
/// The only error is the storage being unavailable (the client should retry); what happens
/// during normalization stays on the stored batch.
pub async fn accept(
    state: &AppState,
    project_id: String,
    signal: Signal,
    encoding: Encoding,
    body: Vec<u8>,
) -> Result<(), &'static str> {
    let batch_id =
        state.store.insert_batch(&project_id, signal.as_str(), encoding.content_type(), &body).await.map_err(|e| {
            tracing::error!(error = %e, "could not store a batch");
            "storage unavailable, retry later"
        })?;
    // Stored: from here on the client's data is safe. Normalize before answering so that a
    // success also means "queryable"; a normalization failure stays on the batch.
    let batch = crate::store::Batch {
        id: batch_id,
        project_id,
        signal: signal.as_str().into(),
        encoding: encoding.content_type().into(),
        body,
        received_at: 0,
        status: "pending".into(),
        agents: None,
        error: None,
    };
    let config = &state.config;
    let outcome = crate::pipeline::process(
        &state.store,
        &state.registry,
        &config.limits,
        config.fallback_user.as_deref(),
        &batch,
    )
    .await;
    let counters = &state.admission.metrics;
    match outcome.status {
        "done" => &counters.batches_done,
        "unclaimed" => &counters.batches_unclaimed,
        _ => &counters.batches_failed,
    }
    .fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Bounds on what one request may hold beyond its size: attributes per element and the length
/// of every key and string.
pub fn check_shape(export: &otlp::Export, limits: &crate::config::Limits) -> Result<(), String> {
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
    fn value_ok(v: &any_value::Value, limits: &crate::config::Limits, depth: usize) -> Result<(), String> {
        if depth > 16 {
            return Err("attribute values nested deeper than 16 levels".into());
        }
        match v {
            any_value::Value::StringValue(s) if s.len() > limits.max_string_len => {
                Err(format!("a string of {} bytes (at most {})", s.len(), limits.max_string_len))
            }
            any_value::Value::BytesValue(b) if b.len() > limits.max_string_len => {
                Err(format!("a bytes value of {} bytes (at most {})", b.len(), limits.max_string_len))
            }
            any_value::Value::ArrayValue(a) => {
                a.values.iter().filter_map(|v| v.value.as_ref()).try_for_each(|v| value_ok(v, limits, depth + 1))
            }
            any_value::Value::KvlistValue(kv) => attrs_ok(&kv.values, limits, depth + 1),
            _ => Ok(()),
        }
    }
    fn attrs_ok(attrs: &[KeyValue], limits: &crate::config::Limits, depth: usize) -> Result<(), String> {
        if attrs.len() > limits.max_attributes {
            return Err(format!("{} attributes on one element (at most {})", attrs.len(), limits.max_attributes));
        }
        for kv in attrs {
            if kv.key.len() > limits.max_string_len {
                return Err(format!("an attribute key of {} bytes", kv.key.len()));
            }
            if let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                value_ok(v, limits, depth)?;
            }
        }
        Ok(())
    }
    let check = |attrs: &[KeyValue]| attrs_ok(attrs, limits, 0);
    match export {
        otlp::Export::Traces(r) => r.resource_spans.iter().try_for_each(|rs| {
            rs.resource.as_ref().map_or(Ok(()), |r| check(&r.attributes))?;
            rs.scope_spans.iter().try_for_each(|ss| {
                ss.scope.as_ref().map_or(Ok(()), |s| check(&s.attributes))?;
                ss.spans.iter().try_for_each(|span| {
                    check(&span.attributes)?;
                    span.events.iter().try_for_each(|e| check(&e.attributes))?;
                    span.links.iter().try_for_each(|l| check(&l.attributes))
                })
            })
        }),
        otlp::Export::Logs(r) => r.resource_logs.iter().try_for_each(|rl| {
            rl.resource.as_ref().map_or(Ok(()), |r| check(&r.attributes))?;
            rl.scope_logs.iter().try_for_each(|sl| {
                sl.scope.as_ref().map_or(Ok(()), |s| check(&s.attributes))?;
                sl.log_records.iter().try_for_each(|log| {
                    check(&log.attributes)?;
                    log.body.as_ref().and_then(|b| b.value.as_ref()).map_or(Ok(()), |b| value_ok(b, limits, 0))
                })
            })
        }),
        otlp::Export::Metrics(r) => r.resource_metrics.iter().try_for_each(|rm| {
            rm.resource.as_ref().map_or(Ok(()), |r| check(&r.attributes))?;
            rm.scope_metrics.iter().try_for_each(|sm| sm.scope.as_ref().map_or(Ok(()), |s| check(&s.attributes)))
        }),
    }
    .map_err(|e| format!("request too complex: {e}"))
}

enum ReadError {
    TooLarge,
    Io(String),
}

/// Read a body (chunked or not) up to `max` bytes.
async fn read_limited(body: Body, max: usize) -> Result<Bytes, ReadError> {
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ReadError::TooLarge),
        Err(e) => Err(ReadError::Io(e.to_string())),
    }
}

/// Inflate at most `max` bytes: a gzip bomb stops at the limit instead of filling memory.
fn gunzip_limited(wire: &[u8], max: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(wire)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| ReadError::Io(e.to_string()))?;
    if out.len() > max {
        return Err(ReadError::TooLarge);
    }
    Ok(out)
}
