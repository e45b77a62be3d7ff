//! The embedded default engine: SQLite through sqlx, WAL, `synchronous=FULL` (when
//! `insert_batch` returns, the body is on disk), migrations in `host/migrations/sqlite/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool, Transaction};
use tokio::sync::Mutex;

use super::{
    Batch, BatchSelection, BatchStatus, ProjectKey, Result, SessionRow, Storage, StorageError, TraceFilter, TraceRow,
    UnclaimedRow, UserRow,
};
use crate::trace::model::{Body, Fragment};
use crate::trace::view::{ns, rfc3339};
use crate::trace::{KeyGroups, Stored, TraceRecord, assemble};

fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// The SQLite database.
#[derive(Clone)]
pub struct SqliteStorage {
    pool: SqlitePool,
    /// Trace recomputation is read-modify-write: one writer at a time keeps it exact.
    writer: std::sync::Arc<Mutex<()>>,
    fallback_user: Option<String>,
}

impl SqliteStorage {
    /// Open (and create, and migrate) the database at `url` (`sqlite://PATH` or `sqlite::memory:`).
    pub async fn connect(url: &str, fallback_user: Option<String>) -> Result<Self> {
        let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
            return Err(StorageError::Url(url.to_owned()));
        };
        if let Some(parent) = Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|e| StorageError::Db(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStorage { pool, writer: Default::default(), fallback_user })
    }

    async fn batches_where(&self, condition: &str, project: Option<&str>) -> Result<Vec<Batch>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, project_id, signal, encoding, body, received_at, status, agents, error FROM batches WHERE ",
        );
        q.push(condition);
        if let Some(project) = project {
            q.push(" AND project_id = ").push_bind(project);
        }
        q.push(" ORDER BY id");
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(batch_of_row).collect())
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_project(&self, id: &str, name: &str, public_key: &str, secret_hash: &str) -> Result<()> {
        sqlx::query("INSERT INTO projects (id, name, public_key, secret_hash, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(id)
            .bind(name)
            .bind(public_key)
            .bind(secret_hash)
            .bind(now_ns())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn project_key(&self, public_key: &str) -> Result<Option<ProjectKey>> {
        let row = sqlx::query("SELECT id, secret_hash FROM projects WHERE public_key = ?")
            .bind(public_key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|row| ProjectKey { project_id: row.get("id"), secret_hash: row.get("secret_hash") }))
    }

    async fn set_secret_hash(&self, project_id: &str, secret_hash: &str) -> Result<()> {
        sqlx::query("UPDATE projects SET secret_hash = ? WHERE id = ?")
            .bind(secret_hash)
            .bind(project_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn insert_batch(&self, project_id: &str, signal: &str, encoding: &str, body: &[u8]) -> Result<i64> {
        let digest = crate::ids::sha256_hex(body);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO batches (project_id, signal, encoding, body, body_sha256, received_at, status)
             VALUES (?, ?, ?, ?, ?, ?, 'pending')
             ON CONFLICT (project_id, signal, body_sha256) DO UPDATE SET status = status
             RETURNING id",
        )
        .bind(project_id)
        .bind(signal)
        .bind(encoding)
        .bind(body)
        .bind(digest)
        .bind(now_ns())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    async fn finish_batch(&self, id: i64, status: BatchStatus, agents: &[String], error: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE batches SET status = ?, agents = ?, error = ?, processed_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind((!agents.is_empty()).then(|| agents.join(",")))
            .bind(error)
            .bind(now_ns())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn batches(&self, selection: &BatchSelection) -> Result<Vec<Batch>> {
        let filter = match selection {
            BatchSelection::Pending => return self.batches_where("status = 'pending'", None).await,
            BatchSelection::Problems { project_id } => {
                return self.batches_where("status IN ('failed', 'unclaimed')", Some(project_id)).await;
            }
            BatchSelection::Unclaimed => return self.batches_where("status = 'unclaimed'", None).await,
            BatchSelection::Replay(filter) => filter,
        };
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT id, project_id, signal, encoding, body, received_at, status, agents, error FROM batches WHERE 1 = 1",
        );
        if let Some(project) = &filter.project_id {
            q.push(" AND project_id = ").push_bind(project.clone());
        }
        if let Some(agent) = &filter.agent {
            q.push(" AND (',' || COALESCE(agents, '') || ',') LIKE ").push_bind(format!("%,{agent},%"));
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
        q.push(" ORDER BY id");
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(batch_of_row).collect())
    }

    async fn apply_fragments(
        &self,
        project_id: &str,
        batch_id: i64,
        fragments: &[(String, Fragment)],
    ) -> Result<usize> {
        let _writer = self.writer.lock().await;
        // IMMEDIATE: take the write lock up front; a read that later upgrades to a write would
        // fail with SQLITE_BUSY (not wait) when another connection wrote in between.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;

        // What an earlier run of this batch produced is replaced, not added to (replay).
        let mut touched: BTreeSet<String> = sqlx::query_scalar(
            "SELECT DISTINCT k.trace_id FROM fragments f JOIN trace_keys k
               ON k.project_id = f.project_id AND k.key = f.trace_key
             WHERE f.project_id = ? AND f.batch_id = ?",
        )
        .bind(project_id)
        .bind(batch_id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        sqlx::query("DELETE FROM fragments WHERE project_id = ? AND batch_id = ?")
            .bind(project_id)
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM usage_metrics WHERE project_id = ? AND batch_id = ?")
            .bind(project_id)
            .bind(batch_id)
            .execute(&mut *tx)
            .await?;

        // Usage metrics go to their own table, never into traces.
        for (agent, f) in fragments {
            if let Body::UsageMetric(m) = &f.body {
                sqlx::query(
                    "INSERT INTO usage_metrics (project_id, session_id, name, report_id, agent, user_id, time_ns, value, unit, attributes, batch_id)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                     ON CONFLICT (project_id, session_id, name, report_id) DO UPDATE SET
                       value = excluded.value, attributes = excluded.attributes, batch_id = excluded.batch_id",
                )
                .bind(project_id)
                .bind(f.attribution.session_id.as_deref().unwrap_or(""))
                .bind(&m.name)
                .bind(&f.report_id)
                .bind(agent)
                .bind(&f.attribution.user_id)
                .bind(ns(Some(m.time_unix_nano)))
                .bind(m.value)
                .bind(&m.unit)
                .bind(&m.attributes_json)
                .bind(batch_id)
                .execute(&mut *tx)
                .await?;
            }
        }

        // Join keys into traces: keys named together belong to one trace, whose id is the
        // smallest key of all.
        let trace_fragments: Vec<&(String, Fragment)> =
            fragments.iter().filter(|(_, f)| !matches!(f.body, Body::UsageMetric(_))).collect();
        let mut groups = KeyGroups::default();
        for (_, f) in &trace_fragments {
            groups.join(std::iter::once(&f.trace_key).chain(&f.also_known_as));
        }
        for keys in groups.into_groups() {
            touched.insert(assign_trace(&mut tx, project_id, &keys).await?);
        }

        for (agent, f) in &trace_fragments {
            let payload = serde_json::to_string(f).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            sqlx::query(
                "INSERT INTO fragments (project_id, trace_key, kind, fragment_id, report_id, batch_id, agent, payload)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (project_id, trace_key, kind, fragment_id, report_id) DO UPDATE SET
                   payload = excluded.payload, batch_id = excluded.batch_id, agent = excluded.agent",
            )
            .bind(project_id)
            .bind(&f.trace_key)
            .bind(f.body.kind())
            .bind(&f.id)
            .bind(&f.report_id)
            .bind(batch_id)
            .bind(agent)
            .bind(payload)
            .execute(&mut *tx)
            .await?;
        }

        for trace_id in &touched {
            recompute_trace(&mut tx, project_id, trace_id, self.fallback_user.as_deref()).await?;
        }
        tx.commit().await?;
        Ok(touched.len())
    }

    async fn count_unclaimed(&self, project_id: &str, service_name: &str, scope_names: &[String]) -> Result<()> {
        let scopes: Vec<&str> =
            if scope_names.is_empty() { vec![""] } else { scope_names.iter().map(String::as_str).collect() };
        for scope in scopes {
            sqlx::query(
                "INSERT INTO unclaimed (project_id, service_name, scope_name, resources, last_seen) VALUES (?, ?, ?, 1, ?)
                 ON CONFLICT (project_id, service_name, scope_name) DO UPDATE SET
                   resources = resources + 1, last_seen = excluded.last_seen",
            )
            .bind(project_id)
            .bind(service_name)
            .bind(scope)
            .bind(now_ns())
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    async fn unclaimed(&self, project_id: &str) -> Result<Vec<UnclaimedRow>> {
        let rows = sqlx::query(
            "SELECT service_name, scope_name, resources, last_seen FROM unclaimed WHERE project_id = ?
             ORDER BY last_seen DESC, service_name, scope_name",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| UnclaimedRow {
                service_name: r.get("service_name"),
                scope_name: r.get("scope_name"),
                resources: r.get("resources"),
                last_seen: rfc3339(r.get("last_seen")),
            })
            .collect())
    }

    async fn list_traces(&self, project_id: &str, filter: &TraceFilter) -> Result<Vec<TraceRow>> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT summary FROM traces WHERE project_id = ");
        q.push_bind(project_id);
        let eq = [
            ("session_id", &filter.session_id),
            ("user_id", &filter.user_id),
            ("device_id", &filter.device_id),
            ("agent", &filter.agent),
        ];
        for (column, value) in eq {
            if let Some(value) = value {
                q.push(format!(" AND {column} = ")).push_bind(value.clone());
            }
        }
        if let Some(from) = filter.from_ns {
            q.push(" AND start_ns >= ").push_bind(from);
        }
        if let Some(to) = filter.to_ns {
            q.push(" AND start_ns < ").push_bind(to);
        }
        q.push(" ORDER BY start_ns DESC, id LIMIT ").push_bind(filter.limit).push(" OFFSET ").push_bind(filter.offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.into_iter().map(|r| Ok(TraceRow { summary: parse_json(r.get("summary"))?, observations: None })).collect()
    }

    async fn get_trace(&self, project_id: &str, id: &str) -> Result<Option<TraceRow>> {
        // A trace id that was merged away still resolves through its key.
        let row = sqlx::query(
            "SELECT t.summary, t.observations FROM traces t
             WHERE t.project_id = ?1 AND t.id = COALESCE(
               (SELECT trace_id FROM trace_keys WHERE project_id = ?1 AND key = ?2), ?2)",
        )
        .bind(project_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TraceRow {
                summary: parse_json(r.get("summary"))?,
                observations: Some(parse_json(r.get("observations"))?),
            })
        })
        .transpose()
    }

    async fn list_sessions(
        &self,
        project_id: &str,
        session: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<SessionRow>> {
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT session_id, MIN(agent) AS agent, MAX(user_id) AS user_id, MAX(device_id) AS device_id,
                    MIN(start_ns) AS start_ns, MAX(end_ns) AS end_ns, COUNT(*) AS n,
                    SUM(input_tokens) AS i, SUM(output_tokens) AS o, SUM(cache_read_tokens) AS cr,
                    SUM(cache_creation_tokens) AS cc, SUM(reasoning_tokens) AS r, SUM(cost_usd) AS cost
             FROM traces WHERE session_id IS NOT NULL AND project_id = ",
        );
        q.push_bind(project_id);
        if let Some(session) = session {
            q.push(" AND session_id = ").push_bind(session);
        }
        q.push(" GROUP BY session_id ORDER BY MAX(start_ns) DESC, session_id LIMIT ")
            .push_bind(limit)
            .push(" OFFSET ")
            .push_bind(offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        Ok(rows
            .into_iter()
            .map(|r| SessionRow {
                id: r.get("session_id"),
                agent: r.get("agent"),
                user_id: r.get("user_id"),
                device_id: r.get("device_id"),
                start_time: rfc3339(r.get("start_ns")),
                end_time: rfc3339(r.get("end_ns")),
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

    async fn list_users(&self, project_id: &str, limit: i64, offset: i64) -> Result<Vec<UserRow>> {
        let rows = sqlx::query(
            "SELECT user_id, COUNT(*) AS n, COUNT(DISTINCT session_id) AS sessions,
                    SUM(input_tokens) AS i, SUM(output_tokens) AS o, SUM(cache_read_tokens) AS cr,
                    SUM(cache_creation_tokens) AS cc, SUM(reasoning_tokens) AS r, SUM(cost_usd) AS cost,
                    MAX(COALESCE(end_ns, start_ns)) AS last_ns
             FROM traces WHERE project_id = ? AND user_id IS NOT NULL
             GROUP BY user_id ORDER BY last_ns DESC, user_id LIMIT ? OFFSET ?",
        )
        .bind(project_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let mut users: Vec<UserRow> = rows
            .into_iter()
            .map(|r| UserRow {
                id: r.get("user_id"),
                traces: r.get("n"),
                sessions: r.get("sessions"),
                input_tokens: r.get("i"),
                output_tokens: r.get("o"),
                cache_read_tokens: r.get("cr"),
                cache_creation_tokens: r.get("cc"),
                reasoning_tokens: r.get("r"),
                cost_usd: r.get("cost"),
                last_seen: rfc3339(r.get("last_ns")),
                agents: BTreeMap::new(),
            })
            .collect();
        for user in &mut users {
            let rows = sqlx::query(
                "SELECT agent, COUNT(*) AS n FROM traces WHERE project_id = ? AND user_id = ? GROUP BY agent",
            )
            .bind(project_id)
            .bind(&user.id)
            .fetch_all(&self.pool)
            .await?;
            user.agents = rows.into_iter().map(|r| (r.get("agent"), r.get("n"))).collect();
        }
        Ok(users)
    }
}

fn batch_of_row(r: sqlx::sqlite::SqliteRow) -> Batch {
    Batch {
        id: r.get("id"),
        project_id: r.get("project_id"),
        signal: r.get("signal"),
        encoding: r.get("encoding"),
        body: r.get("body"),
        received_at: r.get("received_at"),
        status: r.get("status"),
        agents: r.get("agents"),
        error: r.get("error"),
    }
}

fn parse_json(text: String) -> Result<serde_json::Value> {
    serde_json::from_str(&text).map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// Map `keys` to one trace, merging the traces they already belong to. Returns its id.
async fn assign_trace(tx: &mut Transaction<'_, Sqlite>, project_id: &str, keys: &[String]) -> Result<String> {
    let mut existing = BTreeSet::new();
    for key in keys {
        let id: Option<String> = sqlx::query_scalar("SELECT trace_id FROM trace_keys WHERE project_id = ? AND key = ?")
            .bind(project_id)
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?;
        existing.extend(id);
    }
    let mut all_keys: BTreeSet<String> = keys.iter().cloned().collect();
    for trace_id in &existing {
        let more: Vec<String> = sqlx::query_scalar("SELECT key FROM trace_keys WHERE project_id = ? AND trace_id = ?")
            .bind(project_id)
            .bind(trace_id)
            .fetch_all(&mut **tx)
            .await?;
        all_keys.extend(more);
    }
    let Some(trace_id) = all_keys.first().cloned() else {
        return Err(StorageError::Corrupt("a fragment without a trace key".into()));
    };
    for old in existing.iter().filter(|id| **id != trace_id) {
        sqlx::query("DELETE FROM traces WHERE project_id = ? AND id = ?")
            .bind(project_id)
            .bind(old)
            .execute(&mut **tx)
            .await?;
    }
    for key in &all_keys {
        sqlx::query(
            "INSERT INTO trace_keys (project_id, key, trace_id) VALUES (?, ?, ?)
             ON CONFLICT (project_id, key) DO UPDATE SET trace_id = excluded.trace_id",
        )
        .bind(project_id)
        .bind(key)
        .bind(&trace_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(trace_id)
}

async fn recompute_trace(
    tx: &mut Transaction<'_, Sqlite>,
    project_id: &str,
    trace_id: &str,
    fallback_user: Option<&str>,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT f.agent, f.payload FROM fragments f JOIN trace_keys k
           ON k.project_id = f.project_id AND k.key = f.trace_key
         WHERE k.project_id = ? AND k.trace_id = ?",
    )
    .bind(project_id)
    .bind(trace_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut stored = Vec::with_capacity(rows.len());
    for row in rows {
        let payload: String = row.get("payload");
        let fragment: Fragment = serde_json::from_str(&payload).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        stored.push(Stored { agent: row.get("agent"), fragment });
    }
    let Some(t) = assemble(project_id, trace_id, stored, fallback_user) else {
        sqlx::query("DELETE FROM traces WHERE project_id = ? AND id = ?")
            .bind(project_id)
            .bind(trace_id)
            .execute(&mut **tx)
            .await?;
        return Ok(());
    };
    write_trace(tx, project_id, &t).await
}

async fn write_trace(tx: &mut Transaction<'_, Sqlite>, project_id: &str, t: &TraceRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO traces (project_id, id, agent, session_id, user_id, device_id, start_ns, end_ns,
            input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens, cost_usd, summary, observations)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (project_id, id) DO UPDATE SET
            agent = excluded.agent, session_id = excluded.session_id, user_id = excluded.user_id,
            device_id = excluded.device_id, start_ns = excluded.start_ns, end_ns = excluded.end_ns,
            input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
            cache_read_tokens = excluded.cache_read_tokens, cache_creation_tokens = excluded.cache_creation_tokens,
            reasoning_tokens = excluded.reasoning_tokens, cost_usd = excluded.cost_usd,
            summary = excluded.summary, observations = excluded.observations",
    )
    .bind(project_id)
    .bind(&t.id)
    .bind(&t.agent)
    .bind(&t.session_id)
    .bind(&t.user_id)
    .bind(&t.device_id)
    .bind(t.start_ns)
    .bind(t.end_ns)
    .bind(t.input_tokens)
    .bind(t.output_tokens)
    .bind(t.cache_read_tokens)
    .bind(t.cache_creation_tokens)
    .bind(t.reasoning_tokens)
    .bind(t.cost_usd)
    .bind(&t.summary)
    .bind(&t.observations)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
