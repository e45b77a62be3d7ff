//! Unit tests over the real captures in `fixtures/`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use rand::SeedableRng as _;
use rand::rngs::SmallRng;
use serde_json::Value;

use crate::capture::{self, Capture, Encoding, Payload, Signal};
use crate::rename::{self, Scope, Session, Visit};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn load(relative: &str) -> Capture {
    Capture::load(&fixtures().join(relative)).expect("capture loads")
}

/// Every string attribute `key` = value of a request (resource, spans, logs, data points).
#[derive(Default)]
struct Collect {
    strings: Vec<(String, String)>,
    trace_ids: Vec<Vec<u8>>,
    span_ids: Vec<Vec<u8>>,
    times: Vec<u64>,
}

impl Visit for Collect {
    fn trace_id(&mut self, id: &mut Vec<u8>) {
        if !id.is_empty() {
            self.trace_ids.push(id.clone());
        }
    }
    fn span_id(&mut self, id: &mut Vec<u8>) {
        if !id.is_empty() {
            self.span_ids.push(id.clone());
        }
    }
    fn time(&mut self, t: &mut u64) {
        self.times.push(*t);
    }
    fn string(&mut self, key: &str, s: &mut String) {
        self.strings.push((key.to_owned(), s.clone()));
    }
}

fn collect(payloads: &[Payload]) -> Collect {
    let mut c = Collect::default();
    for p in payloads {
        rename::walk(&mut p.clone(), &mut c);
    }
    c
}

fn values_of(c: &Collect, key: &str) -> BTreeSet<String> {
    c.strings.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
}

fn session_payloads(capture: &Capture, user: u32, seed: u64) -> Vec<Payload> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let session = Session::new(&capture.ids, user, crate::now_ns(), &mut rng);
    capture
        .requests
        .iter()
        .map(|r| {
            let mut p = r.payload.clone();
            session.apply(&mut p);
            p
        })
        .collect()
}

fn original(capture: &Capture) -> Vec<Payload> {
    capture.requests.iter().map(|r| r.payload.clone()).collect()
}

#[test]
fn file_names() {
    assert_eq!(capture::parse_file_name("0002-logs.bin"), Some((Signal::Logs, Encoding::Protobuf)));
    assert_eq!(capture::parse_file_name("0001-traces.json"), Some((Signal::Traces, Encoding::Json)));
    assert_eq!(capture::parse_file_name("0001-traces.meta.json"), None);
    assert_eq!(capture::parse_file_name("0001-traces.decoded.json"), None);
    assert_eq!(capture::parse_file_name("0001-sessionStart.json"), None);
    assert_eq!(capture::parse_file_name("summary.json"), None);
}

/// Records counted independently, from the `.decoded.json` twins of the protobuf bodies.
fn count_in_json(v: &Value) -> u64 {
    let mut n = 0;
    for rs in v["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            n += ss["spans"].as_array().map_or(0, |a| a.len() as u64);
        }
    }
    for rl in v["resourceLogs"].as_array().into_iter().flatten() {
        for sl in rl["scopeLogs"].as_array().into_iter().flatten() {
            n += sl["logRecords"].as_array().map_or(0, |a| a.len() as u64);
        }
    }
    for rm in v["resourceMetrics"].as_array().into_iter().flatten() {
        for sm in rm["scopeMetrics"].as_array().into_iter().flatten() {
            for m in sm["metrics"].as_array().into_iter().flatten() {
                for kind in ["gauge", "sum", "histogram", "exponentialHistogram", "summary"] {
                    n += m[kind]["dataPoints"].as_array().map_or(0, |a| a.len() as u64);
                }
            }
        }
    }
    n
}

#[test]
fn record_counts_match_the_captures() {
    for dir in ["claude-code/protobuf-content-on", "codex/binary-content-on"] {
        let capture = load(dir);
        for request in &capture.requests {
            let twin = fixtures().join(dir).join(request.file.replace(".bin", ".decoded.json"));
            let json: Value = serde_json::from_slice(&std::fs::read(&twin).unwrap()).unwrap();
            assert_eq!(request.records, count_in_json(&json), "{dir}/{}", request.file);
            assert!(request.records > 0, "{dir}/{}", request.file);
        }
    }
    for dir in ["claude-code/json-content-off", "copilot-cli/json-content-on", "gemini-cli/json-content-on"] {
        let capture = load(dir);
        for request in &capture.requests {
            let json: Value =
                serde_json::from_slice(&std::fs::read(fixtures().join(dir).join(&request.file)).unwrap()).unwrap();
            assert_eq!(request.records, count_in_json(&json), "{dir}/{}", request.file);
        }
    }
    let claude = load("claude-code/protobuf-content-on");
    assert_eq!(claude.requests.len(), 3);
    assert_eq!(
        claude.requests.iter().map(|r| r.payload.signal()).collect::<Vec<_>>(),
        [Signal::Traces, Signal::Logs, Signal::Metrics]
    );
}

#[test]
fn every_capture_decodes_and_reencodes() {
    let dirs = capture::find_capture_dirs(&[fixtures()]).unwrap();
    // cursor/ (hook payloads) and fuzz-regressions/ hold no NNNN-<signal> files.
    let names: Vec<String> = dirs.iter().map(|d| d.strip_prefix(fixtures()).unwrap().display().to_string()).collect();
    // Every agent's first captures at least (the conformance suite adds more).
    for expected in [
        "claude-code/json-content-off",
        "claude-code/protobuf-content-on",
        "codex/binary-content-on",
        "copilot-cli/json-content-on",
        "gemini-cli/json-content-on",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("cursor") || n.starts_with("fuzz")), "{names:?}");
    for dir in &dirs {
        let capture = Capture::load(dir).unwrap();
        for (request, renamed) in capture.requests.iter().zip(session_payloads(&capture, 7, 1)) {
            for payload in [&request.payload, &renamed] {
                let bytes = payload.encode(Encoding::Protobuf);
                let back = Payload::decode(payload.signal(), Encoding::Protobuf, &bytes).unwrap();
                assert_eq!(&back, payload, "{} {} protobuf", capture.name, request.file);
                // OTLP/JSON: serde_json reads some doubles back 1 ulp off (0.009453999999999999
                // -> 0.009454), so compare what survives exactly: the structure and the ids.
                let json = payload.encode(Encoding::Json);
                let back = Payload::decode(payload.signal(), Encoding::Json, &json).unwrap();
                assert_eq!(back.records(), payload.records());
                let (a, b) = (collect(std::slice::from_ref(payload)), collect(&[back]));
                assert_eq!(
                    (a.trace_ids, a.span_ids, a.times, a.strings),
                    (b.trace_ids, b.span_ids, b.times, b.strings)
                );
            }
            assert_eq!(renamed.records(), request.records);
        }
    }
}

#[test]
fn ids_found_in_the_captures() {
    let claude = load("claude-code/protobuf-content-on");
    let ids: HashMap<&str, Scope> = claude.ids.strings.iter().map(|(s, scope)| (s.as_str(), *scope)).collect();
    assert_eq!(ids.get("e4157771-01a7-45ad-824c-7791773150ef"), Some(&Scope::Session)); // session.id
    assert_eq!(ids.get("95a2501d-e4e3-4db7-a079-d62579bbab2b"), Some(&Scope::Session)); // prompt.id
    assert_eq!(ids.get("dev@example.com"), Some(&Scope::User)); // user.id
    assert_eq!(ids.get("device-1234"), Some(&Scope::User)); // host.id
    assert!(!claude.ids.trace_ids.is_empty() && !claude.ids.span_ids.is_empty());

    assert!(claude.ids.has_user);
    let codex = load("codex/binary-content-on");
    assert!(!codex.ids.has_user, "this Codex capture names no user");
    let ids: BTreeSet<&str> = codex.ids.strings.iter().map(|(s, _)| s.as_str()).collect();
    assert!(ids.contains("01a20edd-bbd5-7062-9aa2-6854766387df")); // conversation.id / thread.id
    assert!(ids.contains("01a20edd-bbf4-7503-98ec-85d332d5e0bd")); // turn.id

    let copilot = load("copilot-cli/json-content-on");
    let ids: BTreeSet<&str> = copilot.ids.strings.iter().map(|(s, _)| s.as_str()).collect();
    assert!(ids.contains("b73fe7d9-0115-42d7-a406-d026322ae8f5")); // gen_ai.conversation.id
    assert!(ids.contains("5b2f1dbf-9499-4b97-97cc-ad73b54c297d")); // github.copilot.interaction_id
    assert!(!ids.contains("0") && !ids.contains("1"), "turn counters are not ids");

    let gemini = load("gemini-cli/json-content-on");
    let ids: BTreeSet<&str> = gemini.ids.strings.iter().map(|(s, _)| s.as_str()).collect();
    assert!(ids.contains("bb835694-72ea-4e64-928c-e5ad661ee18d")); // session.id = prompt_id
    assert!(ids.contains("806b052e-daa3-4c43-867c-9fdf0a99d905")); // installation.id
}

#[test]
fn key_classification() {
    for key in [
        "session.id",
        "prompt.id",
        "prompt_id",
        "conversation.id",
        "gen_ai.conversation.id",
        "turn.id",
        "turn_id",
        "thread_id",
        "generation_id",
        "github.copilot.interaction_id",
        "sessionId",
        "traceId",
        "gen_ai.response.id",
        "tool_use_id",
        "submission.id",
    ] {
        assert_eq!(rename::key_scope(key), Some(Scope::Session), "{key}");
    }
    for key in
        ["user.id", "user.email", "enduser.id", "enduser.pseudo.id", "user.account_id", "host.id", "installation.id"]
    {
        assert_eq!(rename::key_scope(key), Some(Scope::User), "{key}");
    }
    for key in [
        "process.pid",
        "gen_ai.request.model",
        "prompt",
        "prompt_length",
        "service.name",
        "user_prompt",
        "interaction.sequence",
        "extension_ids",
    ] {
        assert_eq!(rename::key_scope(key), None, "{key}");
    }
}

#[test]
fn new_values_keep_their_shape() {
    let mut rng = SmallRng::seed_from_u64(3);
    for old in [
        "e4157771-01a7-45ad-824c-7791773150ef",
        "toolu_b5ddcf9ea7c849c9951af501",
        "chatcmpl-27d5bc8ead3741b3ab45",
        "82da2bb6197038dfebac48b2d580eb52d1eac117a916d2f522e3ce0f23f2e623",
    ] {
        let new = rename::new_value(old, &mut rng, None);
        assert_ne!(new, old);
        assert_eq!(new.len(), old.len(), "{old} -> {new}");
        let shape = |s: &str| s.chars().map(|c| if c.is_ascii_hexdigit() { 'x' } else { c }).collect::<String>();
        assert_eq!(shape(&new), shape(old), "{old} -> {new}");
    }
    assert!(rename::new_value("toolu_b5ddcf9ea7c849c9951af501", &mut rng, None).starts_with("toolu_"));
    // UUIDs keep their version and variant digits.
    let uuid = rename::new_value("e4157771-01a7-45ad-824c-7791773150ef", &mut rng, None);
    assert_eq!((&uuid[14..15], &uuid[19..20]), ("4", "8"), "{uuid}");
    let v7 = rename::new_value("01a20edd-bbd5-7062-9aa2-6854766387df", &mut rng, None);
    assert_eq!((&v7[14..15], &v7[19..20]), ("7", "9"), "{v7}");
    // Too little to redraw: a suffix instead.
    let host = rename::new_value("device-1234", &mut rng, Some(42));
    assert_eq!(host, "device-1234-u0042");
    assert_eq!(rename::new_value("dev@example.com", &mut rng, Some(42)), "user0042@loadgen.example");
}

#[test]
fn renaming_is_consistent_within_a_session() {
    let claude = load("claude-code/protobuf-content-on");
    let before = collect(&original(&claude));
    let renamed = session_payloads(&claude, 5, 11);
    let after = collect(&renamed);

    // Same walk, same order: ids are paired position by position.
    assert_eq!(before.trace_ids.len(), after.trace_ids.len());
    assert_eq!(before.span_ids.len(), after.span_ids.len());
    let mut trace_map = HashMap::new();
    for (old, new) in before.trace_ids.iter().zip(&after.trace_ids) {
        assert_eq!(new.len(), old.len(), "trace ids keep their length");
        assert_ne!(new, old);
        assert_eq!(trace_map.entry(old.clone()).or_insert_with(|| new.clone()), new, "one old trace id, one new");
    }
    let mut span_map = HashMap::new();
    for (old, new) in before.span_ids.iter().zip(&after.span_ids) {
        assert_eq!(new.len(), old.len(), "span ids keep their length");
        assert_ne!(new, old);
        assert_eq!(span_map.entry(old.clone()).or_insert_with(|| new.clone()), new, "one old span id, one new");
    }
    // Distinct old ids stay distinct.
    assert_eq!(trace_map.values().collect::<BTreeSet<_>>().len(), trace_map.len());
    assert_eq!(span_map.values().collect::<BTreeSet<_>>().len(), span_map.len());

    // Parent links still point at the renamed spans.
    if let Payload::Traces(t) = &renamed[0] {
        let spans: Vec<_> = t.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans).collect();
        let ids: BTreeSet<&Vec<u8>> = spans.iter().map(|s| &s.span_id).collect();
        let linked = spans.iter().filter(|s| !s.parent_span_id.is_empty() && ids.contains(&s.parent_span_id)).count();
        assert!(linked > 0, "the capture's parent links survive renaming");
    } else {
        panic!("0001 is traces");
    }

    // One session id, prompt id, user, across traces, logs and metrics; none of the old ones left.
    for key in ["session.id", "prompt.id", "user.id", "host.id"] {
        let old = values_of(&before, key);
        let new = values_of(&after, key);
        assert_eq!(new.len(), old.len(), "{key}: {old:?} -> {new:?}");
        assert!(old.is_disjoint(&new), "{key}: {old:?} -> {new:?}");
    }
    let session_ids = values_of(&after, "session.id");
    let session_id = session_ids.iter().next().unwrap();
    assert_eq!(session_id.len(), "e4157771-01a7-45ad-824c-7791773150ef".len());
    assert!(values_of(&after, "user.id").contains("user0005@loadgen.example"));

    // Ids inside text (the API request body of the logs) were renamed too, to the same values.
    let logs = String::from_utf8_lossy(&renamed[1].encode(Encoding::Protobuf)).into_owned();
    assert!(!logs.contains("e4157771-01a7-45ad-824c-7791773150ef"), "old session id left in the logs");
    assert!(!logs.contains("82da2bb6197038dfebac48b2d580eb52"), "old device hash left in the logs");
    assert!(logs.contains(&format!("\\\"session_id\\\":\\\"{session_id}\\\"")), "the body carries the new session id");
}

#[test]
fn sessions_get_distinct_ids_and_users_keep_theirs() {
    let capture = load("gemini-cli/json-content-on");
    let a = collect(&session_payloads(&capture, 1, 100));
    let b = collect(&session_payloads(&capture, 1, 200));
    let c = collect(&session_payloads(&capture, 2, 300));
    assert!(values_of(&a, "session.id").is_disjoint(&values_of(&b, "session.id")));
    assert!(values_of(&a, "installation.id").len() == 1);
    assert_eq!(values_of(&a, "user.id"), values_of(&b, "user.id"), "same pool user, same user id");
    assert_eq!(values_of(&a, "installation.id"), values_of(&b, "installation.id"));
    assert!(values_of(&a, "user.id").is_disjoint(&values_of(&c, "user.id")));
    assert!(a.trace_ids.iter().collect::<BTreeSet<_>>().is_disjoint(&b.trace_ids.iter().collect()));
    // Gemini's prompt_id is its session id: still equal after renaming.
    assert_eq!(values_of(&a, "prompt_id"), values_of(&a, "session.id"));
    assert_eq!(values_of(&a, "gen_ai.conversation.id"), values_of(&a, "session.id"));
}

#[test]
fn timestamps_move_to_now_in_order() {
    let capture = load("codex/binary-content-on");
    let before = collect(&original(&capture));
    let now = crate::now_ns();
    let after = collect(&session_payloads(&capture, 0, 9));
    let max_after = after.times.iter().copied().max().unwrap();
    assert!(max_after >= now && max_after - now < 60_000_000_000, "latest timestamp is now");
    for ((b1, a1), (b2, a2)) in before.times.iter().zip(&after.times).zip(before.times.iter().zip(&after.times).skip(1))
    {
        if *b1 != 0 && *b2 != 0 {
            assert_eq!(*a2 as i128 - *a1 as i128, *b2 as i128 - *b1 as i128, "relative times kept");
        } else {
            assert_eq!((*b1 == 0, *b2 == 0), (*a1 == 0, *a2 == 0), "unset times stay unset");
        }
    }
}

#[test]
fn ids_in_log_bodies_and_nested_values() {
    // A kvlist body holding a session id under a nested key, and the same id in free text.
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    let s = |v: &str| AnyValue { value: Some(any_value::Value::StringValue(v.into())) };
    let kv = |k: &str, v: AnyValue| KeyValue { key: k.into(), value: Some(v), ..Default::default() };
    let body = AnyValue {
        value: Some(any_value::Value::KvlistValue(opentelemetry_proto::tonic::common::v1::KeyValueList {
            values: vec![
                kv("conversation_id", s("conv-0123456789abcdef")),
                kv("text", s("resumed conv-0123456789abcdef")),
            ],
        })),
    };
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord { body: Some(body), time_unix_nano: 5, ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let payloads = [Payload::Logs(request)];
    let catalog = rename::IdCatalog::discover(payloads.iter());
    assert_eq!(catalog.strings, [("conv-0123456789abcdef".to_owned(), Scope::Session)]);
    let session = Session::new(&catalog, 0, 1_000, &mut SmallRng::seed_from_u64(1));
    let mut p = payloads[0].clone();
    session.apply(&mut p);
    let c = collect(&[p]);
    let new = session.new_string("conv-0123456789abcdef").unwrap().to_owned();
    assert!(new.starts_with("conv-") && new.len() == "conv-0123456789abcdef".len());
    assert_eq!(
        c.strings,
        [
            // No user named: one from the pool on the resource.
            ("user.id".to_owned(), "user0000@loadgen.example".to_owned()),
            ("conversation_id".to_owned(), new.clone()),
            ("text".to_owned(), format!("resumed {new}"))
        ]
    );
    assert_eq!(c.times, [1_000, 0]);
}

#[test]
fn durations_and_loopback() {
    use std::time::Duration;
    assert_eq!(crate::parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(crate::parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(crate::parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(crate::parse_duration("10"), Ok(Duration::from_secs(10)));
    assert!(crate::parse_duration("ten").is_err());
    assert!(crate::check_loopback("http://127.0.0.1:4318/api/public/otel").is_ok());
    assert!(crate::check_loopback("http://localhost:4317").is_ok());
    assert!(crate::check_loopback("http://[::1]:4317").is_ok());
    assert!(crate::check_loopback("http://10.0.0.1:4318").is_err());
    assert!(crate::check_loopback("http://example.com/otel").is_err());
}

#[test]
fn a_capture_without_a_user_gets_one_from_the_pool() {
    let codex = load("codex/binary-content-on");
    let payloads = session_payloads(&codex, 12, 5);
    let c = collect(&payloads);
    let resources: usize = payloads
        .iter()
        .map(|p| match p {
            Payload::Traces(m) => m.resource_spans.len(),
            Payload::Logs(m) => m.resource_logs.len(),
            Payload::Metrics(m) => m.resource_metrics.len(),
        })
        .sum();
    let users: Vec<_> = c.strings.iter().filter(|(k, _)| k == "user.id").map(|(_, v)| v.as_str()).collect();
    assert_eq!(users.len(), resources);
    assert!(users.iter().all(|u| *u == "user0012@loadgen.example"));
    // Captures that name their user get none added.
    let claude = load("claude-code/protobuf-content-on");
    let before = collect(&original(&claude)).strings.iter().filter(|(k, _)| k == "user.id").count();
    let after = collect(&session_payloads(&claude, 12, 5)).strings.iter().filter(|(k, _)| k == "user.id").count();
    assert_eq!(before, after);
}

#[test]
fn reads_its_own_proc_status() {
    let pid = std::process::id();
    let (rss, hwm) = crate::report::read_status(pid).unwrap();
    assert!(rss > 0 && hwm >= rss);
    assert!(crate::report::read_cpu_ticks(pid).is_some());
}
