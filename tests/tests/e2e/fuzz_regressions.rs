//! Inputs from fuzzing the ingest path (fuzz/: decode -> detect -> normalize -> validate ->
//! merge), posted to a real host: each must get a 2xx or a 4xx (never a 5xx, never a hang),
//! and the host must still answer `/healthz` afterwards.
//!
//! - `fixtures/fuzz-regressions/*.bin` are fuzz inputs kept as found (minimized): the first
//!   byte names the signal and encoding (`byte % 3`: traces, logs, metrics; `byte % 6 >= 3`:
//!   JSON, else protobuf), the rest is the request body. `cargo fuzz run ingest <file>` replays
//!   one (see fuzz/README.md).
//! - The hand-picked cases below are the classics a fuzzer tends to rediscover: truncated
//!   protobuf, absurd lengths, deep nesting, huge repeated fields, invalid UTF-8, wrong JSON
//!   types, extreme numbers.

use std::time::Duration;

use antenna_e2e::{Capture, PUBLIC_KEY, SECRET_KEY, TestHost, basic, fixtures_dir};
use serde_json::{Value, json};

/// Longest a single request may take, whatever it holds.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

struct Case {
    name: String,
    signal: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Case {
    fn new(name: &str, signal: &'static str, content_type: &'static str, body: Vec<u8>) -> Self {
        Case { name: name.to_owned(), signal, content_type, body }
    }

    fn json(name: &str, signal: &'static str, body: &Value) -> Self {
        Self::new(name, signal, "application/json", serde_json::to_vec(body).expect("JSON"))
    }

    fn protobuf(name: &str, signal: &'static str, body: Vec<u8>) -> Self {
        Self::new(name, signal, "application/x-protobuf", body)
    }

    /// A fuzz input: signal and encoding from its first byte, then the body.
    fn from_fuzz_input(name: String, input: &[u8]) -> Self {
        let (first, body) = input.split_first().map(|(f, b)| (*f, b.to_vec())).unwrap_or((0, Vec::new()));
        let signal = ["traces", "logs", "metrics"][usize::from(first % 3)];
        let content_type = if first % 6 < 3 { "application/x-protobuf" } else { "application/json" };
        Case { name, signal, content_type, body }
    }
}

/// Post each case; each gets a 2xx or 4xx in time, and the host stays up. Returns each status
/// and response text.
async fn post_all(host: &TestHost, cases: &[Case]) -> Vec<(u16, String)> {
    let mut answers = Vec::new();
    for case in cases {
        let request = host
            .client
            .post(host.url(&format!("/v1/{}", case.signal)))
            .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
            .header("content-type", case.content_type)
            .body(case.body.clone());
        let response = tokio::time::timeout(ANSWER_WITHIN, request.send())
            .await
            .unwrap_or_else(|_| panic!("{}: no answer within {ANSWER_WITHIN:?}", case.name))
            .unwrap_or_else(|e| panic!("{}: no HTTP answer (did the request panic the host?): {e}", case.name));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success() || status.is_client_error(),
            "{}: {status} (a 2xx or 4xx expected): {}",
            case.name,
            text.chars().take(300).collect::<String>()
        );
        let health = tokio::time::timeout(ANSWER_WITHIN, host.client.get(host.url("/healthz")).send())
            .await
            .unwrap_or_else(|_| panic!("{}: /healthz did not answer afterwards", case.name))
            .unwrap_or_else(|e| panic!("{}: /healthz afterwards: {e}", case.name));
        assert_eq!(health.status(), 200, "{}: /healthz afterwards", case.name);
        answers.push((status.as_u16(), text));
    }
    answers
}

/// A kept fuzz input by file name.
fn kept(name: &str) -> Case {
    let path = fixtures_dir().join("fuzz-regressions").join(name);
    let input = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Case::from_fuzz_input(name.to_owned(), &input)
}

#[tokio::test]
async fn every_kept_fuzz_input_gets_an_answer() {
    let dir = fixtures_dir().join("fuzz-regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fuzz inputs in {}", dir.display());
    let cases: Vec<Case> = files
        .iter()
        .map(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Case::from_fuzz_input(name, &std::fs::read(p).expect("fuzz input"))
        })
        .collect();
    let host = TestHost::start().await;
    post_all(&host, &cases).await;
}

/// `merge::merge` computed a tool call's end as `start + duration_ms * 1_000_000` unchecked: a
/// Claude Code tool span starting near `u64::MAX` with `duration_ms` 1 overflowed. In a debug
/// build the request's task panicked (no HTTP answer; the batch stayed `pending` and panicked
/// again at every restart's recovery); in a release build the end silently wrapped around.
#[tokio::test]
async fn tool_call_ending_past_u64_is_merged_without_an_end() {
    let host = TestHost::start().await;
    let answers = post_all(&host, &[kept("merge-tool-end-overflow.bin")]).await;
    assert_eq!(answers[0].0, 200, "{}", answers[0].1);
    let traces = host.traces().await;
    let trace = traces.iter().find(|t| t["agent"] == "claude-code").unwrap_or_else(|| panic!("{traces:#?}"));
    let id = trace["id"].as_str().expect("trace id");
    let detail = host.get_json(&format!("/api/public/traces/{id}")).await;
    let observations = detail["observations"].as_array().cloned().unwrap_or_default();
    let tool = observations.iter().find(|o| o["type"] == "tool_call").unwrap_or_else(|| panic!("{detail:#}"));
    assert!(tool["end_time"].is_null(), "no end past u64: {tool:#}");
}

/// `Export::into_resource_batches` copies a metric's name and unit onto each of its data
/// points: a 60 KB name over 60 000 empty gauge points (a 180 KB body) became 3.6 GB in the
/// host. `otlp::decode` now refuses a body whose repeated names would pass 64 MiB.
#[tokio::test]
async fn metric_name_repeated_over_many_points_is_refused() {
    let host = TestHost::start().await;
    let answers = post_all(&host, &[kept("metric-name-amplification.bin")]).await;
    let (status, text) = &answers[0];
    assert_eq!(*status, 400, "{text}");
    assert!(text.contains("repeated on every data point"), "{text}");
}

/// Claude Code log records whose prompt keys and OTel trace keys link into one chain, trace ids
/// decreasing: record `2i` names prompt `i` and trace `i`, record `2i+1` prompt `i+1` and trace
/// `i`. As protobuf, about 120 bytes a record.
fn chained_keys_logs(pairs: usize) -> Vec<u8> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use prost::Message;

    let text = |key: &str, value: String| KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value)) }),
        ..Default::default()
    };
    let mut records = Vec::with_capacity(2 * pairs);
    for i in 0..pairs {
        let trace_id = (u128::MAX - i as u128).to_be_bytes().to_vec();
        for prompt in [i, i + 1] {
            let n = records.len();
            records.push(LogRecord {
                time_unix_nano: 1_700_000_000_000_000_000 + n as u64,
                trace_id: trace_id.clone(),
                attributes: vec![
                    text("event.name", "user_prompt".into()),
                    text("prompt.id", format!("P{prompt:07}")),
                    text("event.sequence", n.to_string()),
                ],
                ..Default::default()
            });
        }
    }
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![text("service.name", "claude-code".into())],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "com.anthropic.claude_code.events".into(),
                    ..Default::default()
                }),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// `merge::KeyGroups` (union-find over trace keys, also used by the store) had no path
/// compression: keys joined in decreasing order made one chain that `into_groups` walked from
/// every key, quadratic with string clones at each step. 40 000 such records (a 5 MB body) took
/// about 5 minutes in a debug build, holding the store's writer lock; now about 10 seconds.
#[tokio::test]
async fn a_long_chain_of_trace_keys_merges_in_time() {
    let host = TestHost::start().await;
    let case = Case::protobuf("20 000 chained key pairs", "logs", chained_keys_logs(20_000));
    let answers = post_all(&host, &[kept("keygroups-chain.bin"), case]).await;
    for (status, text) in &answers {
        assert_eq!(*status, 200, "{text}");
    }
    let traces = host.traces().await;
    let ids: Vec<&str> = traces.iter().filter_map(|t| t["id"].as_str()).collect();
    // The kept input's chain and the generated one share prompt and trace keys: one trace.
    assert_eq!(ids.len(), 1, "every key of the chain in one trace: {ids:?}");
}

// ---- protobuf built by hand (prost would refuse to build some of these) ------------------------

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field.
fn field(tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    varint(u64::from(tag << 3 | 2), &mut out);
    varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// `ExportLogsServiceRequest { resource_logs: [ResourceLogs { resource: Resource { attributes:
/// [KeyValue { key: "k", value }] } }] }` around an encoded `AnyValue`.
fn logs_with_resource_value(any_value: &[u8]) -> Vec<u8> {
    let key_value = [field(1, b"k"), field(2, any_value)].concat();
    let resource = field(1, &key_value);
    field(1, &field(1, &resource))
}

/// An `AnyValue` nested `depth` arrays deep (`array_value` = 5, `ArrayValue.values` = 1).
fn nested_any_value(depth: usize) -> Vec<u8> {
    let mut inner = field(1, b"leaf"); // string_value
    for _ in 0..depth {
        inner = field(5, &field(1, &inner));
    }
    inner
}

/// A logs request in the Claude Code scope (so a real parser runs) with `records` log records.
fn claude_logs_json(records: Vec<Value>) -> Value {
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "claude-code"}}]},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": records}]
    }]})
}

/// JSON `AnyValue` nested `depth` arrays deep, as text (serde_json would not build it).
fn nested_json_value(depth: usize) -> String {
    let mut text = String::with_capacity(depth * 40);
    for _ in 0..depth {
        text.push_str(r#"{"arrayValue":{"values":["#);
    }
    text.push_str(r#"{"stringValue":"leaf"}"#);
    for _ in 0..depth {
        text.push_str("]}}");
    }
    text
}

#[tokio::test]
async fn hand_picked_nasty_inputs_get_an_answer() {
    let claude = Capture::load("claude-code/protobuf-content-on");
    let traces = claude.only(&["traces"]).requests[0].body.clone();
    let logs = claude.only(&["logs"]).requests[0].body.clone();
    let deep_json = |depth| {
        format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"k","value":{}}}]}}}}]}}"#,
            nested_json_value(depth)
        )
        .into_bytes()
    };
    // ResourceSpans.scope_spans (2) -> ScopeSpans.spans (2) -> Span { trace_id (1), name (5) }.
    let invalid_utf8_name =
        field(1, &field(2, &field(2, &[field(1, &[0xAB; 16]), field(5, b"\xff\xfe\xc3")].concat())));
    let many_attributes: Vec<u8> = {
        // 500k empty KeyValues on one resource (2 bytes each): a huge repeated field.
        let resource: Vec<u8> = std::iter::repeat_n([0x0a, 0x00], 500_000).flatten().collect();
        field(1, &field(1, &resource))
    };

    let cases = vec![
        // Truncated protobuf, at several places.
        Case::protobuf("truncated traces (half)", "traces", traces[..traces.len() / 2].to_vec()),
        Case::protobuf("truncated traces (one byte short)", "traces", traces[..traces.len() - 1].to_vec()),
        Case::protobuf("truncated logs (first 7 bytes)", "logs", logs[..7].to_vec()),
        // A length that claims far more than the body holds; a varint that never ends.
        Case::protobuf("length of 2^35", "logs", vec![0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x00]),
        Case::protobuf("endless varint", "metrics", [vec![0x0a], vec![0xff; 20]].concat()),
        Case::protobuf("field number 0", "traces", vec![0x02, 0x00]),
        Case::protobuf("end group without start", "logs", vec![0x0c]),
        // Deep nesting: past prost's recursion limit, and just under it.
        Case::protobuf("protobuf AnyValue 10000 deep", "logs", logs_with_resource_value(&nested_any_value(10_000))),
        Case::protobuf("protobuf AnyValue 45 deep", "logs", logs_with_resource_value(&nested_any_value(45))),
        Case::new("JSON AnyValue 10000 deep", "logs", "application/json", deep_json(10_000)),
        Case::new("JSON AnyValue 40 deep", "logs", "application/json", deep_json(40)),
        Case::new("JSON arrays 100000 deep", "traces", "application/json", "[".repeat(100_000).into_bytes()),
        // Huge repeated field counts.
        Case::protobuf("500k empty attributes", "logs", many_attributes),
        Case::json("100k empty log records", "logs", &claude_logs_json(vec![json!({}); 100_000])),
        Case::json(
            "20k claude api_request events",
            "logs",
            &claude_logs_json(
                (0..20_000)
                    .map(|i| {
                        json!({"timeUnixNano": format!("{}", 1_700_000_000_000_000_000u64 + i), "attributes": [
                            {"key": "event.name", "value": {"stringValue": "api_request"}},
                            {"key": "prompt.id", "value": {"stringValue": format!("p{}", i % 7)}},
                            {"key": "input_tokens", "value": {"intValue": "9223372036854775807"}},
                            {"key": "cost_usd", "value": {"doubleValue": 1.7e308}},
                        ]})
                    })
                    .collect(),
            ),
        ),
        // Invalid UTF-8 where text belongs.
        Case::protobuf("invalid UTF-8 in a span name", "traces", invalid_utf8_name),
        Case::new(
            "invalid UTF-8 in a JSON string",
            "logs",
            "application/json",
            br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"a\xff\xfeb"}}]}}]}"#
                .to_vec(),
        ),
        Case::new(
            "lone surrogate escape",
            "logs",
            "application/json",
            br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"\ud800"}]}]}]}"#.to_vec(),
        ),
        // Wrong JSON types.
        Case::json("top-level array", "traces", &json!([1, 2, 3])),
        Case::json("top-level null", "metrics", &Value::Null),
        Case::json("resourceLogs an object", "logs", &json!({"resourceLogs": {}})),
        Case::json("timeUnixNano a bool", "logs", &claude_logs_json(vec![json!({"timeUnixNano": true})])),
        Case::json("timeUnixNano negative", "logs", &claude_logs_json(vec![json!({"timeUnixNano": -1})])),
        Case::json("intValue not a number", "logs", &claude_logs_json(vec![json!({"body": {"intValue": "x"}})])),
        Case::json("traceId not hex", "traces", &json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]})),
        Case::json("traceId a number", "traces", &json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 12}]}]}]})),
        Case::json("span kind a string", "traces", &json!({"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": "SERVER"}]}]}]})),
        Case::json("bytesValue not base64", "logs", &claude_logs_json(vec![json!({"body": {"bytesValue": "***"}})])),
        Case::json("attributes a string", "logs", &json!({"resourceLogs": [{"resource": {"attributes": "x"}}]})),
        Case::json(
            "metric data points of every kind, empty",
            "metrics",
            &json!({"resourceMetrics": [{"scopeMetrics": [{"scope": {"name": "com.anthropic.claude_code"}, "metrics": [
                {"name": "g", "gauge": {"dataPoints": [{}]}},
                {"name": "s", "sum": {"dataPoints": [{"asDouble": "NaN"}]}},
                {"name": "h", "histogram": {"dataPoints": [{"sum": "Infinity", "count": "18446744073709551615"}]}},
                {"name": "e", "exponentialHistogram": {"dataPoints": [{}]}},
                {"name": "y", "summary": {"dataPoints": [{"sum": "-Infinity"}]}}
            ]}]}]}),
        ),
        // Extreme numbers where the parsers and the merge do arithmetic.
        Case::json(
            "u64::MAX times and durations",
            "logs",
            &claude_logs_json(vec![json!({
                "timeUnixNano": "18446744073709551615",
                "attributes": [
                    {"key": "event.name", "value": {"stringValue": "tool_result"}},
                    {"key": "prompt.id", "value": {"stringValue": "p"}},
                    {"key": "tool_name", "value": {"stringValue": "Bash"}},
                    {"key": "duration_ms", "value": {"intValue": "9223372036854775807"}},
                    {"key": "success", "value": {"stringValue": "false"}}
                ]
            })]),
        ),
        Case::new("empty JSON body", "logs", "application/json", Vec::new()),
        Case::protobuf("empty protobuf body", "logs", Vec::new()),
    ];
    let host = TestHost::start().await;
    let answers = post_all(&host, &cases).await;
    // Undecodable bodies are refused up front, not stored.
    for (case, (status, _)) in cases.iter().zip(&answers) {
        if case.name.starts_with("truncated") || case.name.contains("10000 deep") || case.name.contains("UTF-8") {
            assert_eq!(*status, 400, "{}", case.name);
        }
    }
}
