//! Persistence behind one object-safe interface, [`Storage`]: ingest, the pipeline and the
//! APIs never see a query. Each engine lives in its own module with its own migrations
//! (`host/migrations/<engine>/`); [`connect`] picks one from the database URL. What an engine
//! writes of a trace is [`crate::trace::TraceRecord`], so the public JSON is the same whatever
//! the engine.

mod analytics;
mod budgets;
mod erasure;
mod postgres;
mod queries;
mod sqlite;
mod writes;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::metrics::StorageMetrics;
use crate::trace::Assembly;
use crate::trace::model::Fragment;

pub use analytics::{OutcomeGroup, OutcomeRow, UsageGroup, UsageRow};
pub use budgets::{Alert, Budget, scope_column as budget_scope_column};
pub use erasure::{Erased, Expired, Retention};
pub use postgres::PostgresStorage;
pub use queries::Queries;
pub use sqlite::SqliteStorage;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// From the SQLite writer's own connection.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    Url(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the storage writer stopped")]
    WriterGone,
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Open (create, migrate) the database at `url`. `assembly` (the fallback user, the price
/// table) applies whenever a trace is assembled.
pub async fn connect(url: &str, assembly: Arc<Assembly>, metrics: StorageMetrics) -> Result<Arc<dyn Storage>> {
    if url.starts_with("sqlite:") {
        return Ok(Arc::new(SqliteStorage::connect(url, assembly, metrics).await?));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStorage::connect(url, assembly, metrics).await?));
    }
    Err(StorageError::Url(url.to_owned()))
}

/// What became of a stored batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Stored, not yet normalized (a crash in between): normalized at the next start.
    Pending,
    Done,
    /// A plugin failed or was put aside: kept with its error for replay.
    Failed,
    /// No plugin claimed it: retried when the plugins change.
    Unclaimed,
}

impl BatchStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Pending => "pending",
            BatchStatus::Done => "done",
            BatchStatus::Failed => "failed",
            BatchStatus::Unclaimed => "unclaimed",
        }
    }
}

/// The time now in Unix nanoseconds, as the engines record it (past the year 2262: the
/// largest there is).
pub(crate) fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Most bytes a stored body may inflate to (the ingest limit on a decoded body).
const MAX_BODY_BYTES: usize = 64 << 20;

/// A raw body as kept at rest, and its codec: zstd (level 1: fast, and a Claude Code logs body
/// shrinks to about a third, so a third of the write-ahead log), or as it came when zstd does
/// not make it smaller.
pub fn pack_body(raw: &[u8]) -> (Vec<u8>, &'static str) {
    match zstd::bulk::compress(raw, 1) {
        Ok(packed) if packed.len() < raw.len() => (packed, "zstd"),
        _ => (raw.to_vec(), "identity"),
    }
}

/// A stored raw batch.
#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub id: i64,
    pub project_id: String,
    pub signal: String,
    pub encoding: String,
    /// The body at rest, encoded by `body_codec` (see [`Batch::raw_body`]).
    #[serde(skip)]
    pub body: Vec<u8>,
    #[serde(skip)]
    pub body_codec: String,
    pub received_at: i64,
    pub status: String,
    pub agents: Option<String>,
    pub error: Option<String>,
}

impl Batch {
    /// The body as it was received.
    pub fn raw_body(&self) -> std::result::Result<Vec<u8>, String> {
        match self.body_codec.as_str() {
            "identity" => Ok(self.body.clone()),
            "zstd" => zstd::bulk::decompress(&self.body, MAX_BODY_BYTES)
                .map_err(|e| format!("stored body does not decompress: {e}")),
            other => Err(format!("stored body has an unknown codec {other:?}")),
        }
    }
}

/// Batches per page of [`Storage::batches`].
const BATCH_PAGE: i64 = 100;

/// Which stored batches to read.
#[derive(Debug, Clone)]
pub enum BatchSelection {
    /// Stored but not normalized (after a crash), every project.
    Pending,
    /// A project's batches that failed or that no plugin claimed.
    Problems { project_id: String },
    /// Batches no plugin claimed, every project.
    Unclaimed,
    /// What `replay` re-normalizes.
    Replay(ReplayFilter),
}

/// Filters of `GET /api/public/traces`, and of the sessions, usage and outcomes.
#[derive(Debug, Default, Clone)]
pub struct TraceFilter {
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub agent: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub team: Option<String>,
    /// Traces that used this model.
    pub model: Option<String>,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    /// Full-text search over the prompt text: every word must occur, the last one as a
    /// prefix (see [`search_terms`]).
    pub q: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Which stored batches `replay` re-normalizes.
#[derive(Debug, Default, Clone)]
pub struct ReplayFilter {
    pub project_id: Option<String>,
    pub agent: Option<String>,
    pub from_ns: Option<i64>,
    pub to_ns: Option<i64>,
    pub failed_only: bool,
}

/// A project's public key and the salted hash of its secret.
#[derive(Debug, Clone)]
pub struct ProjectKey {
    pub project_id: String,
    pub secret_hash: String,
}

/// A trace row: the summary JSON (contract field names; its `id` is the trace's own, also
/// when it was asked for by a key merged into it).
pub struct TraceRow {
    pub summary: serde_json::Value,
}

impl TraceRow {
    /// A trace from its stored summary (JSON text).
    fn of_summary(text: String) -> Result<TraceRow> {
        Ok(TraceRow { summary: serde_json::from_str(&text).map_err(|e| StorageError::Corrupt(e.to_string()))? })
    }
}

/// Most observations `GET /api/public/traces/{id}` shows; the rest are paged.
pub const DETAIL_OBSERVATIONS: i64 = 500;

/// A place in a trace's timeline: the observation a page ends with (its order: time, kind, id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationCursor {
    pub sort_ns: i64,
    pub kind: String,
    pub id: String,
}

impl ObservationCursor {
    /// Before the first observation.
    pub fn start() -> Self {
        ObservationCursor { sort_ns: i64::MIN, kind: String::new(), id: String::new() }
    }

    /// As the API hands it out, URL-safe: `<sort_ns>.<kind>.<id as hex>`.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.sort_ns, self.kind, hex::encode(&self.id))
    }

    /// Any text of that shape is a place in the order (a cursor the API gave is exactly where
    /// its page ended); `None` for other text.
    pub fn decode(cursor: &str) -> Option<Self> {
        let mut parts = cursor.splitn(3, '.');
        let sort_ns: i128 = parts.next()?.parse().ok()?;
        let kind = parts.next()?;
        let id = hex::decode(parts.next()?).ok()?;
        if !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return None;
        }
        Some(ObservationCursor {
            sort_ns: i64::try_from(sort_ns).unwrap_or(if sort_ns < 0 { i64::MIN } else { i64::MAX }),
            kind: kind.to_owned(),
            id: String::from_utf8_lossy(&id).into_owned(),
        })
    }
}

/// One observation of a page, and where it is in the timeline.
pub struct ObservationEntry {
    pub at: ObservationCursor,
    pub body: serde_json::Value,
}

/// A fragment as the `fragments` table stores it: (trace key, kind, id, report id, agent,
/// payload), sorted: an OTLP retry whose fragments are those its batch stored changes no trace.
pub(crate) type FragmentRow = (String, String, String, String, String, String);

/// The fragments batch `$2` of project `$1` stored, as [`FragmentRow`]s.
pub(crate) const FRAGMENTS_OF_BATCH: &str = "SELECT trace_key, kind, fragment_id, report_id, agent, payload
    FROM fragments WHERE project_id = $1 AND batch_id = $2";

pub(crate) fn fragment_rows(fragments: &[&(String, Fragment)]) -> Result<Vec<FragmentRow>> {
    let mut rows = fragments
        .iter()
        .map(|(agent, f)| {
            let payload = serde_json::to_string(f).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            Ok((
                f.trace_key.clone(),
                f.body.kind().to_owned(),
                f.id.clone(),
                f.report_id.clone(),
                agent.clone(),
                payload,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    rows.sort();
    Ok(rows)
}

/// Observations of trace `$2` of project `$1` after ($3, $4, $5) in timeline order, at most `$6`.
pub(crate) const OBSERVATION_PAGE: &str = "SELECT sort_ns, kind, id, body FROM observations
    WHERE project_id = $1 AND trace_id = $2 AND (sort_ns, kind, id) > ($3, $4, $5)
    ORDER BY sort_ns, kind, id LIMIT $6";

/// One row of [`OBSERVATION_PAGE`] (sort_ns, kind, id, body) as an entry.
fn observation_entry<R: sqlx::Row>(r: &R) -> Result<ObservationEntry>
where
    usize: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    String: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let body: String = r.try_get(3)?;
    Ok(ObservationEntry {
        at: ObservationCursor { sort_ns: r.try_get(0)?, kind: r.try_get(1)?, id: r.try_get(2)? },
        body: serde_json::from_str(&body).map_err(|e| StorageError::Corrupt(e.to_string()))?,
    })
}

#[derive(Debug, Serialize)]
pub struct SessionRow {
    pub id: String,
    pub agent: String,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub team: Option<String>,
    pub start_time: Option<String>,
    pub end_time: Option<String>,
    pub trace_count: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct UserRow {
    pub id: String,
    pub traces: i64,
    pub sessions: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: Option<f64>,
    pub last_seen: Option<String>,
    /// Trace count per agent.
    pub agents: BTreeMap<String, i64>,
}

/// A resource no plugin claimed: what `GET /api/public/unclaimed` counts it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnclaimedResource {
    pub service_name: String,
    pub scope_names: Vec<String>,
}

/// One batch to store with what the plugins made of it, in one atomic write.
#[derive(Debug, Clone)]
pub struct BatchWrite {
    /// `None`: a new request, stored (deduplicated by its body's digest: an OTLP retry lands
    /// on the batch already stored). `Some`: a stored batch normalized again (replay,
    /// recovery, unclaimed retry); its body is not rewritten.
    pub id: Option<i64>,
    pub project_id: String,
    pub signal: String,
    pub encoding: String,
    /// The body at rest (new requests only; see [`pack_body`]), its codec, and the SHA-256 of
    /// the body as received (what deduplicates an OTLP retry).
    pub body: Vec<u8>,
    pub body_codec: &'static str,
    pub body_sha256: String,
    pub status: BatchStatus,
    pub agents: Vec<String>,
    pub error: Option<String>,
    /// (agent, fragment), validated. They replace what an earlier run of the batch produced.
    pub fragments: Vec<(String, Fragment)>,
    pub unclaimed: Vec<UnclaimedResource>,
    /// The users the body names (the host's own reading and its fragments'): recorded with
    /// the batch, so erasure finds every body that carried a user.
    pub users: Vec<String>,
}

/// Resources no plugin claimed, per service.name and scope.
#[derive(Debug, Serialize)]
pub struct UnclaimedRow {
    pub service_name: String,
    pub scope_name: String,
    pub resources: i64,
    pub last_seen: Option<String>,
}

/// The storage interface. Object-safe, so the server holds an `Arc<dyn Storage>` and the
/// engine is chosen at start-up. What both engines answer with the same SQL is in its
/// supertrait [`Queries`] (storage/queries.rs); this trait holds what each engine writes its own way.
#[async_trait]
pub trait Storage: Queries + Send + Sync {
    // ---- batches, fragments, traces -----------------------------------------------------
    /// Store a batch, its fragments (replacing an earlier run's), its unclaimed resources and
    /// its outcome, and update every trace it touched — atomically, and durably when this
    /// returns. Idempotent. Engines may group concurrent calls into one transaction (group
    /// commit); each caller still gets its own answer. Returns the batch id.
    async fn commit(&self, write: BatchWrite) -> Result<i64>;

    // ---- queries that differ by engine (full-text search) ----------------------------------
    /// The traces `filter` selects (`limit`, `offset`), latest first.
    async fn list_traces(&self, project_id: &str, filter: &TraceFilter) -> Result<Vec<TraceRow>>;
}

/// The words of a full-text query (`q`), as both engines index prompt text: split on
/// anything that is not a letter or digit, lowercased, at most 16 words of at most 64
/// characters. Only letters and digits remain, so a word needs no quoting in either engine's
/// query syntax.
pub fn search_terms(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| w.chars().take(64).collect::<String>().to_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observation_cursor_round_trips_and_any_text_of_its_shape_is_a_place() {
        let at = ObservationCursor { sort_ns: -5, kind: "tool_call".into(), id: "toolu.é/1".into() };
        assert_eq!(ObservationCursor::decode(&at.encode()), Some(at));
        let far = ObservationCursor::decode("99999999999999999999.x.ff").expect("a place");
        assert_eq!((far.sort_ns, far.id.as_str()), (i64::MAX, "\u{FFFD}"));
        for bad in ["", "1", "1.a", "x.a.00", "1.A.00", "1.a.0g"] {
            assert_eq!(ObservationCursor::decode(bad), None, "{bad}");
        }
    }

    fn stored(body: Vec<u8>, codec: &str) -> Batch {
        Batch {
            id: 1,
            project_id: "p".into(),
            signal: "logs".into(),
            encoding: "application/json".into(),
            body,
            body_codec: codec.into(),
            received_at: 0,
            status: "done".into(),
            agents: None,
            error: None,
        }
    }

    #[test]
    fn bodies_round_trip_packed_or_as_they_came() {
        let text = br#"{"resourceLogs":[{"scopeLogs":[]}]}"#.repeat(100);
        let (packed, codec) = pack_body(&text);
        assert_eq!(codec, "zstd");
        assert!(packed.len() < text.len() / 10, "repetitive JSON packs small");
        assert_eq!(stored(packed, codec).raw_body().expect("unpacks"), text);
        // Too small to gain: kept as it came.
        let (kept, codec) = pack_body(b"{}");
        assert_eq!((kept.as_slice(), codec), (&b"{}"[..], "identity"));
        assert_eq!(stored(kept, codec).raw_body().expect("as is"), b"{}");
    }

    #[test]
    fn a_corrupt_or_unknown_stored_body_is_an_error_not_a_panic() {
        assert!(stored(b"not zstd".to_vec(), "zstd").raw_body().is_err());
        assert!(stored(b"{}".to_vec(), "brotli").raw_body().unwrap_err().contains("unknown codec"));
    }
}
