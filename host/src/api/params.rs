//! Query parameters shared by the lists: filters, `limit` and the opaque `cursor`, RFC 3339
//! times, and the `{"data": [...], "next_cursor": ...}` page.

use axum::Json;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use crate::storage::TraceFilter;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListParams {
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub agent: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub team: Option<String>,
    pub model: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// What `usage` and `outcomes` group by.
    pub group_by: Option<String>,
    /// Full-text search over prompt text (traces only).
    pub q: Option<String>,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// `limit` and `cursor`, as the OpenAPI document describes them (see [`ListParams::page`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub struct PageParams {
    /// Items per page.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<i64>,
    /// The `next_cursor` of the page before.
    #[param(pattern = "^[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// `limit` and `cursor` of a list paged by id (see [`ListParams::keyset_page`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub struct KeysetPageParams {
    /// Items per page.
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<i64>,
    /// The `next_cursor` of the page before.
    #[param(pattern = "^id:[0-9]{1,18}$")]
    cursor: Option<String>,
}

/// The filters of the trace lists and their aggregates, as the OpenAPI document describes them
/// (see [`ListParams::filter`]).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub struct FilterParams {
    session_id: Option<String>,
    user_id: Option<String>,
    device_id: Option<String>,
    /// e.g. `claude-code`, `codex`, `gemini-cli`, `copilot-cli`, `cursor`.
    agent: Option<String>,
    repository: Option<String>,
    branch: Option<String>,
    team: Option<String>,
    /// Traces that used this model.
    model: Option<String>,
    /// Traces that started at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Traces that started before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
}

/// Full-text search over prompt text (traces only).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub struct SearchParams {
    /// Words of the prompt; the last one matches as a prefix.
    q: Option<String>,
}

/// What `GET /api/public/usage` groups by (the names of [`crate::storage::UsageGroup`]).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageGroupBy {
    User,
    Agent,
    Model,
    Repository,
    Team,
    Device,
    Day,
}

/// What `GET /api/public/outcomes` groups by (the names of [`crate::storage::OutcomeGroup`]).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeGroupBy {
    User,
    Agent,
    Repository,
    Team,
    Day,
}

/// `group_by` of `GET /api/public/usage`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub struct UsageGroupParam {
    #[param(inline)]
    group_by: UsageGroupBy,
}

/// `group_by` of `GET /api/public/outcomes`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only
pub struct OutcomeGroupParam {
    #[param(inline)]
    group_by: OutcomeGroupBy,
}

impl ListParams {
    /// (limit, offset) from `limit` and the opaque `cursor`.
    pub fn page(&self) -> Result<(i64, i64), ApiError> {
        let limit = match &self.limit {
            None => DEFAULT_LIMIT,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_LIMIT).contains(l))
                .ok_or_else(|| ApiError::bad_request(format!("limit must be a number from 1 to {MAX_LIMIT}")))?,
        };
        let offset = match &self.cursor {
            None => 0,
            Some(c) => {
                c.parse::<i64>().ok().filter(|o| *o >= 0).ok_or_else(|| ApiError::bad_request("invalid cursor"))?
            }
        };
        Ok((limit, offset))
    }
}

impl ListParams {
    /// The filters and page of the traces, sessions, usage and outcomes lists. NUL never
    /// reaches a query (PostgreSQL text cannot hold it; stored values have it replaced).
    pub fn filter(&self) -> Result<TraceFilter, ApiError> {
        let (limit, offset) = self.page()?;
        let text = |v: &Option<String>| v.as_ref().map(|v| v.replace('\0', "\u{FFFD}"));
        Ok(TraceFilter {
            session_id: text(&self.session_id),
            user_id: text(&self.user_id),
            device_id: text(&self.device_id),
            agent: text(&self.agent),
            // As stored: a clone URL given finds its repository.
            repository: text(&self.repository).map(|r| crate::trace::model::repository_name(&r)),
            branch: text(&self.branch),
            team: text(&self.team),
            model: text(&self.model),
            from_ns: time_param("from", &self.from)?,
            to_ns: time_param("to", &self.to)?,
            q: self.q.clone().filter(|q| !q.trim().is_empty()),
            limit,
            offset,
        })
    }

    /// `group_by` as one of `G`'s names, or a 400 that lists them.
    pub fn group_by<G: serde::de::DeserializeOwned>(&self, allowed: &str) -> Result<G, ApiError> {
        let bad = || ApiError::bad_request(format!("group_by must be one of {allowed}"));
        let name = self.group_by.as_deref().ok_or_else(bad)?;
        serde_json::from_value(Value::String(name.to_owned())).map_err(|_| bad())
    }
}

impl ListParams {
    /// (limit, the id after which the page starts) for a list paged by id: the opaque
    /// `cursor` is the last id of the page before.
    pub fn keyset_page(&self) -> Result<(i64, i64), ApiError> {
        let (limit, _) = ListParams { cursor: None, ..self.clone() }.page()?;
        let after = match &self.cursor {
            None => 0,
            Some(c) => c
                .strip_prefix(KEYSET_PREFIX)
                .and_then(|id| id.parse::<i64>().ok())
                .filter(|id| *id >= 0)
                .ok_or_else(|| ApiError::bad_request("invalid cursor"))?,
        };
        Ok((limit, after))
    }
}

/// What starts a cursor of a list paged by id (so an offset cursor is not taken for one).
const KEYSET_PREFIX: &str = "id:";

/// One page of a list paged by id: `data` holds up to `limit + 1` items read, the extra one
/// only telling that there is a next page; `next_cursor` is null on the last page.
pub fn keyset_page_of(mut data: Vec<Value>, limit: i64, last_id: impl Fn(&Value) -> i64) -> Json<Value> {
    let more = data.len() as i64 > limit;
    data.truncate(usize::try_from(limit).unwrap_or(0));
    let next = if more { data.last().map(|item| format!("{KEYSET_PREFIX}{}", last_id(item))) } else { None };
    Json(json!({ "data": data, "next_cursor": next }))
}

/// A JSON request body that is an object, as `T` (serde alone would also read a struct from an
/// array of its fields, which the documented bodies are not).
pub fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, serde_json::Error> {
    let object: serde_json::Map<String, Value> = serde_json::from_slice(body)?;
    serde_json::from_value(Value::Object(object))
}

/// An optional RFC 3339 time parameter as Unix nanoseconds. A time beyond what nanoseconds
/// since 1970 hold in an i64 (before 1677 or after 2262) is the earliest or latest there is.
pub fn time_param(name: &str, value: &Option<String>) -> Result<Option<i64>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            let time = chrono::DateTime::parse_from_rfc3339(v).map_err(|_| {
                ApiError::bad_request(format!("{name} must be an RFC 3339 time, e.g. 2026-11-24T18:00:00Z"))
            })?;
            Ok(time.timestamp_nanos_opt().unwrap_or(if time.timestamp() < 0 { i64::MIN } else { i64::MAX }))
        })
        .transpose()
}

/// One page of a list; `next_cursor` is set when the page is full.
pub fn page_of(data: Vec<Value>, limit: i64, offset: i64) -> Json<Value> {
    let next = (data.len() as i64 == limit).then(|| (offset + limit).to_string());
    Json(json!({ "data": data, "next_cursor": next }))
}
