//! The operators' API (`Authorization: Bearer $ANTENNA_ADMIN_TOKEN`): plugin status and
//! replay of stored batches through the plugins loaded now. Wrong tokens are limited per client
//! address by the same [`Authenticator`](crate::auth::Authenticator) as project keys.

mod budgets;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::openapi::{self, AdminRefusals, ErrorBody};
use crate::api::params::{json_object, time_param};
use crate::api::{Api, ApiError, ApiPath};
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
    /// The hosts budget webhooks may post to (empty: any).
    pub webhook_hosts: Arc<[String]>,
}

/// The routes of the admin API, each with its OpenAPI description (path and method come from
/// the handler's `#[utoipa::path]`).
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Admin: FromRef<S>,
    Api: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_plugins))
        .routes(routes!(replay))
        .routes(routes!(set_retention))
        .routes(routes!(erase_user))
        .routes(routes!(run_retention))
        .routes(routes!(budgets::list, budgets::create))
        .routes(routes!(budgets::delete))
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
            Ok(()) => {
                crate::ingest::conn::vouch(&parts.extensions);
                Ok(AdminCaller)
            }
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
#[utoipa::path(
    get,
    path = "/api/admin/plugins",
    tag = "admin",
    responses((status = 200, description = "Every plugin, and the files refused", body = openapi::PluginList), AdminRefusals),
    security(("admin" = []))
)]
async fn list_plugins(_: AdminCaller, State(admin): State<Admin>) -> Json<Value> {
    let refused: Vec<_> =
        admin.registry.refused().into_iter().map(|(file, reason)| json!({ "file": file, "reason": reason })).collect();
    Json(json!({ "data": admin.registry.status(), "refused": refused }))
}

/// The body of `POST /api/admin/replay`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    pub project_id: Option<String>,
    pub agent: Option<String>,
    /// RFC 3339; batches received at or after.
    #[schema(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; batches received before.
    #[schema(format = DateTime)]
    pub to: Option<String>,
    #[serde(default)]
    pub failed_only: bool,
}

/// `POST /api/admin/replay`: re-normalize stored batches. Idempotent: each batch's earlier
/// output is replaced, never added to.
#[utoipa::path(
    post,
    path = "/api/admin/replay",
    tag = "admin",
    request_body(content = Option<ReplayRequest>, description = "Which batches (none: all)", content_type = "application/json"),
    responses(
        (status = 200, description = "What the replay did", body = openapi::ReplayReport),
        (status = 400, description = "Not a replay request, or a malformed time", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody, headers(("Retry-After" = u64))),
        AdminRefusals,
    ),
    security(("admin" = []))
)]
async fn replay(
    _: AdminCaller,
    State(admin): State<Admin>,
    body: axum::body::Bytes,
) -> Result<Json<ReplayReport>, ApiError> {
    // No body, or JSON null: every batch.
    let request: ReplayRequest = if body.is_empty() || serde_json::from_slice::<()>(&body).is_ok() {
        ReplayRequest::default()
    } else {
        json_object(&body).map_err(|e| ApiError::bad_request(format!("invalid replay request: {e}")))?
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
#[utoipa::path(
    put,
    path = "/api/admin/projects/{project}/retention",
    tag = "admin",
    params(("project" = String, Path, description = "The project's id")),
    request_body(content = RetentionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The retention now in force", body = openapi::RetentionSet),
        (status = 400, description = "Not a retention, or days out of range", body = ErrorBody),
        (status = 404, description = "No such project", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody, headers(("Retry-After" = u64))),
        AdminRefusals,
    ),
    security(("admin" = []))
)]
async fn set_retention(
    _: AdminCaller,
    State(admin): State<Admin>,
    ApiPath(project): ApiPath<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let body: RetentionRequest = json_object(&body).map_err(|e| {
        ApiError::bad_request(format!("expected {{\"batch_days\": days or null, \"trace_days\": days or null}}: {e}"))
    })?;
    let retention =
        Retention { batch_days: retention_days(body.batch_days)?, trace_days: retention_days(body.trace_days)? };
    if !admin.storage.set_retention(&project, retention).await? {
        return Err(ApiError::not_found(format!("no project {project:?}")));
    }
    tracing::info!(project, ?retention, "retention set");
    Ok(Json(json!({ "project_id": project, "retention": retention })))
}

/// The body of `PUT /api/admin/projects/{project}/retention`: whole days, or null to keep.
/// Read as numbers, so that `30.0` is 30 days as JSON Schema's `integer` says.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RetentionRequest {
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 36_500)]
    batch_days: Option<f64>,
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 36_500)]
    trace_days: Option<f64>,
}

/// Whole days from 1 to [`MAX_RETENTION_DAYS`], or a 400.
fn retention_days(days: Option<f64>) -> Result<Option<i64>, ApiError> {
    days.map(|days| {
        if days.fract() == 0.0 && (1.0..=MAX_RETENTION_DAYS as f64).contains(&days) {
            Ok(days as i64)
        } else {
            Err(ApiError::bad_request(format!("a retention is from 1 to {MAX_RETENTION_DAYS} whole days, or null")))
        }
    })
    .transpose()
}

/// `DELETE /api/admin/projects/{project}/users/{user}`: the right to erasure. Deletes the user's
/// traces, usage metrics and every raw batch that carried their data.
#[utoipa::path(
    delete,
    path = "/api/admin/projects/{project}/users/{user}",
    tag = "admin",
    params(
        ("project" = String, Path, description = "The project's id"),
        ("user" = String, Path, description = "The user's id"),
    ),
    responses(
        (status = 200, description = "What was deleted", body = openapi::Erased),
        (status = 400, description = "An id that is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody, headers(("Retry-After" = u64))),
        AdminRefusals,
    ),
    security(("admin" = []))
)]
async fn erase_user(
    _: AdminCaller,
    State(admin): State<Admin>,
    ApiPath((project, user)): ApiPath<(String, String)>,
) -> Result<Json<Erased>, ApiError> {
    let erased = admin.storage.erase_user(&project, &user).await?;
    tracing::info!(project, ?erased, "erased a user's data");
    Ok(Json(erased))
}

/// `POST /api/admin/retention/run`: one retention pass now (the host also runs one hourly).
#[utoipa::path(
    post,
    path = "/api/admin/retention/run",
    tag = "admin",
    responses(
        (status = 200, description = "What expired and was deleted", body = openapi::Expired),
        (status = 503, description = "The database does not answer", body = ErrorBody, headers(("Retry-After" = u64))),
        AdminRefusals,
    ),
    security(("admin" = []))
)]
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
