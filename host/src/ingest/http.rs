//! OTLP/HTTP: `POST /v1/{signal}` and `POST /api/public/otel/v1/{signal}`; auth -> admission ->
//! size and decompression limits -> decode -> shape limits -> accept -> 200 with the
//! `Export*ServiceResponse` in the request's encoding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::limits::{ReadError, check_shape, gunzip_limited, read_limited};
use super::{Ingest, IngestError};
use crate::otlp::{self, Encoding, Signal};

/// `POST /v1/{signal}` and `POST /api/public/otel/v1/{signal}`.
pub async fn export(
    State(ingest): State<Arc<Ingest>>,
    Path(signal): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let signal_label = Signal::parse(&signal).map_or("unknown", Signal::as_str);
    let (result, response) = match handle(&ingest, &signal, client, &headers, body).await {
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
    headers: &HeaderMap,
    body: Body,
) -> Result<(Response, usize), (IngestError, Option<Encoding>)> {
    let Some(signal) = Signal::parse(signal) else {
        let message = format!("no such OTLP signal {signal:?}: use traces, logs or metrics");
        return Err((IngestError::NotFound(message), None));
    };
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let (project_id, _slot) = ingest.admit(authorization, Some(client.ip())).await.map_err(|e| (e, None))?;

    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        let message =
            format!("unsupported Content-Type {content_type:?}: send application/x-protobuf or application/json");
        return Err((IngestError::UnsupportedMedia(message), None));
    };
    let reject = |error: IngestError| (error, Some(encoding));

    let limits = &ingest.limits;
    let wire = read_limited(body, limits.max_body_bytes).await.map_err(|e| {
        reject(match e {
            ReadError::TooLarge => IngestError::TooLarge(format!("body larger than {} bytes", limits.max_body_bytes)),
            ReadError::Io(message) => IngestError::BadRequest(format!("could not read the body: {message}")),
        })
    })?;
    let content_encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    let decoded = match content_encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => wire.to_vec(),
        "gzip" | "x-gzip" => gunzip_limited(&wire, limits.max_decoded_bytes).map_err(|e| {
            reject(match e {
                ReadError::TooLarge => IngestError::TooLarge(format!(
                    "body larger than {} bytes after decompression",
                    limits.max_decoded_bytes
                )),
                ReadError::Io(message) => IngestError::BadRequest(format!("malformed gzip body: {message}")),
            })
        })?,
        other => {
            let message = format!("unsupported Content-Encoding {other:?}: send gzip or none");
            return Err(reject(IngestError::UnsupportedMedia(message)));
        }
    };

    // Decode once up front so that a malformed or oversized body is refused, not stored.
    let export =
        otlp::decode(signal, encoding, &decoded).map_err(|e| reject(IngestError::BadRequest(e.to_string())))?;
    check_shape(&export, limits).map_err(|message| reject(IngestError::BadRequest(message)))?;

    let records = export.record_count();
    ingest.accept(project_id, signal, encoding, decoded, export).await.map_err(reject)?;
    let response =
        (StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], otlp::success_response(signal, encoding));
    Ok((response.into_response(), records))
}
