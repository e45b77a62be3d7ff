//! # antenna-wit
//!
//! The shared pieces of Antenna's plugin contract (the WIT package `antenna:normalizer`, whose
//! text stays in `wit/since_v0.1.0/`):
//!
//! - [`WIT_VERSION`] and [`SUPPORTED`]: the one place the contract's version is written;
//! - plain Rust mirrors of the WIT *input* records ([`ResourceBatch`], [`ScopeRecords`],
//!   [`Span`], [`LogRecord`], [`MetricPoint`], [`AttrValue`], ...), free of any binding
//!   generator, so the host (wasmtime bindings) and the SDK (wit-bindgen guest types) each
//!   convert from them mechanically;
//! - with the feature `lowering`: the one OTLP -> input lowering ([`lower_traces`],
//!   [`lower_logs`], [`lower_metrics`]), so the host and a parser's native tests can never
//!   disagree on what a parser sees.
//!
//! Without features the crate has no dependencies and builds for `wasm32-wasip2`.

#[cfg(feature = "lowering")]
mod lowering;
#[cfg(feature = "lowering")]
pub use lowering::{lower_logs, lower_metrics, lower_traces};

/// The version of the WIT package `antenna:normalizer` that this crate (and the SDK) builds
/// components against.
pub const WIT_VERSION: &str = "0.1.0";

/// Every WIT version a host built with this crate can load.
pub const SUPPORTED: &[&str] = &[WIT_VERSION];

/// Which OTLP signal a batch came in on (WIT `signal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `/v1/traces`.
    Traces,
    /// `/v1/logs`.
    Logs,
    /// `/v1/metrics`.
    Metrics,
}

/// An OTLP attribute value (WIT `attr-value`). Nested arrays and kvlists arrive as JSON text,
/// which keeps the type non-recursive.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// `stringValue`.
    Text(String),
    /// `boolValue`.
    Boolean(bool),
    /// `intValue`.
    Integer(i64),
    /// `doubleValue`.
    Double(f64),
    /// `bytesValue`.
    Bytes(Vec<u8>),
    /// `arrayValue` or `kvlistValue`, rendered as JSON (`["a","b"]`, `{"k":1}`); bytes inside
    /// as lowercase hex strings, a non-finite double or an unset value as `null`.
    Json(String),
    /// An AnyValue with no value set, or no value at all.
    Empty,
}

/// One attribute (WIT `key-value`).
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// The attribute's key.
    pub key: String,
    /// Its value.
    pub value: AttrValue,
}

/// The instrumentation scope of a group of records (WIT `scope`); a missing scope is all empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    /// e.g. `com.anthropic.claude_code.events`.
    pub name: String,
    /// May be empty.
    pub version: String,
    /// The scope's attributes.
    pub attributes: Vec<KeyValue>,
}

/// A timestamped annotation on a span (WIT `span-event`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// When it happened, in nanoseconds since the epoch.
    pub time_unix_nano: u64,
    /// The event's name.
    pub name: String,
    /// Its attributes.
    pub attributes: Vec<KeyValue>,
}

/// The status of a span (WIT `status-code`): OTLP codes 1 and 2, anything else unset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    /// 0, or a code OTLP does not define.
    Unset,
    /// 1.
    Ok,
    /// 2.
    Error,
}

/// One span (WIT `span`). Ids are lowercase hex; an absent id is the empty string.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The trace id, lowercase hex.
    pub trace_id: String,
    /// The span id, lowercase hex.
    pub span_id: String,
    /// The parent span id, lowercase hex; empty for a root span.
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// OTLP `SpanKind` as its number (0 unspecified .. 5 consumer).
    pub kind: i32,
    /// Start, in nanoseconds since the epoch.
    pub start_time_unix_nano: u64,
    /// End, in nanoseconds since the epoch (0 when unset).
    pub end_time_unix_nano: u64,
    /// The span's attributes.
    pub attributes: Vec<KeyValue>,
    /// Its span events.
    pub events: Vec<SpanEvent>,
    /// Its status code.
    pub status: StatusCode,
    /// Its status message (empty when unset).
    pub status_message: String,
}

/// One log record (WIT `log-record`).
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// When it happened, in nanoseconds since the epoch (0 when unset).
    pub time_unix_nano: u64,
    /// When it was observed, in nanoseconds since the epoch.
    pub observed_time_unix_nano: u64,
    /// OTLP `SeverityNumber`.
    pub severity_number: i32,
    /// Severity as text.
    pub severity_text: String,
    /// The LogRecord `event_name` field; empty when unset.
    pub event_name: String,
    /// The record's body.
    pub body: AttrValue,
    /// Its attributes.
    pub attributes: Vec<KeyValue>,
    /// The trace id, lowercase hex (empty when unset).
    pub trace_id: String,
    /// The span id, lowercase hex (empty when unset).
    pub span_id: String,
}

/// The shape of a metric (WIT `metric-kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A gauge.
    Gauge,
    /// A sum (counter).
    Sum,
    /// A histogram.
    Histogram,
    /// An exponential histogram.
    ExponentialHistogram,
    /// A summary.
    Summary,
}

/// One metric data point, flattened (WIT `metric-point`): gauges and sums give their value
/// (count 1); histograms and summaries their sum (0 when unset) in `value` and their count.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPoint {
    /// The metric's name, repeated on each of its points.
    pub name: String,
    /// The metric's unit, repeated on each of its points.
    pub unit: String,
    /// The metric's shape.
    pub kind: MetricKind,
    /// Start of the point's interval, in nanoseconds since the epoch.
    pub start_time_unix_nano: u64,
    /// The point's time, in nanoseconds since the epoch.
    pub time_unix_nano: u64,
    /// The point's attributes.
    pub attributes: Vec<KeyValue>,
    /// The value, or the sum.
    pub value: f64,
    /// 1, or the number of observations.
    pub count: u64,
}

/// The records one scope produced (WIT `scope-records`); only the list of the batch's signal
/// is filled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeRecords {
    /// The scope.
    pub scope: Scope,
    /// Its spans (traces).
    pub spans: Vec<Span>,
    /// Its log records (logs).
    pub logs: Vec<LogRecord>,
    /// Its data points, flattened (metrics).
    pub metrics: Vec<MetricPoint>,
}

/// One OTLP resource and everything it carried in one request (WIT `resource-batch`): the
/// unit a plugin normalizes.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceBatch {
    /// The signal of the request.
    pub signal: Signal,
    /// The resource's attributes (`service.name`, `user.id`, `host.id`, ...).
    pub resource_attributes: Vec<KeyValue>,
    /// Its scopes, in request order.
    pub scopes: Vec<ScopeRecords>,
}

/// Bytes as lowercase hex, as the contract carries ids (and bytes inside JSON).
///
/// ```
/// assert_eq!(antenna_wit::hex(&[0x0a, 0xff]), "0aff");
/// assert_eq!(antenna_wit::hex(&[]), "");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests;

/// Implement `From<antenna_wit::X>` for each input record of a binding generator's types, field
/// by field: `antenna_wit::impl_from_plain!(crate::bindings::types)`. The SDK (wit-bindgen guest
/// types) and the host (wasmtime bindings) both expand this one definition, so the records a
/// native test sees and the ones a component sees cannot drift apart.
#[macro_export]
macro_rules! impl_from_plain {
    ($($m:ident)::+) => {
        impl From<$crate::Signal> for $($m)::+::Signal {
            fn from(s: $crate::Signal) -> Self {
                match s {
                    $crate::Signal::Traces => $($m)::+::Signal::Traces,
                    $crate::Signal::Logs => $($m)::+::Signal::Logs,
                    $crate::Signal::Metrics => $($m)::+::Signal::Metrics,
                }
            }
        }

        impl From<$crate::AttrValue> for $($m)::+::AttrValue {
            fn from(v: $crate::AttrValue) -> Self {
                match v {
                    $crate::AttrValue::Text(s) => $($m)::+::AttrValue::Text(s),
                    $crate::AttrValue::Boolean(b) => $($m)::+::AttrValue::Boolean(b),
                    $crate::AttrValue::Integer(i) => $($m)::+::AttrValue::Integer(i),
                    $crate::AttrValue::Double(d) => $($m)::+::AttrValue::Double(d),
                    $crate::AttrValue::Bytes(b) => $($m)::+::AttrValue::Bytes(b),
                    $crate::AttrValue::Json(j) => $($m)::+::AttrValue::Json(j),
                    $crate::AttrValue::Empty => $($m)::+::AttrValue::Empty,
                }
            }
        }

        impl From<$crate::KeyValue> for $($m)::+::KeyValue {
            fn from(kv: $crate::KeyValue) -> Self {
                $($m)::+::KeyValue { key: kv.key, value: kv.value.into() }
            }
        }

        impl From<$crate::Scope> for $($m)::+::Scope {
            fn from(s: $crate::Scope) -> Self {
                $($m)::+::Scope { name: s.name, version: s.version, attributes: $crate::__list(s.attributes) }
            }
        }

        impl From<$crate::SpanEvent> for $($m)::+::SpanEvent {
            fn from(e: $crate::SpanEvent) -> Self {
                $($m)::+::SpanEvent { time_unix_nano: e.time_unix_nano, name: e.name, attributes: $crate::__list(e.attributes) }
            }
        }

        impl From<$crate::StatusCode> for $($m)::+::StatusCode {
            fn from(s: $crate::StatusCode) -> Self {
                match s {
                    $crate::StatusCode::Unset => $($m)::+::StatusCode::Unset,
                    $crate::StatusCode::Ok => $($m)::+::StatusCode::Ok,
                    $crate::StatusCode::Error => $($m)::+::StatusCode::Error,
                }
            }
        }

        impl From<$crate::Span> for $($m)::+::Span {
            fn from(s: $crate::Span) -> Self {
                $($m)::+::Span {
                    trace_id: s.trace_id,
                    span_id: s.span_id,
                    parent_span_id: s.parent_span_id,
                    name: s.name,
                    kind: s.kind,
                    start_time_unix_nano: s.start_time_unix_nano,
                    end_time_unix_nano: s.end_time_unix_nano,
                    attributes: $crate::__list(s.attributes),
                    events: $crate::__list(s.events),
                    status: s.status.into(),
                    status_message: s.status_message,
                }
            }
        }

        impl From<$crate::LogRecord> for $($m)::+::LogRecord {
            fn from(r: $crate::LogRecord) -> Self {
                $($m)::+::LogRecord {
                    time_unix_nano: r.time_unix_nano,
                    observed_time_unix_nano: r.observed_time_unix_nano,
                    severity_number: r.severity_number,
                    severity_text: r.severity_text,
                    event_name: r.event_name,
                    body: r.body.into(),
                    attributes: $crate::__list(r.attributes),
                    trace_id: r.trace_id,
                    span_id: r.span_id,
                }
            }
        }

        impl From<$crate::MetricKind> for $($m)::+::MetricKind {
            fn from(k: $crate::MetricKind) -> Self {
                match k {
                    $crate::MetricKind::Gauge => $($m)::+::MetricKind::Gauge,
                    $crate::MetricKind::Sum => $($m)::+::MetricKind::Sum,
                    $crate::MetricKind::Histogram => $($m)::+::MetricKind::Histogram,
                    $crate::MetricKind::ExponentialHistogram => $($m)::+::MetricKind::ExponentialHistogram,
                    $crate::MetricKind::Summary => $($m)::+::MetricKind::Summary,
                }
            }
        }

        impl From<$crate::MetricPoint> for $($m)::+::MetricPoint {
            fn from(p: $crate::MetricPoint) -> Self {
                $($m)::+::MetricPoint {
                    name: p.name,
                    unit: p.unit,
                    kind: p.kind.into(),
                    start_time_unix_nano: p.start_time_unix_nano,
                    time_unix_nano: p.time_unix_nano,
                    attributes: $crate::__list(p.attributes),
                    value: p.value,
                    count: p.count,
                }
            }
        }

        impl From<$crate::ScopeRecords> for $($m)::+::ScopeRecords {
            fn from(s: $crate::ScopeRecords) -> Self {
                $($m)::+::ScopeRecords { scope: s.scope.into(), spans: $crate::__list(s.spans), logs: $crate::__list(s.logs), metrics: $crate::__list(s.metrics) }
            }
        }

        impl From<$crate::ResourceBatch> for $($m)::+::ResourceBatch {
            fn from(b: $crate::ResourceBatch) -> Self {
                $($m)::+::ResourceBatch {
                    signal: b.signal.into(),
                    resource_attributes: $crate::__list(b.resource_attributes),
                    scopes: $crate::__list(b.scopes),
                }
            }
        }
    };
}

#[doc(hidden)]
pub fn __list<T: Into<U>, U>(items: Vec<T>) -> Vec<U> {
    items.into_iter().map(Into::into).collect()
}
