//! The OpenAPI 3.1 document of the HTTP APIs (query, admin, OTLP/HTTP ingest, the UI's
//! sign-in), served at `GET /api/public/openapi.json` without auth.
//!
//! It is generated from the code so that it cannot drift: each route of the query, admin and
//! ingest APIs is registered through its handler's `#[utoipa::path]` (utoipa-axum's `routes!`
//! takes the path and method from there), so a route and its description are one item. The
//! JSON that handlers build by hand or from other modules' rows (a trace, a session, a plugin)
//! is described by the schema types below; unit tests compare their fields with what the code
//! really writes.

use axum::extract::Extension;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::auth::session::COOKIE_NAME;

/// Where the document is served.
pub const PATH: &str = "/api/public/openapi.json";

/// What every document starts with: info, the security schemes, the tags and the document's own
/// route; the routers add their paths.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Antenna",
        description = "Ingest host for AI coding-agent telemetry: OTLP in, per-prompt traces out. \
            The query API (`/api/public`) answers for the project of the caller's key pair (HTTP \
            Basic `public_key:secret_key`, or the web UI's session cookie); the admin API \
            (`/api/admin`) takes `Authorization: Bearer <ANTENNA_ADMIN_TOKEN>`. Errors are \
            `{\"error\": \"...\"}`; lists are `{\"data\": [...], \"next_cursor\": ...}`."
    ),
    paths(openapi_json),
    modifiers(&SecuritySchemes),
    tags(
        (name = "ingest", description = "OTLP/HTTP export (protobuf or JSON, optionally gzip)"),
        (name = "traces", description = "Per-prompt traces"),
        (name = "sessions", description = "Sessions and their traces"),
        (name = "analytics", description = "Users, usage and outcomes per group"),
        (name = "batches", description = "Stored batches that failed or that no plugin claimed"),
        (name = "admin", description = "Operators: plugins, replay, retention, erasure, budgets"),
        (name = "ui", description = "The web UI's sign-in: a session cookie for a project's key pair"),
        (name = "meta", description = "This document"),
    )
)]
struct Base;

/// The security schemes the operations name: `basic` (a project's key pair), `session` (the
/// web UI's cookie, an alternative to `basic` on the query API) and `admin` (the admin token).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        let basic = HttpBuilder::new()
            .scheme(HttpAuthScheme::Basic)
            .description(Some("A project's key pair: `Basic base64(public_key:secret_key)`"))
            .build();
        components.add_security_scheme("basic", SecurityScheme::Http(basic));
        let admin = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The host's admin token (`ANTENNA_ADMIN_TOKEN`)"))
            .build();
        components.add_security_scheme("admin", SecurityScheme::Http(admin));
        let session = ApiKeyValue::with_description(
            COOKIE_NAME,
            "The web UI's session cookie, set by `POST /api/ui/session` (HttpOnly, SameSite=Strict)",
        );
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(session)));
    }
}

/// The whole document: [`Base`] and the paths and schemas of `routes`.
pub fn document(routes: Document) -> Document {
    Base::openapi().merge_from(routes)
}

/// The route that serves `document` (serialized once).
pub fn router<S>(document: &Document) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    // A document that does not serialize is a bug of this crate's annotations: the unit tests
    // serialize it.
    let json = serde_json::to_value(document).unwrap_or_default();
    Router::new().route(PATH, get(openapi_json)).layer(Extension(std::sync::Arc::new(json)))
}

/// `GET /api/public/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/public/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of the HTTP APIs", body = Object))
)]
async fn openapi_json(Extension(document): Extension<std::sync::Arc<serde_json::Value>>) -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Json(document.as_ref().clone())).into_response()
}

/// The body of every error of the query, admin and UI APIs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
}

/// `GET /api/ui/session`: the project the browser is signed in to.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct SignedIn {
    pub project_id: String,
}

/// How the query API turns a caller away (Basic keys or the session cookie).
#[derive(IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum PublicRefusals {
    /// No credentials, malformed ones, wrong keys, or an unknown or expired session.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Basic realm=\"antenna\"` (not for a session cookie)")))]
    Unauthorized(ErrorBody),
    /// Too many failed authentications from this client address.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds")))]
    TooManyRequests(ErrorBody),
    /// The database does not answer.
    #[response(status = 503, headers(("Retry-After" = u64, description = "Seconds")))]
    Unavailable(ErrorBody),
}

/// How the admin API turns a caller away.
#[derive(IntoResponses)]
#[allow(dead_code)] // documentation only
pub enum AdminRefusals {
    /// No admin token, or a wrong one.
    #[response(status = 401, headers(("WWW-Authenticate" = String, description = "`Bearer`")))]
    Unauthorized(ErrorBody),
    /// The admin API is off (the host was started without `ANTENNA_ADMIN_TOKEN`).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Too many wrong tokens from this client address.
    #[response(status = 429, headers(("Retry-After" = u64, description = "Seconds")))]
    TooManyRequests(ErrorBody),
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Page<T: ToSchema> {
    pub data: Vec<T>,
    /// The `cursor` of the next page; null on the last one.
    pub next_cursor: Option<String>,
}

/// A per-prompt trace, as `trace::view::summary` writes it.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Trace {
    pub id: String,
    pub project_id: String,
    pub agent: String,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub team: Option<String>,
    #[schema(format = DateTime)]
    pub start_time: Option<String>,
    #[schema(format = DateTime)]
    pub end_time: Option<String>,
    pub models: Vec<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_creation_tokens: u64,
    pub reasoning_tokens: u64,
    pub cost_usd: Option<f64>,
    /// `agent` or `price-table`.
    pub cost_source: Option<String>,
    pub prompt: Option<String>,
    pub response: Option<String>,
    /// The first 100 tool calls, by start (all of them are observations of type `tool_call`).
    pub tool_calls: Vec<ToolCall>,
    /// How many tool calls the trace has.
    pub tool_call_count: u64,
    /// The first 100 errors.
    pub errors: Vec<String>,
    /// How many errors the trace has.
    pub error_count: u64,
    /// How many observations its timeline has.
    pub observation_count: u64,
}

/// A trace in a list: long texts clipped to 4 KiB with `…[truncated]`.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct TraceListItem {
    #[serde(flatten)]
    pub trace: Trace,
    /// Whether a text of this item was clipped.
    pub truncated: bool,
}

/// One trace with its timeline, texts whole.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct TraceDetail {
    #[serde(flatten)]
    pub trace: Trace,
    /// The first 500 observations in timeline order.
    pub observations: Vec<Observation>,
    /// Where `GET /api/public/traces/{id}/observations` goes on; null when all are shown.
    pub observations_next_cursor: Option<String>,
}

/// A tool call of a trace (`trace::merge::ToolCallView`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct ToolCall {
    pub id: String,
    pub name: Option<String>,
    pub args: Option<String>,
    pub result: Option<String>,
    pub duration_ms: Option<u64>,
    pub success: Option<bool>,
    /// The agent's word alone (`accept`, `reject`, ...).
    pub decision: Option<String>,
    /// Where the decision came from (`config`, `user_temporary`, ...).
    pub decision_source: Option<String>,
}

/// One entry of a trace's timeline (`trace::merge::Observation`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Observation {
    /// `llm_call`, `tool_call` or `event`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub start_time: Option<String>,
    #[schema(format = DateTime)]
    pub end_time: Option<String>,
    pub model: Option<String>,
    pub usage: Option<TokenUsage>,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<String>,
    pub error: Option<String>,
    /// An event's attributes as the agent sent them; a tool call's `args`, `result`,
    /// `duration_ms`, `success`, `decision` and `decision_source`.
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Value>,
    /// `log` and/or `span`: through which channels it was reported.
    pub reported_via: Option<Vec<String>>,
}

/// Token counts of one model call (`trace::model::Usage`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct TokenUsage {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_creation: u64,
    pub reasoning: u64,
}

/// A session (`storage::SessionRow`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Session {
    pub id: String,
    pub agent: String,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub team: Option<String>,
    #[schema(format = DateTime)]
    pub start_time: Option<String>,
    #[schema(format = DateTime)]
    pub end_time: Option<String>,
    pub trace_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: Option<f64>,
}

/// A session with its traces in order (at most 500, clipped like a list).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct SessionDetail {
    #[serde(flatten)]
    pub session: Session,
    pub traces: Vec<TraceListItem>,
}

/// A user (`storage::UserRow`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct User {
    pub id: String,
    pub traces: i64,
    pub sessions: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: Option<f64>,
    #[schema(format = DateTime)]
    pub last_seen: Option<String>,
    /// Trace count per agent.
    pub agents: BTreeMap<String, i64>,
}

/// One group of `GET /api/public/usage` (`storage::UsageRow`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct UsageGroup {
    /// The group's value (null: traces without one).
    pub key: Option<String>,
    pub prompts: i64,
    pub sessions: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
    /// The sum of the known costs.
    pub cost_usd: Option<f64>,
    /// Prompts with tokens but no cost: `cost_usd` leaves them out.
    pub unpriced_prompts: i64,
    pub tool_calls: i64,
    pub tool_failures: i64,
}

/// One group of `GET /api/public/outcomes` (`storage::OutcomeRow`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct OutcomeGroup {
    pub key: Option<String>,
    pub lines_added: f64,
    pub lines_removed: f64,
    pub commits: f64,
    pub pull_requests: f64,
    pub edits_accepted: f64,
    pub edits_rejected: f64,
    /// `edits_accepted / (accepted + rejected)`; null without decisions.
    pub acceptance_rate: Option<f64>,
    pub active_seconds: f64,
}

/// Resources no plugin claimed, per service.name and scope (`storage::UnclaimedRow`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct UnclaimedResource {
    pub service_name: String,
    pub scope_name: String,
    pub resources: i64,
    #[schema(format = DateTime)]
    pub last_seen: Option<String>,
}

/// `GET /api/admin/plugins`.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct PluginList {
    pub data: Vec<Plugin>,
    /// Files of the plugins directory that were not loaded, and why.
    pub refused: Vec<RefusedPlugin>,
}

/// A plugin file that was not loaded.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct RefusedPlugin {
    pub file: String,
    pub reason: String,
}

/// A plugin, active or shadowed, with its counters (`plugins::PluginStatus`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Plugin {
    pub name: String,
    pub version: String,
    pub agent: String,
    pub wit_version: String,
    pub source: PluginSource,
    pub sha256: String,
    pub active: bool,
    pub claims: PluginClaims,
    pub batches: u64,
    pub failures: u64,
    pub put_aside: bool,
    pub last_error: Option<String>,
}

/// Where a plugin came from.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct PluginSource {
    /// `built_in` or `file`.
    pub kind: String,
    /// The file, for `file`.
    pub path: Option<String>,
}

/// What a plugin claims.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct PluginClaims {
    pub scope_names: Vec<String>,
    pub event_names: Vec<String>,
    pub service_names: Vec<String>,
}

/// What a replay did (`pipeline::ReplayReport`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct ReplayReport {
    pub batches: u64,
    pub done: u64,
    pub failed: u64,
    pub unclaimed: u64,
}

/// A project's retention in days (null: kept until deleted).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Retention {
    pub batch_days: Option<i64>,
    pub trace_days: Option<i64>,
}

/// The answer of `PUT /api/admin/projects/{project}/retention`.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct RetentionSet {
    pub project_id: String,
    pub retention: Retention,
}

/// What an erasure removed (`storage::Erased`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Erased {
    pub traces: u64,
    /// Raw batches that carried the user's data (deleted whole).
    pub batches: u64,
    pub usage_metrics: u64,
}

/// What one retention pass removed (`storage::Expired`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Expired {
    pub batches: u64,
    pub traces: u64,
    pub usage_metrics: u64,
}

/// A budget as stored (`storage::Budget`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct Budget {
    pub id: String,
    /// Only this project's traces count (null: every project's).
    pub project_id: Option<String>,
    /// True when the subject's spend is summed over every project (project_id null).
    pub all_projects: bool,
    /// `project`, `user`, `team` or `repository`.
    pub scope: String,
    pub subject: String,
    /// `day` or `month` (UTC).
    pub period: String,
    pub limit_usd: f64,
    /// Fractions of the limit that alert, ascending.
    pub thresholds: Vec<f64>,
    pub webhook_url: String,
    /// Unix nanoseconds.
    pub created_at: i64,
}

/// A budget with this period's spend (`budgets::BudgetStatus`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct BudgetStatus {
    #[serde(flatten)]
    pub budget: Budget,
    /// `YYYY-MM-DD` (day) or `YYYY-MM` (month).
    pub period_start: Option<String>,
    pub spent_usd: f64,
    /// `ok`, `warning` or `exceeded`.
    pub state: String,
    /// Alerts recorded that no webhook has taken yet (retried with backoff).
    pub undelivered_alerts: u64,
    /// Why the latest failed delivery failed (null while none is failing).
    pub last_delivery_error: Option<String>,
    pub alerts: Vec<BudgetAlert>,
}

/// One alert of a budget (`storage::Alert`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)] // documentation only
pub struct BudgetAlert {
    pub budget_id: String,
    pub period_start: String,
    pub threshold: f64,
    pub attempts: i64,
    /// Unix nanoseconds; null until the webhook took it.
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
}
