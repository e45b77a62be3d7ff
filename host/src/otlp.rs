//! OTLP bodies: decoding (protobuf or JSON, once, in the host), the response in the request's
//! encoding, and the conversion of one resource into the plugin's typed input.

use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use prost::Message;

use crate::runtime::wit;

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
    /// Split into one typed plugin input per resource.
    pub fn into_resource_batches(self) -> Vec<wit::ResourceBatch> {
        match self {
            Export::Traces(req) => req
                .resource_spans
                .into_iter()
                .map(|rs| wit::ResourceBatch {
                    signal: wit::Signal::Traces,
                    resource_attributes: attributes(rs.resource.map(|r| r.attributes).unwrap_or_default()),
                    scopes: rs
                        .scope_spans
                        .into_iter()
                        .map(|ss| wit::ScopeRecords {
                            scope: scope(ss.scope),
                            spans: ss.spans.into_iter().map(span).collect(),
                            logs: Vec::new(),
                            metrics: Vec::new(),
                        })
                        .collect(),
                })
                .collect(),
            Export::Logs(req) => req
                .resource_logs
                .into_iter()
                .map(|rl| wit::ResourceBatch {
                    signal: wit::Signal::Logs,
                    resource_attributes: attributes(rl.resource.map(|r| r.attributes).unwrap_or_default()),
                    scopes: rl
                        .scope_logs
                        .into_iter()
                        .map(|sl| wit::ScopeRecords {
                            scope: scope(sl.scope),
                            spans: Vec::new(),
                            logs: sl.log_records.into_iter().map(log_record).collect(),
                            metrics: Vec::new(),
                        })
                        .collect(),
                })
                .collect(),
            Export::Metrics(req) => req
                .resource_metrics
                .into_iter()
                .map(|rm| wit::ResourceBatch {
                    signal: wit::Signal::Metrics,
                    resource_attributes: attributes(rm.resource.map(|r| r.attributes).unwrap_or_default()),
                    scopes: rm
                        .scope_metrics
                        .into_iter()
                        .map(|sm| wit::ScopeRecords {
                            scope: scope(sm.scope),
                            spans: Vec::new(),
                            logs: Vec::new(),
                            metrics: sm.metrics.into_iter().flat_map(metric_points).collect(),
                        })
                        .collect(),
                })
                .collect(),
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

fn scope(scope: Option<InstrumentationScope>) -> wit::Scope {
    let scope = scope.unwrap_or_default();
    wit::Scope { name: scope.name, version: scope.version, attributes: attributes(scope.attributes) }
}

fn attributes(list: Vec<KeyValue>) -> Vec<wit::KeyValue> {
    list.into_iter().map(|kv| wit::KeyValue { key: kv.key, value: value(kv.value) }).collect()
}

fn value(v: Option<AnyValue>) -> wit::AttrValue {
    match v.and_then(|v| v.value) {
        None => wit::AttrValue::Empty,
        Some(any_value::Value::StringValue(s)) => wit::AttrValue::Text(s),
        Some(any_value::Value::BoolValue(b)) => wit::AttrValue::Boolean(b),
        Some(any_value::Value::IntValue(i)) => wit::AttrValue::Integer(i),
        Some(any_value::Value::DoubleValue(d)) => wit::AttrValue::Double(d),
        Some(any_value::Value::BytesValue(b)) => wit::AttrValue::Bytes(b),
        Some(other @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => {
            wit::AttrValue::Json(json_of(&other).to_string())
        }
        #[allow(unreachable_patterns)]
        Some(_) => wit::AttrValue::Empty,
    }
}

/// Nested values as plain JSON (`["a", 1]`, `{"k": true}`).
fn json_of(v: &any_value::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
        any_value::Value::BytesValue(b) => Value::String(hex::encode(b)),
        any_value::Value::ArrayValue(a) => {
            Value::Array(a.values.iter().map(|v| v.value.as_ref().map_or(Value::Null, json_of)).collect())
        }
        any_value::Value::KvlistValue(kv) => Value::Object(
            kv.values
                .iter()
                .map(|kv| {
                    (kv.key.clone(), kv.value.as_ref().and_then(|v| v.value.as_ref()).map_or(Value::Null, json_of))
                })
                .collect(),
        ),
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

fn span(s: opentelemetry_proto::tonic::trace::v1::Span) -> wit::Span {
    let status = s.status.unwrap_or_default();
    wit::Span {
        trace_id: hex::encode(s.trace_id),
        span_id: hex::encode(s.span_id),
        parent_span_id: hex::encode(s.parent_span_id),
        name: s.name,
        kind: s.kind,
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: attributes(s.attributes),
        events: s
            .events
            .into_iter()
            .map(|e| wit::SpanEvent {
                time_unix_nano: e.time_unix_nano,
                name: e.name,
                attributes: attributes(e.attributes),
            })
            .collect(),
        status: match status.code {
            1 => wit::StatusCode::Ok,
            2 => wit::StatusCode::Error,
            _ => wit::StatusCode::Unset,
        },
        status_message: status.message,
    }
}

fn log_record(r: opentelemetry_proto::tonic::logs::v1::LogRecord) -> wit::LogRecord {
    wit::LogRecord {
        time_unix_nano: r.time_unix_nano,
        observed_time_unix_nano: r.observed_time_unix_nano,
        severity_number: r.severity_number,
        severity_text: r.severity_text,
        event_name: r.event_name,
        body: value(r.body),
        attributes: attributes(r.attributes),
        trace_id: hex::encode(r.trace_id),
        span_id: hex::encode(r.span_id),
    }
}

fn metric_points(m: opentelemetry_proto::tonic::metrics::v1::Metric) -> Vec<wit::MetricPoint> {
    let point = |kind, attrs, start, time, value, count| wit::MetricPoint {
        name: m.name.clone(),
        unit: m.unit.clone(),
        kind,
        start_time_unix_nano: start,
        time_unix_nano: time,
        attributes: attributes(attrs),
        value,
        count,
    };
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as N;
    let number = |v: Option<N>| match v {
        Some(N::AsDouble(d)) => d,
        Some(N::AsInt(i)) => i as f64,
        None => 0.0,
    };
    match &m.data {
        Some(Data::Gauge(g)) => g
            .data_points
            .iter()
            .map(|p| {
                point(
                    wit::MetricKind::Gauge,
                    p.attributes.clone(),
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    number(p.value),
                    1,
                )
            })
            .collect(),
        Some(Data::Sum(s)) => s
            .data_points
            .iter()
            .map(|p| {
                point(
                    wit::MetricKind::Sum,
                    p.attributes.clone(),
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    number(p.value),
                    1,
                )
            })
            .collect(),
        Some(Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                point(
                    wit::MetricKind::Histogram,
                    p.attributes.clone(),
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    p.sum.unwrap_or(0.0),
                    p.count,
                )
            })
            .collect(),
        Some(Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                point(
                    wit::MetricKind::ExponentialHistogram,
                    p.attributes.clone(),
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    p.sum.unwrap_or(0.0),
                    p.count,
                )
            })
            .collect(),
        Some(Data::Summary(s)) => s
            .data_points
            .iter()
            .map(|p| {
                point(
                    wit::MetricKind::Summary,
                    p.attributes.clone(),
                    p.start_time_unix_nano,
                    p.time_unix_nano,
                    p.sum,
                    p.count,
                )
            })
            .collect(),
        None => Vec::new(),
    }
}

/// The names detection looks at in one resource batch.
pub struct Signature<'a> {
    pub service_name: Option<&'a str>,
    pub scope_names: Vec<&'a str>,
    /// Log event names (field, `event.name` attribute, string body) and span names.
    pub event_names: Vec<&'a str>,
}

impl<'a> Signature<'a> {
    pub fn of(batch: &'a wit::ResourceBatch) -> Self {
        let text = |attrs: &'a [wit::KeyValue], key: &str| {
            attrs.iter().find(|kv| kv.key == key).and_then(|kv| match &kv.value {
                wit::AttrValue::Text(s) => Some(s.as_str()),
                _ => None,
            })
        };
        let mut event_names = Vec::new();
        for scope in &batch.scopes {
            for log in &scope.logs {
                if !log.event_name.is_empty() {
                    event_names.push(log.event_name.as_str());
                }
                event_names.extend(text(&log.attributes, "event.name"));
                if let wit::AttrValue::Text(body) = &log.body
                    && body.len() <= 128
                {
                    event_names.push(body.as_str());
                }
            }
            event_names.extend(scope.spans.iter().map(|s| s.name.as_str()));
        }
        event_names.sort_unstable();
        event_names.dedup();
        Signature {
            service_name: text(&batch.resource_attributes, "service.name"),
            scope_names: batch.scopes.iter().map(|s| s.scope.name.as_str()).collect(),
            event_names,
        }
    }
}
