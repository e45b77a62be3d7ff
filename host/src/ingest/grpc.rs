//! OTLP/gRPC (default port 4317): the same auth (Basic in the `authorization` metadata), the
//! same pipeline and the same semantics as OTLP/HTTP — so Gemini CLI's default transport, and
//! any gRPC exporter, point straight at Antenna with no collector in between.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use std::sync::Arc;
use std::time::Instant;

use super::limits::check_shape;
use super::{Ingest, IngestError};
use crate::otlp::{Encoding, Export, Signal};

/// The three OTLP collector services over one [`Ingest`].
#[derive(Clone)]
pub struct Collector {
    ingest: Arc<Ingest>,
}

impl Collector {
    pub fn new(ingest: Arc<Ingest>) -> Self {
        Collector { ingest }
    }

    /// Authenticate, check, store and normalize one export request.
    async fn accept<T>(&self, request: Request<T>, signal: Signal, wrap: fn(T) -> Export) -> Result<(), Status> {
        let started = Instant::now();
        let result = self.handle(request, signal, wrap).await;
        self.ingest.answered("grpc", signal.as_str(), &result, started);
        result.map(|_| ()).map_err(|e| e.to_grpc())
    }

    async fn handle<T>(
        &self,
        request: Request<T>,
        signal: Signal,
        wrap: fn(T) -> Export,
    ) -> Result<usize, IngestError> {
        let authorization = request.metadata().get("authorization").map(|v| v.to_str().unwrap_or(""));
        let client = request.remote_addr().map(|a| a.ip());
        let (project, _slot) = self.ingest.admit(authorization, client).await?;
        let export = wrap(request.into_inner());
        check_shape(&export, &self.ingest.limits).map_err(IngestError::BadRequest)?;
        // tonic decoded the message once; the stored raw batch is its protobuf encoding.
        let body = match &export {
            Export::Traces(r) => r.encode_to_vec(),
            Export::Logs(r) => r.encode_to_vec(),
            Export::Metrics(r) => r.encode_to_vec(),
        };
        let records = export.record_count();
        self.ingest.accept(project, signal, Encoding::Protobuf, body, export).await?;
        Ok(records)
    }

    /// The services, with gzip accepted and the decoded-size limit applied.
    pub fn router(self) -> tonic::service::Routes {
        let max = self.ingest.limits.max_decoded_bytes;
        tonic::service::Routes::new(
            TraceServiceServer::new(self.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .add_service(
            LogsServiceServer::new(self.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max),
        )
        .add_service(
            MetricsServiceServer::new(self).accept_compressed(CompressionEncoding::Gzip).max_decoding_message_size(max),
        )
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.accept(request, Signal::Traces, Export::Traces).await?;
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Collector {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.accept(request, Signal::Logs, Export::Logs).await?;
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.accept(request, Signal::Metrics, Export::Metrics).await?;
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}
