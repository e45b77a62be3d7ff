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

use crate::otlp::{Encoding, Signal};
use crate::server::AppState;

/// The three OTLP collector services over one [`AppState`].
#[derive(Clone)]
pub struct Collector {
    state: AppState,
}

impl Collector {
    pub fn new(state: AppState) -> Self {
        Collector { state }
    }

    /// Authenticate, store and normalize one export request.
    async fn accept<T: Message>(&self, request: Request<T>, signal: Signal) -> Result<(), Status> {
        let authorization = request.metadata().get("authorization").map(|v| v.to_str().unwrap_or(""));
        let project = crate::api::authenticate_value(&self.state, authorization).await.map_err(|r| {
            if r.status == 401 { Status::unauthenticated(r.message) } else { Status::unavailable(r.message) }
        })?;
        // tonic decoded the message once; the stored raw batch is its protobuf encoding.
        let body = request.into_inner().encode_to_vec();
        crate::ingest::accept(&self.state, project, signal, Encoding::Protobuf, body).await.map_err(Status::unavailable)
    }

    /// The services, with gzip accepted and the decoded-size limit applied.
    pub fn router(self) -> tonic::service::Routes {
        let max = self.state.config.limits.max_decoded_bytes;
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
        self.accept(request, Signal::Traces).await?;
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Collector {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.accept(request, Signal::Logs).await?;
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Collector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.accept(request, Signal::Metrics).await?;
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}
