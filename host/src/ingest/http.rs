//! OTLP/HTTP: `POST /v1/{signal}` and `POST /api/public/otel/v1/{signal}`; auth -> body received
//! under a deadline and a size limit (reading slot) -> admission (processing slot) ->
//! decompression limit -> decode -> records and shape limits -> accept -> 200 with the
//! `Export*ServiceResponse` in the request's encoding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::limits::{ReadError, gunzip_limited, read_limited};
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
    let client = ingest.authenticator.client_address(client.ip(), headers);
    let project_id = ingest.authenticate(authorization, Some(client)).await.map_err(|e| (e, None))?;

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
    let reading = ingest.admission.reading().await.map_err(|busy| reject(IngestError::Busy(busy)))?;
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

    // Decode once up front so that a malformed or oversized body is refused, not stored.
    let export =
        otlp::decode(signal, encoding, &decoded).map_err(|e| reject(IngestError::BadRequest(e.to_string())))?;
    ingest.check(&export).map_err(reject)?;

    let records = export.record_count();
    ingest.accept(project_id, signal, encoding, decoded, export).await.map_err(reject)?;
    let response =
        (StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], otlp::success_response(signal, encoding));
    Ok((response.into_response(), records))
}
