//! `/api/admin/budgets`: spend limits per period with a webhook (see [`crate::budgets`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use utoipa::ToSchema;

use super::{Admin, AdminCaller};
use crate::api::openapi::{self, AdminRefusals, ErrorBody, Page};
use crate::api::params::json_object;
use crate::api::{ApiError, ApiPath};
use crate::budgets;
use crate::storage::{Budget, StorageError};

/// The body of `POST /api/admin/budgets`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewBudget {
    /// Whose spend counts.
    #[schema(pattern = "^(project|user|team|repository)$")]
    scope: String,
    /// The project id, user id, team or repository (1 to 512 characters, no NUL).
    #[schema(min_length = 1, max_length = 512, pattern = "^[^\\u0000]*$")]
    subject: String,
    /// A UTC day or month.
    #[schema(pattern = "^(day|month)$")]
    period: String,
    /// Dollars, above 0.
    #[schema(exclusive_minimum = 0)]
    limit_usd: f64,
    /// Fractions of the limit that alert, each above 0 and at most 10 (default [0.8, 1.0]).
    #[schema(value_type = Option<Vec<Threshold>>, min_items = 1, max_items = 10)]
    thresholds: Option<Vec<f64>>,
    /// Where alerts are posted (an http or https URL).
    #[schema(format = "uri", pattern = "^[hH][tT][tT][pP][sS]?:[^\\u0000]*$")]
    webhook_url: String,
    /// Count only this project's traces (scopes other than `project`); without it the
    /// subject's spend is summed over every project, and the budget says `all_projects: true`.
    #[schema(pattern = "^[^\\u0000]*$")]
    project_id: Option<String>,
}

/// One threshold of a budget in the OpenAPI document: a fraction of its limit, above 0 and at
/// most 10.
struct Threshold;

impl utoipa::PartialSchema for Threshold {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
            .exclusive_minimum(Some(0.0))
            .maximum(Some(10.0))
            .into()
    }
}

impl ToSchema for Threshold {}

/// Most thresholds per budget.
const MAX_THRESHOLDS: usize = 10;

/// `POST /api/admin/budgets`: 201 with the budget, 400 saying what is wrong.
#[utoipa::path(
    post,
    path = "/api/admin/budgets",
    tag = "admin",
    request_body(content = NewBudget, content_type = "application/json"),
    responses(
        (status = 201, description = "The budget", body = openapi::Budget),
        (status = 400, description = "What is wrong with the budget", body = ErrorBody),
        (status = 404, description = "No such project (project_id, or the subject of scope project)", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody, headers(("Retry-After" = u64))),
        AdminRefusals,
    ),
    security(("admin" = []))
)]
pub async fn create(_: AdminCaller, State(admin): State<Admin>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let new: NewBudget = json_object(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid budget: {e}; expected scope, subject, period, limit_usd, webhook_url and optional thresholds, project_id"
        ))
    })?;
    if crate::storage::budget_scope_column(&new.scope).is_none() {
        return Err(ApiError::bad_request("scope must be one of project, user, team, repository"));
    }
    if new.subject.is_empty() || new.subject.chars().count() > 512 || new.subject.contains('\0') {
        return Err(ApiError::bad_request("subject must be 1 to 512 characters, without NUL"));
    }
    if new.project_id.as_deref().is_some_and(|p| p.contains('\0')) {
        return Err(ApiError::bad_request("project_id must not contain NUL"));
    }
    if budgets::period_start(&new.period, chrono::Utc::now()).is_none() {
        return Err(ApiError::bad_request("period must be day or month (UTC)"));
    }
    if !new.limit_usd.is_finite() || new.limit_usd <= 0.0 {
        return Err(ApiError::bad_request("limit_usd must be a positive number of dollars"));
    }
    let mut thresholds = new.thresholds.unwrap_or_else(|| vec![0.8, 1.0]);
    if thresholds.is_empty()
        || thresholds.len() > MAX_THRESHOLDS
        || thresholds.iter().any(|t| !t.is_finite() || *t <= 0.0 || *t > 10.0)
    {
        return Err(ApiError::bad_request(format!(
            "thresholds are 1 to {MAX_THRESHOLDS} fractions of the limit, each above 0 and at most 10 (e.g. [0.8, 1.0])"
        )));
    }
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let url = reqwest::Url::parse(&new.webhook_url)
        .map_err(|e| ApiError::bad_request(format!("webhook_url is not a URL: {e}")))?;
    if new.webhook_url.contains('\0') {
        return Err(ApiError::bad_request("webhook_url must not contain NUL"));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::bad_request("webhook_url must be http:// or https://"));
    }
    if !budgets::webhook_host_allowed(&new.webhook_url, &admin.webhook_hosts) {
        return Err(ApiError::bad_request(format!(
            "webhook_url's host is not one of ANTENNA_WEBHOOK_HOSTS ({})",
            admin.webhook_hosts.join(", ")
        )));
    }
    // Scope `project` counts its subject; the others the given project, or every project
    // (which the budget then says: `all_projects`).
    let project_id = if new.scope == "project" { Some(new.subject.clone()) } else { new.project_id };
    let budget = Budget {
        id: format!("budget-{}", crate::ids::random_hex(8)),
        all_projects: project_id.is_none(),
        project_id,
        scope: new.scope,
        subject: new.subject,
        period: new.period,
        limit_usd: new.limit_usd,
        thresholds,
        webhook_url: new.webhook_url,
        created_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
    };
    if let Err(e) = admin.storage.create_budget(&budget).await {
        // The budget names a project that does not exist.
        if let StorageError::Db(db) = &e
            && db.as_database_error().is_some_and(|d| d.is_foreign_key_violation())
        {
            return Err(ApiError::not_found(format!("no project {:?}", budget.project_id.unwrap_or_default())));
        }
        return Err(e.into());
    }
    tracing::info!(budget = %budget.id, scope = %budget.scope, "budget created");
    Ok((StatusCode::CREATED, Json(budget)).into_response())
}

/// `GET /api/admin/budgets`: each budget with this period's spend, state and alerts.
#[utoipa::path(
    get,
    path = "/api/admin/budgets",
    tag = "admin",
    responses(
        (status = 200, description = "Every budget (one page, next_cursor null)", body = Page<openapi::BudgetStatus>),
        (status = 503, description = "The database does not answer", body = ErrorBody, headers(("Retry-After" = u64))),
        AdminRefusals,
    ),
    security(("admin" = []))
)]
pub async fn list(_: AdminCaller, State(admin): State<Admin>) -> Result<Json<Value>, ApiError> {
    let data = budgets::statuses(&*admin.storage, chrono::Utc::now()).await?;
    Ok(Json(json!({ "data": data, "next_cursor": null })))
}

/// `DELETE /api/admin/budgets/{id}`: the budget and its alerts.
#[utoipa::path(
    delete,
    path = "/api/admin/budgets/{id}",
    tag = "admin",
    params(("id" = String, Path, description = "The budget's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "An id that is not UTF-8 once percent-decoded", body = ErrorBody),
        (status = 404, description = "No such budget", body = ErrorBody),
        (status = 503, description = "The database does not answer", body = ErrorBody, headers(("Retry-After" = u64))),
        AdminRefusals,
    ),
    security(("admin" = []))
)]
pub async fn delete(
    _: AdminCaller,
    State(admin): State<Admin>,
    ApiPath(id): ApiPath<String>,
) -> Result<Response, ApiError> {
    if !admin.storage.delete_budget(&id).await? {
        return Err(ApiError::not_found(format!("no budget {id:?}")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
