//! OTLP/HTTP: `POST /v1/{signal}` and `POST /api/public/otel/v1/{signal}`; auth -> body received
//! under a deadline and a size limit (reading slot) -> admission (processing slot) ->
//! decompression limit -> pre-scan and decoded-bytes budget -> decode -> shape limits -> accept
//! -> 200 with the `Export*ServiceResponse` in the request's encoding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::conn::ConnHandle;
use super::limits::{ReadError, gunzip_limited, read_limited};
use super::{Ingest, IngestError};
use crate::otlp::{self, Encoding, Signal};

/// The path OTLP exporters append `/v1/{signal}` to when given a bare endpoint.
pub const BARE_PATH: &str = "/v1/{signal}";

/// The OTLP/HTTP routes, with their OpenAPI description: [`export`] at its documented path and
/// at [`BARE_PATH`], documented as the same operation.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Ingest>: FromRef<S>,
{
    let mut router = OpenApiRouter::new().routes(routes!(export)).route(BARE_PATH, post(export));
    let paths = &mut router.get_openapi_mut().paths.paths;
    if let Some(mut item) = paths.values().next().cloned() {
        if let Some(operation) = item.post.as_mut() {
            operation.operation_id = Some("export_bare".into());
        }
        paths.insert(BARE_PATH.into(), item);
    }
    router
}

/// An `Export{Trace,Logs,Metrics}ServiceRequest` (or its response) in protobuf.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)] // documentation only
pub struct OtlpProtobuf(Vec<u8>);

/// An `Export{Trace,Logs,Metrics}ServiceRequest` (or its response) in OTLP/JSON.
#[derive(ToSchema)]
#[schema(value_type = Object)]
#[allow(dead_code)] // documentation only
pub struct OtlpJson(serde_json::Value);

/// Why an export was refused, in OTLP/JSON (`google.rpc.Status`; in protobuf when the request
/// was protobuf and got past authentication and the Content-Type check).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct OtlpStatus {
    /// The gRPC status code.
    pub code: i32,
    pub message: String,
}

/// `POST /v1/{signal}` and `POST /api/public/otel/v1/{signal}`.
#[utoipa::path(
    post,
    path = "/api/public/otel/v1/{signal}",
    tag = "ingest",
    params(
        ("signal" = String, Path, description = "traces, logs or metrics", pattern = "^(traces|logs|metrics)$"),
    ),
    request_body(
        description = "An OTLP export request (application/protobuf is taken as application/x-protobuf), \
            optionally compressed with `Content-Encoding: gzip` (or x-gzip); another Content-Encoding is a 415",
        content((OtlpProtobuf = "application/x-protobuf"), (OtlpJson = "application/json"))
    ),
    responses(
        (status = 200, description = "Accepted; the export response in the request's encoding",
            content((OtlpProtobuf = "application/x-protobuf"), (OtlpJson = "application/json"))),
        (status = 400, description = "The body does not decode (or gzip is malformed)",
            content((OtlpStatus = "application/json"), (OtlpProtobuf = "application/x-protobuf"))),
        (status = 401, description = "No, malformed or wrong keys", body = OtlpStatus,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"antenna\"`"))),
        (status = 404, description = "No such signal", body = OtlpStatus),
        (status = 408, description = "The body did not arrive in time",
            content((OtlpStatus = "application/json"), (OtlpProtobuf = "application/x-protobuf"))),
        (status = 413, description = "The body, once inflated, or its record count is over the limit",
            content((OtlpStatus = "application/json"), (OtlpProtobuf = "application/x-protobuf"))),
        (status = 415, description = "Neither protobuf nor JSON, or an unknown Content-Encoding",
            content((OtlpStatus = "application/json"), (OtlpProtobuf = "application/x-protobuf"))),
        (status = 429, description = "Too many failed authentications, or too many requests queued",
            content((OtlpStatus = "application/json"), (OtlpProtobuf = "application/x-protobuf")),
            headers(("Retry-After" = u64, description = "Seconds"))),
        (status = 503, description = "Overloaded, or the database does not answer",
            content((OtlpStatus = "application/json"), (OtlpProtobuf = "application/x-protobuf")),
            headers(("Retry-After" = u64, description = "Seconds"))),
    ),
    security(("basic" = []))
)]
pub async fn export(
    State(ingest): State<Arc<Ingest>>,
    Path(signal): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    conn: Option<Extension<ConnHandle>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let signal_label = Signal::parse(&signal).map_or("unknown", Signal::as_str);
    let conn = conn.map(|Extension(conn)| conn);
    let (result, response) = match handle(&ingest, &signal, client, conn.as_ref(), &headers, body).await {
        Ok((response, records)) => (Ok(records), response),
        Err((error, encoding)) => {
            tracing::debug!(status = %error.status(), reason = %error, "export rejected");
            let response = error.to_http(encoding);
            (Err(error), response)
        }
    };
    ingest.answered("http", signal_label, &result, started);
    response
}

async fn handle(
    ingest: &Ingest,
    signal: &str,
    client: SocketAddr,
    conn: Option<&ConnHandle>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Response, usize), (IngestError, Option<Encoding>)> {
    let Some(signal) = Signal::parse(signal) else {
        let message = format!("no such OTLP signal {signal:?}: use traces, logs or metrics");
        return Err((IngestError::NotFound(message), None));
    };
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let client = ingest.authenticator.client_address(client.ip(), headers);
    let project_id = ingest.authenticate(authorization, Some(client)).await.map_err(|e| (e, None))?;
    if let Some(conn) = conn {
        conn.vouch();
    }

    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        let message =
            format!("unsupported Content-Type {content_type:?}: send application/x-protobuf or application/json");
        return Err((IngestError::UnsupportedMedia(message), None));
    };
    let reject = |error: IngestError| (error, Some(encoding));
    let content_encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    let gzipped = match content_encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => false,
        "gzip" | "x-gzip" => true,
        other => {
            let message = format!("unsupported Content-Encoding {other:?}: send gzip or none");
            return Err(reject(IngestError::UnsupportedMedia(message)));
        }
    };

    // The body is received under a deadline and in a reading slot, not a processing slot: slow
    // senders cannot hold up the batches of others.
    let limits = &ingest.limits;
    let reading =
        ingest.admission.reading(&project_id, Some(client)).await.map_err(|busy| reject(IngestError::Busy(busy)))?;
    let deadline = Duration::from_millis(limits.body_read_timeout_ms);
    let wire = match tokio::time::timeout(deadline, read_limited(body, limits.max_body_bytes)).await {
        Err(_) => {
            let message = format!("the body did not arrive within {} ms", limits.body_read_timeout_ms);
            return Err(reject(IngestError::Timeout(message)));
        }
        Ok(read) => read.map_err(|e| {
            reject(match e {
                ReadError::TooLarge => {
                    IngestError::TooLarge(format!("body larger than {} bytes", limits.max_body_bytes))
                }
                ReadError::Io(message) => IngestError::BadRequest(format!("could not read the body: {message}")),
            })
        })?,
    };
    let _slot = ingest.admission.enter().await.map_err(|busy| reject(IngestError::Busy(busy)))?;
    drop(reading);

    let decoded = if gzipped {
        let inflated = gunzip_limited(&wire, limits.max_decoded_bytes).map_err(|e| {
            reject(match e {
                ReadError::TooLarge => IngestError::TooLarge(format!(
                    "body larger than {} bytes after decompression",
                    limits.max_decoded_bytes
                )),
                ReadError::Io(message) => IngestError::BadRequest(format!("malformed gzip body: {message}")),
            })
        })?;
        // One copy of the body at a time: the compressed one goes once inflated.
        drop(wire);
        inflated
    } else {
        wire
    };

    // Bounded, then decoded once up front so that a malformed or oversized body is refused,
    // not stored.
    let (export, _room) = ingest.decode(signal, encoding, &decoded).await.map_err(reject)?;

    let records = export.record_count();
    ingest.accept(project_id, signal, encoding, decoded, export).await.map_err(reject)?;
    let response =
        (StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], otlp::success_response(signal, encoding));
    Ok((response.into_response(), records))
}
