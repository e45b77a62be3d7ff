//! The shared engine: PostgreSQL through sqlx (`postgres://` URLs), migrations in
//! `host/migrations/postgres/`. Several hosts (replicas) may serve one database at once.
//!
//! Each [`commit`](Storage::commit) is one Read Committed transaction doing what SQLite's
//! writer does for one batch. Recomputing a trace is read-modify-write, and two replicas may
//! write parts of one prompt at the same moment, so writes that concern one trace are made to
//! take turns with transaction-scoped advisory locks:
//!
//! - **What is locked**: one lock per key, `hash(project, key)`, for every key the write names
//!   (its fragments' keys, and the keys of what an earlier run of the batch stored) *and* for
//!   every trace those keys belong to now. A trace's id is its smallest key, so "the trace"
//!   and "the key that names it" are the same lock.
//! - **Why both**: the key locks make two writes that name the same key take turns (two writes
//!   naming a new key `n` must not both map it). The trace locks make two writes that name
//!   *different* keys of one already merged trace take turns: both recompute that trace and
//!   rewrite its key map, and without a common lock each would overwrite the other's result
//!   with one computed from a snapshot missing the other's fragments (a lost update), or map
//!   its keys to a trace the other just merged away (a split trace).
//! - **No deadlock**: a write takes all its locks at once, sorted, before it writes anything
//!   but its batch row. Which traces its keys belong to is read before locking; once locked it
//!   is read again, and if a concurrent merge moved a key to a trace not in the set, the
//!   transaction rolls back and starts again with that trace added (never locking out of
//!   order). Under the locks no one else can change the key map of those traces, so the
//!   merge, the fragments and the recompute all see a stable, complete picture: the lock is
//!   released at commit, after the commit is visible, and Read Committed reads each
//!   statement from a fresh snapshot.
//! - Rows no lock covers (usage metrics, unclaimed counts) are written sorted by their
//!   identity and with `ON CONFLICT`, so they neither deadlock in practice nor lose counts;
//!   a serialization failure or deadlock PostgreSQL reports anyway retries the whole
//!   transaction a few times.
//!
//! Group commit is not needed here: PostgreSQL overlaps commits across connections.
//! Recovery and replay are safe on several replicas at once: normalizing a stored batch again
//! replaces its earlier output under the same locks, so two replicas replaying the same batch
//! write the same rows twice.
//!
//! PostgreSQL text cannot hold NUL characters; plugin output and sender-chosen names may. The
//! identity and column values of a write have NUL replaced by U+FFFD before anything is stored.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, QueryBuilder, Row, Transaction};

use super::analytics::push_trace_filters;
use super::erasure::{self, Retired};
use super::now_ns;
use super::queries::Dialect;
use super::writes;
use super::{
    BatchWrite, FRAGMENTS_OF_BATCH, FragmentRow, Result, Storage, StorageError, TraceFilter, TraceRow,
    UnclaimedResource, fragment_rows,
};
use crate::metrics::StorageMetrics;
use crate::trace::model::{Body, Fragment};
use crate::trace::view::ns;
use crate::trace::{
    Addition, Assembly, Entity, KeyGroups, Stored, Timeline, TimelineChanges, TraceRecord, TraceState, assemble,
    timeline_changes,
};

/// Rows per multi-row statement (PostgreSQL allows 65 535 bound parameters).
const ROWS_PER_STATEMENT: usize = 1_000;
/// Connections per host.
const POOL_SIZE: u32 = 16;
/// Attempts of one commit when PostgreSQL reports a serialization failure or a deadlock.
const MAX_ATTEMPTS: u32 = 8;
/// Attempts of one commit whose lock set grew because a concurrent merge moved its keys.
const MAX_LOCK_ROUNDS: u32 = 64;

/// The PostgreSQL database.
pub struct PostgresStorage {
    pool: PgPool,
    assembly: Arc<Assembly>,
    /// Each commit is its own group of one (no writer queue).
    metrics: StorageMetrics,
}

/// How one attempt of a commit ended.
enum Attempt {
    Done(i64),
    /// A concurrent merge moved a key to a trace this write had not locked: start again
    /// with these locks as well.
    MoreLocks(BTreeSet<i64>),
}

impl PostgresStorage {
    /// Open (and migrate) the database at `url` (`postgres://` or `postgresql://`). The
    /// database must exist; see [`PostgresStorage::create_database`].
    pub async fn connect(url: &str, assembly: Arc<Assembly>, metrics: StorageMetrics) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        let migrator = sqlx::migrate!("./migrations/postgres");
        renumber_migrations(&pool, &migrator).await?;
        // Replicas starting together: sqlx holds an advisory lock while it migrates.
        migrator.run(&pool).await?;
        Ok(PostgresStorage { pool, assembly, metrics })
    }

    /// Create the database `url` names, through the server's `postgres` database (tests and
    /// set-up scripts; the host itself never creates a database).
    pub async fn create_database(url: &str) -> Result<()> {
        let (mut server, name) = server_connection(url).await?;
        sqlx::query(&format!("CREATE DATABASE {}", quote_ident(&name))).execute(&mut server).await?;
        server.close().await?;
        Ok(())
    }

    /// Drop the database `url` names, closing its remaining connections first.
    pub async fn drop_database(url: &str) -> Result<()> {
        let (mut server, name) = server_connection(url).await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&name)))
            .execute(&mut server)
            .await?;
        server.close().await?;
        Ok(())
    }

    /// A commit, retried when PostgreSQL reports a serialization failure or a deadlock, or
    /// when a concurrent merge moved this write's keys to a trace it had not locked.
    async fn commit_with_retries(&self, write: &BatchWrite) -> Result<i64> {
        let mut locks = BTreeSet::new();
        let (mut failures, mut rounds) = (0, 0);
        loop {
            match self.try_commit(write, &locks).await {
                Ok(Attempt::Done(id)) => return Ok(id),
                Ok(Attempt::MoreLocks(more)) => {
                    rounds += 1;
                    if rounds >= MAX_LOCK_ROUNDS {
                        return Err(StorageError::Corrupt(format!(
                            "the traces of batch {:?} kept moving for {rounds} attempts",
                            write.id
                        )));
                    }
                    locks = more;
                }
                Err(e) if is_retryable(&e) && failures + 1 < MAX_ATTEMPTS => {
                    failures += 1;
                    tracing::debug!(error = %e, attempt = failures, "commit retried");
                    tokio::time::sleep(Duration::from_millis(5 << failures.min(6))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt of a commit, in one transaction.
    async fn try_commit(&self, write: &BatchWrite, extra_locks: &BTreeSet<i64>) -> Result<Attempt> {
        let project = write.project_id.as_str();
        let mut tx = self.pool.begin().await?;
        // The batch row first (two writes of one batch take turns on it), then the locks.
        let Some((id, fresh, received_at)) = store_batch(&mut tx, write).await? else {
            // Re-normalized while erasure or retention deleted it: nothing of it comes back.
            tx.rollback().await?;
            return Ok(Attempt::Done(write.id.unwrap_or_default()));
        };
        let retired = if fresh { Retired::No } else { retired(&mut tx, project, id, &write.users).await? };
        let fragments: &[(String, Fragment)] = if retired == Retired::No { &write.fragments } else { &[] };

        let traced: Vec<&(String, Fragment)> =
            fragments.iter().filter(|(_, f)| !matches!(f.body, Body::UsageMetric(_))).collect();
        // An OTLP retry of a stored body that normalizes as it did: its traces stay as they are
        // (a replay or recovery still rebuilds them: the host's merge may have changed).
        if write.id.is_none() && !fresh && retired == Retired::No {
            let mut stored: Vec<FragmentRow> =
                sqlx::query_as(FRAGMENTS_OF_BATCH).bind(project).bind(id).fetch_all(&mut *tx).await?;
            stored.sort();
            if fragment_rows(&traced)? == stored {
                sqlx::query(writes::DELETE_BATCH_OUTPUT[1]).bind(project).bind(id).execute(&mut *tx).await?;
                insert_usage_metrics(&mut tx, project, id, fragments).await?;
                tx.commit().await?;
                return Ok(Attempt::Done(id));
            }
        }
        // Keys named together belong to one trace, whose id is the smallest key of all.
        let mut groups = KeyGroups::default();
        for (_, f) in &traced {
            groups.join(std::iter::once(&f.trace_key).chain(&f.also_known_as));
        }
        let groups = groups.into_groups();
        let mut keys: BTreeSet<String> = groups.iter().flatten().cloned().collect();
        let earlier_keys: Vec<String> = if fresh {
            Vec::new()
        } else {
            sqlx::query_scalar("SELECT DISTINCT trace_key FROM fragments WHERE project_id = $1 AND batch_id = $2")
                .bind(project)
                .bind(id)
                .fetch_all(&mut *tx)
                .await?
        };
        keys.extend(earlier_keys.iter().cloned());

        // Lock the keys and the traces they belong to (see the module documentation).
        let before = trace_ids_of(&mut tx, project, &keys).await?;
        let mut locks: BTreeSet<i64> = keys.iter().chain(&before).map(|k| lock_id(project, k)).collect();
        locks.extend(extra_locks);
        let sorted: Vec<i64> = locks.iter().copied().collect();
        sqlx::query("SELECT antenna_lock_all($1)").bind(&sorted).execute(&mut *tx).await?;
        let after = trace_ids_of(&mut tx, project, &keys).await?;
        let missing: Vec<i64> = after.iter().map(|t| lock_id(project, t)).filter(|l| !locks.contains(l)).collect();
        if !missing.is_empty() {
            tx.rollback().await?;
            locks.extend(missing);
            return Ok(Attempt::MoreLocks(locks));
        }

        let mut touched: BTreeSet<String> = BTreeSet::new();
        if !fresh {
            // What an earlier run of this batch produced is replaced, not added to.
            let earlier: Vec<String> =
                sqlx::query_scalar("SELECT DISTINCT trace_id FROM trace_keys WHERE project_id = $1 AND key = ANY($2)")
                    .bind(project)
                    .bind(&earlier_keys)
                    .fetch_all(&mut *tx)
                    .await?;
            touched.extend(earlier);
            for statement in writes::DELETE_BATCH_OUTPUT {
                sqlx::query(statement).bind(project).bind(id).execute(&mut *tx).await?;
            }
        }
        insert_usage_metrics(&mut tx, project, id, fragments).await?;
        // Traces that grew by this batch alone, to update from their state; by key.
        let mut grown: BTreeMap<String, String> = BTreeMap::new();
        for keys in &groups {
            let (trace_id, extended) = assign_trace(&mut tx, project, keys).await?;
            if extended && fresh {
                grown.extend(keys.iter().map(|k| (k.clone(), trace_id.clone())));
            }
            touched.insert(trace_id);
        }
        if !grown.is_empty() && replaces_a_report(&mut tx, project, &traced).await? {
            // What a replaced report said cannot be taken back from a trace's state.
            grown.clear();
        }
        insert_fragments(&mut tx, project, id, &traced).await?;
        // Counted when a body first arrives: a retry or a replay of it counts nothing again.
        if fresh {
            count_unclaimed(&mut tx, project, &write.unclaimed).await?;
        }
        if retired == Retired::Erased {
            // It named an erased user only once normalized: the raw body goes too.
            for sql in erasure::DELETE_ERASED_BATCH {
                sqlx::query(sql).bind(project).bind(id).execute(&mut *tx).await?;
            }
        } else if !write.users.is_empty() {
            // All of them in one round trip.
            sqlx::query(
                "INSERT INTO batch_users (project_id, batch_id, user_id) SELECT $1, $2, u FROM UNNEST($3::text[]) u
                 ON CONFLICT DO NOTHING",
            )
            .bind(project)
            .bind(id)
            .bind(&write.users)
            .execute(&mut *tx)
            .await?;
        }
        // Every touched trace is locked: each is a key of this write or the trace of one.
        let mut updated = 0;
        for trace_id in &touched {
            let added: Vec<Stored> = traced
                .iter()
                .filter(|(_, f)| grown.get(&f.trace_key) == Some(trace_id))
                .map(|(agent, f)| Stored { agent: agent.clone(), fragment: f.clone() })
                .collect();
            if !added.is_empty()
                && update_trace(&mut tx, project, trace_id, &added, id, received_at, &self.assembly).await?
            {
                updated += 1;
            } else {
                recompute_trace(&mut tx, project, trace_id, &self.assembly).await?;
            }
        }
        tx.commit().await?;
        self.metrics.traces_updated.inc_by(updated);
        self.metrics.traces_merged.inc_by(touched.len() as u64 - updated);
        Ok(Attempt::Done(id))
    }
}

/// A database migrated before both engines' migrations had the same numbers and names
/// (PostgreSQL had no `0002_unclaimed`, so its 0002–0006 are now 0003–0007): its migration
/// history renumbered to the files' (same contents, same checksums) and the no-op 0002
/// recorded, in one transaction that replicas starting together take in turn, before sqlx
/// checks the history against the files.
async fn renumber_migrations(pool: &PgPool, migrator: &sqlx::migrate::Migrator) -> Result<()> {
    let mut tx = pool.begin().await?;
    let history: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(&mut *tx).await?;
    if !history {
        return Ok(());
    }
    sqlx::query("LOCK TABLE _sqlx_migrations IN EXCLUSIVE MODE").execute(&mut *tx).await?;
    let old: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = 2 AND description = 'body codec')",
    )
    .fetch_one(&mut *tx)
    .await?;
    let Some(unclaimed) = migrator.iter().find(|m| m.version == 2).filter(|_| old) else { return Ok(()) };
    // Through negative numbers: a primary key is checked row by row.
    sqlx::query("UPDATE _sqlx_migrations SET version = -(version + 1) WHERE version BETWEEN 2 AND 6")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE _sqlx_migrations SET version = -version WHERE version < 0").execute(&mut *tx).await?;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ($1, $2, TRUE, $3, 0)",
    )
    .bind(unclaimed.version)
    .bind(&*unclaimed.description)
    .bind(&*unclaimed.checksum)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!("migration history renumbered to the engines' common numbering");
    Ok(())
}

/// A connection to the server's `postgres` database, and the database name `url` names.
async fn server_connection(url: &str) -> Result<(PgConnection, String)> {
    let options = PgConnectOptions::from_str(url)?;
    let name = options.get_database().map(str::to_owned).ok_or_else(|| StorageError::Url(url.to_owned()))?;
    let server = PgConnection::connect_with(&options.database("postgres")).await?;
    Ok((server, name))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The advisory lock of one key (or of the trace it names) of a project: the first 8 bytes
/// of SHA-256 over both. A collision only makes two writes take turns.
fn lock_id(project_id: &str, key: &str) -> i64 {
    let mut hash = Sha256::new();
    hash.update(project_id.as_bytes());
    hash.update([0]);
    hash.update(key.as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The traces `keys` belong to now.
async fn trace_ids_of(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    keys: &BTreeSet<String>,
) -> Result<BTreeSet<String>> {
    if keys.is_empty() {
        return Ok(BTreeSet::new());
    }
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT trace_id FROM trace_keys WHERE project_id = $1 AND key = ANY($2)")
            .bind(project_id)
            .bind(&keys)
            .fetch_all(&mut **tx)
            .await?;
    Ok(ids.into_iter().collect())
}

fn is_retryable(e: &StorageError) -> bool {
    match e {
        StorageError::Db(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40001") | Some("40P01"))
        }
        _ => false,
    }
}

/// Text as PostgreSQL can hold it (NUL, which its text refuses, as U+FFFD).
fn clean(value: &str) -> Cow<'_, str> {
    Dialect::Postgres.text(value)
}

fn clean_owned(value: &mut String) {
    if let Cow::Owned(cleaned) = clean(value) {
        *value = cleaned;
    }
}

/// `write` with NUL replaced in everything stored as a column (keys, ids, names, attribution).
fn cleaned(mut write: BatchWrite) -> BatchWrite {
    clean_owned(&mut write.project_id);
    write.agents.iter_mut().for_each(clean_owned);
    write.error.iter_mut().for_each(clean_owned);
    for (agent, f) in &mut write.fragments {
        clean_owned(agent);
        clean_owned(&mut f.trace_key);
        f.also_known_as.iter_mut().for_each(clean_owned);
        clean_owned(&mut f.id);
        clean_owned(&mut f.report_id);
        let a = &mut f.attribution;
        for value in
            [&mut a.session_id, &mut a.user_id, &mut a.device_id, &mut a.repository, &mut a.branch, &mut a.team]
        {
            value.iter_mut().for_each(clean_owned);
        }
        if let Body::UsageMetric(m) = &mut f.body {
            clean_owned(&mut m.name);
            clean_owned(&mut m.unit);
            clean_owned(&mut m.attributes_json);
        }
    }
    write.users.iter_mut().for_each(clean_owned);
    for resource in &mut write.unclaimed {
        clean_owned(&mut resource.service_name);
        resource.scope_names.iter_mut().for_each(clean_owned);
    }
    write
}

super::queries::shared_queries!(PostgresStorage, sqlx::Postgres, super::queries::Dialect::Postgres);

#[async_trait]
impl Storage for PostgresStorage {
    async fn commit(&self, write: BatchWrite) -> Result<i64> {
        let write = cleaned(write);
        let started = std::time::Instant::now();
        let result = self.commit_with_retries(&write).await;
        self.metrics.commit_batches.observe(1.0);
        self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        result
    }

    async fn list_traces(&self, project_id: &str, filter: &TraceFilter) -> Result<Vec<TraceRow>> {
        let mut q = QueryBuilder::<Postgres>::new("SELECT t.summary FROM traces t WHERE t.project_id = ");
        q.push_bind(project_id.to_owned());
        push_trace_filters(&mut q, filter);
        // Full-text: every word, the last as a prefix, as a tsquery (words are letters and
        // digits only, so nothing in them is tsquery syntax).
        let terms = filter.q.as_deref().map(super::search_terms).unwrap_or_default();
        if let Some((last, rest)) = terms.split_last() {
            let mut query: String = rest.iter().map(|t| format!("{t} & ")).collect();
            query.push_str(&format!("{last}:*"));
            q.push(" AND t.prompt_tsv @@ to_tsquery('simple', ").push_bind(query).push(")");
        }
        // NULLS LAST: where SQLite puts them.
        q.push(" ORDER BY t.start_ns DESC NULLS LAST, t.id LIMIT ")
            .push_bind(filter.limit)
            .push(" OFFSET ")
            .push_bind(filter.offset);
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.into_iter().map(|r| TraceRow::of_summary(r.get("summary"))).collect()
    }
}

/// Insert a new batch (or find the one an OTLP retry already stored) or update a stored one,
/// with its outcome. Returns its id, whether it is new and when it was received (for a stored
/// one: now); `None` when a stored batch is no longer there (erased or expired meanwhile).
async fn store_batch(tx: &mut Transaction<'_, Postgres>, write: &BatchWrite) -> Result<Option<(i64, bool, i64)>> {
    let agents = (!write.agents.is_empty()).then(|| write.agents.join(","));
    let now = now_ns();
    if let Some(id) = write.id {
        let updated = sqlx::query(writes::UPDATE_BATCH)
            .bind(write.status.as_str())
            .bind(agents)
            .bind(&write.error)
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await?
            .rows_affected();
        return Ok((updated == 1).then_some((id, false, now)));
    }
    // A second replica storing the same body waits here for the first one's commit, then
    // updates the row (and replaces what the first one stored of it).
    let row = sqlx::query(writes::INSERT_BATCH)
        .bind(&write.project_id)
        .bind(clean(&write.signal))
        .bind(clean(&write.encoding))
        .bind(&write.body)
        .bind(write.body_codec)
        .bind(&write.body_sha256)
        .bind(now)
        .bind(write.status.as_str())
        .bind(agents)
        .bind(&write.error)
        .fetch_one(&mut **tx)
        .await?;
    // A retry keeps the first `received_at`: a different one means the row was there.
    let received_at: i64 = row.get("received_at");
    Ok(Some((row.get("id"), received_at == now, received_at)))
}

/// Whether what a stored batch normalizes into must stay out of the traces: it was received
/// before one of its users was erased, or before its project's trace retention.
async fn retired(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    batch_id: i64,
    users: &[String],
) -> Result<Retired> {
    for user in users {
        let hit = sqlx::query(erasure::RECEIVED_BEFORE_ERASURE)
            .bind(project_id)
            .bind(batch_id)
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?;
        if hit.is_some() {
            return Ok(Retired::Erased);
        }
    }
    let expired = sqlx::query(erasure::RECEIVED_BEFORE_TRACE_RETENTION)
        .bind(project_id)
        .bind(batch_id)
        .bind(now_ns())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(if expired.is_some() { Retired::Expired } else { Retired::No })
}

/// Usage metrics go to their own table per session, never into traces.
async fn insert_usage_metrics(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    batch_id: i64,
    fragments: &[(String, Fragment)],
) -> Result<()> {
    // One row per identity, the last one winning (as SQLite's upsert one row after another),
    // sorted so that two writers lock shared rows in the same order.
    let mut metrics = BTreeMap::new();
    for (agent, f) in fragments {
        if let Body::UsageMetric(m) = &f.body {
            let session = f.attribution.session_id.as_deref().unwrap_or("");
            metrics.insert((session, m.name.as_str(), f.report_id.as_str()), (agent, f, m));
        }
    }
    let metrics: Vec<_> = metrics.into_values().collect();
    for chunk in metrics.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO usage_metrics (project_id, session_id, name, report_id, agent, user_id, time_ns, value, unit, attributes, batch_id, repository, team) ",
        );
        q.push_values(chunk, |mut row, (agent, f, m)| {
            row.push_bind(project_id)
                .push_bind(f.attribution.session_id.as_deref().unwrap_or(""))
                .push_bind(&m.name)
                .push_bind(&f.report_id)
                .push_bind(*agent)
                .push_bind(&f.attribution.user_id)
                .push_bind(ns(Some(m.time_unix_nano)))
                .push_bind(m.value)
                .push_bind(&m.unit)
                .push_bind(&m.attributes_json)
                .push_bind(batch_id)
                .push_bind(&f.attribution.repository)
                .push_bind(&f.attribution.team);
        });
        q.push(
            " ON CONFLICT (project_id, md5(session_id), md5(name), report_id) DO UPDATE SET
               value = excluded.value, attributes = excluded.attributes, batch_id = excluded.batch_id,
               repository = excluded.repository, team = excluded.team",
        );
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_fragments(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    batch_id: i64,
    fragments: &[&(String, Fragment)],
) -> Result<()> {
    // PostgreSQL refuses one INSERT .. ON CONFLICT DO UPDATE that touches a row twice: one
    // row per identity, the last one winning, as SQLite's upsert one row after another.
    let mut unique = BTreeMap::new();
    for (agent, f) in fragments {
        unique.insert((f.trace_key.as_str(), f.body.kind(), f.id.as_str(), f.report_id.as_str()), (agent, f));
    }
    let mut rows = Vec::with_capacity(unique.len());
    for (agent, f) in unique.into_values() {
        let payload = serde_json::to_string(f).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        rows.push((agent, f, payload));
    }
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO fragments (project_id, trace_key, kind, fragment_id, report_id, batch_id, agent, payload) ",
        );
        q.push_values(chunk, |mut row, (agent, f, payload)| {
            row.push_bind(project_id)
                .push_bind(&f.trace_key)
                .push_bind(f.body.kind())
                .push_bind(&f.id)
                .push_bind(&f.report_id)
                .push_bind(batch_id)
                .push_bind(*agent)
                .push_bind(payload);
        });
        q.push(
            " ON CONFLICT (project_id, trace_key, kind, fragment_id, report_id) DO UPDATE SET
               payload = excluded.payload, batch_id = excluded.batch_id, agent = excluded.agent",
        );
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Map `keys` to one trace, merging the traces they already belong to. Returns its id, and
/// whether it is one trace that was already stored (not new, not joined from several). The
/// caller holds the locks of `keys` and of the traces they belong to.
async fn assign_trace(tx: &mut Transaction<'_, Postgres>, project_id: &str, keys: &[String]) -> Result<(String, bool)> {
    let named: BTreeSet<String> = keys.iter().cloned().collect();
    let existing = trace_ids_of(tx, project_id, &named).await?;
    let mut all_keys = named;
    if !existing.is_empty() {
        let ids: Vec<&str> = existing.iter().map(String::as_str).collect();
        let more: Vec<String> =
            sqlx::query_scalar("SELECT key FROM trace_keys WHERE project_id = $1 AND trace_id = ANY($2)")
                .bind(project_id)
                .bind(&ids)
                .fetch_all(&mut **tx)
                .await?;
        all_keys.extend(more);
    }
    let Some(trace_id) = all_keys.first().cloned() else {
        return Err(StorageError::Corrupt("a fragment without a trace key".into()));
    };
    let merged_away: Vec<&str> = existing.iter().filter(|id| **id != trace_id).map(String::as_str).collect();
    if !merged_away.is_empty() {
        for sql in [
            "DELETE FROM traces WHERE project_id = $1 AND id = ANY($2)",
            "DELETE FROM trace_models WHERE project_id = $1 AND trace_id = ANY($2)",
            "DELETE FROM observations WHERE project_id = $1 AND trace_id = ANY($2)",
        ] {
            sqlx::query(sql).bind(project_id).bind(&merged_away).execute(&mut **tx).await?;
        }
    }
    let grown = existing.len() == 1 && existing.contains(&trace_id);
    // Only keys not already mapped to this trace need a write.
    let keys: Vec<&String> = if grown { keys.iter().collect() } else { all_keys.iter().collect() };
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new("INSERT INTO trace_keys (project_id, key, trace_id) ");
        q.push_values(chunk, |mut row, key| {
            row.push_bind(project_id).push_bind(*key).push_bind(&trace_id);
        });
        q.push(" ON CONFLICT (project_id, key) DO UPDATE SET trace_id = excluded.trace_id");
        q.build().execute(&mut **tx).await?;
    }
    Ok((trace_id, grown))
}

/// Count the resources that no plugin claimed, per service.name and scope.
async fn count_unclaimed(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    resources: &[UnclaimedResource],
) -> Result<()> {
    let mut counts: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for resource in resources {
        let scopes: Vec<&str> = if resource.scope_names.is_empty() {
            vec![""]
        } else {
            resource.scope_names.iter().map(String::as_str).collect()
        };
        for scope in scopes {
            *counts.entry((resource.service_name.as_str(), scope)).or_default() += 1;
        }
    }
    let now = now_ns();
    for ((service, scope), n) in counts {
        sqlx::query(
            "INSERT INTO unclaimed (project_id, service_name, scope_name, resources, last_seen) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project_id, md5(service_name), md5(scope_name)) DO UPDATE SET
               resources = unclaimed.resources + excluded.resources, last_seen = excluded.last_seen",
        )
        .bind(project_id)
        .bind(service)
        .bind(scope)
        .bind(n)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Whether one of `fragments` is a report already stored (it would replace it).
async fn replaces_a_report(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    fragments: &[&(String, Fragment)],
) -> Result<bool> {
    let mut columns: [Vec<&str>; 4] = Default::default();
    for (_, f) in fragments {
        for (column, value) in columns.iter_mut().zip([f.trace_key.as_str(), f.body.kind(), &f.id, &f.report_id]) {
            column.push(value);
        }
    }
    let [keys, kinds, ids, reports] = &columns;
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM fragments f JOIN UNNEST($2::text[], $3::text[], $4::text[], $5::text[])
             AS n(trace_key, kind, fragment_id, report_id)
           ON f.project_id = $1 AND f.trace_key = n.trace_key AND f.kind = n.kind
              AND f.fragment_id = n.fragment_id AND f.report_id = n.report_id)",
    )
    .bind(project_id)
    .bind(keys)
    .bind(kinds)
    .bind(ids)
    .bind(reports)
    .fetch_one(&mut **tx)
    .await?)
}

/// Update a trace from its stored state and what batch `batch_id` added; `false` when it has
/// no state or the state cannot tell (it is then merged whole).
async fn update_trace(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    trace_id: &str,
    added: &[Stored],
    batch_id: i64,
    received_at: i64,
    assembly: &Assembly,
) -> Result<bool> {
    let (entities, prompts) = Addition::touched(added);
    let (kinds, ids): (Vec<&str>, Vec<&str>) = entities.iter().map(|(kind, id)| (*kind, id.as_str())).unzip();
    // The trace's state, and the reports of the touched calls and events (and the prompt's):
    // one round trip.
    let rows = sqlx::query(
        "SELECT TRUE AS is_state, NULL::TEXT AS agent, t.state AS payload, NULL::BIGINT AS batch_id
           FROM traces t WHERE t.project_id = $1 AND t.id = $2
         UNION ALL
         SELECT FALSE, f.agent, f.payload, f.batch_id FROM trace_keys k JOIN fragments f
           ON k.project_id = f.project_id AND k.key = f.trace_key
         WHERE k.project_id = $1 AND k.trace_id = $2
           AND ((f.kind, f.fragment_id) IN (SELECT * FROM UNNEST($3::text[], $4::text[])) OR ($5 AND f.kind = 'prompt'))",
    )
    .bind(project_id)
    .bind(trace_id)
    .bind(&kinds)
    .bind(&ids)
    .bind(prompts)
    .fetch_all(&mut **tx)
    .await?;
    let (state, rows): (Vec<_>, Vec<_>) = rows.into_iter().partition(|row| row.get::<bool, _>("is_state"));
    let state: Option<String> = state.first().map(|row| row.try_get("payload")).transpose()?.flatten();
    let Some(state) = state.as_deref().and_then(TraceState::from_json) else { return Ok(false) };
    let batches = [batch_id];
    let mut addition = Addition { added, batches: &batches, entities: Vec::new(), prompts: Vec::new() };
    for row in rows {
        let payload: String = row.try_get("payload")?;
        let fragment: Fragment = serde_json::from_str(&payload).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        let stored = Stored { agent: row.try_get("agent")?, fragment };
        if matches!(stored.fragment.body, Body::Prompt(_)) {
            addition.prompts.push(stored);
        } else {
            addition.entities.push(Entity { batch_id: row.try_get("batch_id")?, stored });
        }
    }
    let Some(record) = state.apply(&addition, project_id, trace_id, assembly) else { return Ok(false) };
    write_trace(tx, project_id, &record, Received::AtLeast(received_at)).await?;
    Ok(true)
}

async fn recompute_trace(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    trace_id: &str,
    assembly: &Assembly,
) -> Result<()> {
    let rows = sqlx::query(
        "SELECT f.agent, f.payload, b.received_at FROM fragments f JOIN trace_keys k
           ON k.project_id = f.project_id AND k.key = f.trace_key
           LEFT JOIN batches b ON b.id = f.batch_id
         WHERE k.project_id = $1 AND k.trace_id = $2",
    )
    .bind(project_id)
    .bind(trace_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut stored = Vec::with_capacity(rows.len());
    // When the host last received a batch of the trace: what trace retention counts from.
    let mut received: Option<i64> = None;
    for row in rows {
        received = received.max(row.get::<Option<i64>, _>("received_at"));
        let payload: String = row.get("payload");
        let fragment: Fragment = serde_json::from_str(&payload).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        stored.push(Stored { agent: row.get("agent"), fragment });
    }
    let Some(t) = assemble(project_id, trace_id, stored, assembly) else {
        for statement in writes::DELETE_TRACE {
            sqlx::query(statement).bind(project_id).bind(trace_id).execute(&mut **tx).await?;
        }
        return Ok(());
    };
    write_trace(tx, project_id, &t, Received::Latest(received)).await
}

/// When a trace's batches were received, as a write knows it.
enum Received {
    /// The latest of all its stored batches (`None`: none is stored any more: the time
    /// already recorded stays, a new row takes now).
    Latest(Option<i64>),
    /// At least this: the batch the write added.
    AtLeast(i64),
}

/// Write a trace: its row, per-model rows, timeline and state.
async fn write_trace(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    t: &TraceRecord,
    received: Received,
) -> Result<()> {
    let (received, at_least) = match received {
        Received::Latest(at) => (at, false),
        Received::AtLeast(at) => (Some(at), true),
    };
    sqlx::query(writes::DELETE_TRACE_MODELS).bind(project_id).bind(&t.id).execute(&mut **tx).await?;
    sqlx::query(writes::UPSERT_TRACE)
        .bind(project_id)
        .bind(&t.id)
        .bind(clean(&t.agent))
        .bind(t.session_id.as_deref().map(clean))
        .bind(t.user_id.as_deref().map(clean))
        .bind(t.device_id.as_deref().map(clean))
        .bind(t.start_ns)
        .bind(t.end_ns)
        .bind(t.input_tokens)
        .bind(t.output_tokens)
        .bind(t.cache_read_tokens)
        .bind(t.cache_creation_tokens)
        .bind(t.reasoning_tokens)
        .bind(t.cost_usd)
        .bind(&t.summary)
        .bind(t.repository.as_deref().map(clean))
        .bind(t.branch.as_deref().map(clean))
        .bind(t.team.as_deref().map(clean))
        .bind(t.cost_source)
        .bind(t.tool_calls)
        .bind(t.tool_failures)
        .bind(received)
        .bind(now_ns())
        .bind(clean(&t.state))
        .bind(at_least)
        .execute(&mut **tx)
        .await?;
    write_timeline(tx, project_id, &t.id, &t.timeline).await?;
    if t.models.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<Postgres>::new(writes::INSERT_TRACE_MODELS);
    q.push_values(&t.models, |mut row, m| {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        row.push_bind(project_id)
            .push_bind(&t.id)
            .push_bind(clean(m.model.as_deref().unwrap_or("")).into_owned())
            .push_bind(int(m.usage.input))
            .push_bind(int(m.usage.output))
            .push_bind(int(m.usage.cache_read))
            .push_bind(int(m.usage.cache_creation))
            .push_bind(int(m.usage.reasoning))
            .push_bind(m.cost_usd)
            .push_bind(clean(&t.agent).into_owned())
            .push_bind(t.session_id.as_deref().map(|v| clean(v).into_owned()))
            .push_bind(t.user_id.as_deref().map(|v| clean(v).into_owned()))
            .push_bind(t.device_id.as_deref().map(|v| clean(v).into_owned()))
            .push_bind(t.repository.as_deref().map(|v| clean(v).into_owned()))
            .push_bind(t.branch.as_deref().map(|v| clean(v).into_owned()))
            .push_bind(t.team.as_deref().map(|v| clean(v).into_owned()))
            .push_bind(t.start_ns)
            .push_bind(t.tool_calls)
            .push_bind(t.tool_failures);
    });
    q.push(" ON CONFLICT (project_id, trace_id, model) DO NOTHING");
    q.build().execute(&mut **tx).await?;
    Ok(())
}

/// Write what changed of a trace's timeline: new and changed entries (multi-row upserts), and
/// the removal of entries that are gone (a replay replaced what a batch said).
async fn write_timeline(
    tx: &mut Transaction<'_, Postgres>,
    project_id: &str,
    trace_id: &str,
    timeline: &Timeline,
) -> Result<()> {
    let mut stored = HashMap::new();
    if let Some(digests) = writes::stored_digests(timeline) {
        for row in sqlx::query(digests).bind(project_id).bind(trace_id).fetch_all(&mut **tx).await? {
            stored.insert((row.try_get("kind")?, row.try_get("id")?), row.try_get("digest")?);
        }
    }
    let TimelineChanges { upserts, deletes } = timeline_changes(timeline.rows(), stored);
    for chunk in upserts.chunks(ROWS_PER_STATEMENT) {
        let mut q = QueryBuilder::<Postgres>::new(
            "INSERT INTO observations (project_id, trace_id, kind, id, sort_ns, digest, body) ",
        );
        q.push_values(chunk, |mut row, (o, digest)| {
            row.push_bind(project_id)
                .push_bind(trace_id)
                .push_bind(o.kind)
                .push_bind(clean(&o.id).into_owned())
                .push_bind(o.sort_ns)
                .push_bind(*digest)
                .push_bind(clean(&o.body).into_owned());
        });
        q.push(
            " ON CONFLICT (project_id, trace_id, kind, id) DO UPDATE SET
               sort_ns = excluded.sort_ns, digest = excluded.digest, body = excluded.body",
        );
        q.build().execute(&mut **tx).await?;
    }
    if !deletes.is_empty() {
        let (kinds, ids): (Vec<String>, Vec<String>) = deletes.into_iter().unzip();
        sqlx::query(
            "DELETE FROM observations WHERE project_id = $1 AND trace_id = $2
               AND (kind, id) IN (SELECT * FROM UNNEST($3::text[], $4::text[]))",
        )
        .bind(project_id)
        .bind(trace_id)
        .bind(&kinds)
        .bind(&ids)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_ids_are_stable_and_per_project() {
        assert_eq!(lock_id("p", "prompt-a"), lock_id("p", "prompt-a"));
        assert_ne!(lock_id("p", "prompt-a"), lock_id("q", "prompt-a"));
        assert_ne!(lock_id("p", "a"), lock_id("pa", ""), "the separator keeps (project, key) apart");
    }

    #[test]
    fn nul_is_replaced_everywhere_else_untouched() {
        assert_eq!(clean("a\0b"), "a\u{FFFD}b");
        assert!(matches!(clean("plain"), Cow::Borrowed("plain")));
    }
}
