//! Data at rest: retention per project and the erasure of one user's data. The statements are
//! plain SQL both engines run (written with `$n` placeholders; SQLite reads them as `?n`).

use serde::Serialize;

/// What an erasure removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Erased {
    pub traces: u64,
    /// Raw batches that carried the user's data (deleted whole: a batch is one request).
    pub batches: u64,
    pub usage_metrics: u64,
}

/// What one retention pass removed, over every project.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub batches: u64,
    pub traces: u64,
    pub usage_metrics: u64,
}

/// A project's retention, in days (`None`: kept until deleted).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Retention {
    pub batch_days: Option<i64>,
    pub trace_days: Option<i64>,
}

/// The user's traces (`$1` project, `$2` user).
const USER_TRACES: &str = "SELECT id FROM traces WHERE project_id = $1 AND user_id = $2";

/// Erasing user `$2` of project `$1`, in order (later statements read rows earlier ones leave);
/// which result counts as what.
pub const ERASE_USER: &[(&str, Option<&str>)] = &[
    // The raw batches that carried the user's data: those of their traces' fragments and of
    // their usage metrics.
    (
        "DELETE FROM batches WHERE project_id = $1 AND id IN (
           SELECT f.batch_id FROM fragments f JOIN trace_keys k ON k.project_id = f.project_id AND k.key = f.trace_key
           WHERE k.project_id = $1 AND k.trace_id IN (SELECT id FROM traces WHERE project_id = $1 AND user_id = $2)
           UNION SELECT batch_id FROM usage_metrics WHERE project_id = $1 AND user_id = $2)",
        Some("batches"),
    ),
    (
        "DELETE FROM fragments WHERE project_id = $1 AND kind = 'usage_metric' AND batch_id IN (
           SELECT batch_id FROM usage_metrics WHERE project_id = $1 AND user_id = $2)",
        None,
    ),
    (
        "DELETE FROM fragments WHERE project_id = $1 AND trace_key IN (
           SELECT key FROM trace_keys WHERE project_id = $1 AND trace_id IN (
             SELECT id FROM traces WHERE project_id = $1 AND user_id = $2))",
        None,
    ),
    ("DELETE FROM trace_models WHERE project_id = $1 AND trace_id IN (USER_TRACES)", None),
    ("DELETE FROM trace_keys WHERE project_id = $1 AND trace_id IN (USER_TRACES)", None),
    ("DELETE FROM traces WHERE project_id = $1 AND user_id = $2", Some("traces")),
    ("DELETE FROM usage_metrics WHERE project_id = $1 AND user_id = $2", Some("usage_metrics")),
];

/// One statement of [`ERASE_USER`] with its shared subquery filled in.
pub fn erase_statement(sql: &str) -> String {
    sql.replace("(USER_TRACES)", &format!("({USER_TRACES})"))
}

/// Expiring project `$1`'s traces that ended before `$2` (Unix ns), in order.
pub const EXPIRE_TRACES: &[(&str, Option<&str>)] = &[
    (
        "DELETE FROM fragments WHERE project_id = $1 AND trace_key IN (
           SELECT key FROM trace_keys WHERE project_id = $1 AND trace_id IN (
             SELECT id FROM traces WHERE project_id = $1 AND COALESCE(end_ns, start_ns) < $2))",
        None,
    ),
    ("DELETE FROM trace_models WHERE project_id = $1 AND trace_id IN (OLD_TRACES)", None),
    ("DELETE FROM trace_keys WHERE project_id = $1 AND trace_id IN (OLD_TRACES)", None),
    ("DELETE FROM traces WHERE project_id = $1 AND COALESCE(end_ns, start_ns) < $2", Some("traces")),
    (
        "DELETE FROM fragments WHERE project_id = $1 AND kind = 'usage_metric' AND batch_id IN (
        SELECT batch_id FROM usage_metrics WHERE project_id = $1 AND time_ns < $2)",
        None,
    ),
    ("DELETE FROM usage_metrics WHERE project_id = $1 AND time_ns < $2", Some("usage_metrics")),
];

/// One statement of [`EXPIRE_TRACES`] with its shared subquery filled in.
pub fn expire_statement(sql: &str) -> String {
    sql.replace("(OLD_TRACES)", "(SELECT id FROM traces WHERE project_id = $1 AND COALESCE(end_ns, start_ns) < $2)")
}

/// Expiring project `$1`'s raw batches received before `$2` (never one still pending).
pub const EXPIRE_BATCHES: &str =
    "DELETE FROM batches WHERE project_id = $1 AND received_at < $2 AND status <> 'pending'";

/// Projects with a retention set.
pub const RETAINED_PROJECTS: &str = "SELECT id, batch_retention_days, trace_retention_days FROM projects
    WHERE batch_retention_days IS NOT NULL OR trace_retention_days IS NOT NULL";

/// `$1` days before `now_ns`.
pub fn days_before(now_ns: i64, days: i64) -> i64 {
    now_ns.saturating_sub(days.saturating_mul(86_400_000_000_000))
}
