//! The plain input records of `antenna-wit` as the SDK's guest types: field by field, nothing
//! else. The host lowers OTLP with `antenna-wit`, and so does the native test harness through
//! these conversions, so a native test sees exactly what the component sees.

use antenna_wit as plain;

use crate::{
    AttrValue, KeyValue, LogRecord, MetricKind, MetricPoint, ResourceBatch, Scope, ScopeRecords, Signal, Span,
    SpanEvent, StatusCode,
};

impl From<plain::Signal> for Signal {
    fn from(s: plain::Signal) -> Self {
        match s {
            plain::Signal::Traces => Signal::Traces,
            plain::Signal::Logs => Signal::Logs,
            plain::Signal::Metrics => Signal::Metrics,
        }
    }
}

impl From<plain::AttrValue> for AttrValue {
    fn from(v: plain::AttrValue) -> Self {
        match v {
            plain::AttrValue::Text(s) => AttrValue::Text(s),
            plain::AttrValue::Boolean(b) => AttrValue::Boolean(b),
            plain::AttrValue::Integer(i) => AttrValue::Integer(i),
            plain::AttrValue::Double(d) => AttrValue::Double(d),
            plain::AttrValue::Bytes(b) => AttrValue::Bytes(b),
            plain::AttrValue::Json(j) => AttrValue::Json(j),
            plain::AttrValue::Empty => AttrValue::Empty,
        }
    }
}

impl From<plain::KeyValue> for KeyValue {
    fn from(kv: plain::KeyValue) -> Self {
        KeyValue { key: kv.key, value: kv.value.into() }
    }
}

fn list<T: Into<U>, U>(items: Vec<T>) -> Vec<U> {
    items.into_iter().map(Into::into).collect()
}

impl From<plain::Scope> for Scope {
    fn from(s: plain::Scope) -> Self {
        Scope { name: s.name, version: s.version, attributes: list(s.attributes) }
    }
}

impl From<plain::SpanEvent> for SpanEvent {
    fn from(e: plain::SpanEvent) -> Self {
        SpanEvent { time_unix_nano: e.time_unix_nano, name: e.name, attributes: list(e.attributes) }
    }
}

impl From<plain::StatusCode> for StatusCode {
    fn from(s: plain::StatusCode) -> Self {
        match s {
            plain::StatusCode::Unset => StatusCode::Unset,
            plain::StatusCode::Ok => StatusCode::Ok,
            plain::StatusCode::Error => StatusCode::Error,
        }
    }
}

impl From<plain::Span> for Span {
    fn from(s: plain::Span) -> Self {
        Span {
            trace_id: s.trace_id,
            span_id: s.span_id,
            parent_span_id: s.parent_span_id,
            name: s.name,
            kind: s.kind,
            start_time_unix_nano: s.start_time_unix_nano,
            end_time_unix_nano: s.end_time_unix_nano,
            attributes: list(s.attributes),
            events: list(s.events),
            status: s.status.into(),
            status_message: s.status_message,
        }
    }
}

impl From<plain::LogRecord> for LogRecord {
    fn from(r: plain::LogRecord) -> Self {
        LogRecord {
            time_unix_nano: r.time_unix_nano,
            observed_time_unix_nano: r.observed_time_unix_nano,
            severity_number: r.severity_number,
            severity_text: r.severity_text,
            event_name: r.event_name,
            body: r.body.into(),
            attributes: list(r.attributes),
            trace_id: r.trace_id,
            span_id: r.span_id,
        }
    }
}

impl From<plain::MetricKind> for MetricKind {
    fn from(k: plain::MetricKind) -> Self {
        match k {
            plain::MetricKind::Gauge => MetricKind::Gauge,
            plain::MetricKind::Sum => MetricKind::Sum,
            plain::MetricKind::Histogram => MetricKind::Histogram,
            plain::MetricKind::ExponentialHistogram => MetricKind::ExponentialHistogram,
            plain::MetricKind::Summary => MetricKind::Summary,
        }
    }
}

impl From<plain::MetricPoint> for MetricPoint {
    fn from(p: plain::MetricPoint) -> Self {
        MetricPoint {
            name: p.name,
            unit: p.unit,
            kind: p.kind.into(),
            start_time_unix_nano: p.start_time_unix_nano,
            time_unix_nano: p.time_unix_nano,
            attributes: list(p.attributes),
            value: p.value,
            count: p.count,
        }
    }
}

impl From<plain::ScopeRecords> for ScopeRecords {
    fn from(s: plain::ScopeRecords) -> Self {
        ScopeRecords { scope: s.scope.into(), spans: list(s.spans), logs: list(s.logs), metrics: list(s.metrics) }
    }
}

impl From<plain::ResourceBatch> for ResourceBatch {
    fn from(b: plain::ResourceBatch) -> Self {
        ResourceBatch {
            signal: b.signal.into(),
            resource_attributes: list(b.resource_attributes),
            scopes: list(b.scopes),
        }
    }
}
