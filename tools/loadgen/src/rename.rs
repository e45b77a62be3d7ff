//! Fresh identities for each simulated session.
//!
//! At load, [`IdCatalog::discover`] walks a capture and collects every trace id, span id and
//! every string value of an attribute whose key names an id (session, prompt, conversation,
//! turn, thread, user, host, installation, tool call, response ...). Per simulated session,
//! [`Session::new`] draws new values (users from a pool, so several sessions share a user) and
//! [`Session::apply`] rewrites a copy of each request: ids in id fields, and every occurrence of
//! an old id value in any string (attributes, log bodies, JSON text inside strings), so that
//! the same old value always becomes the same new value within one session. Timestamps are
//! shifted so the capture's latest timestamp becomes "now".

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash as _, Hasher as _};

use aho_corasick::{AhoCorasick, MatchKind};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::resource::v1::Resource;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::capture::Payload;

/// Whose id a value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Fresh for each simulated session (session, prompt, turn, tool call ...).
    Session,
    /// The same for every session of one simulated user (user id, e-mail, host, installation).
    User,
}

/// Attribute keys whose values identify the user or the user's machine.
const USER_KEYS: &[&str] = &[
    "user.id",
    "user_id",
    "userid",
    "user.email",
    "user_email",
    "user.account_id",
    "user.account_uuid",
    "account_id",
    "account_uuid",
    "enduser.id",
    "enduser.pseudo.id",
    "host.id",
    "device.id",
    "device_id",
    "installation.id",
    "installation_id",
    "machine.id",
    "organization.id",
];

/// Keys ending like this (after lower-casing) name an id even without a separator
/// (`sessionId`, `traceId`, `generationId` ...).
const ID_SUFFIXES: &[&str] = &[
    "sessionid",
    "promptid",
    "conversationid",
    "turnid",
    "traceid",
    "spanid",
    "generationid",
    "interactionid",
    "threadid",
    "userid",
    "requestid",
    "responseid",
    "callid",
];

/// What kind of id an attribute key names, if any.
pub fn key_scope(key: &str) -> Option<Scope> {
    let k = key.to_ascii_lowercase();
    if USER_KEYS.contains(&k.as_str()) || k.ends_with("email") {
        return Some(Scope::User);
    }
    let last = k.rsplit(['.', '_', '-']).next().unwrap_or("");
    if last == "id" || last == "uuid" || ID_SUFFIXES.iter().any(|s| k.ends_with(s)) {
        return Some(Scope::Session);
    }
    None
}

/// Whether a value under an id key is worth renaming: long enough and id-like, so that
/// counters such as Copilot's `turn_id = "0"` and words are left alone (they would be
/// replaced in every string otherwise).
pub fn is_id_value(value: &str) -> bool {
    value.len() >= 6 && (value.bytes().any(|b| b.is_ascii_digit()) || value.contains('@') || value.len() >= 16)
}

/// The ids of one capture.
#[derive(Debug, Default)]
pub struct IdCatalog {
    pub trace_ids: Vec<Vec<u8>>,
    pub span_ids: Vec<Vec<u8>>,
    /// Old string id values and their scope (user wins over session when both).
    pub strings: Vec<(String, Scope)>,
    /// The latest timestamp of the capture (ns), 0 if none.
    pub max_time: u64,
    /// Whether any attribute names the user (`user.id`, `user.email`, `enduser.pseudo.id` ...):
    /// if not (Codex without a login), each session gets a resource `user.id` from the pool.
    pub has_user: bool,
    /// Patterns: `strings` first, then the hex of `trace_ids`, then of `span_ids`.
    matcher: Option<AhoCorasick>,
}

impl IdCatalog {
    pub fn discover<'a>(payloads: impl IntoIterator<Item = &'a Payload>) -> IdCatalog {
        let mut found = Discover::default();
        for payload in payloads {
            let mut copy = payload.clone();
            walk(&mut copy, &mut found);
        }
        let strings: Vec<(String, Scope)> = found.strings.into_iter().collect();
        let trace_ids: Vec<Vec<u8>> = found.trace_ids.into_iter().collect();
        let span_ids: Vec<Vec<u8>> = found.span_ids.into_iter().collect();
        let patterns: Vec<String> =
            strings.iter().map(|(s, _)| s.clone()).chain(trace_ids.iter().chain(&span_ids).map(|id| hex(id))).collect();
        let matcher = (!patterns.is_empty()).then(|| {
            AhoCorasick::builder().match_kind(MatchKind::LeftmostLongest).build(&patterns).expect("id patterns")
        });
        IdCatalog { trace_ids, span_ids, strings, max_time: found.max_time, has_user: found.has_user, matcher }
    }
}

#[derive(Default)]
struct Discover {
    trace_ids: std::collections::BTreeSet<Vec<u8>>,
    span_ids: std::collections::BTreeSet<Vec<u8>>,
    strings: BTreeMap<String, Scope>,
    max_time: u64,
    has_user: bool,
}

impl Visit for Discover {
    fn trace_id(&mut self, id: &mut Vec<u8>) {
        if !id.is_empty() {
            self.trace_ids.insert(id.clone());
        }
    }
    fn span_id(&mut self, id: &mut Vec<u8>) {
        if !id.is_empty() {
            self.span_ids.insert(id.clone());
        }
    }
    fn time(&mut self, t: &mut u64) {
        self.max_time = self.max_time.max(*t);
    }
    fn string(&mut self, key: &str, s: &mut String) {
        let scope = key_scope(key);
        if scope == Some(Scope::User) && !s.is_empty() {
            let k = key.to_ascii_lowercase();
            self.has_user |= k.contains("user") || k.contains("account");
        }
        if let Some(scope) = scope
            && is_id_value(s)
        {
            let entry = self.strings.entry(s.clone()).or_insert(scope);
            *entry = (*entry).max(scope);
        }
    }
}

/// One simulated session: the new value of every id of a capture.
pub struct Session<'a> {
    catalog: &'a IdCatalog,
    pub user: u32,
    trace_ids: HashMap<Vec<u8>, Vec<u8>>,
    span_ids: HashMap<Vec<u8>, Vec<u8>>,
    /// New value of each matcher pattern, by pattern index.
    replacements: Vec<String>,
    /// Added to every non-zero timestamp.
    shift: i128,
    /// A resource `user.id` to add, for captures that name no user.
    inject_user: Option<String>,
}

impl<'a> Session<'a> {
    /// Fresh ids for `catalog`, as user `user` of the pool, with timestamps moved so the
    /// latest one is `now_ns`.
    pub fn new(catalog: &'a IdCatalog, user: u32, now_ns: u64, rng: &mut impl RngCore) -> Session<'a> {
        let mut fresh = |old: &Vec<u8>| {
            let mut new = vec![0u8; old.len()];
            loop {
                rng.fill_bytes(&mut new);
                if new.iter().any(|&b| b != 0) {
                    break;
                }
            }
            (old.clone(), new)
        };
        let trace_ids: HashMap<Vec<u8>, Vec<u8>> = catalog.trace_ids.iter().map(&mut fresh).collect();
        let span_ids: HashMap<Vec<u8>, Vec<u8>> = catalog.span_ids.iter().map(&mut fresh).collect();
        let mut replacements = Vec::with_capacity(catalog.strings.len() + trace_ids.len() + span_ids.len());
        for (old, scope) in &catalog.strings {
            replacements.push(match scope {
                Scope::Session => new_value(old, rng, None),
                Scope::User => {
                    let mut seeded = SmallRng::seed_from_u64(user_seed(user, old));
                    new_value(old, &mut seeded, Some(user))
                }
            });
        }
        for old in catalog.trace_ids.iter() {
            replacements.push(hex(&trace_ids[old]));
        }
        for old in catalog.span_ids.iter() {
            replacements.push(hex(&span_ids[old]));
        }
        let shift = if catalog.max_time == 0 { 0 } else { now_ns as i128 - catalog.max_time as i128 };
        let inject_user = (!catalog.has_user).then(|| format!("user{user:04}@loadgen.example"));
        Session { catalog, user, trace_ids, span_ids, replacements, shift, inject_user }
    }

    /// Rewrite one request of the capture.
    pub fn apply(&self, payload: &mut Payload) {
        walk(payload, &mut Rewrite { session: self });
        if let Some(user) = &self.inject_user {
            let resources: Vec<&mut Option<Resource>> = match payload {
                Payload::Traces(m) => m.resource_spans.iter_mut().map(|r| &mut r.resource).collect(),
                Payload::Logs(m) => m.resource_logs.iter_mut().map(|r| &mut r.resource).collect(),
                Payload::Metrics(m) => m.resource_metrics.iter_mut().map(|r| &mut r.resource).collect(),
            };
            for resource in resources {
                resource.get_or_insert_with(Resource::default).attributes.push(KeyValue {
                    key: "user.id".into(),
                    value: Some(AnyValue { value: Some(any_value::Value::StringValue(user.clone())) }),
                    ..Default::default()
                });
            }
        }
    }

    /// The new value of an old string id, if it is one.
    #[cfg(test)]
    pub fn new_string(&self, old: &str) -> Option<&str> {
        let i = self.catalog.strings.iter().position(|(s, _)| s == old)?;
        Some(&self.replacements[i])
    }
}

struct Rewrite<'s, 'a> {
    session: &'s Session<'a>,
}

impl Visit for Rewrite<'_, '_> {
    fn trace_id(&mut self, id: &mut Vec<u8>) {
        if let Some(new) = self.session.trace_ids.get(id) {
            id.clone_from(new);
        }
    }
    fn span_id(&mut self, id: &mut Vec<u8>) {
        if let Some(new) = self.session.span_ids.get(id) {
            id.clone_from(new);
        }
    }
    fn time(&mut self, t: &mut u64) {
        if *t != 0 {
            *t = (*t as i128 + self.session.shift).clamp(1, u64::MAX as i128) as u64;
        }
    }
    fn string(&mut self, _key: &str, s: &mut String) {
        if let Some(matcher) = &self.session.catalog.matcher
            && matcher.is_match(s.as_str())
        {
            *s = matcher.replace_all(s, &self.session.replacements);
        }
    }
}

fn user_seed(user: u32, old: &str) -> u64 {
    // FNV-1a: stable across runs and Rust versions, so a user keeps its ids between runs.
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    h.write_u32(user);
    old.hash(&mut h);
    h.finish()
}

struct Fnv(u64);
impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A new value shaped like `old`: each `-`/`_`/`.`/`:`/`/`-separated segment made only of hex
/// digits (or only of decimal digits) is redrawn character by character, keeping case and
/// length, so `toolu_b5dd...`, UUIDs, 64-hex hashes and `chatcmpl-27d5...` keep their form
/// and byte length. Values with too little to redraw (under 32 bits: `device-1234`) and
/// e-mail addresses get a suffix or a pool address instead; `user` is set for user-scoped values.
pub fn new_value(old: &str, rng: &mut impl RngCore, user: Option<u32>) -> String {
    if old.contains('@') {
        return match user {
            Some(u) => format!("user{u:04}@loadgen.example"),
            None => format!("{:08x}@loadgen.example", rng.next_u32()),
        };
    }
    let mut out = String::with_capacity(old.len());
    let mut bits = 0.0f64;
    for segment in old.split_inclusive(['-', '_', '.', ':', '/']) {
        let (body, sep) = match segment.char_indices().last() {
            Some((at, '-' | '_' | '.' | ':' | '/')) => (&segment[..at], &segment[at..]),
            _ => (segment, ""),
        };
        let all_digits = !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit());
        let all_hex = !body.is_empty() && body.bytes().all(|b| b.is_ascii_hexdigit());
        if body.len() >= 4 && (all_digits || all_hex) {
            for b in body.bytes() {
                let c = if all_digits {
                    bits += 3.32;
                    b'0' + rng.random_range(0..10u8)
                } else {
                    bits += 4.0;
                    let d = rng.random_range(0..16u8);
                    let upper = b.is_ascii_uppercase();
                    match d {
                        0..=9 => b'0' + d,
                        _ if upper => b'A' + d - 10,
                        _ => b'a' + d - 10,
                    }
                };
                out.push(c as char);
            }
        } else {
            out.push_str(body);
        }
        out.push_str(sep);
    }
    if is_uuid(old) {
        // Keep the version and variant digits: a v4 (or v7) UUID stays one.
        let mut bytes = out.into_bytes();
        bytes[14] = old.as_bytes()[14];
        bytes[19] = old.as_bytes()[19];
        out = String::from_utf8(bytes).expect("ASCII");
    }
    if bits < 32.0 {
        match user {
            Some(u) => out = format!("{old}-u{u:04}"),
            None => out.push_str(&format!("-{:08x}", rng.next_u32())),
        }
    }
    out
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes()
            .enumerate()
            .all(|(i, b)| if matches!(i, 8 | 13 | 18 | 23) { b == b'-' } else { b.is_ascii_hexdigit() })
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// What [`walk`] shows a visitor.
pub trait Visit {
    fn trace_id(&mut self, id: &mut Vec<u8>);
    fn span_id(&mut self, id: &mut Vec<u8>);
    fn time(&mut self, t: &mut u64);
    /// Every string value; `key` is the nearest attribute key ("" for a log body's top level).
    fn string(&mut self, key: &str, s: &mut String);
}

fn attrs(kvs: &mut [KeyValue], v: &mut impl Visit) {
    for kv in kvs {
        if let Some(value) = &mut kv.value {
            any(&kv.key, value, v);
        }
    }
}

fn any(key: &str, value: &mut AnyValue, v: &mut impl Visit) {
    match &mut value.value {
        Some(any_value::Value::StringValue(s)) => v.string(key, s),
        Some(any_value::Value::ArrayValue(a)) => {
            for item in &mut a.values {
                any(key, item, v);
            }
        }
        Some(any_value::Value::KvlistValue(list)) => attrs(&mut list.values, v),
        _ => {}
    }
}

/// Visit every id, timestamp and string of a request.
pub fn walk(payload: &mut Payload, v: &mut impl Visit) {
    match payload {
        Payload::Traces(m) => {
            for rs in &mut m.resource_spans {
                if let Some(r) = &mut rs.resource {
                    attrs(&mut r.attributes, v);
                }
                for ss in &mut rs.scope_spans {
                    if let Some(scope) = &mut ss.scope {
                        attrs(&mut scope.attributes, v);
                    }
                    for span in &mut ss.spans {
                        v.trace_id(&mut span.trace_id);
                        v.span_id(&mut span.span_id);
                        v.span_id(&mut span.parent_span_id);
                        v.time(&mut span.start_time_unix_nano);
                        v.time(&mut span.end_time_unix_nano);
                        attrs(&mut span.attributes, v);
                        for event in &mut span.events {
                            v.time(&mut event.time_unix_nano);
                            attrs(&mut event.attributes, v);
                        }
                        for link in &mut span.links {
                            v.trace_id(&mut link.trace_id);
                            v.span_id(&mut link.span_id);
                            attrs(&mut link.attributes, v);
                        }
                        if let Some(status) = &mut span.status {
                            v.string("", &mut status.message);
                        }
                    }
                }
            }
        }
        Payload::Logs(m) => {
            for rl in &mut m.resource_logs {
                if let Some(r) = &mut rl.resource {
                    attrs(&mut r.attributes, v);
                }
                for sl in &mut rl.scope_logs {
                    if let Some(scope) = &mut sl.scope {
                        attrs(&mut scope.attributes, v);
                    }
                    for record in &mut sl.log_records {
                        v.trace_id(&mut record.trace_id);
                        v.span_id(&mut record.span_id);
                        v.time(&mut record.time_unix_nano);
                        v.time(&mut record.observed_time_unix_nano);
                        attrs(&mut record.attributes, v);
                        if let Some(body) = &mut record.body {
                            any("", body, v);
                        }
                    }
                }
            }
        }
        Payload::Metrics(m) => {
            for rm in &mut m.resource_metrics {
                if let Some(r) = &mut rm.resource {
                    attrs(&mut r.attributes, v);
                }
                for sm in &mut rm.scope_metrics {
                    if let Some(scope) = &mut sm.scope {
                        attrs(&mut scope.attributes, v);
                    }
                    for metric in &mut sm.metrics {
                        attrs(&mut metric.metadata, v);
                        macro_rules! points {
                            ($points:expr) => {
                                for p in $points {
                                    v.time(&mut p.start_time_unix_nano);
                                    v.time(&mut p.time_unix_nano);
                                    attrs(&mut p.attributes, v);
                                    for e in &mut p.exemplars {
                                        v.time(&mut e.time_unix_nano);
                                        v.trace_id(&mut e.trace_id);
                                        v.span_id(&mut e.span_id);
                                        attrs(&mut e.filtered_attributes, v);
                                    }
                                }
                            };
                        }
                        match &mut metric.data {
                            Some(Data::Gauge(g)) => points!(&mut g.data_points),
                            Some(Data::Sum(s)) => points!(&mut s.data_points),
                            Some(Data::Histogram(h)) => points!(&mut h.data_points),
                            Some(Data::ExponentialHistogram(h)) => points!(&mut h.data_points),
                            Some(Data::Summary(s)) => {
                                for p in &mut s.data_points {
                                    v.time(&mut p.start_time_unix_nano);
                                    v.time(&mut p.time_unix_nano);
                                    attrs(&mut p.attributes, v);
                                }
                            }
                            None => {}
                        }
                    }
                }
            }
        }
    }
}
