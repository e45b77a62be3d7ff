//! The operators' API (`Authorization: Bearer $ANTENNA_ADMIN_TOKEN`): plugin status and
//! replay of stored batches through the plugins loaded now.

use std::sync::Arc;

use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::api::ApiError;
use crate::api::params::time_param;
use crate::pipeline::{Pipeline, ReplayReport};
use crate::plugins::Registry;
use crate::storage::{BatchSelection, ReplayFilter, Storage};

/// What the admin API needs.
#[derive(Clone)]
pub struct Admin {
    pub token: Option<Arc<str>>,
    pub registry: Arc<Registry>,
    pub storage: Arc<dyn Storage>,
    pub pipeline: Pipeline,
}

/// The routes of the admin API.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Admin: FromRef<S>,
{
    Router::new().route("/api/admin/plugins", get(list_plugins)).route("/api/admin/replay", post(replay))
}

impl Admin {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = self.token.as_deref() else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "the admin API is off: start the host with ANTENNA_ADMIN_TOKEN",
            ));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(ApiError::unauthorized("send Authorization: Bearer <ANTENNA_ADMIN_TOKEN>", "Bearer"))
        }
    }
}

/// `GET /api/admin/plugins`: every plugin, active or shadowed, with its counters.
async fn list_plugins(State(admin): State<Admin>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    admin.authorize(&headers)?;
    let refused: Vec<_> =
        admin.registry.refused().into_iter().map(|(file, reason)| json!({ "file": file, "reason": reason })).collect();
    Ok(Json(json!({ "data": admin.registry.status(), "refused": refused })))
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

/// `POST /api/admin/replay`: re-normalize stored batches. Idempotent: each batch's earlier
/// output is replaced, never added to.
async fn replay(
    State(admin): State<Admin>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<ReplayReport>, ApiError> {
    admin.authorize(&headers)?;
    let request: ReplayRequest = if body.is_empty() {
        ReplayRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid replay request: {e}")))?
    };
    let filter = ReplayFilter {
        from_ns: time_param("from", &request.from)?,
        to_ns: time_param("to", &request.to)?,
        project_id: request.project_id,
        agent: request.agent,
        failed_only: request.failed_only,
    };
    let batches = admin.storage.batches(&BatchSelection::Replay(filter.clone())).await.map_err(|e| {
        tracing::error!(error = %e, "replay could not read batches");
        ApiError::from(e)
    })?;
    let report = admin.pipeline.replay(&batches).await;
    tracing::info!(?filter, ?report, "replay finished");
    Ok(Json(report))
}
