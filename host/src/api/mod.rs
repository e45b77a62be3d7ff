//! The query API (`/api/public/...`): traces, sessions, users, problem batches and unclaimed
//! resources, each scoped to the calling project's keys.

pub mod error;
pub mod params;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::auth::Authenticator;
use crate::storage::{BatchSelection, Storage, TraceFilter};
use crate::trace::view::rfc3339;
pub use error::ApiError;
use params::{ListParams, MAX_LIMIT, page_of, time_param};

/// What the query API needs.
#[derive(Clone)]
pub struct Api {
    pub storage: Arc<dyn Storage>,
    pub authenticator: Arc<Authenticator>,
}

/// The routes of the query API.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Api: FromRef<S>,
{
    Router::new()
        .route("/api/public/traces", get(list_traces))
        .route("/api/public/traces/{id}", get(get_trace))
        .route("/api/public/sessions", get(list_sessions))
        .route("/api/public/sessions/{id}", get(get_session))
        .route("/api/public/users", get(list_users))
        .route("/api/public/batches", get(list_problem_batches))
        .route("/api/public/unclaimed", get(list_unclaimed))
}

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
        let authorization = parts.headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
        Ok(Project(api.authenticator.authenticate(authorization, client).await?))
    }
}

async fn list_traces(
    State(api): State<Api>,
    Project(project): Project,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let (limit, offset) = params.page()?;
    let filter = TraceFilter {
        session_id: params.session_id.clone(),
        user_id: params.user_id.clone(),
        device_id: params.device_id.clone(),
        agent: params.agent.clone(),
        from_ns: time_param("from", &params.from)?,
        to_ns: time_param("to", &params.to)?,
        limit,
        offset,
    };
    let rows = api.storage.list_traces(&project, &filter).await?;
    Ok(page_of(rows.into_iter().map(|r| r.summary).collect(), limit, offset).into_response())
}

async fn get_trace(
    State(api): State<Api>,
    Project(project): Project,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(row) = api.storage.get_trace(&project, &id).await? else {
        return Err(ApiError::not_found(format!("no trace {id:?}")));
    };
    let mut trace = row.summary;
    if let Some(map) = trace.as_object_mut() {
        map.insert("observations".into(), row.observations.unwrap_or(Value::Array(Vec::new())));
    }
    Ok(Json(trace).into_response())
}

async fn list_sessions(
    State(api): State<Api>,
    Project(project): Project,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let (limit, offset) = params.page()?;
    let rows = api.storage.list_sessions(&project, None, limit, offset).await?;
    let data = rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
    Ok(page_of(data, limit, offset).into_response())
}

async fn get_session(
    State(api): State<Api>,
    Project(project): Project,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut sessions = api.storage.list_sessions(&project, Some(&id), 1, 0).await?;
    let Some(session) = sessions.pop() else {
        return Err(ApiError::not_found(format!("no session {id:?}")));
    };
    let filter = TraceFilter { session_id: Some(id.clone()), limit: MAX_LIMIT, ..Default::default() };
    let traces: Vec<Value> =
        api.storage.list_traces(&project, &filter).await?.into_iter().rev().map(|r| r.summary).collect();
    let mut value = serde_json::to_value(session).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("traces".into(), Value::Array(traces));
    }
    Ok(Json(value).into_response())
}

async fn list_users(
    State(api): State<Api>,
    Project(project): Project,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let (limit, offset) = params.page()?;
    let rows = api.storage.list_users(&project, limit, offset).await?;
    let data = rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
    Ok(page_of(data, limit, offset).into_response())
}

/// `GET /api/public/batches`: stored batches that failed to normalize or that no plugin
/// claimed, with their errors — nothing is dropped silently.
async fn list_problem_batches(State(api): State<Api>, Project(project_id): Project) -> Result<Response, ApiError> {
    let rows = api.storage.batches(&BatchSelection::Problems { project_id }).await?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|b| {
            json!({
                "id": b.id, "signal": b.signal, "encoding": b.encoding, "status": b.status,
                "agents": b.agents, "error": b.error,
                "received_at": rfc3339(Some(b.received_at)),
            })
        })
        .collect();
    Ok(Json(json!({ "data": data, "next_cursor": null })).into_response())
}

/// `GET /api/public/unclaimed`: resources no plugin claimed, per service.name and scope.
async fn list_unclaimed(State(api): State<Api>, Project(project): Project) -> Result<Response, ApiError> {
    let data = api.storage.unclaimed(&project).await?;
    Ok(Json(json!({ "data": data, "next_cursor": null })).into_response())
}
