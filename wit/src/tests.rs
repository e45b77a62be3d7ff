use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    self as common, AnyValue, ArrayValue, KeyValueList, any_value::Value as V,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpLog, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    self as metrics, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as OtlpSpan, Status, span};

use super::*;

fn any(v: V) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}

fn kv(key: &str, value: Option<AnyValue>) -> common::KeyValue {
    common::KeyValue { key: key.into(), value, ..Default::default() }
}

fn text(s: &str) -> Option<AnyValue> {
    any(V::StringValue(s.into()))
}

fn resource(attributes: Vec<common::KeyValue>) -> Option<Resource> {
    Some(Resource { attributes, ..Default::default() })
}

#[test]
fn the_version_is_supported() {
    assert_eq!(WIT_VERSION, "0.1.0");
    assert!(SUPPORTED.contains(&WIT_VERSION));
}

#[test]
fn ids_are_lowercase_hex_and_absent_ids_empty() {
    let span = OtlpSpan {
        trace_id: vec![0x6b, 0x06, 0x40, 0x63, 0xA9, 0x32, 0xd0, 0x8f, 0x63, 0x0c, 0x1f, 0x64, 0x9a, 0xab, 0xcb, 0xc2],
        span_id: vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03],
        parent_span_id: Vec::new(),
        name: "chat".into(),
        kind: 3,
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        events: vec![span::Event {
            time_unix_nano: 5,
            name: "tool.output".into(),
            attributes: vec![kv("k", text("v"))],
            ..Default::default()
        }],
        status: Some(Status { code: 2, message: "boom".into() }),
        ..Default::default()
    };
    let req = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(vec![kv("service.name", text("agent"))]),
            scope_spans: vec![ScopeSpans { scope: None, spans: vec![span], ..Default::default() }],
            ..Default::default()
        }],
    };
    let batches = lower_traces(req);
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.signal, Signal::Traces);
    assert_eq!(
        batch.resource_attributes,
        vec![KeyValue { key: "service.name".into(), value: AttrValue::Text("agent".into()) }]
    );
    assert_eq!(batch.scopes[0].scope, Scope::default(), "a missing scope is all empty");
    let s = &batch.scopes[0].spans[0];
    assert_eq!(s.trace_id, "6b064063a932d08f630c1f649aabcbc2");
    assert_eq!(s.span_id, "deadbeef00010203");
    assert_eq!(s.parent_span_id, "");
    assert_eq!((s.kind, s.status, s.status_message.as_str()), (3, StatusCode::Error, "boom"));
    assert_eq!(
        s.events,
        vec![SpanEvent {
            time_unix_nano: 5,
            name: "tool.output".into(),
            attributes: vec![KeyValue { key: "k".into(), value: AttrValue::Text("v".into()) }],
        }]
    );
    assert!(batch.scopes[0].logs.is_empty() && batch.scopes[0].metrics.is_empty());
}

#[test]
fn statuses_other_than_ok_and_error_are_unset() {
    let status = |code: Option<i32>| {
        let span = OtlpSpan { status: code.map(|code| Status { code, message: String::new() }), ..Default::default() };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![span], ..Default::default() }],
                ..Default::default()
            }],
        };
        lower_traces(req)[0].scopes[0].spans[0].status
    };
    assert_eq!(status(None), StatusCode::Unset);
    assert_eq!(status(Some(0)), StatusCode::Unset);
    assert_eq!(status(Some(1)), StatusCode::Ok);
    assert_eq!(status(Some(2)), StatusCode::Error);
    assert_eq!(status(Some(7)), StatusCode::Unset);
}

#[test]
fn nested_values_become_json_text() {
    let nested = any(V::KvlistValue(KeyValueList {
        values: vec![
            kv("s", text("a")),
            kv("b", any(V::BoolValue(true))),
            kv("i", any(V::IntValue(-3))),
            kv("d", any(V::DoubleValue(0.5))),
            kv("nan", any(V::DoubleValue(f64::NAN))),
            kv("bytes", any(V::BytesValue(vec![0xAB, 0x01]))),
            kv("unset", Some(AnyValue { value: None })),
            kv("missing", None),
            kv("list", any(V::ArrayValue(ArrayValue { values: vec![AnyValue { value: None }, text("x").unwrap()] }))),
        ],
    }));
    let record = OtlpLog {
        time_unix_nano: 10,
        observed_time_unix_nano: 11,
        severity_number: 9,
        severity_text: "INFO".into(),
        event_name: "agent.event".into(),
        body: text("agent.event"),
        attributes: vec![
            kv("nested", nested),
            kv(
                "array",
                any(V::ArrayValue(ArrayValue { values: vec![text("a").unwrap(), any(V::IntValue(1)).unwrap()] })),
            ),
            kv("bytes", any(V::BytesValue(vec![1, 2]))),
            kv("double", any(V::DoubleValue(1.5))),
            kv("empty", Some(AnyValue { value: None })),
            kv("none", None),
        ],
        trace_id: vec![0xAA; 16],
        span_id: Vec::new(),
        ..Default::default()
    };
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: None,
            scope_logs: vec![ScopeLogs {
                scope: Some(common::InstrumentationScope {
                    name: "agent".into(),
                    version: "1.0".into(),
                    attributes: vec![kv("scope.attr", any(V::IntValue(7)))],
                    ..Default::default()
                }),
                log_records: vec![record],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let batches = lower_logs(req);
    let batch = &batches[0];
    assert_eq!(batch.signal, Signal::Logs);
    assert!(batch.resource_attributes.is_empty(), "a missing resource has no attributes");
    let scope = &batch.scopes[0].scope;
    assert_eq!((scope.name.as_str(), scope.version.as_str()), ("agent", "1.0"));
    assert_eq!(scope.attributes[0].value, AttrValue::Integer(7));
    let log = &batch.scopes[0].logs[0];
    assert_eq!((log.time_unix_nano, log.observed_time_unix_nano, log.severity_number), (10, 11, 9));
    assert_eq!((log.severity_text.as_str(), log.event_name.as_str()), ("INFO", "agent.event"));
    assert_eq!(log.body, AttrValue::Text("agent.event".into()));
    assert_eq!(log.trace_id, "aa".repeat(16));
    assert_eq!(log.span_id, "");
    let values: Vec<&AttrValue> = log.attributes.iter().map(|kv| &kv.value).collect();
    assert_eq!(
        values[0],
        &AttrValue::Json(
            r#"{"b":true,"bytes":"ab01","d":0.5,"i":-3,"list":[null,"x"],"missing":null,"nan":null,"s":"a","unset":null}"#
                .into()
        )
    );
    assert_eq!(values[1], &AttrValue::Json(r#"["a",1]"#.into()));
    assert_eq!(values[2], &AttrValue::Bytes(vec![1, 2]));
    assert_eq!(values[3], &AttrValue::Double(1.5));
    assert_eq!(values[4], &AttrValue::Empty);
    assert_eq!(values[5], &AttrValue::Empty);
}

fn number(value: Option<number_data_point::Value>, attributes: Vec<common::KeyValue>) -> NumberDataPoint {
    NumberDataPoint { attributes, start_time_unix_nano: 1, time_unix_nano: 2, value, ..Default::default() }
}

fn metric(name: &str, data: Option<Data>) -> Metric {
    Metric { name: name.into(), unit: "{token}".into(), data, ..Default::default() }
}

#[test]
fn metrics_are_flattened_into_points() {
    let metrics = vec![
        metric(
            "gauge",
            Some(Data::Gauge(Gauge {
                data_points: vec![
                    number(Some(number_data_point::Value::AsDouble(2.5)), vec![kv("a", text("1"))]),
                    number(None, Vec::new()),
                ],
            })),
        ),
        metric(
            "sum",
            Some(Data::Sum(Sum {
                data_points: vec![number(Some(number_data_point::Value::AsInt(42)), Vec::new())],
                ..Default::default()
            })),
        ),
        metric(
            "histogram",
            Some(Data::Histogram(Histogram {
                data_points: vec![
                    HistogramDataPoint { count: 3, sum: Some(7.5), time_unix_nano: 9, ..Default::default() },
                    HistogramDataPoint { count: 4, sum: None, ..Default::default() },
                ],
                ..Default::default()
            })),
        ),
        metric(
            "summary",
            Some(Data::Summary(Summary {
                data_points: vec![SummaryDataPoint { count: 2, sum: 1.25, ..Default::default() }],
            })),
        ),
        metric(
            "exponential",
            Some(Data::ExponentialHistogram(metrics::ExponentialHistogram {
                data_points: vec![metrics::ExponentialHistogramDataPoint {
                    count: 5,
                    sum: Some(3.0),
                    ..Default::default()
                }],
                ..Default::default()
            })),
        ),
        metric("no data", None),
    ];
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(Vec::new()),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    };
    let batches = lower_metrics(req);
    assert_eq!(batches[0].signal, Signal::Metrics);
    let points = &batches[0].scopes[0].metrics;
    let flat: Vec<(&str, MetricKind, f64, u64)> =
        points.iter().map(|p| (p.name.as_str(), p.kind, p.value, p.count)).collect();
    assert_eq!(
        flat,
        vec![
            ("gauge", MetricKind::Gauge, 2.5, 1),
            ("gauge", MetricKind::Gauge, 0.0, 1),
            ("sum", MetricKind::Sum, 42.0, 1),
            ("histogram", MetricKind::Histogram, 7.5, 3),
            ("histogram", MetricKind::Histogram, 0.0, 4),
            ("summary", MetricKind::Summary, 1.25, 2),
            ("exponential", MetricKind::ExponentialHistogram, 3.0, 5),
        ]
    );
    assert!(points.iter().all(|p| p.unit == "{token}"), "every point repeats its metric's unit");
    assert_eq!((points[0].start_time_unix_nano, points[0].time_unix_nano), (1, 2));
    assert_eq!(points[0].attributes, vec![KeyValue { key: "a".into(), value: AttrValue::Text("1".into()) }]);
    assert_eq!(points[3].time_unix_nano, 9);
}

#[test]
fn empty_requests_give_no_batches_and_empty_resources_empty_batches() {
    assert!(lower_traces(ExportTraceServiceRequest::default()).is_empty());
    assert!(lower_logs(ExportLogsServiceRequest::default()).is_empty());
    assert!(lower_metrics(ExportMetricsServiceRequest::default()).is_empty());
    let req = ExportLogsServiceRequest { resource_logs: vec![ResourceLogs::default()] };
    let batches = lower_logs(req);
    assert_eq!(
        batches,
        vec![ResourceBatch { signal: Signal::Logs, resource_attributes: Vec::new(), scopes: Vec::new() }]
    );
    let log = OtlpLog::default();
    let req = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![log], ..Default::default() }],
            ..Default::default()
        }],
    };
    let log = &lower_logs(req)[0].scopes[0].logs[0];
    assert_eq!(log.body, AttrValue::Empty);
    assert_eq!((log.trace_id.as_str(), log.span_id.as_str(), log.event_name.as_str()), ("", "", ""));
}
