//! Bounds on a request beyond authentication: body size on the wire and after gzip, and the
//! shape of what it decodes to (attributes per element, key and string lengths, nesting).

use std::io::Read;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;

use crate::config::Limits;
use crate::otlp;

pub(crate) enum ReadError {
    TooLarge,
    Io(String),
}

/// Read a body (chunked or not) up to `max` bytes.
pub(crate) async fn read_limited(body: Body, max: usize) -> Result<Bytes, ReadError> {
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ReadError::TooLarge),
        Err(e) => Err(ReadError::Io(e.to_string())),
    }
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

/// Bounds on what one request may hold beyond its size: attributes per element and the length
/// of every key and string.
pub fn check_shape(export: &otlp::Export, limits: &Limits) -> Result<(), String> {
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
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
    match export {
        otlp::Export::Traces(r) => r.resource_spans.iter().try_for_each(|rs| {
            rs.resource.as_ref().map_or(Ok(()), |r| check(&r.attributes))?;
            rs.scope_spans.iter().try_for_each(|ss| {
                ss.scope.as_ref().map_or(Ok(()), |s| check(&s.attributes))?;
                ss.spans.iter().try_for_each(|span| {
                    check(&span.attributes)?;
                    span.events.iter().try_for_each(|e| check(&e.attributes))?;
                    span.links.iter().try_for_each(|l| check(&l.attributes))
                })
            })
        }),
        otlp::Export::Logs(r) => r.resource_logs.iter().try_for_each(|rl| {
            rl.resource.as_ref().map_or(Ok(()), |r| check(&r.attributes))?;
            rl.scope_logs.iter().try_for_each(|sl| {
                sl.scope.as_ref().map_or(Ok(()), |s| check(&s.attributes))?;
                sl.log_records.iter().try_for_each(|log| {
                    check(&log.attributes)?;
                    log.body.as_ref().and_then(|b| b.value.as_ref()).map_or(Ok(()), |b| value_ok(b, limits, 0))
                })
            })
        }),
        otlp::Export::Metrics(r) => r.resource_metrics.iter().try_for_each(|rm| {
            rm.resource.as_ref().map_or(Ok(()), |r| check(&r.attributes))?;
            rm.scope_metrics.iter().try_for_each(|sm| sm.scope.as_ref().map_or(Ok(()), |s| check(&s.attributes)))
        }),
    }
    .map_err(|e| format!("request too complex: {e}"))
}
