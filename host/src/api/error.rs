//! The one error of the query and admin APIs: a status and `{"error": "..."}`.

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::AuthError;
use crate::storage::StorageError;

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// The `WWW-Authenticate` challenge of a 401.
    challenge: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), challenge: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// A 401 with its challenge (`Basic realm="antenna"`, `Bearer`).
    pub fn unauthorized(message: impl Into<String>, challenge: &'static str) -> Self {
        ApiError { challenge: Some(challenge), ..ApiError::new(StatusCode::UNAUTHORIZED, message) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({ "error": self.message }))).into_response();
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if matches!(self.status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

/// axum's `Query`, refused with the API's JSON error (axum's own answer is text).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// axum's `Path`, refused with the API's JSON error (e.g. a segment that is not UTF-8), its
/// NUL characters replaced by U+FFFD as in stored values (PostgreSQL text cannot hold NUL).
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + PathText + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value.without_nul())),
            Err(rejection) => Err(ApiError::new(rejection.status(), rejection.body_text())),
        }
    }
}

/// Path parameters as text without NUL.
pub trait PathText {
    fn without_nul(self) -> Self;
}

impl PathText for String {
    fn without_nul(self) -> Self {
        if self.contains('\0') { self.replace('\0', "\u{FFFD}") } else { self }
    }
}

impl PathText for (String, String) {
    fn without_nul(self) -> Self {
        (self.0.without_nul(), self.1.without_nul())
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        tracing::error!(error = %e, "query failed");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable, retry later")
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::TooManyFailures(_) => ApiError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
            AuthError::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            // A browser that sent a stale session cookie: no Basic challenge (it would pop up
            // the browser's own password dialog over the UI).
            AuthError::NoSession => ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()),
            _ => ApiError::unauthorized(e.to_string(), "Basic realm=\"antenna\""),
        }
    }
}
