//! Decoded OTLP export requests -> one plain [`ResourceBatch`] per resource (feature
//! `lowering`). Decoding the body (protobuf or OTLP/JSON) and its limits stay with the caller.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as common;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::metrics::v1::{Metric, metric::Data, number_data_point};
use opentelemetry_proto::tonic::{logs::v1 as logs, trace::v1 as trace};
use serde_json::Value;

use crate::{
    AttrValue, KeyValue, LogRecord, MetricKind, MetricPoint, ResourceBatch, Scope, ScopeRecords, Signal, Span,
    SpanEvent, StatusCode, hex,
};

/// One batch per `resource_spans`, its scopes' spans (with their span events) in order.
pub fn lower_traces(req: ExportTraceServiceRequest) -> Vec<ResourceBatch> {
    req.resource_spans
        .into_iter()
        .map(|rs| ResourceBatch {
            signal: Signal::Traces,
            resource_attributes: attributes(rs.resource.map(|r| r.attributes).unwrap_or_default()),
            scopes: rs
                .scope_spans
                .into_iter()
                .map(|ss| ScopeRecords {
                    scope: scope(ss.scope),
                    spans: ss.spans.into_iter().map(span).collect(),
                    logs: Vec::new(),
                    metrics: Vec::new(),
                })
                .collect(),
        })
        .collect()
}

/// One batch per `resource_logs`, its scopes' log records in order.
pub fn lower_logs(req: ExportLogsServiceRequest) -> Vec<ResourceBatch> {
    req.resource_logs
        .into_iter()
        .map(|rl| ResourceBatch {
            signal: Signal::Logs,
            resource_attributes: attributes(rl.resource.map(|r| r.attributes).unwrap_or_default()),
            scopes: rl
                .scope_logs
                .into_iter()
                .map(|sl| ScopeRecords {
                    scope: scope(sl.scope),
                    spans: Vec::new(),
                    logs: sl.log_records.into_iter().map(log_record).collect(),
                    metrics: Vec::new(),
                })
                .collect(),
        })
        .collect()
}

/// One batch per `resource_metrics`, its scopes' metrics flattened into data points (see
/// [`MetricPoint`]), in order. Every point repeats its metric's name and unit: a caller that
/// takes untrusted input bounds that product before calling (the host does).
pub fn lower_metrics(req: ExportMetricsServiceRequest) -> Vec<ResourceBatch> {
    req.resource_metrics
        .into_iter()
        .map(|rm| ResourceBatch {
            signal: Signal::Metrics,
            resource_attributes: attributes(rm.resource.map(|r| r.attributes).unwrap_or_default()),
            scopes: rm
                .scope_metrics
                .into_iter()
                .map(|sm| ScopeRecords {
                    scope: scope(sm.scope),
                    spans: Vec::new(),
                    logs: Vec::new(),
                    metrics: sm.metrics.iter().flat_map(metric_points).collect(),
                })
                .collect(),
        })
        .collect()
}

fn scope(scope: Option<common::InstrumentationScope>) -> Scope {
    let scope = scope.unwrap_or_default();
    Scope { name: scope.name, version: scope.version, attributes: attributes(scope.attributes) }
}

fn attributes(list: Vec<common::KeyValue>) -> Vec<KeyValue> {
    list.into_iter().map(|kv| KeyValue { key: kv.key, value: value(kv.value) }).collect()
}

/// An OTLP value: nested arrays and kvlists as JSON text.
fn value(v: Option<common::AnyValue>) -> AttrValue {
    match v.and_then(|v| v.value) {
        None => AttrValue::Empty,
        Some(any_value::Value::StringValue(s)) => AttrValue::Text(s),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Boolean(b),
        Some(any_value::Value::IntValue(i)) => AttrValue::Integer(i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(d),
        Some(any_value::Value::BytesValue(b)) => AttrValue::Bytes(b),
        Some(nested @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => {
            AttrValue::Json(json_of(&nested).to_string())
        }
        // A value kind newer than this crate knows.
        #[allow(unreachable_patterns)]
        Some(_) => AttrValue::Empty,
    }
}

/// A nested value as plain JSON (`["a", 1]`, `{"k": true}`): bytes as lowercase hex, a
/// non-finite double and an unset value as `null`.
fn json_of(v: &any_value::Value) -> Value {
    match v {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::from(*i),
        any_value::Value::DoubleValue(d) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
        any_value::Value::BytesValue(b) => Value::String(hex(b)),
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

fn span(s: trace::Span) -> Span {
    let status = s.status.unwrap_or_default();
    Span {
        trace_id: hex(&s.trace_id),
        span_id: hex(&s.span_id),
        parent_span_id: hex(&s.parent_span_id),
        name: s.name,
        kind: s.kind,
        start_time_unix_nano: s.start_time_unix_nano,
        end_time_unix_nano: s.end_time_unix_nano,
        attributes: attributes(s.attributes),
        events: s
            .events
            .into_iter()
            .map(|e| SpanEvent { time_unix_nano: e.time_unix_nano, name: e.name, attributes: attributes(e.attributes) })
            .collect(),
        status: match status.code {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        },
        status_message: status.message,
    }
}

fn log_record(r: logs::LogRecord) -> LogRecord {
    LogRecord {
        time_unix_nano: r.time_unix_nano,
        observed_time_unix_nano: r.observed_time_unix_nano,
        severity_number: r.severity_number,
        severity_text: r.severity_text,
        event_name: r.event_name,
        body: value(r.body),
        attributes: attributes(r.attributes),
        trace_id: hex(&r.trace_id),
        span_id: hex(&r.span_id),
    }
}

/// One point per data point: gauges and sums give their value (an unset one 0) and count 1,
/// histograms and summaries their sum (an unset one 0) and count.
fn metric_points(m: &Metric) -> Vec<MetricPoint> {
    let point = |kind, attrs: &[common::KeyValue], start, time, value, count| MetricPoint {
        name: m.name.clone(),
        unit: m.unit.clone(),
        kind,
        start_time_unix_nano: start,
        time_unix_nano: time,
        attributes: attributes(attrs.to_vec()),
        value,
        count,
    };
    let number = |v: Option<number_data_point::Value>| match v {
        Some(number_data_point::Value::AsDouble(d)) => d,
        Some(number_data_point::Value::AsInt(i)) => i as f64,
        None => 0.0,
    };
    match &m.data {
        Some(Data::Gauge(g)) => g
            .data_points
            .iter()
            .map(|p| {
                point(MetricKind::Gauge, &p.attributes, p.start_time_unix_nano, p.time_unix_nano, number(p.value), 1)
            })
            .collect(),
        Some(Data::Sum(s)) => s
            .data_points
            .iter()
            .map(|p| {
                point(MetricKind::Sum, &p.attributes, p.start_time_unix_nano, p.time_unix_nano, number(p.value), 1)
            })
            .collect(),
        Some(Data::Histogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                let sum = p.sum.unwrap_or(0.0);
                point(MetricKind::Histogram, &p.attributes, p.start_time_unix_nano, p.time_unix_nano, sum, p.count)
            })
            .collect(),
        Some(Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .map(|p| {
                let (kind, sum) = (MetricKind::ExponentialHistogram, p.sum.unwrap_or(0.0));
                point(kind, &p.attributes, p.start_time_unix_nano, p.time_unix_nano, sum, p.count)
            })
            .collect(),
        Some(Data::Summary(s)) => s
            .data_points
            .iter()
            .map(|p| {
                point(MetricKind::Summary, &p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.sum, p.count)
            })
            .collect(),
        None => Vec::new(),
    }
}
