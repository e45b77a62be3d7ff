//! Bounds checked before a body is decoded: a walk over the protobuf wire format (tags and
//! lengths) or the JSON text that allocates nothing, and refuses a body over the record cap,
//! with more attributes on one element than allowed, values nested too deep, or that would
//! decode to more than `max_decoded_bytes`. A decoded OTLP message is far bigger than its wire
//! form (an empty one costs 2 bytes on the wire and 60–250 bytes decoded), so the caps must hold
//! before decoding, not after. What the walk estimates is also what the request is admitted
//! with against the host's decoded-bytes budget ([`super::admission`]).
//!
//! One schema table ([`fields`]) serves both encodings: each OTLP message's fields that hold
//! messages, by protobuf field number and OTLP/JSON name.

use std::mem::size_of;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

use crate::config::Limits;
use crate::otlp::{Encoding, Signal};

/// What a body will decode to, as far as the walk can tell without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Records: resources, scopes, spans, span events and links, log records, metrics and data
    /// points, each one (what `Limits::max_records_per_request` caps).
    pub records: usize,
    /// An upper bound of the memory the decoded request takes, its body included.
    pub decoded_bytes: usize,
}

/// Why a body is refused before decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrescanError {
    #[error("{records} records in one request (at most {max})")]
    TooManyRecords { records: usize, max: usize },
    #[error("the request would take about {bytes} bytes once decoded (at most {max})")]
    TooLarge { bytes: usize, max: usize },
    #[error("request too complex: {0}")]
    TooComplex(String),
    #[error("malformed OTLP protobuf: {0}")]
    Malformed(&'static str),
}

/// The OTLP messages, as far as the walk needs to tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    TraceRequest,
    LogsRequest,
    MetricsRequest,
    ResourceSpans,
    ResourceLogs,
    ResourceMetrics,
    Resource,
    EntityRef,
    ScopeSpans,
    ScopeLogs,
    ScopeMetrics,
    Scope,
    Span,
    Event,
    Link,
    Status,
    LogRecord,
    Metric,
    Gauge,
    Sum,
    Histogram,
    ExpHistogram,
    Summary,
    NumberPoint,
    HistogramPoint,
    ExpHistogramPoint,
    Buckets,
    SummaryPoint,
    Quantile,
    Exemplar,
    KeyValue,
    AnyValue,
    ArrayValue,
    KvList,
}

/// What a field holds, where it matters for the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Message(Msg),
    /// A repeated number: packed, or one element a field.
    Numbers {
        fixed: bool,
    },
}

use Kind::{Message, Numbers};

/// The fields of `msg` that hold messages or repeated numbers: (protobuf number, JSON name, kind).
/// Every other field is a scalar or a string (its bytes are counted as they are).
fn fields(msg: Msg) -> &'static [(u32, &'static str, Kind)] {
    match msg {
        Msg::TraceRequest => &[(1, "resourceSpans", Message(Msg::ResourceSpans))],
        Msg::LogsRequest => &[(1, "resourceLogs", Message(Msg::ResourceLogs))],
        Msg::MetricsRequest => &[(1, "resourceMetrics", Message(Msg::ResourceMetrics))],
        Msg::ResourceSpans => &[(1, "resource", Message(Msg::Resource)), (2, "scopeSpans", Message(Msg::ScopeSpans))],
        Msg::ResourceLogs => &[(1, "resource", Message(Msg::Resource)), (2, "scopeLogs", Message(Msg::ScopeLogs))],
        Msg::ResourceMetrics => {
            &[(1, "resource", Message(Msg::Resource)), (2, "scopeMetrics", Message(Msg::ScopeMetrics))]
        }
        Msg::Resource => &[(1, "attributes", Message(Msg::KeyValue)), (3, "entityRefs", Message(Msg::EntityRef))],
        Msg::EntityRef => &[],
        Msg::ScopeSpans => &[(1, "scope", Message(Msg::Scope)), (2, "spans", Message(Msg::Span))],
        Msg::ScopeLogs => &[(1, "scope", Message(Msg::Scope)), (2, "logRecords", Message(Msg::LogRecord))],
        Msg::ScopeMetrics => &[(1, "scope", Message(Msg::Scope)), (2, "metrics", Message(Msg::Metric))],
        Msg::Scope => &[(3, "attributes", Message(Msg::KeyValue))],
        Msg::Span => &[
            (9, "attributes", Message(Msg::KeyValue)),
            (11, "events", Message(Msg::Event)),
            (13, "links", Message(Msg::Link)),
            (15, "status", Message(Msg::Status)),
        ],
        Msg::Event => &[(3, "attributes", Message(Msg::KeyValue))],
        Msg::Link => &[(4, "attributes", Message(Msg::KeyValue))],
        Msg::Status => &[],
        Msg::LogRecord => &[(5, "body", Message(Msg::AnyValue)), (6, "attributes", Message(Msg::KeyValue))],
        Msg::Metric => &[
            (5, "gauge", Message(Msg::Gauge)),
            (7, "sum", Message(Msg::Sum)),
            (9, "histogram", Message(Msg::Histogram)),
            (10, "exponentialHistogram", Message(Msg::ExpHistogram)),
            (11, "summary", Message(Msg::Summary)),
            (12, "metadata", Message(Msg::KeyValue)),
        ],
        Msg::Gauge | Msg::Sum => &[(1, "dataPoints", Message(Msg::NumberPoint))],
        Msg::Histogram => &[(1, "dataPoints", Message(Msg::HistogramPoint))],
        Msg::ExpHistogram => &[(1, "dataPoints", Message(Msg::ExpHistogramPoint))],
        Msg::Summary => &[(1, "dataPoints", Message(Msg::SummaryPoint))],
        Msg::NumberPoint => &[(7, "attributes", Message(Msg::KeyValue)), (5, "exemplars", Message(Msg::Exemplar))],
        Msg::HistogramPoint => &[
            (9, "attributes", Message(Msg::KeyValue)),
            (6, "bucketCounts", Numbers { fixed: true }),
            (7, "explicitBounds", Numbers { fixed: true }),
            (8, "exemplars", Message(Msg::Exemplar)),
        ],
        Msg::ExpHistogramPoint => &[
            (1, "attributes", Message(Msg::KeyValue)),
            (8, "positive", Message(Msg::Buckets)),
            (9, "negative", Message(Msg::Buckets)),
            (11, "exemplars", Message(Msg::Exemplar)),
        ],
        Msg::Buckets => &[(2, "bucketCounts", Numbers { fixed: false })],
        Msg::SummaryPoint => {
            &[(7, "attributes", Message(Msg::KeyValue)), (6, "quantileValues", Message(Msg::Quantile))]
        }
        Msg::Quantile => &[],
        Msg::Exemplar => &[(7, "filteredAttributes", Message(Msg::KeyValue))],
        Msg::KeyValue => &[(2, "value", Message(Msg::AnyValue))],
        Msg::AnyValue => &[(5, "arrayValue", Message(Msg::ArrayValue)), (6, "kvlistValue", Message(Msg::KvList))],
        Msg::ArrayValue => &[(1, "values", Message(Msg::AnyValue))],
        Msg::KvList => &[(1, "values", Message(Msg::KeyValue))],
    }
}

impl Msg {
    fn root(signal: Signal) -> Msg {
        match signal {
            Signal::Traces => Msg::TraceRequest,
            Signal::Logs => Msg::LogsRequest,
            Signal::Metrics => Msg::MetricsRequest,
        }
    }

    /// Whether one of these is a record (see [`Estimate::records`]).
    fn is_record(self) -> bool {
        matches!(
            self,
            Msg::ResourceSpans
                | Msg::ResourceLogs
                | Msg::ResourceMetrics
                | Msg::ScopeSpans
                | Msg::ScopeLogs
                | Msg::ScopeMetrics
                | Msg::Span
                | Msg::Event
                | Msg::Link
                | Msg::LogRecord
                | Msg::Metric
                | Msg::NumberPoint
                | Msg::HistogramPoint
                | Msg::ExpHistogramPoint
                | Msg::SummaryPoint
        )
    }

    /// What one decoded occurrence costs at most: its struct, twice (a `Vec` grows by doubling).
    fn cost(self) -> usize {
        2 * match self {
            Msg::TraceRequest => size_of::<ExportTraceServiceRequest>(),
            Msg::LogsRequest => size_of::<ExportLogsServiceRequest>(),
            Msg::MetricsRequest => size_of::<ExportMetricsServiceRequest>(),
            Msg::ResourceSpans => size_of::<ResourceSpans>(),
            Msg::ResourceLogs => size_of::<ResourceLogs>(),
            Msg::ResourceMetrics => size_of::<ResourceMetrics>(),
            Msg::Resource => size_of::<Resource>(),
            Msg::EntityRef => size_of::<EntityRef>(),
            Msg::ScopeSpans => size_of::<ScopeSpans>(),
            Msg::ScopeLogs => size_of::<ScopeLogs>(),
            Msg::ScopeMetrics => size_of::<ScopeMetrics>(),
            Msg::Scope => size_of::<InstrumentationScope>(),
            Msg::Span => size_of::<Span>(),
            Msg::Event => size_of::<span::Event>(),
            Msg::Link => size_of::<span::Link>(),
            Msg::Status => size_of::<Status>(),
            Msg::LogRecord => size_of::<LogRecord>(),
            Msg::Metric => size_of::<Metric>(),
            Msg::Gauge => size_of::<Gauge>(),
            Msg::Sum => size_of::<Sum>(),
            Msg::Histogram => size_of::<Histogram>(),
            Msg::ExpHistogram => size_of::<ExponentialHistogram>(),
            Msg::Summary => size_of::<Summary>(),
            Msg::NumberPoint => size_of::<NumberDataPoint>(),
            Msg::HistogramPoint => size_of::<HistogramDataPoint>(),
            Msg::ExpHistogramPoint => size_of::<ExponentialHistogramDataPoint>(),
            Msg::Buckets => size_of::<Buckets>(),
            Msg::SummaryPoint => size_of::<SummaryDataPoint>(),
            Msg::Quantile => size_of::<ValueAtQuantile>(),
            Msg::Exemplar => size_of::<Exemplar>(),
            Msg::KeyValue => size_of::<KeyValue>(),
            Msg::AnyValue => size_of::<AnyValue>(),
            Msg::ArrayValue => size_of::<ArrayValue>(),
            Msg::KvList => size_of::<KeyValueList>(),
        }
    }

    /// The largest [`Msg::cost`]: what an object of a kind the walk cannot tell is charged.
    fn max_cost() -> usize {
        [Msg::Span, Msg::LogRecord, Msg::Metric, Msg::ExpHistogramPoint, Msg::HistogramPoint, Msg::ResourceMetrics]
            .into_iter()
            .map(Msg::cost)
            .max()
            .unwrap_or(0)
    }
}

/// A decoded string or bytes value: its heap bytes and its `String`, twice when repeated.
const TEXT_COST: usize = 2 * size_of::<String>();
/// A decoded number of a repeated field, with room for the `Vec`'s doubling.
const NUMBER_COST: usize = 2 * size_of::<u64>();
/// How deep attribute values may nest (what `limits::check_shape` allows too).
const MAX_VALUE_DEPTH: usize = 16;
/// How deep any JSON may nest before the walk stops (serde_json refuses beyond 128).
const MAX_JSON_DEPTH: usize = 128;

/// Counts kept during a walk.
struct Tally<'a> {
    limits: &'a Limits,
    records: usize,
    bytes: usize,
}

impl Tally<'_> {
    fn message(&mut self, msg: Msg) {
        self.bytes = self.bytes.saturating_add(msg.cost());
        if msg.is_record() {
            self.records += 1;
        }
    }

    fn attributes(&self, count: usize) -> Result<(), PrescanError> {
        if count > self.limits.max_attributes {
            return Err(PrescanError::TooComplex(format!(
                "{count} attributes on one element (at most {})",
                self.limits.max_attributes
            )));
        }
        Ok(())
    }

    fn finish(self, body_len: usize) -> Result<Estimate, PrescanError> {
        let max = self.limits.max_records_per_request;
        if self.records > max {
            return Err(PrescanError::TooManyRecords { records: self.records, max });
        }
        let bytes = self.bytes.saturating_add(body_len);
        if bytes > self.limits.max_decoded_bytes {
            return Err(PrescanError::TooLarge { bytes, max: self.limits.max_decoded_bytes });
        }
        Ok(Estimate { records: self.records, decoded_bytes: bytes })
    }
}

fn too_deep() -> PrescanError {
    PrescanError::TooComplex(format!("attribute values nested deeper than {MAX_VALUE_DEPTH} levels"))
}

/// Check a body of `signal` in `encoding` before it is decoded.
pub fn prescan(signal: Signal, encoding: Encoding, body: &[u8], limits: &Limits) -> Result<Estimate, PrescanError> {
    let mut tally = Tally { limits, records: 0, bytes: 0 };
    match encoding {
        Encoding::Protobuf => walk_protobuf(body, Msg::root(signal), 0, &mut tally)?,
        Encoding::Json => walk_json(body, Msg::root(signal), &mut tally)?,
    }
    tally.finish(body.len())
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, PrescanError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = buf.get(*pos) else { return Err(PrescanError::Malformed("a truncated varint")) };
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err(PrescanError::Malformed("a varint longer than 10 bytes"))
}

/// Walk one protobuf message of kind `msg` (`values`: how deep in attribute values it is).
fn walk_protobuf(buf: &[u8], msg: Msg, values: usize, tally: &mut Tally<'_>) -> Result<(), PrescanError> {
    let values = if msg == Msg::AnyValue { values + 1 } else { values };
    if values > MAX_VALUE_DEPTH + 1 {
        return Err(too_deep());
    }
    tally.message(msg);
    let table = fields(msg);
    let kind = |number: u64| table.iter().find(|(n, _, _)| u64::from(*n) == number).map(|(_, _, kind)| *kind);
    let mut key_values = 0;
    let mut pos = 0;
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let number = key >> 3;
        if number == 0 {
            return Err(PrescanError::Malformed("a field numbered 0"));
        }
        match key & 7 {
            0 => {
                varint(buf, &mut pos)?;
                if matches!(kind(number), Some(Numbers { .. })) {
                    tally.bytes = tally.bytes.saturating_add(NUMBER_COST);
                }
            }
            1 | 5 => {
                let width = if key & 7 == 1 { 8 } else { 4 };
                pos = pos
                    .checked_add(width)
                    .filter(|end| *end <= buf.len())
                    .ok_or(PrescanError::Malformed("a truncated fixed-width field"))?;
                if matches!(kind(number), Some(Numbers { .. })) {
                    tally.bytes = tally.bytes.saturating_add(NUMBER_COST);
                }
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).unwrap_or(usize::MAX);
                let end = pos
                    .checked_add(len)
                    .filter(|end| *end <= buf.len())
                    .ok_or(PrescanError::Malformed("a length beyond the end of its message"))?;
                let inner = &buf[pos..end];
                match kind(number) {
                    Some(Message(child)) => {
                        if child == Msg::KeyValue {
                            key_values += 1;
                        }
                        walk_protobuf(inner, child, values, tally)?;
                    }
                    Some(Numbers { fixed: true }) => {
                        tally.bytes = tally.bytes.saturating_add(len / 8 * NUMBER_COST);
                    }
                    Some(Numbers { fixed: false }) => {
                        let count = inner.iter().filter(|b| **b < 0x80).count();
                        tally.bytes = tally.bytes.saturating_add(count.saturating_mul(NUMBER_COST));
                    }
                    None => tally.bytes = tally.bytes.saturating_add(TEXT_COST + len),
                }
                pos = end;
            }
            _ => return Err(PrescanError::Malformed("a group or an unknown wire type")),
        }
    }
    tally.attributes(key_values)
}

/// One open JSON object or array during [`walk_json`].
struct Frame {
    /// What an object is, or what an array's elements are (`None`: not an OTLP field).
    kind: Option<Kind>,
    object: bool,
    /// An object waits for a key (after `{` and `,`), else for a value.
    expects_key: bool,
    /// The kind of the value after the last key.
    value: Option<Kind>,
    key_values: usize,
    /// The object's nesting in attribute values.
    values: usize,
}

/// Walk OTLP/JSON text. Only tells what it can; malformed JSON is left to the decoder's error.
fn walk_json(body: &[u8], root: Msg, tally: &mut Tally<'_>) -> Result<(), PrescanError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut pos = 0;
    // The kind of the next value: from the key or the array it is in.
    let next_kind = |stack: &[Frame]| match stack.last() {
        None => Some(Message(root)),
        Some(frame) if frame.object => frame.value,
        Some(frame) => frame.kind,
    };
    while pos < body.len() {
        let byte = body[pos];
        match byte {
            b'{' | b'[' => {
                if stack.len() >= MAX_JSON_DEPTH {
                    return Err(PrescanError::TooComplex(format!("JSON nested deeper than {MAX_JSON_DEPTH} levels")));
                }
                let kind = next_kind(&stack);
                let inside_otlp = stack.last().is_none_or(|f| f.kind.is_some());
                let mut values = stack.last().map_or(0, |f| f.values);
                if byte == b'{' {
                    match kind {
                        Some(Message(msg)) => {
                            if msg == Msg::AnyValue {
                                values += 1;
                                if values > MAX_VALUE_DEPTH + 1 {
                                    return Err(too_deep());
                                }
                            }
                            tally.message(msg);
                            if msg == Msg::KeyValue
                                && let Some(owner) = stack.iter_mut().rev().find(|f| f.object)
                            {
                                owner.key_values += 1;
                            }
                        }
                        // A field the table does not know, inside an OTLP message: charged as
                        // the largest message (an unknown subtree outside one decodes to nothing).
                        _ if inside_otlp => tally.bytes = tally.bytes.saturating_add(Msg::max_cost()),
                        _ => {}
                    }
                }
                let object = byte == b'{';
                let kind = match kind {
                    Some(Numbers { .. }) if object => None,
                    kind => kind,
                };
                stack.push(Frame { kind, object, expects_key: object, value: None, key_values: 0, values });
                pos += 1;
            }
            b'}' | b']' => {
                if let Some(frame) = stack.pop() {
                    tally.attributes(frame.key_values)?;
                }
                pos += 1;
            }
            b',' => {
                if let Some(frame) = stack.last_mut()
                    && frame.object
                {
                    frame.expects_key = true;
                }
                pos += 1;
            }
            b'"' => {
                let start = pos + 1;
                let mut end = start;
                let mut escaped = false;
                while end < body.len() && (escaped || body[end] != b'"') {
                    escaped = !escaped && body[end] == b'\\';
                    end += 1;
                }
                let text = &body[start..end.min(body.len())];
                match stack.last_mut() {
                    Some(frame) if frame.object && frame.expects_key => {
                        frame.expects_key = false;
                        frame.value = match frame.kind {
                            Some(Message(msg)) => fields(msg)
                                .iter()
                                .find(|(_, name, _)| name.as_bytes() == text)
                                .map(|(_, _, kind)| *kind),
                            _ => None,
                        };
                    }
                    _ => tally.bytes = tally.bytes.saturating_add(TEXT_COST + text.len()),
                }
                pos = end + 1;
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                if stack.last().is_some_and(|f| !f.object) {
                    tally.bytes = tally.bytes.saturating_add(NUMBER_COST);
                }
                // Skip the rest of the scalar.
                while pos < body.len() && !b",]}\" \t\r\n".contains(&body[pos]) {
                    pos += 1;
                }
            }
            _ => pos += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    /// The records of a decoded request, counted on the decoded value: what the walk must match.
    fn record_total(export: &crate::otlp::Export) -> usize {
        use crate::otlp;
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let sum = |counts: &mut dyn Iterator<Item = usize>| counts.fold(0, usize::saturating_add);
        match export {
            otlp::Export::Traces(r) => sum(&mut r.resource_spans.iter().map(|rs| {
                1 + sum(&mut rs
                    .scope_spans
                    .iter()
                    .map(|ss| 1 + sum(&mut ss.spans.iter().map(|span| 1 + span.events.len() + span.links.len()))))
            })),
            otlp::Export::Logs(r) => sum(&mut r
                .resource_logs
                .iter()
                .map(|rl| 1 + sum(&mut rl.scope_logs.iter().map(|sl| 1 + sl.log_records.len())))),
            otlp::Export::Metrics(r) => sum(&mut r.resource_metrics.iter().map(|rm| {
                1 + sum(&mut rm.scope_metrics.iter().map(|sm| {
                    1 + sum(&mut sm.metrics.iter().map(|m| {
                        1 + match &m.data {
                            Some(Data::Gauge(g)) => g.data_points.len(),
                            Some(Data::Sum(s)) => s.data_points.len(),
                            Some(Data::Histogram(h)) => h.data_points.len(),
                            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
                            Some(Data::Summary(s)) => s.data_points.len(),
                            None => 0,
                        }
                    }))
                }))
            })),
        }
    }

    fn limits() -> Limits {
        Limits { max_records_per_request: 1_000, max_attributes: 8, ..Limits::default() }
    }

    fn logs(resources: usize, attributes: usize) -> ExportLogsServiceRequest {
        let attribute = KeyValue { key: "k".into(), value: Some(AnyValue::default()), ..Default::default() };
        ExportLogsServiceRequest {
            resource_logs: (0..resources)
                .map(|_| ResourceLogs {
                    resource: Some(Resource { attributes: vec![attribute.clone(); attributes], ..Default::default() }),
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord { event_name: "e".into(), ..Default::default() }],
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        }
    }

    #[test]
    fn counts_records_as_record_total_does_on_both_encodings() {
        let request = logs(3, 2);
        let protobuf = request.encode_to_vec();
        let json = serde_json::to_vec(&request).expect("json");
        let expected = record_total(&crate::otlp::Export::Logs(request));
        for (encoding, body) in [(Encoding::Protobuf, &protobuf), (Encoding::Json, &json)] {
            let estimate = prescan(Signal::Logs, encoding, body, &limits()).expect("within the caps");
            assert_eq!(estimate.records, expected, "{encoding:?}");
            assert!(estimate.decoded_bytes > body.len(), "{encoding:?}: {estimate:?}");
        }
    }

    #[test]
    fn refuses_before_decoding_what_is_over_the_caps() {
        let many = logs(400, 0).encode_to_vec();
        assert_eq!(
            prescan(Signal::Logs, Encoding::Protobuf, &many, &limits()),
            Err(PrescanError::TooManyRecords { records: 1_200, max: 1_000 })
        );
        let wide = logs(1, 9);
        for (encoding, body) in
            [(Encoding::Protobuf, wide.encode_to_vec()), (Encoding::Json, serde_json::to_vec(&wide).expect("json"))]
        {
            let error = prescan(Signal::Logs, encoding, &body, &limits()).expect_err("too many attributes");
            assert_eq!(error.to_string(), "request too complex: 9 attributes on one element (at most 8)");
        }
        // Empty resources: 2 bytes each on the wire, far more decoded.
        let empty = [0x0a, 0x00].repeat(400_000);
        let small = Limits { max_records_per_request: usize::MAX, ..limits() };
        match prescan(Signal::Logs, Encoding::Protobuf, &empty, &small) {
            Err(PrescanError::TooLarge { bytes, .. }) => assert!(bytes > 40 * empty.len(), "{bytes}"),
            other => panic!("{other:?}"),
        }
        let json = format!("{{\"resourceLogs\":[{}{{}}]}}", "{},".repeat(400_000));
        assert!(matches!(
            prescan(Signal::Logs, Encoding::Json, json.as_bytes(), &small),
            Err(PrescanError::TooLarge { .. })
        ));
    }

    #[test]
    fn values_nested_too_deep_and_malformed_wire_data_are_refused() {
        let mut value = AnyValue::default();
        for _ in 0..20 {
            value = AnyValue {
                value: Some(opentelemetry_proto::tonic::common::v1::any_value::Value::ArrayValue(ArrayValue {
                    values: vec![value],
                })),
            };
        }
        let deep = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord { body: Some(value), ..Default::default() }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        for (encoding, body) in
            [(Encoding::Protobuf, deep.encode_to_vec()), (Encoding::Json, serde_json::to_vec(&deep).expect("json"))]
        {
            let error = prescan(Signal::Logs, encoding, &body, &limits()).expect_err("too deep");
            assert!(error.to_string().contains("nested deeper than 16"), "{encoding:?}: {error}");
        }
        for body in [&[0x0a, 0x05, 0x00][..], &[0x0a], &[0x03], &[0xff; 11]] {
            assert!(
                matches!(prescan(Signal::Logs, Encoding::Protobuf, body, &limits()), Err(PrescanError::Malformed(_))),
                "{body:?}"
            );
        }
        let json_deep = "[".repeat(200);
        assert!(prescan(Signal::Logs, Encoding::Json, json_deep.as_bytes(), &limits()).is_err());
    }
}
