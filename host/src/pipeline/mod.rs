//! The flow of one stored batch: decode -> split by resource -> the pure [`normalize`] core
//! (detect, sandboxed plugin, [`validate`]) -> store fragments and recompute traces -> record
//! the outcome on the batch. A [`Pipeline`] value carries what that needs, for ingest, replay,
//! recovery at start-up and the retry of unclaimed batches alike.

pub mod normalize;
pub mod validate;

use std::sync::Arc;

pub use normalize::{Normalized, Unclaimed, normalize, run_plugin};
use serde::{Deserialize, Serialize};
pub use validate::validate;

use crate::config::Limits;
use crate::otlp::{self, Encoding, Signal};
use crate::plugins::Registry;
use crate::storage::{Batch, BatchSelection, BatchStatus, Storage, StorageError};

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
}

impl Pipeline {
    pub fn new(storage: Arc<dyn Storage>, registry: Arc<Registry>, limits: Limits) -> Self {
        Pipeline { storage, registry, limits }
    }

    /// Normalize a stored batch and record the outcome on it. Errors here are the batch's, not
    /// the request's: the batch stays stored with its error for replay.
    pub async fn process(&self, batch: &Batch) -> Outcome {
        let outcome = self.run(batch).await;
        if let Some(error) = &outcome.error {
            tracing::warn!(batch = batch.id, status = outcome.status.as_str(), %error, "batch not fully normalized");
        }
        if let Err(e) =
            self.storage.finish_batch(batch.id, outcome.status, &outcome.agents, outcome.error.as_deref()).await
        {
            tracing::error!(batch = batch.id, error = %e, "could not record the batch outcome");
        }
        outcome
    }

    async fn run(&self, batch: &Batch) -> Outcome {
        let failed = |agents, error: String| Outcome { status: BatchStatus::Failed, agents, error: Some(error) };
        let (Some(signal), Some(encoding)) =
            (Signal::parse(&batch.signal), Encoding::from_content_type(&batch.encoding))
        else {
            return failed(Vec::new(), format!("unknown signal {:?} or encoding {:?}", batch.signal, batch.encoding));
        };
        let export = match otlp::decode(signal, encoding, &batch.body) {
            Ok(export) => export,
            Err(e) => return failed(Vec::new(), e.to_string()),
        };
        let plugins = self.registry.snapshot();
        let limits = self.limits.clone();
        let resources = export.into_resource_batches();
        let normalized =
            tokio::task::spawn_blocking(move || normalize(&plugins, &limits, resources)).await.unwrap_or_else(|e| {
                Normalized { errors: vec![format!("plugin call panicked: {e}")], ..Default::default() }
            });
        let Normalized { agents, fragments, unclaimed, mut errors } = normalized;

        for resource in &unclaimed {
            if let Err(e) =
                self.storage.count_unclaimed(&batch.project_id, &resource.service_name, &resource.scope_names).await
            {
                tracing::error!(error = %e, "could not count an unclaimed resource");
            }
        }
        // Always applied, even when empty: a replay replaces what earlier versions produced.
        if let Err(e) = self.storage.apply_fragments(&batch.project_id, batch.id, &fragments).await {
            errors.push(format!("storing fragments: {e}"));
        }
        if !errors.is_empty() {
            return failed(agents, errors.join("; "));
        }
        if !unclaimed.is_empty() {
            let error = format!("{} resource(s) claimed by no plugin", unclaimed.len());
            let status = if agents.is_empty() { BatchStatus::Unclaimed } else { BatchStatus::Done };
            return Outcome { status, agents, error: Some(error) };
        }
        Outcome { status: BatchStatus::Done, agents, error: None }
    }

    /// Re-normalize `batches` through the plugins loaded now. Idempotent: each batch's earlier
    /// output is replaced, never added to.
    pub async fn replay(&self, batches: &[Batch]) -> ReplayReport {
        let mut report = ReplayReport { batches: batches.len(), ..Default::default() };
        for batch in batches {
            match self.process(batch).await.status {
                BatchStatus::Done => report.done += 1,
                BatchStatus::Unclaimed => report.unclaimed += 1,
                BatchStatus::Failed | BatchStatus::Pending => report.failed += 1,
            }
        }
        report
    }

    /// Normalize what a crash left stored but not normalized (called before `/readyz`).
    pub async fn recover_pending(&self) {
        match self.storage.batches(&BatchSelection::Pending).await {
            Ok(pending) => {
                if !pending.is_empty() {
                    tracing::info!(count = pending.len(), "normalizing batches stored before a restart");
                }
                for batch in &pending {
                    self.process(batch).await;
                }
            }
            Err(e) => tracing::error!(error = %e, "could not list pending batches"),
        }
    }

    /// Give batches that no plugin claimed another chance (called when the plugins change).
    pub async fn reprocess_unclaimed(&self) -> Result<ReplayReport, StorageError> {
        let batches = self.storage.batches(&BatchSelection::Unclaimed).await?;
        if batches.is_empty() {
            return Ok(ReplayReport::default());
        }
        let report = self.replay(&batches).await;
        tracing::info!(?report, "re-normalized batches that no plugin had claimed");
        Ok(report)
    }
}
