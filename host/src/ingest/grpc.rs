//! OTLP/gRPC (default port 4317): the same auth (Basic in the `authorization` metadata), the
//! same pipeline and the same semantics as OTLP/HTTP — so Gemini CLI's default transport, and
//! any gRPC exporter, point straight at Antenna with no collector in between.
//!
//! The three collector services' `Export` calls are served by [`Gate`] through tonic's gRPC
//! framing with a codec that does not decode ([`RawCodec`]): the key is checked from the
//! metadata alone, a reading slot is taken and the message must arrive within the body deadline
//! (at most `max_body_bytes`, also after gzip); then, in a processing slot, the message goes
//! through the same pre-scan, decoded-bytes budget and decoding as an OTLP/HTTP body
//! ([`Ingest::decode`]), and is stored as it was sent.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes};
use http_body_util::BodyExt;
use tonic::Status;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, UnaryService};

use super::conn::ConnHandle;
use super::{Ingest, IngestError};
use crate::otlp::{self, Encoding, Signal};

/// The collector services' `Export` calls over one [`Ingest`], before anything is decoded.
#[derive(Clone)]
pub struct Gate {
    ingest: Arc<Ingest>,
}

impl Gate {
    pub fn new(ingest: Arc<Ingest>) -> Self {
        Gate { ingest }
    }
}

impl<B> Service<http::Request<B>> for Gate
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let ingest = self.ingest.clone();
        Box::pin(async move {
            let started = Instant::now();
            let Some(signal) = signal_of(request.uri().path()) else {
                let status = Status::unimplemented(format!(
                    "no such method {:?}: Antenna serves the OTLP collector services' Export",
                    request.uri().path()
                ));
                return Ok(status.into_http());
            };
            let authorization = request.headers().get("authorization").map(|v| v.to_str().unwrap_or("").to_owned());
            let conn = request.extensions().get::<ConnHandle>().cloned();
            let client = conn.as_ref().map(|c| c.peer().ip());
            let admitted = async {
                let project = ingest.authenticate(authorization.as_deref(), client).await?;
                if let Some(conn) = &conn {
                    conn.vouch();
                }
                let reading = ingest.admission.reading(&project, client).await.map_err(IngestError::Busy)?;
                Ok::<_, IngestError>((project, reading))
            };
            let (project, reading) = match admitted.await {
                Ok(admitted) => admitted,
                Err(error) => {
                    let status = error.to_grpc();
                    ingest.answered("grpc", signal.as_str(), &Err(error), started);
                    return Ok(status.into_http());
                }
            };
            let deadline = Duration::from_millis(ingest.limits.body_read_timeout_ms);
            let request = request.map(|body| within(tonic::body::Body::new(body), deadline));
            let max = ingest.limits.max_body_bytes;
            let mut grpc = Grpc::new(RawCodec)
                .accept_compressed(CompressionEncoding::Gzip)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max);
            let call = Export { ingest, signal, project, reading: Some(reading), started };
            Ok(grpc.unary(call, request).await)
        })
    }
}

/// One `Export` call once its message has arrived.
struct Export {
    ingest: Arc<Ingest>,
    signal: Signal,
    project: String,
    /// Held until the call has a processing slot.
    reading: Option<super::admission::Reading>,
    started: Instant,
}

impl UnaryService<Bytes> for Export {
    type Response = Vec<u8>;
    type Future = BoxFuture<tonic::Response<Vec<u8>>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let (ingest, signal, project, reading, started) =
            (self.ingest.clone(), self.signal, self.project.clone(), self.reading.take(), self.started);
        Box::pin(async move {
            let message = request.into_inner();
            let result = async {
                let _slot = ingest.admission.enter().await.map_err(IngestError::Busy)?;
                drop(reading);
                let (export, _room) = ingest.decode(signal, Encoding::Protobuf, &message).await?;
                let records = export.record_count();
                ingest.accept(project, signal, Encoding::Protobuf, message.to_vec(), export).await?;
                Ok::<_, IngestError>(records)
            }
            .await;
            ingest.answered("grpc", signal.as_str(), &result, started);
            result.map_err(|e| e.to_grpc())?;
            Ok(tonic::Response::new(otlp::success_response(signal, Encoding::Protobuf)))
        })
    }
}

/// A gRPC codec that leaves messages as they are: decoding is [`Ingest::decode`]'s, in a
/// processing slot, after the pre-scan.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// The signal of a gRPC method path, if it is one of the collector services' `Export`.
fn signal_of(path: &str) -> Option<Signal> {
    match path {
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => Some(Signal::Traces),
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export" => Some(Signal::Logs),
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" => Some(Signal::Metrics),
        _ => None,
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
