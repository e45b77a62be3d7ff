//! Budgets and the outbox of their alerts: rows and the SQL both engines run (written with
//! `$n` placeholders; SQLite reads them as `?n`).

use serde::{Deserialize, Serialize};

/// A spend limit per period, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub id: String,
    /// Only this project's traces (`None`: every project's); for scope `project`, the subject.
    pub project_id: Option<String>,
    /// Whether the subject's spend is summed over every project (`project_id` is `None`): said
    /// in so many words, since a user budget without a project spans them all.
    pub all_projects: bool,
    /// `project`, `user`, `team` or `repository`.
    pub scope: String,
    /// The project id, user id, team or repository whose spend counts.
    pub subject: String,
    /// `day` or `month` (UTC).
    pub period: String,
    pub limit_usd: f64,
    /// Fractions of the limit that alert, ascending (default 0.8 and 1.0).
    pub thresholds: Vec<f64>,
    pub webhook_url: String,
    pub created_at: i64,
}

/// One alert of the outbox.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub budget_id: String,
    /// `YYYY-MM-DD` (day) or `YYYY-MM` (month).
    pub period_start: String,
    pub threshold: f64,
    /// The JSON the webhook receives.
    #[serde(skip)]
    pub payload: String,
    pub attempts: i64,
    pub delivered_at: Option<i64>,
    pub last_error: Option<String>,
}

pub const INSERT_BUDGET: &str =
    "INSERT INTO budgets (id, project_id, scope, subject, period, limit_usd, thresholds, webhook_url, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
pub const SELECT_BUDGETS: &str =
    "SELECT id, project_id, scope, subject, period, limit_usd, thresholds, webhook_url, created_at
    FROM budgets ORDER BY created_at, id";
pub const DELETE_BUDGET: &str = "DELETE FROM budgets WHERE id = $1";
pub const DELETE_ALERTS: &str = "DELETE FROM budget_alerts WHERE budget_id = $1";

/// The spend column a scope counts by.
pub fn scope_column(scope: &str) -> Option<&'static str> {
    match scope {
        "project" => Some("project_id"),
        "user" => Some("user_id"),
        "team" => Some("team"),
        "repository" => Some("repository"),
        _ => None,
    }
}

/// Spend of a budget since `$2` (Unix ns): `$1` the subject, `$3` the project or NULL.
pub fn spend_sql(column: &str) -> String {
    format!(
        "SELECT SUM(cost_usd) AS spent FROM traces WHERE {column} = $1 AND start_ns >= $2
           AND ($3 IS NULL OR project_id = $3)"
    )
}

/// Record an alert once: the primary key (budget, period, threshold) makes a second insert, by
/// any replica, a no-op.
pub const INSERT_ALERT: &str =
    "INSERT INTO budget_alerts (budget_id, period_start, threshold, payload, created_at, next_attempt_at)
    VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (budget_id, period_start, threshold) DO NOTHING";

/// Alerts due for a delivery attempt.
pub const DUE_ALERTS: &str = "SELECT budget_id, period_start, threshold, payload, attempts, delivered_at, last_error
    FROM budget_alerts WHERE delivered_at IS NULL AND next_attempt_at <= $1 ORDER BY created_at LIMIT 50";

/// Claim one due alert for `$4` ns (so no other replica posts it meanwhile): one row updated
/// means this replica has it.
pub const CLAIM_ALERT: &str = "UPDATE budget_alerts SET next_attempt_at = $4
    WHERE budget_id = $1 AND period_start = $2 AND threshold = $3 AND delivered_at IS NULL AND next_attempt_at <= $5";

pub const ALERT_DELIVERED: &str =
    "UPDATE budget_alerts SET delivered_at = $4, attempts = attempts + 1, last_error = NULL
    WHERE budget_id = $1 AND period_start = $2 AND threshold = $3";

pub const ALERT_FAILED: &str = "UPDATE budget_alerts SET attempts = attempts + 1, last_error = $4, next_attempt_at = $5
    WHERE budget_id = $1 AND period_start = $2 AND threshold = $3";

pub const ALERTS_OF: &str = "SELECT budget_id, period_start, threshold, payload, attempts, delivered_at, last_error
    FROM budget_alerts WHERE budget_id = $1 ORDER BY period_start, threshold";
