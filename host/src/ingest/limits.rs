//! Bounds on a request beyond authentication: body size on the wire and after gzip, and the
//! shape of what it decodes to (attributes per element, key, name and string lengths, nesting).
//! Records per request are counted before decoding, by [`super::prescan`].

use std::io::Read;

use axum::body::{Body, HttpBody};
use http_body_util::BodyExt;

use crate::config::Limits;
use crate::otlp;

pub(crate) enum ReadError {
    TooLarge,
    Io(String),
}

/// Read a body (chunked or not) up to `max` bytes, into one buffer (no second copy of it).
/// A `Content-Length` above `max` is refused before anything is read.
pub(crate) async fn read_limited(mut body: Body, max: usize) -> Result<Vec<u8>, ReadError> {
    let announced = body.size_hint().lower();
    if announced > u64::try_from(max).unwrap_or(u64::MAX) {
        return Err(ReadError::TooLarge);
    }
    let mut out = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ReadError::Io(e.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if out.len().saturating_add(data.len()) > max {
                return Err(ReadError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}

/// Inflate at most `max` bytes: a gzip bomb stops at the limit instead of filling memory.
pub(crate) fn gunzip_limited(wire: &[u8], max: usize) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::MultiGzDecoder::new(wire)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| ReadError::Io(e.to_string()))?;
    if out.len() > max {
        return Err(ReadError::TooLarge);
    }
    Ok(out)
}

/// Bounds on what one request may hold beyond its size: attributes per element (resources,
/// scopes, spans, span events and links, log records, metric data points and their exemplars),
/// and the length of every key, string and name (span, event and metric names, status messages,
/// units, descriptions, severity texts, trace states).
pub fn check_shape(export: &otlp::Export, limits: &Limits) -> Result<(), String> {
    use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{Exemplar, metric::Data};
    fn value_ok(v: &any_value::Value, limits: &Limits, depth: usize) -> Result<(), String> {
        if depth > 16 {
            return Err("attribute values nested deeper than 16 levels".into());
        }
        match v {
            any_value::Value::StringValue(s) if s.len() > limits.max_string_len => {
                Err(format!("a string of {} bytes (at most {})", s.len(), limits.max_string_len))
            }
            any_value::Value::BytesValue(b) if b.len() > limits.max_string_len => {
                Err(format!("a bytes value of {} bytes (at most {})", b.len(), limits.max_string_len))
            }
            any_value::Value::ArrayValue(a) => {
                a.values.iter().filter_map(|v| v.value.as_ref()).try_for_each(|v| value_ok(v, limits, depth + 1))
            }
            any_value::Value::KvlistValue(kv) => attrs_ok(&kv.values, limits, depth + 1),
            _ => Ok(()),
        }
    }
    fn attrs_ok(attrs: &[KeyValue], limits: &Limits, depth: usize) -> Result<(), String> {
        if attrs.len() > limits.max_attributes {
            return Err(format!("{} attributes on one element (at most {})", attrs.len(), limits.max_attributes));
        }
        for kv in attrs {
            if kv.key.len() > limits.max_string_len {
                return Err(format!("an attribute key of {} bytes", kv.key.len()));
            }
            if let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                value_ok(v, limits, depth)?;
            }
        }
        Ok(())
    }
    let check = |attrs: &[KeyValue]| attrs_ok(attrs, limits, 0);
    let text = |what: &str, value: &str| {
        if value.len() > limits.max_string_len {
            return Err(format!("{what} of {} bytes (at most {})", value.len(), limits.max_string_len));
        }
        Ok(())
    };
    let scope_ok = |scope: &Option<InstrumentationScope>| {
        scope.as_ref().map_or(Ok(()), |s| {
            text("a scope name", &s.name)?;
            text("a scope version", &s.version)?;
            check(&s.attributes)
        })
    };
    let exemplars_ok = |exemplars: &[Exemplar]| exemplars.iter().try_for_each(|e| check(&e.filtered_attributes));
    match export {
        otlp::Export::Traces(r) => r.resource_spans.iter().try_for_each(|rs| {
            rs.resource.as_ref().map_or(Ok(()), |r| check(&r.attributes))?;
            rs.scope_spans.iter().try_for_each(|ss| {
                scope_ok(&ss.scope)?;
                ss.spans.iter().try_for_each(|span| {
                    text("a span name", &span.name)?;
                    text("a trace state", &span.trace_state)?;
                    span.status.as_ref().map_or(Ok(()), |s| text("a status message", &s.message))?;
                    check(&span.attributes)?;
                    span.events.iter().try_for_each(|e| {
                        text("a span event name", &e.name)?;
                        check(&e.attributes)
                    })?;
                    span.links.iter().try_for_each(|l| {
                        text("a trace state", &l.trace_state)?;
                        check(&l.attributes)
                    })
                })
            })
        }),
        otlp::Export::Logs(r) => r.resource_logs.iter().try_for_each(|rl| {
            rl.resource.as_ref().map_or(Ok(()), |r| check(&r.attributes))?;
            rl.scope_logs.iter().try_for_each(|sl| {
                scope_ok(&sl.scope)?;
                sl.log_records.iter().try_for_each(|log| {
                    text("a severity text", &log.severity_text)?;
                    text("an event name", &log.event_name)?;
                    check(&log.attributes)?;
                    log.body.as_ref().and_then(|b| b.value.as_ref()).map_or(Ok(()), |b| value_ok(b, limits, 0))
                })
            })
        }),
        otlp::Export::Metrics(r) => r.resource_metrics.iter().try_for_each(|rm| {
            rm.resource.as_ref().map_or(Ok(()), |r| check(&r.attributes))?;
            rm.scope_metrics.iter().try_for_each(|sm| {
                scope_ok(&sm.scope)?;
                sm.metrics.iter().try_for_each(|m| {
                    text("a metric name", &m.name)?;
                    text("a metric description", &m.description)?;
                    text("a metric unit", &m.unit)?;
                    check(&m.metadata)?;
                    match &m.data {
                        Some(Data::Gauge(g)) => g.data_points.iter().try_for_each(|p| {
                            check(&p.attributes)?;
                            exemplars_ok(&p.exemplars)
                        }),
                        Some(Data::Sum(s)) => s.data_points.iter().try_for_each(|p| {
                            check(&p.attributes)?;
                            exemplars_ok(&p.exemplars)
                        }),
                        Some(Data::Histogram(h)) => h.data_points.iter().try_for_each(|p| {
                            check(&p.attributes)?;
                            exemplars_ok(&p.exemplars)
                        }),
                        Some(Data::ExponentialHistogram(h)) => h.data_points.iter().try_for_each(|p| {
                            check(&p.attributes)?;
                            exemplars_ok(&p.exemplars)
                        }),
                        Some(Data::Summary(s)) => s.data_points.iter().try_for_each(|p| check(&p.attributes)),
                        None => Ok(()),
                    }
                })
            })
        }),
    }
    .map_err(|e| format!("request too complex: {e}"))
}
