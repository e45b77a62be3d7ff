//! `/api/admin/budgets`: spend limits per period with a webhook (see [`crate::budgets`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Admin, AdminCaller};
use crate::api::ApiError;
use crate::budgets;
use crate::storage::Budget;

/// The body of `POST /api/admin/budgets`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewBudget {
    scope: String,
    subject: String,
    period: String,
    limit_usd: f64,
    thresholds: Option<Vec<f64>>,
    webhook_url: String,
    /// Count only this project's traces (for scopes other than `project`).
    project_id: Option<String>,
}

/// Most thresholds per budget.
const MAX_THRESHOLDS: usize = 10;

/// `POST /api/admin/budgets`: 201 with the budget, 400 saying what is wrong.
pub async fn create(_: AdminCaller, State(admin): State<Admin>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let new: NewBudget = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid budget: {e}; expected scope, subject, period, limit_usd, webhook_url and optional thresholds, project_id"
        ))
    })?;
    if crate::storage::budget_scope_column(&new.scope).is_none() {
        return Err(ApiError::bad_request("scope must be one of project, user, team, repository"));
    }
    if new.subject.is_empty() || new.subject.len() > 512 || new.subject.contains('\0') {
        return Err(ApiError::bad_request("subject must be 1 to 512 bytes"));
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
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ApiError::bad_request("webhook_url must be http:// or https://"));
    }
    let project_id = if new.scope == "project" { Some(new.subject.clone()) } else { new.project_id };
    let budget = Budget {
        id: format!("budget-{}", crate::ids::random_hex(8)),
        project_id,
        scope: new.scope,
        subject: new.subject,
        period: new.period,
        limit_usd: new.limit_usd,
        thresholds,
        webhook_url: new.webhook_url,
        created_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
    };
    admin.storage.create_budget(&budget).await?;
    tracing::info!(budget = %budget.id, scope = %budget.scope, "budget created");
    Ok((StatusCode::CREATED, Json(budget)).into_response())
}

/// `GET /api/admin/budgets`: each budget with this period's spend, state and alerts.
pub async fn list(_: AdminCaller, State(admin): State<Admin>) -> Result<Json<Value>, ApiError> {
    let data = budgets::statuses(&*admin.storage, chrono::Utc::now()).await?;
    Ok(Json(json!({ "data": data, "next_cursor": null })))
}

/// `DELETE /api/admin/budgets/{id}`: the budget and its alerts.
pub async fn delete(_: AdminCaller, State(admin): State<Admin>, Path(id): Path<String>) -> Result<Response, ApiError> {
    if !admin.storage.delete_budget(&id).await? {
        return Err(ApiError::not_found(format!("no budget {id:?}")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
