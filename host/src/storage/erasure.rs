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
    // The raw batches that carried the user's data: every one that named them when it was
    // stored (claimed or not), and those of their traces' fragments and usage metrics.
    (
        "DELETE FROM batches WHERE project_id = $1 AND id IN (
           SELECT batch_id FROM batch_users WHERE project_id = $1 AND user_id = $2
           UNION SELECT f.batch_id FROM fragments f JOIN trace_keys k ON k.project_id = f.project_id AND k.key = f.trace_key
           WHERE k.project_id = $1 AND k.trace_id IN (SELECT id FROM traces WHERE project_id = $1 AND user_id = $2)
           UNION SELECT batch_id FROM usage_metrics WHERE project_id = $1 AND user_id = $2)",
        Some("batches"),
    ),
    (
        "DELETE FROM batch_users WHERE project_id = $1 AND (user_id = $2
           OR batch_id NOT IN (SELECT id FROM batches WHERE project_id = $1))",
        None,
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
    ("DELETE FROM observations WHERE project_id = $1 AND trace_id IN (USER_TRACES)", None),
    ("DELETE FROM trace_keys WHERE project_id = $1 AND trace_id IN (USER_TRACES)", None),
    ("DELETE FROM traces WHERE project_id = $1 AND user_id = $2", Some("traces")),
    ("DELETE FROM usage_metrics WHERE project_id = $1 AND user_id = $2", Some("usage_metrics")),
];

/// After [`ERASE_USER`]: user `$2` of project `$1` was erased at `$3` (Unix ns). A batch received
/// before then is never normalized into their data again.
pub const RECORD_ERASURE: &str = "INSERT INTO erased_users (project_id, user_id, erased_at) VALUES ($1, $2, $3)
    ON CONFLICT (project_id, user_id) DO UPDATE SET erased_at = excluded.erased_at";

/// Whether batch `$2` of project `$1` was received before user `$3` was erased.
pub const RECEIVED_BEFORE_ERASURE: &str = "SELECT 1 FROM erased_users e JOIN batches b ON b.project_id = e.project_id
    WHERE e.project_id = $1 AND b.id = $2 AND e.user_id = $3 AND e.erased_at > b.received_at";

/// Whether batch `$2` of project `$1` was received before its project's trace retention at `$3`
/// (Unix ns, now): a replay does not rebuild traces retention removed.
pub const RECEIVED_BEFORE_TRACE_RETENTION: &str = "SELECT 1 FROM batches b JOIN projects p ON p.id = b.project_id
    WHERE b.project_id = $1 AND b.id = $2 AND p.trace_retention_days IS NOT NULL
      AND ($3 - b.received_at) / 86400000000000 >= p.trace_retention_days";

/// Why a re-normalized batch's output stays out of the traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retired {
    No,
    /// Received before one of its users was erased: the batch is deleted too.
    Erased,
    /// Received before its project's trace retention: the batch is kept as retention says.
    Expired,
}

/// Deleting batch `$2` of project `$1`, found to name an erased user once normalized again.
pub const DELETE_ERASED_BATCH: [&str; 2] = [
    "DELETE FROM batches WHERE project_id = $1 AND id = $2",
    "DELETE FROM batch_users WHERE project_id = $1 AND batch_id = $2",
];

/// Record that batch `$2` of project `$1` names user `$3` (SQLite; PostgreSQL records them all
/// in one statement).
pub const RECORD_BATCH_USER: &str =
    "INSERT INTO batch_users (project_id, batch_id, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";

/// One statement of [`ERASE_USER`] with its shared subquery filled in.
pub fn erase_statement(sql: &str) -> String {
    sql.replace("(USER_TRACES)", &format!("({USER_TRACES})"))
}

/// Expiring project `$1`'s traces the host last received data for before `$2` (Unix ns), in
/// order: the host's clock, not the agent's (a trace dated in the future expires too).
pub const EXPIRE_TRACES: &[(&str, Option<&str>)] = &[
    (
        "DELETE FROM fragments WHERE project_id = $1 AND trace_key IN (
           SELECT key FROM trace_keys WHERE project_id = $1 AND trace_id IN (
             SELECT id FROM traces WHERE project_id = $1 AND received_ns < $2))",
        None,
    ),
    ("DELETE FROM trace_models WHERE project_id = $1 AND trace_id IN (OLD_TRACES)", None),
    ("DELETE FROM observations WHERE project_id = $1 AND trace_id IN (OLD_TRACES)", None),
    ("DELETE FROM trace_keys WHERE project_id = $1 AND trace_id IN (OLD_TRACES)", None),
    ("DELETE FROM traces WHERE project_id = $1 AND received_ns < $2", Some("traces")),
    (
        "DELETE FROM fragments WHERE project_id = $1 AND kind = 'usage_metric' AND batch_id IN (
        SELECT batch_id FROM usage_metrics WHERE project_id = $1 AND time_ns < $2)",
        None,
    ),
    ("DELETE FROM usage_metrics WHERE project_id = $1 AND time_ns < $2", Some("usage_metrics")),
];

/// One statement of [`EXPIRE_TRACES`] with its shared subquery filled in.
pub fn expire_statement(sql: &str) -> String {
    sql.replace("(OLD_TRACES)", "(SELECT id FROM traces WHERE project_id = $1 AND received_ns < $2)")
}

/// Expiring project `$1`'s raw batches received before `$2` (never one still pending).
pub const EXPIRE_BATCHES: &str =
    "DELETE FROM batches WHERE project_id = $1 AND received_at < $2 AND status <> 'pending'";

/// After [`EXPIRE_BATCHES`]: forget which users project `$1`'s deleted batches named.
pub const FORGET_EXPIRED_BATCH_USERS: &str =
    "DELETE FROM batch_users WHERE project_id = $1 AND batch_id NOT IN (SELECT id FROM batches WHERE project_id = $1)";

/// Projects with a retention set.
pub const RETAINED_PROJECTS: &str = "SELECT id, batch_retention_days, trace_retention_days FROM projects
    WHERE batch_retention_days IS NOT NULL OR trace_retention_days IS NOT NULL";

/// `$1` days before `now_ns`.
pub fn days_before(now_ns: i64, days: i64) -> i64 {
    now_ns.saturating_sub(days.saturating_mul(86_400_000_000_000))
}
