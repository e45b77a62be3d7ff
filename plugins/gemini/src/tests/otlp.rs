//! Test support: the captured OTLP/JSON requests turned into the host's resource batches, so
//! the parser's unit tests run on the real capture (the crate has no JSON dependency, so this
//! uses the crate's own reader).

use antenna_sdk::{
    AttrValue, KeyValue, LogRecord, MetricKind, MetricPoint, ResourceBatch, Scope, ScopeRecords, Signal, Span,
    SpanEvent, StatusCode,
};

use crate::json::{self, Value};

pub fn fixture(relative: &str) -> String {
    let path = format!("{}/../../fixtures/{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// One batch per resource of an OTLP/JSON export request.
pub fn batches(body: &str) -> Vec<ResourceBatch> {
    let request = json::parse(body).expect("OTLP/JSON");
    let mut out = Vec::new();
    for (key, scopes_key, records_key, signal) in [
        ("resourceSpans", "scopeSpans", "spans", Signal::Traces),
        ("resourceLogs", "scopeLogs", "logRecords", Signal::Logs),
        ("resourceMetrics", "scopeMetrics", "metrics", Signal::Metrics),
    ] {
        for resource in list(request.get(key)) {
            let scopes = list(resource.get(scopes_key)).iter().map(|s| scope_records(s, records_key, signal)).collect();
            out.push(ResourceBatch { signal, resource_attributes: attributes(resource.get("resource")), scopes });
        }
    }
    out
}

fn list(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).unwrap_or_default()
}

fn text(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// OTLP/JSON writes 64-bit integers as strings or numbers.
fn uint(value: &Value, key: &str) -> u64 {
    match value.get(key) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(other) => other.as_u64().unwrap_or(0),
        None => 0,
    }
}

fn float(value: &Value, key: &str) -> Option<f64> {
    match value.get(key)? {
        Value::String(s) | Value::Number(s) => s.parse().ok(),
        _ => None,
    }
}

fn attributes(owner: Option<&Value>) -> Vec<KeyValue> {
    list(owner.and_then(|o| o.get("attributes")))
        .iter()
        .map(|kv| KeyValue { key: text(kv, "key"), value: any_value(kv.get("value")) })
        .collect()
}

fn any_value(value: Option<&Value>) -> AttrValue {
    let Some(value) = value else {
        return AttrValue::Empty;
    };
    if let Some(s) = value.get("stringValue").and_then(Value::as_str) {
        AttrValue::Text(s.to_owned())
    } else if let Some(b) = value.get("boolValue").and_then(Value::as_bool) {
        AttrValue::Boolean(b)
    } else if value.get("intValue").is_some() {
        AttrValue::Integer(float(value, "intValue").unwrap_or(0.0) as i64)
    } else if let Some(d) = float(value, "doubleValue") {
        AttrValue::Double(d)
    } else if let Some(array) = value.get("arrayValue") {
        let items: Vec<Value> = list(array.get("values")).iter().map(plain).collect();
        AttrValue::Json(Value::Array(items).to_json())
    } else if let Some(kvlist) = value.get("kvlistValue") {
        let members = list(kvlist.get("values"))
            .iter()
            .map(|kv| (text(kv, "key"), kv.get("value").map_or(Value::Null, plain)))
            .collect();
        AttrValue::Json(Value::Object(members).to_json())
    } else {
        AttrValue::Empty
    }
}

/// An AnyValue as plain JSON, the way the host renders nested values.
fn plain(value: &Value) -> Value {
    match any_value(Some(value)) {
        AttrValue::Text(s) => Value::String(s),
        AttrValue::Boolean(b) => Value::Bool(b),
        AttrValue::Integer(i) => Value::Number(i.to_string()),
        AttrValue::Double(d) => Value::Number(d.to_string()),
        AttrValue::Json(s) => json::parse(&s).unwrap_or(Value::Null),
        AttrValue::Bytes(_) | AttrValue::Empty => Value::Null,
    }
}

fn scope_records(value: &Value, records_key: &str, signal: Signal) -> ScopeRecords {
    let scope = value.get("scope");
    let records = list(value.get(records_key));
    ScopeRecords {
        scope: Scope {
            name: scope.map(|s| text(s, "name")).unwrap_or_default(),
            version: scope.map(|s| text(s, "version")).unwrap_or_default(),
            attributes: attributes(scope),
        },
        spans: match signal {
            Signal::Traces => records.iter().map(span).collect(),
            _ => Vec::new(),
        },
        logs: match signal {
            Signal::Logs => records.iter().map(log).collect(),
            _ => Vec::new(),
        },
        metrics: match signal {
            Signal::Metrics => records.iter().flat_map(metric).collect(),
            _ => Vec::new(),
        },
    }
}

fn span(value: &Value) -> Span {
    let status = value.get("status");
    Span {
        trace_id: text(value, "traceId"),
        span_id: text(value, "spanId"),
        parent_span_id: text(value, "parentSpanId"),
        name: text(value, "name"),
        kind: uint(value, "kind") as i32,
        start_time_unix_nano: uint(value, "startTimeUnixNano"),
        end_time_unix_nano: uint(value, "endTimeUnixNano"),
        attributes: attributes(Some(value)),
        events: list(value.get("events"))
            .iter()
            .map(|e| SpanEvent {
                time_unix_nano: uint(e, "timeUnixNano"),
                name: text(e, "name"),
                attributes: attributes(Some(e)),
            })
            .collect(),
        status: match status.map_or(0, |s| uint(s, "code")) {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        },
        status_message: status.map(|s| text(s, "message")).unwrap_or_default(),
    }
}

fn log(value: &Value) -> LogRecord {
    LogRecord {
        time_unix_nano: uint(value, "timeUnixNano"),
        observed_time_unix_nano: uint(value, "observedTimeUnixNano"),
        severity_number: uint(value, "severityNumber") as i32,
        severity_text: text(value, "severityText"),
        event_name: text(value, "eventName"),
        body: any_value(value.get("body")),
        attributes: attributes(Some(value)),
        trace_id: text(value, "traceId"),
        span_id: text(value, "spanId"),
    }
}

fn metric(value: &Value) -> Vec<MetricPoint> {
    let name = text(value, "name");
    let unit = text(value, "unit");
    let mut points = Vec::new();
    for (key, kind) in [("gauge", MetricKind::Gauge), ("sum", MetricKind::Sum), ("histogram", MetricKind::Histogram)] {
        for p in list(value.get(key).and_then(|m| m.get("dataPoints"))) {
            let value = float(p, "asDouble").or_else(|| float(p, "asInt")).or_else(|| float(p, "sum")).unwrap_or(0.0);
            points.push(MetricPoint {
                name: name.clone(),
                unit: unit.clone(),
                kind,
                start_time_unix_nano: uint(p, "startTimeUnixNano"),
                time_unix_nano: uint(p, "timeUnixNano"),
                attributes: attributes(Some(p)),
                value,
                count: uint(p, "count"),
            });
        }
    }
    points
}
