//! The operators' API (`Authorization: Bearer $ANTENNA_ADMIN_TOKEN`): plugin status and
//! replay of stored batches through the plugins loaded now. Wrong tokens are limited per client
//! address by the same [`Authenticator`](crate::auth::Authenticator) as project keys.

mod budgets;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Path;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::params::time_param;
use crate::api::{Api, ApiError};
use crate::auth::AuthError;
use crate::pipeline::{Pipeline, ReplayReport};
use crate::plugins::Registry;
use crate::storage::{BatchSelection, Erased, Expired, ReplayFilter, Retention, Storage};

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
    Api: FromRef<S>,
{
    Router::new()
        .route("/api/admin/plugins", get(list_plugins))
        .route("/api/admin/replay", post(replay))
        .route("/api/admin/projects/{project}/retention", put(set_retention))
        .route("/api/admin/projects/{project}/users/{user}", delete(erase_user))
        .route("/api/admin/retention/run", post(run_retention))
        .route("/api/admin/budgets", get(budgets::list).post(budgets::create))
        .route("/api/admin/budgets/{id}", delete(budgets::delete))
}

/// A caller that presented the admin token. Refused: 403 when the admin API is off, 401 for a
/// missing or wrong token, 429 (with `Retry-After`) after too many wrong ones from its address.
pub struct AdminCaller;

impl<S> FromRequestParts<S> for AdminCaller
where
    S: Send + Sync,
    Admin: FromRef<S>,
    Api: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Response> {
        let Some(expected) = Admin::from_ref(state).token else {
            let message = "the admin API is off: start the host with ANTENNA_ADMIN_TOKEN";
            return Err(ApiError::new(StatusCode::FORBIDDEN, message).into_response());
        };
        let authenticator = Api::from_ref(state).authenticator;
        let client = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|peer| authenticator.client_address(peer.0.ip(), &parts.headers));
        let authorization = parts.headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
        match authenticator.authorize_admin(&expected, authorization, client) {
            Ok(()) => Ok(AdminCaller),
            Err(AuthError::TooManyFailures(seconds)) => {
                let mut response = ApiError::from(AuthError::TooManyFailures(seconds)).into_response();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                Err(response)
            }
            Err(_) => {
                Err(ApiError::unauthorized("send Authorization: Bearer <ANTENNA_ADMIN_TOKEN>", "Bearer")
                    .into_response())
            }
        }
    }
}

/// `GET /api/admin/plugins`: every plugin, active or shadowed, with its counters.
async fn list_plugins(_: AdminCaller, State(admin): State<Admin>) -> Json<Value> {
    let refused: Vec<_> =
        admin.registry.refused().into_iter().map(|(file, reason)| json!({ "file": file, "reason": reason })).collect();
    Json(json!({ "data": admin.registry.status(), "refused": refused }))
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
    _: AdminCaller,
    State(admin): State<Admin>,
    body: axum::body::Bytes,
) -> Result<Json<ReplayReport>, ApiError> {
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
    let report = admin.pipeline.replay_selection(&BatchSelection::Replay(filter.clone())).await.map_err(|e| {
        tracing::error!(error = %e, "replay could not read batches");
        ApiError::from(e)
    })?;
    tracing::info!(?filter, ?report, "replay finished");
    Ok(Json(report))
}

/// Longest retention accepted, in days (a century).
const MAX_RETENTION_DAYS: i64 = 36_500;

/// `PUT /api/admin/projects/{project}/retention` with `{"batch_days": N|null, "trace_days": N|null}`:
/// raw batches and traces older than that are deleted in the background (`null`: kept).
async fn set_retention(
    _: AdminCaller,
    State(admin): State<Admin>,
    Path(project): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        batch_days: Option<i64>,
        trace_days: Option<i64>,
    }
    let body: Body = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("expected {{\"batch_days\": days or null, \"trace_days\": days or null}}: {e}"))
    })?;
    for days in [body.batch_days, body.trace_days].into_iter().flatten() {
        if !(1..=MAX_RETENTION_DAYS).contains(&days) {
            return Err(ApiError::bad_request(format!("a retention is from 1 to {MAX_RETENTION_DAYS} days, or null")));
        }
    }
    let retention = Retention { batch_days: body.batch_days, trace_days: body.trace_days };
    if !admin.storage.set_retention(&project, retention).await? {
        return Err(ApiError::not_found(format!("no project {project:?}")));
    }
    tracing::info!(project, ?retention, "retention set");
    Ok(Json(json!({ "project_id": project, "retention": retention })))
}

/// `DELETE /api/admin/projects/{project}/users/{user}`: the right to erasure. Deletes the user's
/// traces, usage metrics and every raw batch that carried their data.
async fn erase_user(
    _: AdminCaller,
    State(admin): State<Admin>,
    Path((project, user)): Path<(String, String)>,
) -> Result<Json<Erased>, ApiError> {
    let erased = admin.storage.erase_user(&project, &user).await?;
    tracing::info!(project, ?erased, "erased a user's data");
    Ok(Json(erased))
}

/// `POST /api/admin/retention/run`: one retention pass now (the host also runs one hourly).
async fn run_retention(_: AdminCaller, State(admin): State<Admin>) -> Result<Json<Expired>, ApiError> {
    Ok(Json(enforce_retention(&*admin.storage).await?))
}

/// One retention pass over every project.
pub async fn enforce_retention(storage: &dyn Storage) -> crate::storage::Result<Expired> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
    let expired = storage.enforce_retention(now).await?;
    if expired != Expired::default() {
        tracing::info!(?expired, "retention: expired data deleted");
    }
    Ok(expired)
}
