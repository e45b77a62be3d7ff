//! OTLP/gRPC (default port 4317): the same auth (Basic in the `authorization` metadata), the
//! same pipeline and the same semantics as OTLP/HTTP — so Gemini CLI's default transport, and
//! any gRPC exporter, point straight at Antenna with no collector in between.
//!
//! tonic decodes a whole message before a handler runs, so what must come first sits in front
//! of it, in [`Gate`]: the key is checked from the metadata alone, a reading slot is taken and
//! the message must arrive within the body deadline — all before any of it is decoded. Messages
//! are at most `max_body_bytes` (16 MiB), also after gzip. The handler then takes a processing
//! slot, checks records and shape, and accepts.

use http_body_util::BodyExt;
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
use tonic::codegen::{BoxFuture, Service, http};
use tonic::transport::server::TcpConnectInfo;
use tonic::{Request, Response, Status};

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::{Ingest, IngestError};
use crate::auth::AuthError;
use crate::otlp::{Encoding, Export, Signal};

/// The project [`Gate`] authenticated the request for (a request extension).
#[derive(Debug, Clone)]
struct Authenticated(String);

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
        // Authenticated by the gate before the message was decoded; without it, refused.
        let Some(Authenticated(project)) = request.extensions().get::<Authenticated>().cloned() else {
            return Err(IngestError::Auth(AuthError::Missing));
        };
        let _slot = self.ingest.admission.enter().await.map_err(IngestError::Busy)?;
        let export = wrap(request.into_inner());
        self.ingest.check(&export)?;
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

    /// The services behind their [`Gate`], with gzip accepted and the message size limited.
    pub fn service(self) -> Gate {
        let ingest = self.ingest.clone();
        Gate { ingest, routes: self.routes().prepare() }
    }

    fn routes(self) -> tonic::service::Routes {
        let max = self.ingest.limits.max_body_bytes;
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

/// What runs before tonic decodes a message: authentication from the `authorization`
/// metadata, a reading slot (held until the call ends), and the body deadline.
#[derive(Clone)]
pub struct Gate {
    ingest: Arc<Ingest>,
    routes: tonic::service::Routes,
}

impl Service<http::Request<tonic::body::Body>> for Gate {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<http::Request<tonic::body::Body>>::poll_ready(&mut self.routes, cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let ingest = self.ingest.clone();
        // The clone is ready (Routes always is); the one polled stays for the next call.
        let mut routes = self.routes.clone();
        Box::pin(async move {
            let started = Instant::now();
            let signal = signal_of(request.uri().path());
            let authorization = request.headers().get("authorization").map(|v| v.to_str().unwrap_or("").to_owned());
            let client = request.extensions().get::<TcpConnectInfo>().and_then(|i| i.remote_addr()).map(|a| a.ip());
            let admitted = async {
                let project = ingest.authenticate(authorization.as_deref(), client).await?;
                let reading = ingest.admission.reading().await.map_err(IngestError::Busy)?;
                Ok::<_, IngestError>((project, reading))
            };
            let (project, _reading) = match admitted.await {
                Ok(admitted) => admitted,
                Err(error) => {
                    let status = error.to_grpc();
                    ingest.answered("grpc", signal, &Err(error), started);
                    return Ok(status.into_http());
                }
            };
            request.extensions_mut().insert(Authenticated(project));
            let deadline = Duration::from_millis(ingest.limits.body_read_timeout_ms);
            let request = request.map(|body| within(body, deadline));
            routes.call(request).await
        })
    }
}

/// The signal a gRPC path is for, as a metrics label.
fn signal_of(path: &str) -> &'static str {
    if path.starts_with("/opentelemetry.proto.collector.trace.") {
        Signal::Traces.as_str()
    } else if path.starts_with("/opentelemetry.proto.collector.logs.") {
        Signal::Logs.as_str()
    } else if path.starts_with("/opentelemetry.proto.collector.metrics.") {
        Signal::Metrics.as_str()
    } else {
        "unknown"
    }
}

/// `body`, ending in DEADLINE_EXCEEDED if it has not all arrived `deadline` from now.
fn within(body: tonic::body::Body, deadline: Duration) -> tonic::body::Body {
    let ms = deadline.as_millis();
    let deadline = tokio::time::Instant::now() + deadline;
    let frames = futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(frame)) => Some((frame, Some(body))),
            Ok(None) => None,
            Err(_) => {
                let status = IngestError::Timeout(format!("the message did not arrive within {ms} ms")).to_grpc();
                Some((Err(status), None))
            }
        }
    });
    tonic::body::Body::new(http_body_util::StreamBody::new(frames))
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
