//! The SQLite writer: one OS thread that owns the only write connection (rusqlite) and commits
//! in groups. Requests that arrive together share one `BEGIN IMMEDIATE` transaction and one
//! fsync; each caller is answered after the commit that holds its batch (so a 200 still means
//! stored and normalized). A whole group runs in one blocking call with cached prepared
//! statements: a request costs one hand-off to this thread and one back, not one per statement
//! (which is what an async driver's worker thread costs: under load the scheduler switching
//! into it was a fifth of the host's CPU). Each trace a group touched is assembled once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::super::erasure::{self, Retired};
use super::super::writes;
use super::super::{BatchWrite, FRAGMENTS_OF_BATCH, Result, StorageError, fragment_rows, now_ns};
use super::sql;
use crate::metrics::StorageMetrics;
use crate::trace::model::{Body, Fragment};
use crate::trace::view::ns;
use crate::trace::{
    Addition, Assembly, Entity, KeyGroups, Stored, Timeline, TimelineChanges, TraceRecord, TraceState, assemble,
    timeline_changes,
};

/// Most batches one group commit takes; more wait for the next group.
const MAX_GROUP: usize = 256;
/// Prepared statements kept per connection (every statement below, with room to spare).
const STATEMENT_CACHE: usize = 64;

/// One batch waiting for the writer, and where its answer goes.
struct Job {
    write: BatchWrite,
    done: oneshot::Sender<Result<i64>>,
}

/// The handle the storage keeps: where jobs go.
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Open the write connection to the (migrated) database file at `path` and start the
    /// writer thread.
    pub(super) fn start(path: &str, assembly: Arc<Assembly>, metrics: StorageMetrics) -> Result<Writer> {
        let connection = open(path)?;
        let (jobs, queue) = mpsc::channel(4 * MAX_GROUP);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(connection, queue, &assembly, &metrics))
            .map_err(|e| StorageError::Corrupt(format!("starting the SQLite writer thread: {e}")))?;
        Ok(Writer { jobs })
    }

    /// Store one batch (grouped with whatever else is waiting); durable when this returns.
    pub(super) async fn commit(&self, write: BatchWrite) -> Result<i64> {
        let (done, answer) = oneshot::channel();
        self.jobs.send(Job { write, done }).await.map_err(|_| StorageError::WriterGone)?;
        answer.await.map_err(|_| StorageError::WriterGone)?
    }
}

fn open(path: &str) -> Result<Connection> {
    let connection =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    // The pool set WAL on the file; durability and waiting are per connection.
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted and rewritten content is zeroed in the file (an erased user's prompts must not
    // linger in free pages).
    connection.pragma_update(None, "secure_delete", "ON")?;
    connection.busy_timeout(Duration::from_secs(30))?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

/// Take what is waiting, write it in one transaction, answer everyone after the commit.
fn write_loop(
    mut connection: Connection,
    mut jobs: mpsc::Receiver<Job>,
    assembly: &Assembly,
    metrics: &StorageMetrics,
) {
    while let Some(first) = jobs.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        metrics.writer_queue.set(i64::try_from(jobs.len()).unwrap_or(i64::MAX));
        metrics.commit_batches.observe(group.len() as f64);
        let started = Instant::now();
        let writes: Vec<&BatchWrite> = group.iter().map(|j| &j.write).collect();
        let written = write_group(&mut connection, &writes, assembly, metrics);
        metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
        match written {
            Ok(ids) => {
                for (job, id) in group.into_iter().zip(ids) {
                    let _ = job.done.send(Ok(id));
                }
            }
            // One bad write must not fail the others: write them one by one.
            Err(e) if group.len() > 1 => {
                tracing::warn!(error = %e, batches = group.len(), "group commit failed; writing its batches one by one");
                for job in group {
                    let result = write_group(&mut connection, &[&job.write], assembly, metrics);
                    let _ = job.done.send(result.map(|ids| ids[0]));
                }
            }
            // A group of one: its own error.
            Err(e) => {
                if let Some(job) = group.pop() {
                    let _ = job.done.send(Err(e));
                }
            }
        }
    }
}

/// What a group of writes did to one trace.
#[derive(Default)]
struct Touch {
    /// Merge all its fragments again: it is new or joined from several, a batch ran again, or
    /// a report was replaced.
    whole: bool,
    /// The batches that added to it, and the latest time one was received.
    batches: Vec<i64>,
    received: i64,
    /// The fragments they added.
    added: Vec<Stored>,
}

/// Every write of a group in one transaction; returns their batch ids in order.
fn write_group(
    connection: &mut Connection,
    writes: &[&BatchWrite],
    assembly: &Assembly,
    metrics: &StorageMetrics,
) -> Result<Vec<i64>> {
    // IMMEDIATE: take the write lock up front, so a read that later writes never meets
    // SQLITE_BUSY half-way (`antenna project create` may write beside the host).
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut ids = Vec::with_capacity(writes.len());
    let mut touched: BTreeMap<(String, String), Touch> = BTreeMap::new();
    for write in writes {
        let project = write.project_id.as_str();
        let Some((id, fresh, received_at)) = store_batch(&tx, write)? else {
            // Re-normalized while erasure or retention deleted it: nothing of it comes back.
            ids.push(write.id.unwrap_or_default());
            continue;
        };
        let retired = if fresh { Retired::No } else { retired(&tx, project, id, &write.users)? };
        let fragments: &[(String, Fragment)] = if retired == Retired::No { &write.fragments } else { &[] };
        let traced: Vec<&(String, Fragment)> =
            fragments.iter().filter(|(_, f)| !matches!(f.body, Body::UsageMetric(_))).collect();
        // An OTLP retry of a stored body that normalizes as it did: its traces stay as they are
        // (a replay or recovery still rebuilds them: the host's merge may have changed).
        let retry_unchanged = write.id.is_none() && !fresh && retired == Retired::No && {
            let mut stored = Vec::new();
            let mut of_batch = tx.prepare_cached(&sql(FRAGMENTS_OF_BATCH))?;
            for row in of_batch.query_map(params![project, id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })? {
                stored.push(row?);
            }
            stored.sort();
            fragment_rows(&traced)? == stored
        };
        if !fresh && !retry_unchanged {
            // What an earlier run of this batch produced is replaced, not added to.
            let mut earlier = tx.prepare_cached(
                "SELECT DISTINCT k.trace_id FROM fragments f JOIN trace_keys k
                   ON k.project_id = f.project_id AND k.key = f.trace_key
                 WHERE f.project_id = ?1 AND f.batch_id = ?2",
            )?;
            let traces = earlier.query_map(params![project, id], |r| r.get::<_, String>(0))?;
            for trace in traces {
                touched.entry((project.to_owned(), trace?)).or_default().whole = true;
            }
            tx.prepare_cached(&sql(writes::DELETE_BATCH_OUTPUT[0]))?.execute(params![project, id])?;
        }
        if !fresh {
            tx.prepare_cached(&sql(writes::DELETE_BATCH_OUTPUT[1]))?.execute(params![project, id])?;
        }
        insert_usage_metrics(&tx, project, id, fragments)?;
        if retry_unchanged {
            ids.push(id);
            continue;
        }
        // Keys named together belong to one trace, whose id is the smallest key of all.
        let mut groups = KeyGroups::default();
        for (_, f) in &traced {
            groups.join(std::iter::once(&f.trace_key).chain(&f.also_known_as));
        }
        let mut trace_of: HashMap<String, String> = HashMap::new();
        for keys in groups.into_groups() {
            let (trace_id, grown) = assign_trace(&tx, project, &keys)?;
            let touch = touched.entry((project.to_owned(), trace_id.clone())).or_default();
            // A new trace, or traces joined into one: merged whole.
            touch.whole |= !grown || !fresh;
            touch.batches.push(id);
            touch.received = touch.received.max(received_at);
            for key in keys {
                trace_of.insert(key, trace_id.clone());
            }
        }
        let mut replaces = tx.prepare_cached(
            "SELECT 1 FROM fragments
             WHERE project_id = ?1 AND trace_key = ?2 AND kind = ?3 AND fragment_id = ?4 AND report_id = ?5",
        )?;
        for (agent, f) in &traced {
            let Some(trace_id) = trace_of.get(&f.trace_key) else { continue };
            let Some(touch) = touched.get_mut(&(project.to_owned(), trace_id.clone())) else { continue };
            if touch.whole {
                continue;
            }
            // A report stored before is replaced: what it said cannot be taken back from the
            // trace's state.
            touch.whole = replaces.exists(params![project, f.trace_key, f.body.kind(), f.id, f.report_id])?;
            touch.added.push(Stored { agent: agent.clone(), fragment: f.clone() });
        }
        insert_fragments(&tx, project, id, &traced)?;
        // Counted when a body first arrives: a retry or a replay of it counts nothing again.
        if fresh {
            for resource in &write.unclaimed {
                count_unclaimed(&tx, project, &resource.service_name, &resource.scope_names)?;
            }
        }
        if retired == Retired::Erased {
            // It named an erased user only once normalized: the raw body goes too.
            for statement in erasure::DELETE_ERASED_BATCH {
                tx.prepare_cached(&sql(statement))?.execute(params![project, id])?;
            }
        } else {
            let mut record = tx.prepare_cached(&sql(erasure::RECORD_BATCH_USER))?;
            for user in &write.users {
                record.execute(params![project, id, user])?;
            }
        }
        ids.push(id);
    }
    let mut updated = 0;
    for ((project, trace_id), touch) in &touched {
        if !touch.whole && update_trace(&tx, project, trace_id, touch, assembly)? {
            updated += 1;
        } else {
            recompute_trace(&tx, project, trace_id, assembly)?;
        }
    }
    tx.commit()?;
    metrics.traces_updated.inc_by(updated);
    metrics.traces_merged.inc_by(touched.len() as u64 - updated);
    Ok(ids)
}

/// Insert a new batch (or find the one an OTLP retry already stored) or update a stored one,
/// with its outcome. Returns its id, whether it is new (nothing to replace) and when it was
/// received (for a stored one: now); `None` when a stored batch is no longer there.
fn store_batch(tx: &Transaction<'_>, write: &BatchWrite) -> Result<Option<(i64, bool, i64)>> {
    let agents = (!write.agents.is_empty()).then(|| write.agents.join(","));
    let now = now_ns();
    if let Some(id) = write.id {
        let updated = tx.prepare_cached(&sql(writes::UPDATE_BATCH))?.execute(params![
            write.status.as_str(),
            agents,
            write.error,
            now,
            id
        ])?;
        return Ok((updated == 1).then_some((id, false, now)));
    }
    let (id, received_at): (i64, i64) = tx.prepare_cached(&sql(writes::INSERT_BATCH))?.query_row(
        params![
            write.project_id,
            write.signal,
            write.encoding,
            write.body,
            write.body_codec,
            write.body_sha256,
            now,
            write.status.as_str(),
            agents,
            write.error,
        ],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    // A retry keeps the first `received_at`: a different one means the row was there.
    Ok(Some((id, received_at == now, received_at)))
}

/// Whether what a stored batch normalizes into must stay out of the traces: it was received
/// before one of its users was erased, or before its project's trace retention.
fn retired(tx: &Transaction<'_>, project_id: &str, batch_id: i64, users: &[String]) -> Result<Retired> {
    let mut erased = tx.prepare_cached(&sql(erasure::RECEIVED_BEFORE_ERASURE))?;
    for user in users {
        if erased.exists(params![project_id, batch_id, user])? {
            return Ok(Retired::Erased);
        }
    }
    if tx.prepare_cached(&sql(erasure::RECEIVED_BEFORE_TRACE_RETENTION))?.exists(params![
        project_id,
        batch_id,
        now_ns()
    ])? {
        return Ok(Retired::Expired);
    }
    Ok(Retired::No)
}

/// Usage metrics go to their own table per session, never into traces.
fn insert_usage_metrics(
    tx: &Transaction<'_>,
    project_id: &str,
    batch_id: i64,
    fragments: &[(String, Fragment)],
) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO usage_metrics (project_id, session_id, name, report_id, agent, user_id, time_ns, value, unit, attributes, batch_id, repository, team)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (project_id, session_id, name, report_id) DO UPDATE SET
           value = excluded.value, attributes = excluded.attributes, batch_id = excluded.batch_id,
           repository = excluded.repository, team = excluded.team",
    )?;
    for (agent, f) in fragments {
        let Body::UsageMetric(m) = &f.body else { continue };
        insert.execute(params![
            project_id,
            f.attribution.session_id.as_deref().unwrap_or(""),
            m.name,
            f.report_id,
            agent,
            f.attribution.user_id,
            ns(Some(m.time_unix_nano)),
            m.value,
            m.unit,
            m.attributes_json,
            batch_id,
            f.attribution.repository,
            f.attribution.team,
        ])?;
    }
    Ok(())
}

fn insert_fragments(
    tx: &Transaction<'_>,
    project_id: &str,
    batch_id: i64,
    fragments: &[&(String, Fragment)],
) -> Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO fragments (project_id, trace_key, kind, fragment_id, report_id, batch_id, agent, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (project_id, trace_key, kind, fragment_id, report_id) DO UPDATE SET
           payload = excluded.payload, batch_id = excluded.batch_id, agent = excluded.agent",
    )?;
    for (agent, f) in fragments {
        let payload = serde_json::to_string(f).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        insert.execute(params![project_id, f.trace_key, f.body.kind(), f.id, f.report_id, batch_id, agent, payload])?;
    }
    Ok(())
}

/// Map `keys` to one trace, merging the traces they already belong to. Returns its id, and
/// whether it is one trace that was already stored (not new, not joined from several).
fn assign_trace(tx: &Transaction<'_>, project_id: &str, keys: &[String]) -> Result<(String, bool)> {
    let mut existing: BTreeSet<String> = BTreeSet::new();
    {
        let mut lookup = tx.prepare_cached("SELECT trace_id FROM trace_keys WHERE project_id = ?1 AND key = ?2")?;
        for key in keys {
            if let Some(trace) = lookup.query_row(params![project_id, key], |r| r.get(0)).optional()? {
                existing.insert(trace);
            }
        }
    }
    let mut all_keys: BTreeSet<String> = keys.iter().cloned().collect();
    {
        let mut keys_of = tx.prepare_cached("SELECT key FROM trace_keys WHERE project_id = ?1 AND trace_id = ?2")?;
        for trace_id in &existing {
            for key in keys_of.query_map(params![project_id, trace_id], |r| r.get::<_, String>(0))? {
                all_keys.insert(key?);
            }
        }
    }
    let Some(trace_id) = all_keys.first().cloned() else {
        return Err(StorageError::Corrupt("a fragment without a trace key".into()));
    };
    for old in existing.iter().filter(|id| **id != trace_id) {
        delete_trace(tx, project_id, old)?;
    }
    let grown = existing.len() == 1 && existing.contains(&trace_id);
    // Only keys not already mapped to this trace need a write.
    let keys: Vec<&String> = if grown { keys.iter().collect() } else { all_keys.iter().collect() };
    let mut insert = tx.prepare_cached(
        "INSERT INTO trace_keys (project_id, key, trace_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (project_id, key) DO UPDATE SET trace_id = excluded.trace_id",
    )?;
    for key in keys {
        insert.execute(params![project_id, key, trace_id])?;
    }
    Ok((trace_id, grown))
}

/// A trace's row, per-model rows and timeline (merged into another, or left with no fragment).
fn delete_trace(tx: &Transaction<'_>, project_id: &str, trace_id: &str) -> Result<()> {
    for statement in writes::DELETE_TRACE {
        tx.prepare_cached(&sql(statement))?.execute(params![project_id, trace_id])?;
    }
    Ok(())
}

/// Write what changed of a trace's timeline: new and changed entries, and the removal of
/// entries that are gone (a replay replaced what a batch said; a model call paired anew).
fn write_timeline(tx: &Transaction<'_>, project_id: &str, trace_id: &str, timeline: &Timeline) -> Result<()> {
    let mut stored = HashMap::new();
    if let Some(digests) = writes::stored_digests(timeline) {
        let mut existing = tx.prepare_cached(&sql(digests))?;
        let mut found = existing.query(params![project_id, trace_id])?;
        while let Some(row) = found.next()? {
            stored.insert((row.get(0)?, row.get(1)?), row.get(2)?);
        }
    }
    let TimelineChanges { upserts, deletes } = timeline_changes(timeline.rows(), stored);
    let mut upsert = tx.prepare_cached(
        "INSERT INTO observations (project_id, trace_id, kind, id, sort_ns, digest, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (project_id, trace_id, kind, id) DO UPDATE SET
           sort_ns = excluded.sort_ns, digest = excluded.digest, body = excluded.body",
    )?;
    for (o, digest) in upserts {
        upsert.execute(params![project_id, trace_id, o.kind, o.id, o.sort_ns, digest, o.body])?;
    }
    let mut delete = tx
        .prepare_cached("DELETE FROM observations WHERE project_id = ?1 AND trace_id = ?2 AND kind = ?3 AND id = ?4")?;
    for (kind, id) in deletes {
        delete.execute(params![project_id, trace_id, kind, id])?;
    }
    Ok(())
}

/// Count one resource that no plugin claimed.
fn count_unclaimed(tx: &Transaction<'_>, project_id: &str, service_name: &str, scope_names: &[String]) -> Result<()> {
    let scopes: Vec<&str> =
        if scope_names.is_empty() { vec![""] } else { scope_names.iter().map(String::as_str).collect() };
    let mut count = tx.prepare_cached(
        "INSERT INTO unclaimed (project_id, service_name, scope_name, resources, last_seen) VALUES (?1, ?2, ?3, 1, ?4)
         ON CONFLICT (project_id, service_name, scope_name) DO UPDATE SET
           resources = resources + 1, last_seen = excluded.last_seen",
    )?;
    for scope in scopes {
        count.execute(params![project_id, service_name, scope, now_ns()])?;
    }
    Ok(())
}

/// Update a trace from its stored state and what the group added; `false` when it has no
/// state or the state cannot tell (it is then merged whole).
fn update_trace(
    tx: &Transaction<'_>,
    project_id: &str,
    trace_id: &str,
    touch: &Touch,
    assembly: &Assembly,
) -> Result<bool> {
    let state: Option<String> = tx
        .prepare_cached("SELECT state FROM traces WHERE project_id = ?1 AND id = ?2")?
        .query_row(params![project_id, trace_id], |r| r.get(0))
        .optional()?
        .flatten();
    let Some(state) = state.as_deref().and_then(TraceState::from_json) else { return Ok(false) };
    let (entities, prompts) = Addition::touched(&touch.added);
    let mut addition =
        Addition { added: &touch.added, batches: &touch.batches, entities: Vec::new(), prompts: Vec::new() };
    let fragment = |row: &rusqlite::Row<'_>| -> rusqlite::Result<(String, String, i64)> {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    };
    let parse =
        |payload: &str| serde_json::from_str::<Fragment>(payload).map_err(|e| StorageError::Corrupt(e.to_string()));
    {
        let mut of_entity = tx.prepare_cached(
            "SELECT f.agent, f.payload, f.batch_id FROM trace_keys k CROSS JOIN fragments f
               ON k.project_id = f.project_id AND k.key = f.trace_key
             WHERE k.project_id = ?1 AND k.trace_id = ?2 AND f.kind = ?3 AND f.fragment_id = ?4",
        )?;
        for (kind, id) in &entities {
            for row in of_entity.query_map(params![project_id, trace_id, kind, id], fragment)? {
                let (agent, payload, batch_id) = row?;
                addition.entities.push(Entity { batch_id, stored: Stored { agent, fragment: parse(&payload)? } });
            }
        }
    }
    if prompts {
        let mut of_prompt = tx.prepare_cached(
            "SELECT f.agent, f.payload, f.batch_id FROM trace_keys k CROSS JOIN fragments f
               ON k.project_id = f.project_id AND k.key = f.trace_key
             WHERE k.project_id = ?1 AND k.trace_id = ?2 AND f.kind = 'prompt'",
        )?;
        for row in of_prompt.query_map(params![project_id, trace_id], fragment)? {
            let (agent, payload, _) = row?;
            addition.prompts.push(Stored { agent, fragment: parse(&payload)? });
        }
    }
    let Some(record) = state.apply(&addition, project_id, trace_id, assembly) else { return Ok(false) };
    write_trace(tx, project_id, &record, Received::AtLeast(touch.received))?;
    Ok(true)
}

fn recompute_trace(tx: &Transaction<'_>, project_id: &str, trace_id: &str, assembly: &Assembly) -> Result<()> {
    // CROSS JOIN fixes the loop order: the trace's keys first, then their fragments by primary
    // key. Left to itself the planner may scan every fragment of the project.
    let mut stored = Vec::new();
    // When the host last received a batch of the trace: what trace retention counts from.
    let mut received: Option<i64> = None;
    {
        let mut fragments = tx.prepare_cached(
            "SELECT f.agent, f.payload, b.received_at FROM trace_keys k CROSS JOIN fragments f
               ON k.project_id = f.project_id AND k.key = f.trace_key
               LEFT JOIN batches b ON b.id = f.batch_id
             WHERE k.project_id = ?1 AND k.trace_id = ?2",
        )?;
        let mut rows = fragments.query(params![project_id, trace_id])?;
        while let Some(row) = rows.next()? {
            received = received.max(row.get::<_, Option<i64>>(2)?);
            let payload = row.get_ref(1)?.as_str().map_err(|e| StorageError::Corrupt(e.to_string()))?;
            let fragment: Fragment = serde_json::from_str(payload).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            stored.push(Stored { agent: row.get(0)?, fragment });
        }
    }
    let Some(t) = assemble(project_id, trace_id, stored, assembly) else {
        delete_trace(tx, project_id, trace_id)?;
        return Ok(());
    };
    write_trace(tx, project_id, &t, Received::Latest(received))
}

/// When a trace's batches were received, as a write knows it.
enum Received {
    /// The latest of all its stored batches (`None`: none is stored any more: the time
    /// already recorded stays, a new row takes now).
    Latest(Option<i64>),
    /// At least this: the batches the write added.
    AtLeast(i64),
}

/// Write a trace: its row, per-model rows, timeline and state.
fn write_trace(tx: &Transaction<'_>, project_id: &str, t: &TraceRecord, received: Received) -> Result<()> {
    let (received, at_least) = match received {
        Received::Latest(at) => (at, false),
        Received::AtLeast(at) => (Some(at), true),
    };
    tx.prepare_cached(&sql(writes::DELETE_TRACE_MODELS))?.execute(params![project_id, t.id])?;
    tx.prepare_cached(&sql(writes::UPSERT_TRACE))?.execute(params![
        project_id,
        t.id,
        t.agent,
        t.session_id,
        t.user_id,
        t.device_id,
        t.start_ns,
        t.end_ns,
        t.input_tokens,
        t.output_tokens,
        t.cache_read_tokens,
        t.cache_creation_tokens,
        t.reasoning_tokens,
        t.cost_usd,
        t.summary,
        t.repository,
        t.branch,
        t.team,
        t.cost_source,
        t.tool_calls,
        t.tool_failures,
        received,
        now_ns(),
        t.state,
        at_least,
    ])?;
    write_timeline(tx, project_id, &t.id, &t.timeline)?;
    let mut insert = tx.prepare_cached(&format!(
        "{}VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        writes::INSERT_TRACE_MODELS
    ))?;
    let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for m in &t.models {
        insert.execute(params![
            project_id,
            t.id,
            m.model.as_deref().unwrap_or(""),
            int(m.usage.input),
            int(m.usage.output),
            int(m.usage.cache_read),
            int(m.usage.cache_creation),
            int(m.usage.reasoning),
            m.cost_usd,
            t.agent,
            t.session_id,
            t.user_id,
            t.device_id,
            t.repository,
            t.branch,
            t.team,
            t.start_ns,
            t.tool_calls,
            t.tool_failures,
        ])?;
    }
    Ok(())
}
