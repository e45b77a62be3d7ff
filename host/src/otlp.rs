//! OTLP bodies: decoding (protobuf or JSON), the success response in the request's encoding,
//! and the lowering of one resource into the plugin's typed input.

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

use antenna_wit::ResourceBatch;

/// An OTLP signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Logs => "logs",
            Signal::Metrics => "metrics",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "traces" => Some(Signal::Traces),
            "logs" => Some(Signal::Logs),
            "metrics" => Some(Signal::Metrics),
            _ => None,
        }
    }
}

/// The body encoding, from Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// `application/x-protobuf` / `application/protobuf` or `application/json` (parameters
    /// such as `; charset=utf-8` ignored).
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A decoded export request.
#[derive(Debug, Clone)]
pub enum Export {
    Traces(ExportTraceServiceRequest),
    Logs(ExportLogsServiceRequest),
    Metrics(ExportMetricsServiceRequest),
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

/// Decode a body of `signal` in `encoding`.
pub fn decode(signal: Signal, encoding: Encoding, body: &[u8]) -> Result<Export, DecodeError> {
    fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
        // A request is an object (serde would also read the message from an array of its fields).
        if body.iter().find(|b| !b" \t\r\n".contains(b)) != Some(&b'{') {
            return Err(DecodeError("malformed OTLP JSON: an export request is a JSON object".into()));
        }
        serde_json::from_slice(body).map_err(|e| DecodeError(format!("malformed OTLP JSON: {e}")))
    }
    fn proto<T: Message + Default>(body: &[u8]) -> Result<T, DecodeError> {
        T::decode(body).map_err(|e| DecodeError(format!("malformed OTLP protobuf: {e}")))
    }
    let export = match (signal, encoding) {
        (Signal::Traces, Encoding::Json) => Export::Traces(json(body)?),
        (Signal::Traces, Encoding::Protobuf) => Export::Traces(proto(body)?),
        (Signal::Logs, Encoding::Json) => Export::Logs(json(body)?),
        (Signal::Logs, Encoding::Protobuf) => Export::Logs(proto(body)?),
        (Signal::Metrics, Encoding::Json) => Export::Metrics(json(body)?),
        (Signal::Metrics, Encoding::Protobuf) => Export::Metrics(proto(body)?),
    };
    if let Export::Metrics(req) = &export {
        let repeated = repeated_metric_text(req);
        if repeated > MAX_REPEATED_METRIC_TEXT {
            return Err(DecodeError(format!(
                "metric names and units repeated on every data point would take {repeated} bytes \
                 (at most {MAX_REPEATED_METRIC_TEXT})"
            )));
        }
    }
    Ok(export)
}

/// Most bytes of metric name and unit that [`Export::into_resource_batches`] may copy onto data
/// points. Each point carries its metric's name and unit, so a long name over many tiny points
/// would multiply a small body into gigabytes (a 180 KB body became 3.6 GB).
pub const MAX_REPEATED_METRIC_TEXT: usize = 64 << 20;

/// The bytes of name and unit copied onto data points when `req` is split into plugin input.
fn repeated_metric_text(req: &ExportMetricsServiceRequest) -> usize {
    let metrics = req.resource_metrics.iter().flat_map(|r| &r.scope_metrics).flat_map(|s| &s.metrics);
    metrics
        .map(|m| {
            let points = match &m.data {
                Some(Data::Gauge(g)) => g.data_points.len(),
                Some(Data::Sum(s)) => s.data_points.len(),
                Some(Data::Histogram(h)) => h.data_points.len(),
                Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                Some(Data::Summary(s)) => s.data_points.len(),
                None => 0,
            };
            (m.name.len() + m.unit.len()).saturating_mul(points)
        })
        .fold(0, usize::saturating_add)
}

/// The OTLP success response for `signal`, in `encoding`.
pub fn success_response(signal: Signal, encoding: Encoding) -> Vec<u8> {
    match (signal, encoding) {
        (Signal::Traces, Encoding::Protobuf) => ExportTraceServiceResponse::default().encode_to_vec(),
        (Signal::Logs, Encoding::Protobuf) => ExportLogsServiceResponse::default().encode_to_vec(),
        (Signal::Metrics, Encoding::Protobuf) => ExportMetricsServiceResponse::default().encode_to_vec(),
        (_, Encoding::Json) => b"{}".to_vec(),
    }
}

impl Export {
    /// Split into one typed plugin input per resource (the one lowering, `antenna-wit`'s).
    pub fn into_resource_batches(self) -> Vec<ResourceBatch> {
        match self {
            Export::Traces(req) => antenna_wit::lower_traces(req),
            Export::Logs(req) => antenna_wit::lower_logs(req),
            Export::Metrics(req) => antenna_wit::lower_metrics(req),
        }
    }

    /// How many spans, log records or data points the request carries.
    pub fn record_count(&self) -> usize {
        match self {
            Export::Traces(r) => r.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum(),
            Export::Logs(r) => r.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum(),
            Export::Metrics(r) => {
                r.resource_metrics.iter().flat_map(|r| &r.scope_metrics).map(|s| s.metrics.len()).sum()
            }
        }
    }
}
