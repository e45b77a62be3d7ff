//! The flow of one batch: split by resource -> the pure [`normalize`] core (detect, sandboxed
//! plugin, [`validate`]) -> one atomic write of the batch, its fragments, its recomputed traces
//! and its outcome. A [`Pipeline`] value carries what that needs, for ingest (a decoded request),
//! replay, recovery at start-up and the retry of unclaimed batches (a stored body) alike.

pub mod normalize;
pub mod validate;

use std::sync::Arc;

pub use normalize::{Normalized, normalize, run_plugin};
use serde::{Deserialize, Serialize};
pub use validate::validate;

use crate::config::Limits;
use crate::metrics::{Metrics, PluginLabels};
use crate::otlp::{self, Encoding, Export, Signal};
use crate::plugins::Registry;
use crate::storage::{Batch, BatchSelection, BatchStatus, BatchWrite, Storage, StorageError, pack_body};

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: BatchStatus,
    pub agents: Vec<String>,
    pub error: Option<String>,
}

/// What a replay did.
#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReplayReport {
    pub batches: usize,
    pub done: usize,
    pub failed: usize,
    pub unclaimed: usize,
}

/// Storage, plugins and limits: everything a batch goes through after it is stored.
#[derive(Clone)]
pub struct Pipeline {
    storage: Arc<dyn Storage>,
    registry: Arc<Registry>,
    limits: Limits,
    metrics: Arc<Metrics>,
}

impl Pipeline {
    pub fn new(storage: Arc<dyn Storage>, registry: Arc<Registry>, limits: Limits, metrics: Arc<Metrics>) -> Self {
        Pipeline { storage, registry, limits, metrics }
    }

    /// A decoded request: normalize it, then store it with its output in one atomic write
    /// (group-committed with its neighbours). When this returns `Ok`, the batch is durable
    /// and queryable; a normalization failure is recorded on the stored batch, not returned.
    pub async fn accept(
        &self,
        project_id: String,
        signal: Signal,
        encoding: Encoding,
        body: Vec<u8>,
        export: Export,
    ) -> Result<Outcome, StorageError> {
        // Digesting and packing the body for storage, then the plugins: one trip off the async
        // threads for both.
        let job = self.normalizing(&project_id);
        let (stored, normalized) = tokio::task::spawn_blocking(move || {
            let (packed, codec) = pack_body(&body);
            let stored = (packed, codec, crate::ids::sha256_hex(&body));
            drop(body);
            (stored, job.run_caught(export))
        })
        .await
        .map_err(|e| StorageError::Corrupt(format!("normalizing a batch: {e}")))?;
        self.count_calls(&normalized);
        let (write, outcome) = write_of(None, project_id, signal, encoding, stored, normalized);
        self.storage.commit(write).await?;
        Ok(outcome)
    }

    /// A stored batch, normalized again through the plugins loaded now; the outcome is
    /// recorded on it. Errors here are the batch's: it stays stored with its error for replay.
    pub async fn process(&self, batch: &Batch) -> Outcome {
        let (Some(signal), Some(encoding)) =
            (Signal::parse(&batch.signal), Encoding::from_content_type(&batch.encoding))
        else {
            let error = format!("unknown signal {:?} or encoding {:?}", batch.signal, batch.encoding);
            return Outcome { status: BatchStatus::Failed, agents: Vec::new(), error: Some(error) };
        };
        let decoded =
            batch.raw_body().and_then(|body| otlp::decode(signal, encoding, &body).map_err(|e| e.to_string()));
        let normalized = match decoded {
            Ok(export) => self.normalize(&batch.project_id, export).await,
            Err(e) => Normalized { errors: vec![e], ..Default::default() },
        };
        let project_id = batch.project_id.clone();
        let (write, mut outcome) = write_of(Some(batch.id), project_id, signal, encoding, NO_NEW_BODY, normalized);
        if let Err(e) = self.storage.commit(write).await {
            tracing::error!(batch = batch.id, error = %e, "could not store a re-normalized batch");
            outcome = Outcome { status: BatchStatus::Failed, agents: outcome.agents, error: Some(e.to_string()) };
        }
        if let Some(error) = &outcome.error {
            tracing::warn!(batch = batch.id, status = outcome.status.as_str(), %error, "batch not fully normalized");
        }
        outcome
    }

    /// Every resource of a request through the plugins loaded now, off the async threads.
    async fn normalize(&self, project_id: &str, export: Export) -> Normalized {
        let job = self.normalizing(project_id);
        let normalized = tokio::task::spawn_blocking(move || job.run_caught(export)).await.unwrap_or_else(|e| {
            Normalized { errors: vec![format!("normalizing panicked: {e}")], ..Default::default() }
        });
        self.count_calls(&normalized);
        normalized
    }

    /// What a blocking thread needs to normalize a request of `project_id`.
    fn normalizing(&self, project_id: &str) -> Normalizing {
        Normalizing {
            plugins: self.registry.snapshot(),
            limits: self.limits.clone(),
            project_id: project_id.to_owned(),
        }
    }

    fn count_calls(&self, normalized: &Normalized) {
        for (plugin, version, seconds, ok) in &normalized.calls {
            let labels = PluginLabels::new(plugin, version);
            self.metrics.plugin_call_seconds.get_or_create(&labels).observe(*seconds);
            if !ok {
                self.metrics.plugin_failures.get_or_create(&labels).inc();
            }
        }
    }

    /// Re-normalize `batches` through the plugins loaded now. Idempotent: each batch's earlier
    /// output is replaced, never added to.
    pub async fn replay(&self, batches: &[Batch]) -> ReplayReport {
        let mut report = ReplayReport::default();
        for batch in batches {
            report.count(self.process(batch).await.status);
        }
        report
    }

    /// Re-normalize every stored batch of `selection`, [`CHUNK`] at a time by id: only one
    /// chunk's bodies are held at once, however many batches match. A batch the run moves out
    /// of the selection (an unclaimed one now claimed) is behind the cursor already.
    pub async fn replay_selection(&self, selection: &BatchSelection) -> Result<ReplayReport, StorageError> {
        let mut report = ReplayReport::default();
        let mut after = 0;
        loop {
            let chunk = self.storage.batch_page(selection, after, CHUNK, true).await?;
            let Some(last) = chunk.last() else { break };
            after = last.id;
            let full = chunk.len() as i64 == CHUNK;
            let done = self.replay(&chunk).await;
            report.add(&done);
            if !full {
                break;
            }
        }
        Ok(report)
    }

    /// Normalize what a crash left stored but not normalized (called before `/readyz`).
    pub async fn recover_pending(&self) {
        match self.replay_selection(&BatchSelection::Pending).await {
            Ok(report) if report.batches > 0 => {
                tracing::info!(?report, "normalized batches stored before a restart");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "could not read pending batches"),
        }
    }

    /// Give batches that no plugin claimed another chance (called when the plugins change).
    pub async fn reprocess_unclaimed(&self) -> Result<ReplayReport, StorageError> {
        let report = self.replay_selection(&BatchSelection::Unclaimed).await?;
        if report.batches > 0 {
            tracing::info!(?report, "re-normalized batches that no plugin had claimed");
        }
        Ok(report)
    }
}

/// The plugins loaded when a request came, its limits and project: normalizing it on a
/// blocking thread.
struct Normalizing {
    plugins: Arc<Vec<Arc<crate::plugins::Loaded>>>,
    limits: Limits,
    project_id: String,
}

impl Normalizing {
    /// A panic (a host bug) becomes the batch's error: the body is still stored for replay.
    fn run_caught(self, export: Export) -> Normalized {
        let resources = export.into_resource_batches();
        let mut users = normalize::carried_users(&resources, &self.limits);
        let run = std::panic::AssertUnwindSafe(|| normalize(&self.plugins, &self.limits, &self.project_id, resources));
        let mut normalized = std::panic::catch_unwind(run).unwrap_or_else(|_| Normalized {
            errors: vec!["normalizing panicked (a host bug; the batch is kept for replay)".into()],
            ..Default::default()
        });
        users.extend(normalized.fragments.iter().filter_map(|(_, f)| f.attribution.user_id.clone()));
        normalized.users = users.into_iter().collect();
        normalized
    }
}

/// Batches re-normalized per chunk of a replay, a recovery or an unclaimed retry: the most
/// stored bodies held at once.
pub const CHUNK: i64 = 100;

impl ReplayReport {
    fn count(&mut self, status: BatchStatus) {
        self.batches += 1;
        match status {
            BatchStatus::Done => self.done += 1,
            BatchStatus::Unclaimed => self.unclaimed += 1,
            BatchStatus::Failed | BatchStatus::Pending => self.failed += 1,
        }
    }

    fn add(&mut self, other: &ReplayReport) {
        self.batches += other.batches;
        self.done += other.done;
        self.failed += other.failed;
        self.unclaimed += other.unclaimed;
    }
}

/// A body as stored: (bytes at rest, codec, SHA-256 of the body as received).
type StoredBody = (Vec<u8>, &'static str, String);

/// What a re-normalized batch writes of its body: nothing (the stored one stays).
const NO_NEW_BODY: StoredBody = (Vec::new(), "identity", String::new());

/// The write of one batch with its output, and the outcome it records.
fn write_of(
    id: Option<i64>,
    project_id: String,
    signal: Signal,
    encoding: Encoding,
    (body, body_codec, body_sha256): StoredBody,
    normalized: Normalized,
) -> (BatchWrite, Outcome) {
    let (status, error) = normalized.outcome();
    let outcome = Outcome { status, agents: normalized.agents.clone(), error: error.clone() };
    let write = BatchWrite {
        id,
        project_id,
        signal: signal.as_str().to_owned(),
        encoding: encoding.content_type().to_owned(),
        body,
        body_codec,
        body_sha256,
        status,
        agents: normalized.agents,
        error,
        fragments: normalized.fragments,
        unclaimed: normalized.unclaimed,
        users: normalized.users,
    };
    (write, outcome)
}
