//! The statements both engines' writers run, written once with `$n` placeholders: the SQLite
//! writer thread prepares them through rusqlite (as `?n`, `sqlite::sql`), PostgreSQL through
//! sqlx. What the writers do differently — one row a statement in one blocking transaction on
//! SQLite, multi-row statements and arrays under advisory locks on PostgreSQL — stays in their
//! files.

use crate::trace::Timeline;

/// A batch run again (replay, recovery, retry of what no plugin claimed): its new outcome.
/// `$1` status, `$2` agents, `$3` error, `$4` processed at, `$5` id.
pub const UPDATE_BATCH: &str =
    "UPDATE batches SET status = $1, agents = $2, error = $3, processed_at = $4 WHERE id = $5";

/// A batch as it arrives, or the stored row of the same body (an OTLP retry: its first
/// `received_at` stays). `$1` project … `$10` error; received and processed at `$7`.
pub const INSERT_BATCH: &str = "INSERT INTO batches
        (project_id, signal, encoding, body, body_codec, body_sha256, received_at, status, agents, error, processed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $7)
     ON CONFLICT (project_id, signal, body_sha256) DO UPDATE SET
       status = excluded.status, agents = excluded.agents, error = excluded.error, processed_at = excluded.processed_at
     RETURNING id, received_at";

/// What a batch stored before is replaced by when it runs again: `$1` project, `$2` batch.
pub const DELETE_BATCH_OUTPUT: [&str; 2] = [
    "DELETE FROM fragments WHERE project_id = $1 AND batch_id = $2",
    "DELETE FROM usage_metrics WHERE project_id = $1 AND batch_id = $2",
];

/// A trace's row, per-model rows and timeline (merged into another, or left with no
/// fragment): `$1` project, `$2` trace.
pub const DELETE_TRACE: [&str; 3] = [
    "DELETE FROM traces WHERE project_id = $1 AND id = $2",
    "DELETE FROM trace_models WHERE project_id = $1 AND trace_id = $2",
    "DELETE FROM observations WHERE project_id = $1 AND trace_id = $2",
];

/// A trace's per-model rows are written anew with the trace: `$1` project, `$2` trace.
pub const DELETE_TRACE_MODELS: &str = "DELETE FROM trace_models WHERE project_id = $1 AND trace_id = $2";

/// A trace's row. `$1`–`$21` its columns in this order, `$22` when its newest batch was
/// received (NULL: no stored batch is left), `$23` now, `$24` its state, `$25` whether `$22`
/// only says "at least" (an update from what a write added: the time only moves forward).
pub const UPSERT_TRACE: &str = "INSERT INTO traces (project_id, id, agent, session_id, user_id, device_id,
        start_ns, end_ns, input_tokens, output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens,
        cost_usd, summary, repository, branch, team, cost_source, tool_calls, tool_failures, received_ns, state)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
        COALESCE($22, $23), $24)
     ON CONFLICT (project_id, id) DO UPDATE SET
        received_ns = CASE
            WHEN $25 AND (traces.received_ns IS NULL OR traces.received_ns < $22) THEN $22
            WHEN $25 THEN traces.received_ns
            ELSE COALESCE($22, traces.received_ns, $23) END,
        state = excluded.state,
        repository = excluded.repository, branch = excluded.branch, team = excluded.team,
        cost_source = excluded.cost_source, tool_calls = excluded.tool_calls, tool_failures = excluded.tool_failures,
        agent = excluded.agent, session_id = excluded.session_id, user_id = excluded.user_id,
        device_id = excluded.device_id, start_ns = excluded.start_ns, end_ns = excluded.end_ns,
        input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
        cache_read_tokens = excluded.cache_read_tokens, cache_creation_tokens = excluded.cache_creation_tokens,
        reasoning_tokens = excluded.reasoning_tokens, cost_usd = excluded.cost_usd,
        summary = excluded.summary";

/// The start of a trace's per-model rows' insert (19 columns; the engines add the values).
pub const INSERT_TRACE_MODELS: &str = "INSERT INTO trace_models (project_id, trace_id, model, input_tokens,
        output_tokens, cache_read_tokens, cache_creation_tokens, reasoning_tokens, cost_usd, agent, session_id,
        user_id, device_id, repository, branch, team, start_ns, tool_calls, tool_failures) ";

/// The stored digests a timeline write compares with (`$1` project, `$2` trace): every entry
/// for a whole timeline, the model calls for an update that re-paired them, none otherwise
/// (an update's tool calls and events are new or changed, never gone).
pub fn stored_digests(timeline: &Timeline) -> Option<&'static str> {
    match timeline {
        Timeline::Whole(_) => Some("SELECT kind, id, digest FROM observations WHERE project_id = $1 AND trace_id = $2"),
        Timeline::Changed { calls: true, .. } => Some(
            "SELECT kind, id, digest FROM observations WHERE project_id = $1 AND trace_id = $2 AND kind = 'llm_call'",
        ),
        Timeline::Changed { calls: false, .. } => None,
    }
}
