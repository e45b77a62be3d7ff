//! OTLP/HTTP: `POST /v1/{signal}` and `POST /api/public/otel/v1/{signal}`; auth -> admission ->
//! size and decompression limits -> decode -> shape limits -> accept -> 200 with the
//! `Export*ServiceResponse` in the request's encoding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::limits::{ReadError, check_shape, gunzip_limited, read_limited};
use super::{Ingest, IngestError};
use crate::metrics::Counters;
use crate::otlp::{self, Encoding, Signal};

/// The handler's state: ingest and the counters it reports to.
#[derive(Clone)]
pub struct HttpIngest {
    pub ingest: Arc<Ingest>,
    pub counters: Arc<Counters>,
}

/// `POST /v1/{signal}` and `POST /api/public/otel/v1/{signal}`.
pub async fn export(
    State(state): State<HttpIngest>,
    Path(signal): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let counters = &state.counters;
    match handle(&state.ingest, &signal, client, &headers, body).await {
        Ok(response) => {
            counters.accepted.fetch_add(1, Ordering::Relaxed);
            response
        }
        Err((error, encoding)) => {
            let status = error.status();
            if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
                counters.rejected_client.fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(%status, reason = %error, "export rejected");
            error.to_http(encoding)
        }
    }
}

async fn handle(
    ingest: &Ingest,
    signal: &str,
    client: SocketAddr,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, (IngestError, Option<Encoding>)> {
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

    ingest.accept(project_id, signal, encoding, decoded, export).await.map_err(reject)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, encoding.content_type())], otlp::success_response(signal, encoding))
        .into_response())
}
