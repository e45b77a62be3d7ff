//! Shared pieces of the fuzz targets.
//!
//! Input format (both targets): the first byte chooses the signal and the encoding, the rest is
//! the request body as the host would receive it (after any gzip):
//!
//! | byte % 6 | signal  | encoding |
//! |----------|---------|----------|
//! | 0        | traces  | protobuf |
//! | 1        | logs    | protobuf |
//! | 2        | metrics | protobuf |
//! | 3        | traces  | JSON     |
//! | 4        | logs    | JSON     |
//! | 5        | metrics | JSON     |
//!
//! The `ingest_structured` target builds its body instead (see [`structured`]).

pub mod structured;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use antenna::Limits;
use antenna::otlp::{self, Encoding, Signal};
use antenna::plugins::{Loaded, Registry};
use antenna::sandbox::Runtime;
use antenna::sandbox::wit::{AttrValue, KeyValue, ResourceBatch};
// What a plugin returns: the output records of the WIT version the host lowers into.
use antenna::sandbox::wit::latest::types as wit;
use antenna::trace::model::Fragment;
use antenna::trace::{Trace, in_memory};

/// The sandbox and every built-in parser, compiled once per process.
pub struct Host {
    pub plugins: Arc<Vec<Arc<Loaded>>>,
    pub limits: Limits,
}

pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let limits = Limits::default();
        let runtime = Runtime::new(limits.clone()).expect("runtime");
        let registry = Registry::new(runtime, None);
        for (file, bytes) in antenna::builtin::PLUGINS {
            let plugin = registry.compile(bytes).unwrap_or_else(|e| panic!("built-in {file}: {e}"));
            registry.add_builtin(plugin);
        }
        let plugins = registry.snapshot();
        assert_eq!(plugins.len(), antenna::builtin::PLUGINS.len(), "every built-in parser is active");
        Host { plugins, limits }
    })
}

/// How far inputs get (printed every 65 536 inputs when `ANTENNA_FUZZ_STATS` is set): inputs,
/// decoded, resources claimed by a parser, parser calls that returned fragments, valid outputs.
static COUNTS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

fn count(i: usize) {
    COUNTS[i].fetch_add(1, Ordering::Relaxed);
}

fn report() {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    let n = COUNTS[0].load(Ordering::Relaxed);
    if n % 65_536 == 0 && *ENABLED.get_or_init(|| std::env::var_os("ANTENNA_FUZZ_STATS").is_some()) {
        let c: Vec<u64> = COUNTS.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        eprintln!(
            "ANTENNA_FUZZ_STATS inputs={} decoded={} claimed={} normalized={} valid={}",
            c[0], c[1], c[2], c[3], c[4]
        );
    }
}

/// The whole ingest path on one request body: decode -> the host's normalization core (for each
/// resource: detect -> the real built-in Wasm parser -> validate; empty resources skipped) ->
/// merge. A plugin error or trap is expected; any panic in the host is a bug.
pub fn ingest(signal: Signal, encoding: Encoding, body: &[u8]) {
    let host = host();
    count(0);
    report();
    let Ok(export) = otlp::decode(signal, encoding, body) else { return };
    count(1);
    let _ = export.record_count();
    let normalized = antenna::pipeline::normalize(&host.plugins, &host.limits, "fuzz", export.into_resource_batches());
    if !normalized.agents.is_empty() {
        count(2);
    }
    if !normalized.fragments.is_empty() {
        count(3);
    }
    if normalized.errors.is_empty() {
        count(4);
    }
    merge_like_the_host(&normalized.fragments);
}

/// The signal and encoding of a fuzz input, and its body.
pub fn split(data: &[u8]) -> Option<(Signal, Encoding, &[u8])> {
    let (&first, body) = data.split_first()?;
    let signal = [Signal::Traces, Signal::Logs, Signal::Metrics][usize::from(first % 3)];
    let encoding = if (first % 6) < 3 { Encoding::Protobuf } else { Encoding::Json };
    Some((signal, encoding, body))
}

/// The first byte of an input of `signal` in `encoding` (the inverse of [`split`]).
pub fn prefix(signal: Signal, encoding: Encoding) -> u8 {
    let s = match signal {
        Signal::Traces => 0,
        Signal::Logs => 1,
        Signal::Metrics => 2,
    };
    s + if encoding == Encoding::Json { 3 } else { 0 }
}

/// Merge like the host does: fragments go through their stored JSON form (what `validate` let
/// through must survive it), then keys named together form one trace, usage metrics stay out.
pub fn merge_like_the_host(fragments: &[(String, Fragment)]) -> Vec<Trace> {
    let stored: Vec<(String, Fragment)> = fragments
        .iter()
        .map(|(agent, f)| {
            let payload = serde_json::to_string(f).expect("a validated fragment serializes");
            let fragment: Fragment = serde_json::from_str(&payload).expect("a stored fragment reads back");
            (agent.clone(), fragment)
        })
        .collect();
    in_memory(&stored)
        .into_iter()
        .map(|(_, trace)| {
            // The trace is stored and served as JSON.
            serde_json::to_string(&trace).expect("a trace serializes");
            trace
        })
        .collect()
}

// ---- synthetic plugin output (the `decode_merge` target) -------------------------------------

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AttrValue> {
    attrs.iter().find(|kv| kv.key == key).map(|kv| &kv.value)
}

fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    match attr(attrs, key)? {
        AttrValue::Text(s) => Some(s.clone()),
        _ => None,
    }
}

fn nonzero(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

/// A record's attribute values by type, in order: the synthetic fragment takes its fields from
/// them by position, whatever the keys (easy for the fuzzer to steer).
#[derive(Default)]
struct Values {
    texts: Vec<String>,
    ints: Vec<u64>,
    floats: Vec<f64>,
    bools: Vec<bool>,
}

impl Values {
    fn of(attrs: &[KeyValue]) -> Self {
        let mut v = Values::default();
        for kv in attrs {
            match &kv.value {
                AttrValue::Text(s) | AttrValue::Json(s) => v.texts.push(s.clone()),
                AttrValue::Bytes(b) => v.texts.push(String::from_utf8_lossy(b).into_owned()),
                // Negative numbers become huge ones on purpose: a plugin may return any u64.
                AttrValue::Integer(i) => v.ints.push(*i as u64),
                AttrValue::Double(d) => v.floats.push(*d),
                AttrValue::Boolean(b) => v.bools.push(*b),
                AttrValue::Empty => {}
            }
        }
        v
    }

    fn text(&self, i: usize) -> Option<String> {
        self.texts.get(i).cloned()
    }

    fn int(&self, i: usize) -> Option<u64> {
        self.ints.get(i).copied()
    }
}

/// The fields one record gives a synthetic fragment.
struct Record<'a> {
    selector: u64,
    channel: wit::Channel,
    trace_key: String,
    id: String,
    name: &'a str,
    start: u64,
    end: u64,
    attrs: &'a [KeyValue],
    resource: &'a [KeyValue],
    also_known_as: Vec<String>,
    value: f64,
}

fn fragment(r: Record<'_>) -> wit::Fragment {
    let v = Values::of(r.attrs);
    let either = |key: &str| text(r.attrs, key).or_else(|| text(r.resource, key));
    let body = match r.selector % 5 {
        0 => wit::FragmentBody::Prompt(wit::Prompt {
            text: v.text(0),
            response: v.text(1),
            start_unix_nano: nonzero(r.start),
            end_unix_nano: nonzero(r.end),
        }),
        1 => wit::FragmentBody::ModelCall(wit::ModelCall {
            channel: r.channel,
            model: v.text(0),
            usage: v.int(1).map(|input| wit::Usage {
                input,
                output: v.int(2).unwrap_or(0),
                cache_read: v.int(3).unwrap_or(0),
                cache_creation: v.int(4).unwrap_or(0),
                reasoning: v.int(5).unwrap_or(0),
            }),
            cost_usd: v.floats.first().copied().or((r.value != 0.0).then_some(r.value)),
            start_unix_nano: nonzero(r.start),
            end_unix_nano: nonzero(r.end),
            duration_ms: v.int(0),
            error: v.text(1),
        }),
        2 => wit::FragmentBody::ToolCall(wit::ToolCall {
            name: Some(r.name.to_owned()),
            args: v.text(0),
            result: v.text(1),
            duration_ms: v.int(0),
            success: v.bools.first().copied(),
            decision: v.text(2),
            start_unix_nano: nonzero(r.start),
        }),
        3 => wit::FragmentBody::Event(wit::Event {
            name: r.name.to_owned(),
            time_unix_nano: r.start,
            attributes_json: v.text(0).unwrap_or_else(|| "{}".into()),
            error: v.text(1),
        }),
        _ => wit::FragmentBody::UsageMetric(wit::UsageMetric {
            name: r.name.to_owned(),
            unit: v.text(0).unwrap_or_default(),
            value: r.value,
            time_unix_nano: r.end,
            attributes_json: v.text(1).unwrap_or_else(|| "{}".into()),
        }),
    };
    wit::Fragment {
        trace_key: r.trace_key,
        also_known_as: r.also_known_as,
        report_id: text(r.attrs, "report").unwrap_or_else(|| format!("{}-{}", r.id, r.start)),
        id: r.id,
        attribution: wit::Attribution {
            session_id: either("session.id"),
            user_id: either("user.id"),
            device_id: either("device.id"),
        },
        body,
    }
}

fn first_nonempty(candidates: &[Option<&str>]) -> String {
    candidates.iter().flatten().find(|s| !s.is_empty()).map(|s| (*s).to_owned()).unwrap_or_default()
}

/// What a (hostile or buggy) plugin might return for `batch`: one fragment per span, log
/// record and metric point, kind and fields taken from the record itself, so that the fuzzer
/// steers every field `validate` and `merge` see.
pub fn synthesize(batch: &ResourceBatch) -> Vec<wit::Fragment> {
    let res = batch.resource_attributes.as_slice();
    let mut out = Vec::new();
    for scope in &batch.scopes {
        for s in &scope.spans {
            let session = text(&s.attributes, "session.id");
            out.push(fragment(Record {
                selector: s.kind as u32 as u64,
                channel: wit::Channel::Span,
                trace_key: first_nonempty(&[Some(&s.trace_id), session.as_deref(), Some(&scope.scope.name)]),
                id: first_nonempty(&[Some(&s.span_id), Some(&s.name)]),
                name: &s.name,
                start: s.start_time_unix_nano,
                end: s.end_time_unix_nano,
                attrs: &s.attributes,
                resource: res,
                also_known_as: s.events.iter().map(|e| e.name.clone()).collect(),
                value: s.events.first().map_or(0.0, |e| e.time_unix_nano as f64),
            }));
        }
        for l in &scope.logs {
            let session = text(&l.attributes, "session.id");
            out.push(fragment(Record {
                selector: l.severity_number as u32 as u64,
                channel: wit::Channel::Log,
                trace_key: first_nonempty(&[session.as_deref(), Some(&l.trace_id), Some(&scope.scope.name)]),
                id: first_nonempty(&[Some(&l.span_id), Some(&l.event_name), Some(&l.severity_text)]),
                name: &l.event_name,
                start: l.time_unix_nano,
                end: l.observed_time_unix_nano,
                attrs: &l.attributes,
                resource: res,
                also_known_as: match &l.body {
                    AttrValue::Text(s) => s.split(',').map(str::to_owned).collect(),
                    _ => Vec::new(),
                },
                value: match &l.body {
                    AttrValue::Double(d) => *d,
                    _ => 0.0,
                },
            }));
        }
        for m in &scope.metrics {
            let session = text(&m.attributes, "session.id");
            out.push(fragment(Record {
                selector: m.kind as u64 + m.count,
                channel: wit::Channel::Log,
                trace_key: first_nonempty(&[session.as_deref(), Some(&m.name), Some(&scope.scope.name)]),
                id: first_nonempty(&[Some(&m.name), Some(&m.unit)]),
                name: &m.name,
                start: m.start_time_unix_nano,
                end: m.time_unix_nano,
                attrs: &m.attributes,
                resource: res,
                also_known_as: Vec::new(),
                value: m.value,
            }));
        }
    }
    out
}
