//! The query API (`/api/public/...`): traces, sessions, users, problem batches and unclaimed
//! resources, each scoped to the calling project's keys.

pub mod error;
pub mod openapi;
pub mod params;

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, FromRequestParts, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticator;
use crate::storage::{
    BatchSelection, DETAIL_OBSERVATIONS, ObservationCursor, OutcomeGroup, Storage, TraceFilter, UsageGroup,
};
use crate::trace::view::rfc3339;
pub use error::{ApiError, ApiPath, ApiQuery};
use openapi::{ErrorBody, Page, PublicRefusals};
use params::{
    FilterParams, KeysetPageParams, ListParams, MAX_LIMIT, PageParams, SearchParams, keyset_page_of, page_of,
};

/// What the query API needs.
#[derive(Clone)]
pub struct Api {
    pub storage: Arc<dyn Storage>,
    pub authenticator: Arc<Authenticator>,
}

/// The routes of the query API, each with its OpenAPI description (path and method come from
/// the handler's `#[utoipa::path]`).
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Api: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_traces))
        .routes(routes!(get_trace))
        .routes(routes!(trace_observations))
        .routes(routes!(list_sessions))
        .routes(routes!(get_session))
        .routes(routes!(list_users))
        .routes(routes!(usage))
        .routes(routes!(outcomes))
        .routes(routes!(list_problem_batches))
        .routes(routes!(list_unclaimed))
}

/// What `group_by` of `GET /api/public/usage` takes.
pub const USAGE_GROUPS: &str = "user, agent, model, repository, team, device, day";

/// What `group_by` of `GET /api/public/outcomes` takes.
pub const OUTCOME_GROUPS: &str = "user, agent, repository, team, day";

/// The calling project, from the request's Basic keys (failures rate-limited per address).
pub struct Project(pub String);

impl<S> FromRequestParts<S> for Project
where
    S: Send + Sync,
    Api: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        let api = Api::from_ref(state);
        let client = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| api.authenticator.client_address(c.0.ip(), &parts.headers));
        let project = api.authenticator.authenticate_request(&parts.headers, client).await?;
        crate::ingest::conn::vouch(&parts.extensions);
        Ok(Project(project))
    }
}

/// `GET /api/public/traces`: the project's traces, newest first.
#[utoipa::path(
    get,
    path = "/api/public/traces",
    tag = "traces",
    params(FilterParams, SearchParams, PageParams),
    responses(
        (status = 200, description = "A page of traces, long texts clipped", body = Page<openapi::TraceListItem>),
        (status = 400, description = "A malformed limit, cursor or time", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn list_traces(
    State(api): State<Api>,
    Project(project): Project,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let filter = params.filter()?;
    let (limit, offset) = (filter.limit, filter.offset);
    let rows = api.storage.list_traces(&project, &filter).await?;
    Ok(page_of(rows.into_iter().map(|r| list_item(r.summary)).collect(), limit, offset).into_response())
}

/// Most bytes of one text (prompt, response, a tool call's arguments or result, an error) a
/// trace shows in a list; the full text stays in `GET /api/public/traces/{id}`.
pub const LIST_TEXT_BYTES: usize = 4 * 1024;

/// What ends a text clipped in a list.
pub const CLIPPED_MARKER: &str = "…[truncated]";

/// A trace summary as a list shows it: long texts clipped to [`LIST_TEXT_BYTES`] with
/// [`CLIPPED_MARKER`], and `truncated` telling whether anything was.
fn list_item(mut summary: Value) -> Value {
    let mut truncated = false;
    if let Some(map) = summary.as_object_mut() {
        for field in ["prompt", "response"] {
            truncated |= map.get_mut(field).is_some_and(clip);
        }
        for call in map.get_mut("tool_calls").and_then(Value::as_array_mut).into_iter().flatten() {
            for field in ["args", "result"] {
                truncated |= call.get_mut(field).is_some_and(clip);
            }
        }
        for error in map.get_mut("errors").and_then(Value::as_array_mut).into_iter().flatten() {
            truncated |= clip(error);
        }
        map.insert("truncated".into(), Value::Bool(truncated));
    }
    summary
}

/// Clip a string longer than [`LIST_TEXT_BYTES`] at a character boundary; whether it was.
fn clip(value: &mut Value) -> bool {
    let Value::String(text) = value else { return false };
    if text.len() <= LIST_TEXT_BYTES {
        return false;
    }
    let mut end = LIST_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(CLIPPED_MARKER);
    true
}

/// `GET /api/public/traces/{id}`: one trace with its observations, texts whole.
#[utoipa::path(
    get,
    path = "/api/public/traces/{id}",
    tag = "traces",
    params(("id" = String, Path, description = "The trace's id")),
    responses(
        (status = 200, description = "The trace", body = openapi::TraceDetail),
        (status = 400, description = "An id that is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 404, description = "No such trace in this project", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn get_trace(
    State(api): State<Api>,
    Project(project): Project,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let Some(row) = api.storage.get_trace(&project, &id).await? else {
        return Err(ApiError::not_found(format!("no trace {id:?}")));
    };
    let mut trace = row.summary;
    let trace_id = trace["id"].as_str().unwrap_or(&id).to_owned();
    let (observations, next) =
        observation_page(&*api.storage, &project, &trace_id, &ObservationCursor::start(), DETAIL_OBSERVATIONS).await?;
    if let Some(map) = trace.as_object_mut() {
        map.insert("observations".into(), Value::Array(observations));
        map.insert("observations_next_cursor".into(), next.into());
    }
    Ok(Json(trace).into_response())
}

/// Up to `limit` observations after `after`, and the cursor of the next page (`None`: none).
async fn observation_page(
    storage: &dyn Storage,
    project: &str,
    trace_id: &str,
    after: &ObservationCursor,
    limit: i64,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let mut entries = storage.observations(project, trace_id, after, limit + 1).await?;
    let more = entries.len() as i64 > limit;
    entries.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more.then(|| entries.last().map(|e| e.at.encode())).flatten();
    Ok((entries.into_iter().map(|e| e.body).collect(), next))
}

/// The query of `GET /api/public/traces/{id}/observations`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ObservationParams {
    /// Observations per page (1 to 500, default 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// The `observations_next_cursor` of the trace, or the `next_cursor` of the page before.
    #[param(pattern = "^-?[0-9]{1,19}\\.[a-z_]{0,16}\\.([0-9a-f]{2}){0,2048}$")]
    cursor: Option<String>,
}

/// `GET /api/public/traces/{id}/observations`: a trace's timeline, page by page, in order (a
/// long prompt's detail shows the first 500).
#[utoipa::path(
    get,
    path = "/api/public/traces/{id}/observations",
    tag = "traces",
    params(("id" = String, Path, description = "The trace's id"), ObservationParams),
    responses(
        (status = 200, description = "A page of the trace's observations", body = Page<openapi::Observation>),
        (status = 400, description = "A malformed limit or cursor, or an id that is not UTF-8", body = ErrorBody),
        (status = 404, description = "No such trace in this project", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn trace_observations(
    State(api): State<Api>,
    Project(project): Project,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<ObservationParams>,
) -> Result<Response, ApiError> {
    let limit = params.limit.unwrap_or(DETAIL_OBSERVATIONS);
    if !(1..=DETAIL_OBSERVATIONS).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be a number from 1 to {DETAIL_OBSERVATIONS}")));
    }
    let after = match &params.cursor {
        None => ObservationCursor::start(),
        Some(cursor) => ObservationCursor::decode(cursor)
            .ok_or_else(|| ApiError::bad_request("invalid cursor: use a next_cursor the API gave"))?,
    };
    let Some(row) = api.storage.get_trace(&project, &id).await? else {
        return Err(ApiError::not_found(format!("no trace {id:?}")));
    };
    let trace_id = row.summary["id"].as_str().unwrap_or(&id).to_owned();
    let (data, next) = observation_page(&*api.storage, &project, &trace_id, &after, limit).await?;
    Ok(Json(serde_json::json!({ "data": data, "next_cursor": next })).into_response())
}

/// `GET /api/public/sessions`: the project's sessions, newest first.
#[utoipa::path(
    get,
    path = "/api/public/sessions",
    tag = "sessions",
    params(FilterParams, PageParams),
    responses(
        (status = 200, description = "A page of sessions", body = Page<openapi::Session>),
        (status = 400, description = "A malformed limit, cursor or time", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn list_sessions(
    State(api): State<Api>,
    Project(project): Project,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let filter = params.filter()?;
    let rows = api.storage.list_sessions(&project, &filter).await?;
    let data = rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
    Ok(page_of(data, filter.limit, filter.offset).into_response())
}

/// `GET /api/public/sessions/{id}`: one session with its traces in order.
#[utoipa::path(
    get,
    path = "/api/public/sessions/{id}",
    tag = "sessions",
    params(("id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session", body = openapi::SessionDetail),
        (status = 400, description = "An id that is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 404, description = "No such session in this project", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn get_session(
    State(api): State<Api>,
    Project(project): Project,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let one = TraceFilter { session_id: Some(id.clone()), limit: 1, ..Default::default() };
    let mut sessions = api.storage.list_sessions(&project, &one).await?;
    let Some(session) = sessions.pop() else {
        return Err(ApiError::not_found(format!("no session {id:?}")));
    };
    let filter = TraceFilter { session_id: Some(id.clone()), limit: MAX_LIMIT, ..Default::default() };
    let traces: Vec<Value> =
        api.storage.list_traces(&project, &filter).await?.into_iter().rev().map(|r| list_item(r.summary)).collect();
    let mut value = serde_json::to_value(session).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("traces".into(), Value::Array(traces));
    }
    Ok(Json(value).into_response())
}

/// `GET /api/public/usage?group_by=...`: prompts, sessions, tokens, cost and tool calls per
/// group, over the traces the filters select.
#[utoipa::path(
    get,
    path = "/api/public/usage",
    tag = "analytics",
    params(params::UsageGroupParam, FilterParams, PageParams),
    responses(
        (status = 200, description = "A page of groups", body = Page<openapi::UsageGroup>),
        (status = 400, description = "No or an unknown group_by, or a malformed limit, cursor or time", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn usage(
    State(api): State<Api>,
    Project(project): Project,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let group: UsageGroup = params.group_by(USAGE_GROUPS)?;
    let filter = params.filter()?;
    let rows = api.storage.usage(&project, group, &filter).await?;
    let data = rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
    Ok(page_of(data, filter.limit, filter.offset).into_response())
}

/// `GET /api/public/outcomes?group_by=...`: lines, commits, pull requests, edit decisions and
/// active time per group, as the agents report them.
#[utoipa::path(
    get,
    path = "/api/public/outcomes",
    tag = "analytics",
    params(params::OutcomeGroupParam, FilterParams, PageParams),
    responses(
        (status = 200, description = "A page of groups", body = Page<openapi::OutcomeGroup>),
        (status = 400, description = "No or an unknown group_by, or a malformed limit, cursor or time", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn outcomes(
    State(api): State<Api>,
    Project(project): Project,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let group: OutcomeGroup = params.group_by(OUTCOME_GROUPS)?;
    let filter = params.filter()?;
    let rows = api.storage.outcomes(&project, group, &filter).await?;
    let data = rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
    Ok(page_of(data, filter.limit, filter.offset).into_response())
}

/// `GET /api/public/users`: per user, traces, sessions, tokens, cost, last seen and agents.
#[utoipa::path(
    get,
    path = "/api/public/users",
    tag = "analytics",
    params(PageParams),
    responses(
        (status = 200, description = "A page of users", body = Page<openapi::User>),
        (status = 400, description = "A malformed limit or cursor", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn list_users(
    State(api): State<Api>,
    Project(project): Project,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let (limit, offset) = params.page()?;
    let rows = api.storage.list_users(&project, limit, offset).await?;
    let data = rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
    Ok(page_of(data, limit, offset).into_response())
}

/// `GET /api/public/batches`: stored batches that failed to normalize or that no plugin
/// claimed, with their errors — nothing is dropped silently. Paged by id, oldest first
/// (`limit`, `cursor`); bodies are never read for it.
#[utoipa::path(
    get,
    path = "/api/public/batches",
    tag = "batches",
    params(KeysetPageParams),
    responses(
        (status = 200, description = "A page of batches; next_cursor is null on the last one", body = Page<ProblemBatch>),
        (status = 400, description = "A malformed limit or cursor", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn list_problem_batches(
    State(api): State<Api>,
    Project(project_id): Project,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let (limit, after) = params.keyset_page()?;
    // One more than the page: whether there is a next one.
    let rows = api.storage.batch_page(&BatchSelection::Problems { project_id }, after, limit + 1, false).await?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|b| {
            let batch = ProblemBatch {
                id: b.id,
                signal: b.signal,
                encoding: b.encoding,
                status: b.status,
                agents: b.agents,
                error: b.error,
                received_at: rfc3339(Some(b.received_at)),
            };
            serde_json::to_value(batch).unwrap_or_default()
        })
        .collect();
    Ok(keyset_page_of(data, limit, |b| b["id"].as_i64().unwrap_or(0)).into_response())
}

/// A stored batch that failed to normalize or that no plugin claimed (no body).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemBatch {
    pub id: i64,
    /// `traces`, `logs` or `metrics`.
    pub signal: String,
    /// `protobuf` or `json`.
    pub encoding: String,
    /// `failed` or `unclaimed`.
    pub status: String,
    /// The agents whose parsers ran, comma-separated.
    pub agents: Option<String>,
    pub error: Option<String>,
    #[schema(format = DateTime)]
    pub received_at: Option<String>,
}

/// `GET /api/public/unclaimed`: resources no plugin claimed, per service.name and scope.
#[utoipa::path(
    get,
    path = "/api/public/unclaimed",
    tag = "batches",
    params(PageParams),
    responses(
        (status = 200, description = "A page of unclaimed resources, most recently seen first", body = Page<openapi::UnclaimedResource>),
        (status = 400, description = "A malformed limit or cursor", body = ErrorBody),
        PublicRefusals,
    ),
    security(("basic" = []), ("session" = []))
)]
async fn list_unclaimed(
    State(api): State<Api>,
    Project(project): Project,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Response, ApiError> {
    let (limit, offset) = params.page()?;
    let rows = api.storage.unclaimed(&project, limit, offset).await?;
    let data = rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
    Ok(page_of(data, limit, offset).into_response())
}
