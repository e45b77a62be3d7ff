//! OTLP in: [`http`] (`POST /v1/{signal}`) and [`grpc`] (the collector services) meet at one
//! transport-neutral [`Ingest::accept`]: authenticated before any body is read, the body
//! received under a deadline, admitted ([`admission`]), bounded ([`limits`]), decoded once,
//! normalized through the pipeline and stored with its output in one group-committed write
//! before the answer. Every refusal and its status on both transports is in [`reply`];
//! connections themselves (their cap, header deadlines, HTTP/2 settings) are in [`conn`].

pub mod admission;
pub mod conn;
pub mod grpc;
pub mod http;
pub mod limits;
pub mod prescan;
pub mod reply;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::auth::Authenticator;
use crate::config::Limits;
use crate::metrics::{Metrics, RequestLabels};
use crate::otlp::{Encoding, Export, Signal};
use crate::pipeline::Pipeline;
use crate::storage::BatchStatus;
use admission::Admission;
pub use reply::IngestError;

/// What both transports share.
pub struct Ingest {
    pub(crate) authenticator: Arc<Authenticator>,
    pub(crate) admission: Admission,
    pub(crate) limits: Limits,
    pipeline: Pipeline,
    metrics: Arc<Metrics>,
}

impl Ingest {
    pub fn new(authenticator: Arc<Authenticator>, pipeline: Pipeline, limits: Limits, metrics: Arc<Metrics>) -> Self {
        Ingest { authenticator, admission: Admission::new(&limits, metrics.clone()), limits, pipeline, metrics }
    }

    /// Batches being processed and waiting now.
    pub fn load(&self) -> (usize, usize) {
        self.admission.load()
    }

    /// The caller's project, from the request's headers alone: no body is read, and on gRPC no
    /// message decoded, before this succeeds.
    pub(crate) async fn authenticate(
        &self,
        authorization: Option<&str>,
        client: Option<IpAddr>,
    ) -> Result<String, IngestError> {
        Ok(self.authenticator.authenticate(authorization, client).await?)
    }

    /// Decode a body within its bounds, whichever the transport (the caller holds a processing
    /// slot): the pre-scan refuses, before anything is decoded, a body over the record cap (413),
    /// too wide or deep (400) or that would decode to more than `max_decoded_bytes` (413); its
    /// estimate then waits for room in the decoded-bytes budget (held by the returned permit
    /// until the request is answered); then it is decoded and its shape checked (400).
    pub(crate) async fn decode(
        &self,
        signal: Signal,
        encoding: Encoding,
        body: &[u8],
    ) -> Result<(Export, tokio::sync::SemaphorePermit<'_>), IngestError> {
        use prescan::PrescanError;
        let estimate = prescan::prescan(signal, encoding, body, &self.limits).map_err(|e| match e {
            PrescanError::TooManyRecords { records, max } => IngestError::TooManyRecords { records, max },
            PrescanError::TooLarge { .. } => IngestError::TooLarge(e.to_string()),
            PrescanError::TooComplex(_) | PrescanError::Malformed(_) => IngestError::BadRequest(e.to_string()),
        })?;
        let room = self.admission.decoded(estimate.decoded_bytes).await.map_err(IngestError::Busy)?;
        let export = crate::otlp::decode(signal, encoding, body).map_err(|e| IngestError::BadRequest(e.to_string()))?;
        // Records were counted by the pre-scan (never fewer than decoded); what it does not
        // look at, string lengths, is checked on the decoded value.
        limits::check_shape(&export, &self.limits).map_err(IngestError::BadRequest)?;
        Ok((export, room))
    }

    /// Normalize a decoded, valid request and store it durably with its output. The only
    /// error is the storage being unavailable (the client should retry); what happens during
    /// normalization stays on the stored batch.
    pub async fn accept(
        &self,
        project_id: String,
        signal: Signal,
        encoding: Encoding,
        body: Vec<u8>,
        export: Export,
    ) -> Result<(), IngestError> {
        let outcome = self.pipeline.accept(project_id, signal, encoding, body, export).await.map_err(|e| {
            tracing::error!(error = %e, "could not store a batch");
            IngestError::Storage
        })?;
        let metrics = &self.metrics;
        match outcome.status {
            BatchStatus::Done => &metrics.batches_done,
            BatchStatus::Unclaimed => &metrics.batches_unclaimed,
            BatchStatus::Failed | BatchStatus::Pending => &metrics.batches_failed,
        }
        .inc();
        Ok(())
    }

    /// Count one answered export request, whichever the transport.
    pub(crate) fn answered(
        &self,
        transport: &'static str,
        signal: &'static str,
        result: &Result<usize, IngestError>,
        started: Instant,
    ) {
        let metrics = &self.metrics;
        let status = match result {
            Ok(records) => {
                metrics.accepted.inc();
                metrics.records.inc_by(*records as u64);
                200
            }
            Err(error) => {
                let status = error.status();
                if status.is_client_error() && status != axum::http::StatusCode::TOO_MANY_REQUESTS {
                    metrics.rejected_client.inc();
                }
                status.as_u16()
            }
        };
        let labels = RequestLabels { transport, signal, status };
        metrics.request_seconds.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    }
}
