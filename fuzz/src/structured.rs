//! Structure-aware bodies for `ingest_structured`: a valid OTLP request (protobuf or JSON) built
//! from the fuzz input, its names drawn from what the parsers look for (the string literals of
//! `plugins/*/src/lib.rs`, via `otlp.dict`) and its values from the input, edge cases favoured.
//! Byte-level mutation of real captures rarely survives decoding (about 3 % of `ingest` inputs
//! do); here every input is a request a parser claims, so the fuzzer's time goes to the parsers'
//! output and to `validate` and `merge`.

use std::sync::OnceLock;

use antenna::otlp::{Encoding, Signal};
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric,
    number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use prost::Message;

/// (scope name, service name) of each parser, as their claims say.
const AGENTS: &[(&str, &str)] = &[
    ("com.anthropic.claude_code.events", "claude-code"),
    ("com.anthropic.claude_code.tracing", "claude-code"),
    ("codex_otel", "codex_cli_rs"),
    ("codex", "codex"),
    ("github.copilot", "github-copilot"),
    ("gemini-cli", "gemini-cli"),
    ("antenna.cursor-hook", "cursor"),
    ("gen_ai", "genai"),
];

/// Attribute keys every parser reads for ids and attribution.
const KEYS: &[&str] = &[
    "session.id",
    "prompt.id",
    "user.id",
    "event.name",
    "event.sequence",
    "conversation_id",
    "generation_id",
    "tool_use_id",
    "call_id",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "model",
    "success",
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.operation.name",
];

const INTS: &[i64] = &[0, 1, -1, 2, 1000, i64::MAX, i64::MIN, i64::MAX / 1_000_000 + 1, 1_700_000_000_000_000_000];
const TIMES: &[u64] = &[
    0,
    1,
    1_700_000_000_000_000_000,
    u64::MAX,
    u64::MAX - 1,
    i64::MAX as u64,
    i64::MAX as u64 + 1,
    18_446_744_073_709,
];

/// The words of `otlp.dict` (OTLP names, edge numbers, the parsers' string literals).
fn words() -> &'static [String] {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        include_str!("../otlp.dict")
            .lines()
            .filter_map(|l| l.strip_prefix('"')?.strip_suffix('"').map(str::to_owned))
            .collect()
    })
}

fn word(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => u.arbitrary::<String>()?,
        1 => (*u.choose(KEYS)?).to_owned(),
        2 => format!("{}{}", u.choose(words())?, u.arbitrary::<u8>()? % 4),
        _ => u.choose(words())?.clone(),
    })
}

fn text(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => String::new(),
        1 => format!("[{} not captured: {}]", word(u)?, word(u)?),
        2 => "x".repeat(usize::from(u.arbitrary::<u16>()?)),
        3 => format!("{{\"{}\":{}}}", word(u)?, u.arbitrary::<i64>()?),
        4 => u.arbitrary::<String>()?,
        _ => word(u)?,
    })
}

fn int(u: &mut Unstructured<'_>) -> Result<i64> {
    if u.ratio(1, 2)? { Ok(*u.choose(INTS)?) } else { u.arbitrary() }
}

fn time(u: &mut Unstructured<'_>) -> Result<u64> {
    if u.ratio(2, 3)? { Ok(*u.choose(TIMES)?) } else { u.arbitrary() }
}

fn value(u: &mut Unstructured<'_>, depth: u8) -> Result<AnyValue> {
    use any_value::Value;
    let value = match u.int_in_range(0..=if depth > 2 { 5 } else { 7u8 })? {
        0 => None,
        1 | 2 => Some(Value::StringValue(text(u)?)),
        3 => Some(Value::IntValue(int(u)?)),
        4 => Some(Value::DoubleValue(match u.int_in_range(0..=4u8)? {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::MAX,
            3 => -0.5,
            _ => u.arbitrary()?,
        })),
        5 => Some(if u.ratio(1, 2)? { Value::BoolValue(u.arbitrary()?) } else { Value::BytesValue(u.arbitrary()?) }),
        6 => Some(Value::ArrayValue(ArrayValue { values: list(u, 4, |u| value(u, depth + 1))? })),
        _ => Some(Value::KvlistValue(KeyValueList { values: attributes(u, depth + 1)? })),
    };
    Ok(AnyValue { value })
}

fn list<T>(
    u: &mut Unstructured<'_>,
    max: u8,
    mut item: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=max)?;
    (0..n).map(|_| item(u)).collect()
}

fn attributes(u: &mut Unstructured<'_>, depth: u8) -> Result<Vec<KeyValue>> {
    list(u, 12, |u| Ok(KeyValue { key: word(u)?, value: Some(value(u, depth)?), ..Default::default() }))
}

/// An id from a small shared pool (so that records link up), or any bytes.
fn id(u: &mut Unstructured<'_>, len: usize) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0..=5u8)? {
        0 => Vec::new(),
        1 => u.arbitrary()?,
        n => vec![n; len],
    })
}

fn resource(u: &mut Unstructured<'_>, service: &str) -> Result<Resource> {
    let mut attrs = attributes(u, 0)?;
    if u.ratio(7, 8)? {
        attrs.insert(
            0,
            KeyValue {
                key: "service.name".into(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
                ..Default::default()
            },
        );
    }
    Ok(Resource { attributes: attrs, ..Default::default() })
}

fn scope(u: &mut Unstructured<'_>, name: &str) -> Result<InstrumentationScope> {
    let name = if u.ratio(7, 8)? { name.to_owned() } else { word(u)? };
    Ok(InstrumentationScope { name, version: word(u)?, ..Default::default() })
}

fn log_record(u: &mut Unstructured<'_>) -> Result<LogRecord> {
    let mut attrs = attributes(u, 0)?;
    if u.ratio(3, 4)? {
        attrs.insert(
            0,
            KeyValue {
                key: "event.name".into(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue(word(u)?)) }),
                ..Default::default()
            },
        );
    }
    Ok(LogRecord {
        time_unix_nano: time(u)?,
        observed_time_unix_nano: time(u)?,
        severity_number: u.arbitrary()?,
        severity_text: word(u)?,
        event_name: if u.ratio(1, 2)? { word(u)? } else { String::new() },
        body: Some(value(u, 0)?),
        attributes: attrs,
        trace_id: id(u, 16)?,
        span_id: id(u, 8)?,
        ..Default::default()
    })
}

fn span(u: &mut Unstructured<'_>) -> Result<Span> {
    Ok(Span {
        trace_id: id(u, 16)?,
        span_id: id(u, 8)?,
        parent_span_id: id(u, 8)?,
        name: word(u)?,
        kind: u.int_in_range(0..=5)?,
        start_time_unix_nano: time(u)?,
        end_time_unix_nano: time(u)?,
        attributes: attributes(u, 0)?,
        events: list(u, 3, |u| {
            Ok(span::Event {
                time_unix_nano: time(u)?,
                name: word(u)?,
                attributes: attributes(u, 0)?,
                ..Default::default()
            })
        })?,
        status: Some(Status { message: text(u)?, code: u.int_in_range(0..=2)? }),
        ..Default::default()
    })
}

fn metric(u: &mut Unstructured<'_>) -> Result<Metric> {
    let number = |u: &mut Unstructured<'_>| -> Result<NumberDataPoint> {
        Ok(NumberDataPoint {
            attributes: attributes(u, 0)?,
            start_time_unix_nano: time(u)?,
            time_unix_nano: time(u)?,
            value: Some(if u.ratio(1, 2)? {
                number_data_point::Value::AsInt(int(u)?)
            } else {
                number_data_point::Value::AsDouble(u.arbitrary()?)
            }),
            ..Default::default()
        })
    };
    let data = match u.int_in_range(0..=2u8)? {
        0 => metric::Data::Sum(Sum { data_points: list(u, 4, number)?, ..Default::default() }),
        1 => metric::Data::Gauge(Gauge { data_points: list(u, 4, number)? }),
        _ => metric::Data::Histogram(Histogram {
            data_points: list(u, 4, |u| {
                Ok(HistogramDataPoint {
                    attributes: attributes(u, 0)?,
                    start_time_unix_nano: time(u)?,
                    time_unix_nano: time(u)?,
                    count: u.arbitrary()?,
                    sum: u.arbitrary()?,
                    ..Default::default()
                })
            })?,
            ..Default::default()
        }),
    };
    Ok(Metric { name: word(u)?, unit: word(u)?, description: String::new(), data: Some(data), ..Default::default() })
}

/// A request body of some signal and encoding, built from `u`.
pub fn request(u: &mut Unstructured<'_>) -> Result<(Signal, Encoding, Vec<u8>)> {
    let signal = *u.choose(&[Signal::Logs, Signal::Traces, Signal::Metrics])?;
    let encoding = if u.ratio(1, 4)? { Encoding::Json } else { Encoding::Protobuf };
    let resources = u.int_in_range(1..=3u8)?;
    fn encode<T: Message + serde::Serialize>(request: &T, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Protobuf => request.encode_to_vec(),
            Encoding::Json => serde_json::to_vec(request).unwrap_or_default(),
        }
    }
    let body = match signal {
        Signal::Logs => {
            let mut request = ExportLogsServiceRequest::default();
            for _ in 0..resources {
                let (scope_name, service) = *u.choose(AGENTS)?;
                request.resource_logs.push(ResourceLogs {
                    resource: Some(resource(u, service)?),
                    scope_logs: list(u, 2, |u| {
                        Ok(ScopeLogs {
                            scope: Some(scope(u, scope_name)?),
                            log_records: list(u, 16, log_record)?,
                            ..Default::default()
                        })
                    })?,
                    ..Default::default()
                });
            }
            encode(&request, encoding)
        }
        Signal::Traces => {
            let mut request = ExportTraceServiceRequest::default();
            for _ in 0..resources {
                let (scope_name, service) = *u.choose(AGENTS)?;
                request.resource_spans.push(ResourceSpans {
                    resource: Some(resource(u, service)?),
                    scope_spans: list(u, 2, |u| {
                        Ok(ScopeSpans {
                            scope: Some(scope(u, scope_name)?),
                            spans: list(u, 16, span)?,
                            ..Default::default()
                        })
                    })?,
                    ..Default::default()
                });
            }
            encode(&request, encoding)
        }
        Signal::Metrics => {
            let mut request = ExportMetricsServiceRequest::default();
            for _ in 0..resources {
                let (scope_name, service) = *u.choose(AGENTS)?;
                request.resource_metrics.push(ResourceMetrics {
                    resource: Some(resource(u, service)?),
                    scope_metrics: list(u, 2, |u| {
                        Ok(ScopeMetrics {
                            scope: Some(scope(u, scope_name)?),
                            metrics: list(u, 8, metric)?,
                            ..Default::default()
                        })
                    })?,
                    ..Default::default()
                });
            }
            encode(&request, encoding)
        }
    };
    Ok((signal, encoding, body))
}
