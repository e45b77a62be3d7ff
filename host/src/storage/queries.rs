//! What both engines run alike, written once: each statement (sqlx binds `$1`… by number on
//! SQLite as on PostgreSQL), each row mapping. [`shared_queries!`] implements [`Queries`] for
//! an engine from its `pool`; what really differs between the dialects (a saturating sum,
//! text PostgreSQL cannot hold) comes from [`Dialect`]. What differs in kind — writing a
//! batch, full-text search, paging raw bodies, retention and erasure with their engine's
//! clean-up — stays in the engine's own module.

use std::borrow::Cow;

use async_trait::async_trait;

use super::budgets::{Alert, Budget};
use super::erasure::{Erased, Expired, Retention};
use super::{
    BATCH_PAGE, Batch, BatchSelection, ObservationCursor, ObservationEntry, OutcomeGroup, OutcomeRow, ProjectKey,
    Result, SessionRow, TraceFilter, TraceRow, UnclaimedRow, UsageGroup, UsageRow, UserRow,
};

/// What differs between the engines' SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The UTC day (`YYYY-MM-DD`) of a Unix-nanosecond column.
    pub fn day(self, column: &str) -> String {
        match self {
            Dialect::Sqlite => format!("strftime('%Y-%m-%d', {column} / 1000000000, 'unixepoch')"),
            Dialect::Postgres => {
                format!("to_char(to_timestamp({column} / 1000000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
            }
        }
    }

    /// The sum of an integer expression over a group, saturating at `i64::MAX` instead of
    /// failing the query (SQLite's `SUM` raises "integer overflow"; PostgreSQL's numeric sum
    /// would not fit a BIGINT), 0 for an empty group.
    pub fn sum_int(self, expr: &str) -> String {
        match self {
            // TOTAL is a float; CAST saturates a float beyond the integer range.
            Dialect::Sqlite => format!("CAST(TOTAL({expr}) AS INTEGER)"),
            Dialect::Postgres => format!("LEAST(COALESCE(SUM({expr}), 0), 9223372036854775807)::BIGINT"),
        }
    }

    /// The type of a double.
    pub fn real(self) -> &'static str {
        match self {
            Dialect::Sqlite => "REAL",
            Dialect::Postgres => "DOUBLE PRECISION",
        }
    }

    /// A string attribute of a JSON-object text column.
    pub fn attribute(self, column: &str, key: &str) -> String {
        match self {
            Dialect::Sqlite => format!("json_extract({column}, '$.{key}')"),
            Dialect::Postgres => format!("({column}::jsonb ->> '{key}')"),
        }
    }

    /// The function `f(haystack, needle)` that says where text first starts in text, from 1
    /// (0: nowhere). Literal, unlike LIKE (`%` and `_` are no wildcards).
    pub fn position(self) -> &'static str {
        match self {
            Dialect::Sqlite => "instr",
            Dialect::Postgres => "strpos",
        }
    }

    /// What takes erased text out of the database's files too, after the erasure commits:
    /// on SQLite the full-text index's segments merged (a contentless FTS5 index keeps deleted
    /// terms until then) and the write-ahead log, which still holds the pages as they were,
    /// checkpointed and emptied (`secure_delete` zeroes the rest); PostgreSQL frees the rows'
    /// space at its next VACUUM.
    pub fn after_erasure(self) -> &'static [&'static str] {
        match self {
            Dialect::Sqlite => {
                &["INSERT INTO traces_fts(traces_fts) VALUES ('optimize')", "PRAGMA wal_checkpoint(TRUNCATE)"]
            }
            Dialect::Postgres => &[],
        }
    }

    /// Text as the engine can store and compare it: NUL, the one character PostgreSQL text
    /// refuses, becomes U+FFFD there.
    pub fn text(self, value: &str) -> Cow<'_, str> {
        match self {
            Dialect::Postgres if value.contains('\0') => Cow::Owned(value.replace('\0', "\u{FFFD}")),
            _ => Cow::Borrowed(value),
        }
    }
}

/// The queries both engines answer with the same SQL. Object-safe; a supertrait of
/// [`super::Storage`], so an `Arc<dyn Storage>` answers them (with this trait in scope).
#[async_trait]
pub trait Queries: Send + Sync {
    /// Whether the database answers (`/readyz`).
    async fn ping(&self) -> Result<()>;

    // ---- projects -------------------------------------------------------------------------
    async fn insert_project(&self, id: &str, name: &str, public_key: &str, secret_hash: &str) -> Result<()>;
    async fn project_key(&self, public_key: &str) -> Result<Option<ProjectKey>>;
    async fn set_secret_hash(&self, project_id: &str, secret_hash: &str) -> Result<()>;
    /// Set a project's retention; false when there is no such project.
    async fn set_retention(&self, project_id: &str, retention: Retention) -> Result<bool>;

    // ---- raw batches --------------------------------------------------------------------------
    /// Up to `limit` stored batches of `selection` with an id above `after_id`, oldest first.
    /// With `bodies` false no body is read (`body` is empty, `body_codec` too): what a listing
    /// shows. Callers page through by id, never holding more than one page of bodies.
    async fn batch_page(
        &self,
        selection: &BatchSelection,
        after_id: i64,
        limit: i64,
        bodies: bool,
    ) -> Result<Vec<Batch>>;
    /// Every stored batch of `selection`, oldest first, with its bodies, read page by page but
    /// all held at once: for tests and tools on small databases; the host pages (see
    /// [`Queries::batch_page`]).
    async fn batches(&self, selection: &BatchSelection) -> Result<Vec<Batch>> {
        let mut all: Vec<Batch> = Vec::new();
        loop {
            let after = all.last().map_or(0, |b| b.id);
            let page = self.batch_page(selection, after, BATCH_PAGE, true).await?;
            let full = page.len() as i64 == BATCH_PAGE;
            all.extend(page);
            if !full {
                return Ok(all);
            }
        }
    }

    // ---- traces and what is made of them ------------------------------------------------------
    /// A page of the project's unclaimed resources, most recently seen first.
    async fn unclaimed(&self, project_id: &str, limit: i64, offset: i64) -> Result<Vec<UnclaimedRow>>;
    /// A trace; an id merged away still resolves through its key.
    async fn get_trace(&self, project_id: &str, id: &str) -> Result<Option<TraceRow>>;
    /// Up to `limit` observations of trace `trace_id` (its own id, not a key) after `after`,
    /// in timeline order.
    async fn observations(
        &self,
        project_id: &str,
        trace_id: &str,
        after: &ObservationCursor,
        limit: i64,
    ) -> Result<Vec<ObservationEntry>>;
    /// Sessions of the traces `filter` selects (`limit`, `offset`), latest first.
    async fn list_sessions(&self, project_id: &str, filter: &TraceFilter) -> Result<Vec<SessionRow>>;
    /// Usage per group over the traces `filter` selects (see [`super::analytics::usage_query`]).
    async fn usage(&self, project_id: &str, group: UsageGroup, filter: &TraceFilter) -> Result<Vec<UsageRow>>;
    /// Outcomes per group (see [`super::analytics::outcomes_query`]).
    async fn outcomes(&self, project_id: &str, group: OutcomeGroup, filter: &TraceFilter) -> Result<Vec<OutcomeRow>>;
    /// A page of the project's users, most recently seen first, with their traces per agent.
    async fn list_users(&self, project_id: &str, limit: i64, offset: i64) -> Result<Vec<UserRow>>;

    // ---- data at rest ---------------------------------------------------------------------
    /// Delete what every project's retention says has expired by `now_ns`.
    async fn enforce_retention(&self, now_ns: i64) -> Result<Expired>;
    /// Delete one user's traces, usage metrics and the raw batches that carried them, and
    /// keep them from coming back (`erased_users`).
    async fn erase_user(&self, project_id: &str, user_id: &str) -> Result<Erased>;

    // ---- budgets ---------------------------------------------------------------------------
    async fn create_budget(&self, budget: &Budget) -> Result<()>;
    async fn budgets(&self) -> Result<Vec<Budget>>;
    /// False when there is no such budget.
    async fn delete_budget(&self, id: &str) -> Result<bool>;
    /// What the budget's subject spent since `from_ns` (the sum of known trace costs).
    async fn spend(&self, budget: &Budget, from_ns: i64) -> Result<f64>;
    /// Put an alert in the outbox unless it is there (from any replica); true when it is new.
    async fn record_alert(&self, alert: &Alert, now_ns: i64) -> Result<bool>;
    /// Undelivered alerts due by `now_ns`.
    async fn due_alerts(&self, now_ns: i64) -> Result<Vec<Alert>>;
    /// Take a due alert until `until_ns`; false when another replica took it first.
    async fn claim_alert(&self, alert: &Alert, now_ns: i64, until_ns: i64) -> Result<bool>;
    /// The outcome of a delivery: delivered at `now_ns`, or failed and due again at `retry_ns`.
    async fn finish_alert(
        &self,
        alert: &Alert,
        outcome: std::result::Result<(), String>,
        now_ns: i64,
        retry_ns: i64,
    ) -> Result<()>;
    async fn alerts_of(&self, budget_id: &str) -> Result<Vec<Alert>>;

    // ---- web UI sessions (table ui_sessions; auth/session.rs) -------------------------------
    /// Store a signed-in browser's session: the SHA-256 (hex) of its token, its project and
    /// when it expires (Unix ns). Sessions expired by `now_ns` are removed at the same time.
    async fn insert_ui_session(&self, token_sha256: &str, project_id: &str, now_ns: i64, expires_ns: i64)
    -> Result<()>;
    /// The project of the session with this token digest, if it has not expired by `now_ns`.
    async fn ui_session(&self, token_sha256: &str, now_ns: i64) -> Result<Option<String>>;
    /// Revoke a session (sign-out); nothing happens when it is gone already.
    async fn delete_ui_session(&self, token_sha256: &str) -> Result<()>;
}

/// `impl Queries for $storage` over its `pool` of sqlx database `$db`, in `$dialect`.
macro_rules! shared_queries {
    ($storage:ty, $db:ty, $dialect:expr) => {
        #[async_trait::async_trait]
        impl $crate::storage::Queries for $storage {
            async fn ping(&self) -> $crate::storage::Result<()> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn insert_project(
                &self,
                id: &str,
                name: &str,
                public_key: &str,
                secret_hash: &str,
            ) -> $crate::storage::Result<()> {
                sqlx::query(
                    "INSERT INTO projects (id, name, public_key, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind($dialect.text(id))
                .bind($dialect.text(name))
                .bind($dialect.text(public_key))
                .bind(secret_hash)
                .bind($crate::storage::now_ns())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn project_key(&self, public_key: &str) -> $crate::storage::Result<Option<$crate::storage::ProjectKey>> {
                use sqlx::Row;
                let row = sqlx::query("SELECT id, secret_hash FROM projects WHERE public_key = $1")
                    .bind($dialect.text(public_key))
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|row| $crate::storage::ProjectKey {
                    project_id: row.get("id"),
                    secret_hash: row.get("secret_hash"),
                }))
            }

            async fn set_secret_hash(&self, project_id: &str, secret_hash: &str) -> $crate::storage::Result<()> {
                sqlx::query("UPDATE projects SET secret_hash = $1 WHERE id = $2")
                    .bind(secret_hash)
                    .bind(project_id)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn set_retention(
                &self,
                project_id: &str,
                retention: $crate::storage::Retention,
            ) -> $crate::storage::Result<bool> {
                let done = sqlx::query(
                    "UPDATE projects SET batch_retention_days = $1, trace_retention_days = $2 WHERE id = $3",
                )
                .bind(retention.batch_days)
                .bind(retention.trace_days)
                .bind(project_id)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn unclaimed(
                &self,
                project_id: &str,
                limit: i64,
                offset: i64,
            ) -> $crate::storage::Result<Vec<$crate::storage::UnclaimedRow>> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT service_name, scope_name, resources, last_seen FROM unclaimed WHERE project_id = $1
                     ORDER BY last_seen DESC, service_name, scope_name LIMIT $2 OFFSET $3",
                )
                .bind(project_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::storage::UnclaimedRow {
                        service_name: r.get("service_name"),
                        scope_name: r.get("scope_name"),
                        resources: r.get("resources"),
                        last_seen: $crate::trace::view::rfc3339(r.get("last_seen")),
                    })
                    .collect())
            }

            async fn get_trace(&self, project_id: &str, id: &str) -> $crate::storage::Result<Option<$crate::storage::TraceRow>> {
                use sqlx::Row;
                // A trace id that was merged away still resolves through its key.
                let row = sqlx::query(
                    "SELECT t.summary FROM traces t
                     WHERE t.project_id = $1 AND t.id = COALESCE(
                       (SELECT trace_id FROM trace_keys WHERE project_id = $1 AND key = $2), $2)",
                )
                .bind(project_id)
                .bind($dialect.text(id))
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| $crate::storage::TraceRow::of_summary(r.get("summary"))).transpose()
            }

            async fn observations(
                &self,
                project_id: &str,
                trace_id: &str,
                after: &$crate::storage::ObservationCursor,
                limit: i64,
            ) -> $crate::storage::Result<Vec<$crate::storage::ObservationEntry>> {
                let rows = sqlx::query($crate::storage::OBSERVATION_PAGE)
                    .bind(project_id)
                    .bind($dialect.text(trace_id))
                    .bind(after.sort_ns)
                    .bind($dialect.text(&after.kind))
                    .bind($dialect.text(&after.id))
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map($crate::storage::observation_entry).collect()
            }

            async fn list_sessions(
                &self,
                project_id: &str,
                filter: &$crate::storage::TraceFilter,
            ) -> $crate::storage::Result<Vec<$crate::storage::SessionRow>> {
                use sqlx::Row;
                let d = $dialect;
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT t.session_id, MIN(t.agent) AS agent, MAX(t.user_id) AS user_id, MAX(t.device_id) AS device_id,
                            MAX(t.repository) AS repository, MAX(t.branch) AS branch, MAX(t.team) AS team,
                            MIN(t.start_ns) AS start_ns, MAX(t.end_ns) AS end_ns, COUNT(*) AS n,
                            {} AS i, {} AS o, {} AS cr, {} AS cc, {} AS r, SUM(t.cost_usd) AS cost
                     FROM traces t WHERE t.session_id IS NOT NULL AND t.project_id = ",
                    d.sum_int("t.input_tokens"),
                    d.sum_int("t.output_tokens"),
                    d.sum_int("t.cache_read_tokens"),
                    d.sum_int("t.cache_creation_tokens"),
                    d.sum_int("t.reasoning_tokens"),
                ));
                q.push_bind(project_id.to_owned());
                $crate::storage::analytics::push_trace_filters(&mut q, filter);
                q.push(" GROUP BY t.session_id ORDER BY MAX(t.start_ns) DESC NULLS LAST, t.session_id LIMIT ")
                    .push_bind(filter.limit)
                    .push(" OFFSET ")
                    .push_bind(filter.offset);
                let rows = q.build().fetch_all(&self.pool).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::storage::SessionRow {
                        id: r.get("session_id"),
                        agent: r.get("agent"),
                        user_id: r.get("user_id"),
                        device_id: r.get("device_id"),
                        repository: r.get("repository"),
                        branch: r.get("branch"),
                        team: r.get("team"),
                        start_time: $crate::trace::view::rfc3339(r.get("start_ns")),
                        end_time: $crate::trace::view::rfc3339(r.get("end_ns")),
                        trace_count: r.get("n"),
                        input_tokens: r.get("i"),
                        output_tokens: r.get("o"),
                        cache_read_tokens: r.get("cr"),
                        cache_creation_tokens: r.get("cc"),
                        reasoning_tokens: r.get("r"),
                        cost_usd: r.get("cost"),
                    })
                    .collect())
            }

            async fn usage(
                &self,
                project_id: &str,
                group: $crate::storage::UsageGroup,
                filter: &$crate::storage::TraceFilter,
            ) -> $crate::storage::Result<Vec<$crate::storage::UsageRow>> {
                use $crate::storage::analytics::{USAGE_COUNTS, decoded, usage_query, usage_row};
                use sqlx::Row;
                let mut q = usage_query::<$db>($dialect, project_id, group, filter);
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let counts = USAGE_COUNTS.map(|c| r.try_get(c));
                        Ok(usage_row(r.try_get("key")?, decoded(counts)?, r.try_get("cost_usd")?))
                    })
                    .collect()
            }

            async fn outcomes(
                &self,
                project_id: &str,
                group: $crate::storage::OutcomeGroup,
                filter: &$crate::storage::TraceFilter,
            ) -> $crate::storage::Result<Vec<$crate::storage::OutcomeRow>> {
                use $crate::storage::analytics::{OUTCOME_FIELDS, decoded, outcome_row, outcomes_query};
                use sqlx::Row;
                let mut q = outcomes_query::<$db>($dialect, project_id, group, filter);
                let rows = q.build().fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| Ok(outcome_row(r.try_get("key")?, decoded(OUTCOME_FIELDS.map(|c| r.try_get(c)))?)))
                    .collect()
            }

            async fn list_users(
                &self,
                project_id: &str,
                limit: i64,
                offset: i64,
            ) -> $crate::storage::Result<Vec<$crate::storage::UserRow>> {
                use std::collections::BTreeMap;
                use sqlx::Row;
                let d = $dialect;
                let rows = sqlx::query(&format!(
                    "SELECT user_id, COUNT(*) AS n, COUNT(DISTINCT session_id) AS sessions,
                            {} AS i, {} AS o, {} AS cr, {} AS cc, {} AS r, SUM(cost_usd) AS cost,
                            MAX(COALESCE(end_ns, start_ns)) AS last_ns
                     FROM traces WHERE project_id = $1 AND user_id IS NOT NULL
                     GROUP BY user_id ORDER BY last_ns DESC NULLS LAST, user_id LIMIT $2 OFFSET $3",
                    d.sum_int("input_tokens"),
                    d.sum_int("output_tokens"),
                    d.sum_int("cache_read_tokens"),
                    d.sum_int("cache_creation_tokens"),
                    d.sum_int("reasoning_tokens"),
                ))
                .bind(project_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
                let mut users: Vec<$crate::storage::UserRow> = rows
                    .into_iter()
                    .map(|r| $crate::storage::UserRow {
                        id: r.get("user_id"),
                        traces: r.get("n"),
                        sessions: r.get("sessions"),
                        input_tokens: r.get("i"),
                        output_tokens: r.get("o"),
                        cache_read_tokens: r.get("cr"),
                        cache_creation_tokens: r.get("cc"),
                        reasoning_tokens: r.get("r"),
                        cost_usd: r.get("cost"),
                        last_seen: $crate::trace::view::rfc3339(r.get("last_ns")),
                        agents: BTreeMap::new(),
                    })
                    .collect();
                if users.is_empty() {
                    return Ok(users);
                }
                // Per-agent counts of the whole page in one query (the page holds at most 500 users).
                let mut q =
                    sqlx::QueryBuilder::<$db>::new("SELECT user_id, agent, COUNT(*) AS n FROM traces WHERE project_id = ");
                q.push_bind(project_id).push(" AND user_id IN (");
                let mut list = q.separated(", ");
                for user in &users {
                    list.push_bind(user.id.clone());
                }
                q.push(") GROUP BY user_id, agent");
                let mut agents: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
                for r in q.build().fetch_all(&self.pool).await? {
                    agents.entry(r.get("user_id")).or_default().insert(r.get("agent"), r.get("n"));
                }
                for user in &mut users {
                    user.agents = agents.remove(&user.id).unwrap_or_default();
                }
                Ok(users)
            }

            async fn batch_page(
                &self,
                selection: &$crate::storage::BatchSelection,
                after_id: i64,
                limit: i64,
                bodies: bool,
            ) -> $crate::storage::Result<Vec<$crate::storage::Batch>> {
                use $crate::storage::BatchSelection;
                use sqlx::Row;
                let d = $dialect;
                // A listing selects only what it shows: never a body.
                let columns = if bodies {
                    "id, project_id, signal, encoding, received_at, status, agents, error, body, body_codec"
                } else {
                    "id, project_id, signal, encoding, received_at, status, agents, error"
                };
                let mut q = sqlx::QueryBuilder::<$db>::new(format!("SELECT {columns} FROM batches WHERE id > "));
                q.push_bind(after_id);
                match selection {
                    BatchSelection::Pending => {
                        q.push(" AND status = 'pending'");
                    }
                    BatchSelection::Problems { project_id } => {
                        q.push(" AND status IN ('failed', 'unclaimed') AND project_id = ")
                            .push_bind(d.text(project_id).into_owned());
                    }
                    BatchSelection::Unclaimed => {
                        q.push(" AND status = 'unclaimed'");
                    }
                    BatchSelection::Replay(filter) => {
                        if let Some(project) = &filter.project_id {
                            q.push(" AND project_id = ").push_bind(d.text(project).into_owned());
                        }
                        if let Some(agent) = &filter.agent {
                            // An agent name matched literally in the comma-separated list.
                            q.push(format!(" AND {}(',' || COALESCE(agents, '') || ',', ", d.position()))
                                .push_bind(format!(",{},", d.text(agent)))
                                .push(") > 0");
                        }
                        if let Some(from) = filter.from_ns {
                            q.push(" AND received_at >= ").push_bind(from);
                        }
                        if let Some(to) = filter.to_ns {
                            q.push(" AND received_at < ").push_bind(to);
                        }
                        if filter.failed_only {
                            q.push(" AND status IN ('failed', 'unclaimed')");
                        }
                    }
                }
                q.push(" ORDER BY id LIMIT ").push_bind(limit);
                let rows = q.build().fetch_all(&self.pool).await?;
                Ok(rows
                    .into_iter()
                    .map(|r| $crate::storage::Batch {
                        id: r.get("id"),
                        project_id: r.get("project_id"),
                        signal: r.get("signal"),
                        encoding: r.get("encoding"),
                        body: if bodies { r.get("body") } else { Vec::new() },
                        body_codec: if bodies { r.get("body_codec") } else { String::new() },
                        received_at: r.get("received_at"),
                        status: r.get("status"),
                        agents: r.get("agents"),
                        error: r.get("error"),
                    })
                    .collect())
            }

            async fn enforce_retention(&self, now_ns: i64) -> $crate::storage::Result<$crate::storage::Expired> {
                use $crate::storage::erasure;
                use sqlx::Row;
                let projects = sqlx::query(erasure::RETAINED_PROJECTS).fetch_all(&self.pool).await?;
                let mut expired = $crate::storage::Expired::default();
                for project in projects {
                    let id: String = project.try_get("id")?;
                    let mut tx = self.pool.begin().await?;
                    if let Some(days) = project.try_get::<Option<i64>, _>("batch_retention_days")? {
                        let cutoff = erasure::days_before(now_ns, days);
                        expired.batches += sqlx::query(erasure::EXPIRE_BATCHES)
                            .bind(&id)
                            .bind(cutoff)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected();
                        sqlx::query(erasure::FORGET_EXPIRED_BATCH_USERS).bind(&id).execute(&mut *tx).await?;
                    }
                    if let Some(days) = project.try_get::<Option<i64>, _>("trace_retention_days")? {
                        let cutoff = erasure::days_before(now_ns, days);
                        for (sql, counts) in erasure::EXPIRE_TRACES {
                            let sql = erasure::expire_statement(sql);
                            let n = sqlx::query(&sql).bind(&id).bind(cutoff).execute(&mut *tx).await?.rows_affected();
                            match *counts {
                                Some("traces") => expired.traces += n,
                                Some(_) => expired.usage_metrics += n,
                                None => {}
                            }
                        }
                    }
                    tx.commit().await?;
                }
                Ok(expired)
            }

            async fn erase_user(&self, project_id: &str, user_id: &str) -> $crate::storage::Result<$crate::storage::Erased> {
                use $crate::storage::erasure;
                let d = $dialect;
                let (project_id, user_id) = (d.text(project_id).into_owned(), d.text(user_id).into_owned());
                let mut tx = self.pool.begin().await?;
                let mut erased = $crate::storage::Erased::default();
                for (sql, counts) in erasure::ERASE_USER {
                    let sql = erasure::erase_statement(sql);
                    let n = sqlx::query(&sql).bind(&project_id).bind(&user_id).execute(&mut *tx).await?.rows_affected();
                    match *counts {
                        Some("batches") => erased.batches += n,
                        Some("traces") => erased.traces += n,
                        Some(_) => erased.usage_metrics += n,
                        None => {}
                    }
                }
                sqlx::query(erasure::RECORD_ERASURE)
                    .bind(&project_id)
                    .bind(&user_id)
                    .bind($crate::storage::now_ns())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                for statement in d.after_erasure() {
                    sqlx::query(statement).execute(&self.pool).await?;
                }
                Ok(erased)
            }

            async fn create_budget(&self, b: &$crate::storage::Budget) -> $crate::storage::Result<()> {
                let thresholds = serde_json::to_string(&b.thresholds)
                    .map_err(|e| $crate::storage::StorageError::Corrupt(e.to_string()))?;
                sqlx::query($crate::storage::budgets::INSERT_BUDGET)
                    .bind(&b.id)
                    .bind(&b.project_id)
                    .bind(&b.scope)
                    .bind(&b.subject)
                    .bind(&b.period)
                    .bind(b.limit_usd)
                    .bind(thresholds)
                    .bind(&b.webhook_url)
                    .bind(b.created_at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn budgets(&self) -> $crate::storage::Result<Vec<$crate::storage::Budget>> {
                use sqlx::Row;
                let rows = sqlx::query($crate::storage::budgets::SELECT_BUDGETS).fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|r| {
                        let thresholds: String = r.try_get("thresholds")?;
                        let project_id: Option<String> = r.try_get("project_id")?;
                        Ok($crate::storage::Budget {
                            id: r.try_get("id")?,
                            all_projects: project_id.is_none(),
                            project_id,
                            scope: r.try_get("scope")?,
                            subject: r.try_get("subject")?,
                            period: r.try_get("period")?,
                            limit_usd: r.try_get("limit_usd")?,
                            thresholds: serde_json::from_str(&thresholds)
                                .map_err(|e| $crate::storage::StorageError::Corrupt(e.to_string()))?,
                            webhook_url: r.try_get("webhook_url")?,
                            created_at: r.try_get("created_at")?,
                        })
                    })
                    .collect()
            }

            async fn delete_budget(&self, id: &str) -> $crate::storage::Result<bool> {
                use $crate::storage::budgets::{DELETE_ALERTS, DELETE_BUDGET};
                let mut tx = self.pool.begin().await?;
                sqlx::query(DELETE_ALERTS).bind(id).execute(&mut *tx).await?;
                let deleted = sqlx::query(DELETE_BUDGET).bind(id).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                Ok(deleted == 1)
            }

            async fn spend(&self, b: &$crate::storage::Budget, from_ns: i64) -> $crate::storage::Result<f64> {
                use sqlx::Row;
                let column = $crate::storage::budgets::scope_column(&b.scope)
                    .ok_or_else(|| $crate::storage::StorageError::Corrupt(format!("budget scope {:?}", b.scope)))?;
                let row = sqlx::query(&$crate::storage::budgets::spend_sql(column))
                    .bind(&b.subject)
                    .bind(from_ns)
                    .bind(&b.project_id)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(row.try_get::<Option<f64>, _>("spent")?.unwrap_or(0.0))
            }

            async fn record_alert(&self, a: &$crate::storage::Alert, now_ns: i64) -> $crate::storage::Result<bool> {
                let done = sqlx::query($crate::storage::budgets::INSERT_ALERT)
                    .bind(&a.budget_id)
                    .bind(&a.period_start)
                    .bind(a.threshold)
                    .bind(&a.payload)
                    .bind(now_ns)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn due_alerts(&self, now_ns: i64) -> $crate::storage::Result<Vec<$crate::storage::Alert>> {
                let rows = sqlx::query($crate::storage::budgets::DUE_ALERTS).bind(now_ns).fetch_all(&self.pool).await?;
                rows.iter().map(alert_of_row).collect()
            }

            async fn claim_alert(
                &self,
                a: &$crate::storage::Alert,
                now_ns: i64,
                until_ns: i64,
            ) -> $crate::storage::Result<bool> {
                let done = sqlx::query($crate::storage::budgets::CLAIM_ALERT)
                    .bind(&a.budget_id)
                    .bind(&a.period_start)
                    .bind(a.threshold)
                    .bind(until_ns)
                    .bind(now_ns)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn finish_alert(
                &self,
                a: &$crate::storage::Alert,
                outcome: std::result::Result<(), String>,
                now_ns: i64,
                retry_ns: i64,
            ) -> $crate::storage::Result<()> {
                use $crate::storage::budgets::{ALERT_DELIVERED, ALERT_FAILED};
                let query = match &outcome {
                    Ok(()) => sqlx::query(ALERT_DELIVERED)
                        .bind(&a.budget_id)
                        .bind(&a.period_start)
                        .bind(a.threshold)
                        .bind(now_ns),
                    Err(error) => sqlx::query(ALERT_FAILED)
                        .bind(&a.budget_id)
                        .bind(&a.period_start)
                        .bind(a.threshold)
                        .bind(error.clone())
                        .bind(retry_ns),
                };
                query.execute(&self.pool).await?;
                Ok(())
            }

            async fn alerts_of(&self, budget_id: &str) -> $crate::storage::Result<Vec<$crate::storage::Alert>> {
                let rows = sqlx::query($crate::storage::budgets::ALERTS_OF).bind(budget_id).fetch_all(&self.pool).await?;
                rows.iter().map(alert_of_row).collect()
            }

            async fn insert_ui_session(
                &self,
                token_sha256: &str,
                project_id: &str,
                now_ns: i64,
                expires_ns: i64,
            ) -> $crate::storage::Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1").bind(now_ns).execute(&mut *tx).await?;
                sqlx::query(
                    "INSERT INTO ui_sessions (token_sha256, project_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(token_sha256)
                .bind($dialect.text(project_id))
                .bind(now_ns)
                .bind(expires_ns)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn ui_session(&self, token_sha256: &str, now_ns: i64) -> $crate::storage::Result<Option<String>> {
                use sqlx::Row;
                let row = sqlx::query("SELECT project_id FROM ui_sessions WHERE token_sha256 = $1 AND expires_at > $2")
                    .bind(token_sha256)
                    .bind(now_ns)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.map(|r| r.get("project_id")))
            }

            async fn delete_ui_session(&self, token_sha256: &str) -> $crate::storage::Result<()> {
                sqlx::query("DELETE FROM ui_sessions WHERE token_sha256 = $1")
                    .bind(token_sha256)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        /// One row of an alert query.
        fn alert_of_row(r: &<$db as sqlx::Database>::Row) -> $crate::storage::Result<$crate::storage::Alert> {
            use sqlx::Row;
            Ok($crate::storage::Alert {
                budget_id: r.try_get("budget_id")?,
                period_start: r.try_get("period_start")?,
                threshold: r.try_get("threshold")?,
                payload: r.try_get("payload")?,
                attempts: r.try_get("attempts")?,
                delivered_at: r.try_get("delivered_at")?,
                last_error: r.try_get("last_error")?,
            })
        }
    };
}

pub(crate) use shared_queries;
