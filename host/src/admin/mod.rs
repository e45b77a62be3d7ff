//! The operators' API (`Authorization: Bearer $ANTENNA_ADMIN_TOKEN`): plugin status and
//! replay of stored batches through the plugins loaded now.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use subtle::ConstantTimeEq;

use crate::server::AppState;
use crate::store::{Batch, ReplayFilter, StoreError};

fn deny(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Why an admin request was turned away.
struct Denied(StatusCode, &'static str);

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let mut response = deny(self.0, self.1);
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), Denied> {
    let Some(expected) = state.config.admin_token.as_deref() else {
        return Err(Denied(StatusCode::FORBIDDEN, "the admin API is off: start the host with ANTENNA_ADMIN_TOKEN"));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(Denied(StatusCode::UNAUTHORIZED, "send Authorization: Bearer <ANTENNA_ADMIN_TOKEN>"))
    }
}

/// `GET /api/admin/plugins`: every plugin, active or shadowed, with its counters.
pub async fn list_plugins(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied.into_response();
    }
    let refused: Vec<_> =
        state.registry.refused().into_iter().map(|(file, reason)| json!({ "file": file, "reason": reason })).collect();
    Json(json!({ "data": state.registry.status(), "refused": refused })).into_response()
}

/// The body of `POST /api/admin/replay`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub project_id: Option<String>,
    pub agent: Option<String>,
    /// RFC 3339; batches received at or after.
    pub from: Option<String>,
    /// RFC 3339; batches received before.
    pub to: Option<String>,
    #[serde(default)]
    pub failed_only: bool,
}

/// What a replay did.
#[derive(Debug, Default, serde::Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplayReport {
    pub batches: usize,
    pub done: usize,
    pub failed: usize,
    pub unclaimed: usize,
}

/// `POST /api/admin/replay`: re-normalize stored batches. Idempotent: each batch's earlier
/// output is replaced, never added to.
pub async fn replay(State(state): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Err(denied) = authorize(&state, &headers) {
        return denied.into_response();
    }
    let request: ReplayRequest = if body.is_empty() {
        ReplayRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => return deny(StatusCode::BAD_REQUEST, &format!("invalid replay request: {e}")),
        }
    };
    let time = crate::api::time_param;
    let filter = match (time("from", &request.from), time("to", &request.to)) {
        (Ok(from_ns), Ok(to_ns)) => ReplayFilter {
            project_id: request.project_id,
            agent: request.agent,
            from_ns,
            to_ns,
            failed_only: request.failed_only,
        },
        (Err(e), _) | (_, Err(e)) => return deny(StatusCode::BAD_REQUEST, &e),
    };
    match state.store.batches_for_replay(&filter).await {
        Ok(batches) => {
            let report = run_all(&state, &batches).await;
            tracing::info!(?filter, ?report, "replay finished");
            Json(report).into_response()
        }
        Err(e) => storage_error(e),
    }
}

fn storage_error(e: StoreError) -> Response {
    tracing::error!(error = %e, "replay could not read batches");
    deny(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable, retry later")
}

async fn run_all(state: &AppState, batches: &[Batch]) -> ReplayReport {
    let mut report = ReplayReport { batches: batches.len(), ..Default::default() };
    let c = &state.config;
    for batch in batches {
        let outcome =
            crate::pipeline::process(&state.store, &state.registry, &c.limits, c.fallback_user.as_deref(), batch).await;
        match outcome.status {
            "done" => report.done += 1,
            "unclaimed" => report.unclaimed += 1,
            _ => report.failed += 1,
        }
    }
    report
}

/// Give batches that no plugin claimed another chance (called when the plugins change).
pub async fn reprocess_unclaimed(state: &AppState) -> Result<ReplayReport, StoreError> {
    let batches = state.store.unclaimed_batches().await?;
    if batches.is_empty() {
        return Ok(ReplayReport::default());
    }
    let report = run_all(state, &batches).await;
    tracing::info!(?report, "re-normalized batches that no plugin had claimed");
    Ok(report)
}
