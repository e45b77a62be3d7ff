//! The one status table of ingest: each error with its HTTP status, gRPC code and
//! `Retry-After`, and the OTLP failure body (`google.rpc.Status`) in the request's encoding.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;

use super::admission::Busy;
use crate::auth::AuthError;
use crate::otlp::Encoding;

/// Seconds a client should wait before retrying a 429 or 503.
const RETRY_AFTER_SECONDS: &str = "5";

/// Why an export request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    BadRequest(String),
    /// More records than `Limits::max_records_per_request`.
    #[error("{records} records in one request (at most {max}): send smaller batches")]
    TooManyRecords { records: usize, max: usize },
    /// The body did not arrive within `Limits::body_read_timeout_ms`.
    #[error("{0}")]
    Timeout(String),
    #[error("{}", match .0 {
        Busy::QueueFull => "too many requests queued, retry later",
        Busy::Timeout => "overloaded, retry later",
        Busy::Share => "this project or address is sending too many bodies at once, retry later",
    })]
    Busy(Busy),
    #[error("storage unavailable, retry later")]
    Storage,
}

impl IngestError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            IngestError::Auth(AuthError::TooManyFailures(_)) => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Auth(AuthError::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Auth(_) => StatusCode::UNAUTHORIZED,
            IngestError::NotFound(_) => StatusCode::NOT_FOUND,
            IngestError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::TooLarge(_) | IngestError::TooManyRecords { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            IngestError::Busy(Busy::QueueFull | Busy::Share) => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Busy(Busy::Timeout) | IngestError::Storage => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The gRPC status code (OTLP clients retry RESOURCE_EXHAUSTED and UNAVAILABLE).
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            IngestError::Auth(AuthError::TooManyFailures(_)) => tonic::Code::ResourceExhausted,
            IngestError::Auth(AuthError::Unavailable) => tonic::Code::Unavailable,
            IngestError::Auth(_) => tonic::Code::Unauthenticated,
            IngestError::NotFound(_) => tonic::Code::Unimplemented,
            IngestError::UnsupportedMedia(_) | IngestError::BadRequest(_) => tonic::Code::InvalidArgument,
            IngestError::TooLarge(_) | IngestError::TooManyRecords { .. } | IngestError::Busy(_) => {
                tonic::Code::ResourceExhausted
            }
            IngestError::Timeout(_) => tonic::Code::DeadlineExceeded,
            IngestError::Storage => tonic::Code::Unavailable,
        }
    }

    /// Whether the client should come back later (`Retry-After` on HTTP).
    pub fn retry_after(&self) -> Option<&'static str> {
        matches!(self.status(), StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE)
            .then_some(RETRY_AFTER_SECONDS)
    }

    /// As a gRPC status.
    pub fn to_grpc(&self) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), self.to_string())
    }

    /// As an HTTP response, its body in `encoding` (JSON when the request's is not known yet).
    pub fn to_http(&self, encoding: Option<Encoding>) -> Response {
        let code = self.grpc_code() as i32;
        let message = self.to_string();
        let status = self.status();
        let mut response = match encoding {
            Some(Encoding::Protobuf) => (
                status,
                [(header::CONTENT_TYPE, Encoding::Protobuf.content_type())],
                RpcStatus { code, message }.encode_to_vec(),
            )
                .into_response(),
            _ => (status, axum::Json(serde_json::json!({ "code": code, "message": message }))).into_response(),
        };
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"antenna\""));
        }
        if let Some(seconds) = self.retry_after() {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response
    }
}

/// `google.rpc.Status`, the body OTLP clients expect on failure.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_one_row() {
        let rows = [
            (IngestError::Auth(AuthError::WrongKeys), 401, tonic::Code::Unauthenticated, None),
            (IngestError::Auth(AuthError::TooManyFailures(3)), 429, tonic::Code::ResourceExhausted, Some("5")),
            (IngestError::Auth(AuthError::Unavailable), 503, tonic::Code::Unavailable, Some("5")),
            (IngestError::TooLarge("big".into()), 413, tonic::Code::ResourceExhausted, None),
            (IngestError::BadRequest("bad".into()), 400, tonic::Code::InvalidArgument, None),
            (IngestError::TooManyRecords { records: 11, max: 10 }, 413, tonic::Code::ResourceExhausted, None),
            (IngestError::Timeout("slow".into()), 408, tonic::Code::DeadlineExceeded, None),
            (IngestError::Busy(Busy::QueueFull), 429, tonic::Code::ResourceExhausted, Some("5")),
            (IngestError::Busy(Busy::Timeout), 503, tonic::Code::ResourceExhausted, Some("5")),
            (IngestError::Storage, 503, tonic::Code::Unavailable, Some("5")),
        ];
        for (error, http, grpc, retry) in rows {
            assert_eq!(error.status().as_u16(), http, "{error}");
            assert_eq!(error.grpc_code(), grpc, "{error}");
            assert_eq!(error.retry_after(), retry, "{error}");
        }
    }
}
