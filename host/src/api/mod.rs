//! The query API: traces, sessions, users — each scoped to the calling project's keys.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ingest::Rejection;
use crate::server::AppState;
use crate::store::{StoreError, TraceFilter};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// The calling project, from the request's Basic keys (failures rate-limited per address).
pub struct Project(pub String);

impl axum::extract::FromRequestParts<AppState> for Project {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, Response> {
        let client = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        authenticate_from(state, &parts.headers, client).await.map(Project).map_err(IntoResponse::into_response)
    }
}

/// The project of the request's Basic keys, or a 401.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, Rejection> {
    authenticate_from(state, headers, None).await
}

/// [`authenticate`], rate-limiting failures per client address.
pub async fn authenticate_from(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
) -> Result<String, Rejection> {
    authenticate_value(state, headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("")), client).await
}

/// The project of an `Authorization` value (HTTP header or gRPC metadata), or a 401; a client
/// address that failed too often gets a 429 first.
pub async fn authenticate_value(
    state: &AppState,
    authorization: Option<&str>,
    client: Option<std::net::IpAddr>,
) -> Result<String, Rejection> {
    if let Some(wait) = state.admission.auth_blocked(client) {
        return Err(Rejection {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!("too many failed authentications from this address; retry in {} s", wait.as_secs() + 1),
            encoding: None,
        });
    }
    let unauthorized = |message: &str| {
        state.admission.auth_failed(client);
        Rejection { status: StatusCode::UNAUTHORIZED, message: message.into(), encoding: None }
    };
    let Some(value) = authorization else {
        return Err(unauthorized("missing Authorization: send Basic base64(public_key:secret_key)"));
    };
    let Some((public, secret)) = crate::auth::parse_basic(value) else {
        return Err(unauthorized("malformed Authorization: send Basic base64(public_key:secret_key)"));
    };
    match state.store.authenticate(&public, &secret).await {
        Ok(Some(project)) => Ok(project),
        Ok(None) => {
            // Never log the secret.
            tracing::warn!(public_key = %public, client = ?client, "authentication failed");
            Err(unauthorized("unknown public key or wrong secret key"))
        }
        Err(e) => {
            tracing::error!(error = %e, "authentication lookup failed");
            Err(Rejection {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "storage unavailable, retry later".into(),
                encoding: None,
            })
        }
    }
}

/// An API error: status and `{"error": "..."}`.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "query failed");
        ApiError(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable, retry later".into())
    }
}

fn bad_request(message: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message)
}

#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    session_id: Option<String>,
    user_id: Option<String>,
    device_id: Option<String>,
    agent: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl ListParams {
    /// (limit, offset) from `limit` and the opaque `cursor`.
    fn page(&self) -> Result<(i64, i64), ApiError> {
        let limit = match &self.limit {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| bad_request(format!("limit must be a number from 1 to {MAX_LIMIT}")))?,
        };
        let offset = match &self.cursor {
            None => 0,
            Some(c) => c.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(|| bad_request("invalid cursor".into()))?,
        };
        Ok((limit, offset))
    }
}

/// An optional RFC 3339 time parameter as Unix nanoseconds.
pub fn time_param(name: &str, value: &Option<String>) -> Result<Option<i64>, String> {
    value
        .as_deref()
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .ok_or_else(|| format!("{name} must be an RFC 3339 time, e.g. 2026-11-24T18:00:00Z"))
        })
        .transpose()
}

fn page_of(data: Vec<Value>, limit: i64, offset: i64) -> Json<Value> {
    let next = (data.len() as i64 == limit).then(|| (offset + limit).to_string());
    Json(json!({ "data": data, "next_cursor": next }))
}

pub async fn list_traces(
    State(state): State<AppState>,
    Project(project): Project,
    Query(params): Query<ListParams>,
) -> Result<Response, Response> {
    let run = async {
        let (limit, offset) = params.page()?;
        let filter = TraceFilter {
            session_id: params.session_id.clone(),
            user_id: params.user_id.clone(),
            device_id: params.device_id.clone(),
            agent: params.agent.clone(),
            from_ns: time_param("from", &params.from).map_err(bad_request)?,
            to_ns: time_param("to", &params.to).map_err(bad_request)?,
            limit,
            offset,
        };
        let rows = state.store.list_traces(&project, &filter).await?;
        Ok::<_, ApiError>(page_of(rows.into_iter().map(|r| r.summary).collect(), limit, offset).into_response())
    };
    run.await.map_err(IntoResponse::into_response)
}

pub async fn get_trace(
    State(state): State<AppState>,
    Project(project): Project,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let row = state.store.get_trace(&project, &id).await.map_err(|e| ApiError::from(e).into_response())?;
    let Some(row) = row else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no trace {id:?}")).into_response());
    };
    let mut trace = row.summary;
    if let Some(map) = trace.as_object_mut() {
        map.insert("observations".into(), row.observations.unwrap_or(Value::Array(Vec::new())));
    }
    Ok(Json(trace).into_response())
}

pub async fn list_sessions(
    State(state): State<AppState>,
    Project(project): Project,
    Query(params): Query<ListParams>,
) -> Result<Response, Response> {
    let run = async {
        let (limit, offset) = params.page()?;
        let rows = state.store.list_sessions(&project, None, limit, offset).await?;
        let data = rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
        Ok::<_, ApiError>(page_of(data, limit, offset).into_response())
    };
    run.await.map_err(IntoResponse::into_response)
}

pub async fn get_session(
    State(state): State<AppState>,
    Project(project): Project,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let run = async {
        let mut sessions = state.store.list_sessions(&project, Some(&id), 1, 0).await?;
        let Some(session) = sessions.pop() else {
            return Err(ApiError(StatusCode::NOT_FOUND, format!("no session {id:?}")));
        };
        let filter = TraceFilter { session_id: Some(id.clone()), limit: MAX_LIMIT, ..Default::default() };
        let traces: Vec<Value> =
            state.store.list_traces(&project, &filter).await?.into_iter().rev().map(|r| r.summary).collect();
        let mut value = serde_json::to_value(session).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            map.insert("traces".into(), Value::Array(traces));
        }
        Ok(Json(value).into_response())
    };
    run.await.map_err(IntoResponse::into_response)
}

pub async fn list_users(
    State(state): State<AppState>,
    Project(project): Project,
    Query(params): Query<ListParams>,
) -> Result<Response, Response> {
    let run = async {
        let (limit, offset) = params.page()?;
        let rows = state.store.list_users(&project, limit, offset).await?;
        let data = rows.into_iter().map(|r| serde_json::to_value(r).unwrap_or_default()).collect();
        Ok::<_, ApiError>(page_of(data, limit, offset).into_response())
    };
    run.await.map_err(IntoResponse::into_response)
}

/// `GET /api/public/batches`: stored batches that failed to normalize or that no plugin
/// claimed, with their errors — nothing is dropped silently.
pub async fn list_problem_batches(
    State(state): State<AppState>,
    Project(project): Project,
) -> Result<Response, Response> {
    let rows = state.store.problem_batches(&project).await.map_err(|e| ApiError::from(e).into_response())?;
    let data: Vec<Value> = rows
        .into_iter()
        .map(|b| {
            json!({
                "id": b.id, "signal": b.signal, "encoding": b.encoding, "status": b.status,
                "agents": b.agents, "error": b.error,
                "received_at": crate::store::rfc3339(Some(b.received_at)),
            })
        })
        .collect();
    Ok(Json(json!({ "data": data, "next_cursor": null })).into_response())
}

/// `GET /api/public/unclaimed`: resources no plugin claimed, per service.name and scope.
pub async fn list_unclaimed(State(state): State<AppState>, Project(project): Project) -> Result<Response, Response> {
    let data = state.store.unclaimed(&project).await.map_err(|e| ApiError::from(e).into_response())?;
    Ok(Json(json!({ "data": data, "next_cursor": null })).into_response())
}
