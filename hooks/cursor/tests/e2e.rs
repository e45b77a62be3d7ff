//! Cursor's documented hook payloads (fixtures/cursor) through the real hook binary, run as
//! Cursor runs it (a child process, JSON on stdin) for the hooks the shipped hooks.json
//! registers, into a real host: the exact trace, answers that never grant a permission, failing
//! open while the host is down or slow, no duplicates, and a spool no other user can touch.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use antenna_e2e::{PUBLIC_KEY, SECRET_KEY, TestHost, fixtures_dir};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_antenna-cursor-hook");
const TIMEOUT_MS: u64 = 1_500;
/// Process start-up and a loaded machine, on top of the hook's own timeout.
const SLACK: Duration = Duration::from_millis(1_500);

const TRACE_ID: &str = "prompt-e2b7c9d4-1a6f-4c83-b5e0-7d29f3a8c614";
const SESSION: &str = "5c0e7a52-3d1f-4b8e-a6c2-9f41d7e0b3a8";
const CURSOR_LOGIN: &str = "jane.doe@example.com";

/// The hooks the shipped hooks.json has Cursor run the program for.
fn registered_hooks() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("hooks.json");
    let config: Value = serde_json::from_slice(&std::fs::read(&path).expect("hooks.json")).expect("hooks.json is JSON");
    assert_eq!(config["version"], 1);
    let hooks = config["hooks"].as_object().expect("hooks");
    for (hook, entries) in hooks {
        assert_eq!(entries, &json!([{ "command": "antenna-cursor-hook" }]), "{hook}");
    }
    hooks.keys().cloned().collect()
}

/// What Cursor runs with the shipped hooks.json: the session's payloads for registered hooks.
fn registered_fixtures() -> Vec<(String, Vec<u8>)> {
    let registered = registered_hooks();
    fixtures().into_iter().filter(|(hook, _)| registered.contains(hook)).collect()
}

fn fixture(hook: &str) -> Vec<u8> {
    fixtures().into_iter().find(|(h, _)| h == hook).map(|(_, bytes)| bytes).expect("fixture")
}

/// The session's hook payloads in order: (hook name, stdin bytes).
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = fixtures_dir().join("cursor").join("agent-session");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("fixture");
            let payload: Value = serde_json::from_slice(&bytes).expect("fixture JSON");
            let hook = payload["hook_event_name"].as_str().expect("hook_event_name").to_owned();
            (hook, bytes)
        })
        .collect()
}

/// The hook's environment, as hooks.json would leave it (nothing inherited from this process).
fn env(endpoint: &str, spool: &Path, user: Option<&str>) -> Vec<(String, String)> {
    let mut vars = vec![
        ("ANTENNA_ENDPOINT", endpoint.to_owned()),
        ("ANTENNA_PUBLIC_KEY", PUBLIC_KEY.to_owned()),
        ("ANTENNA_SECRET_KEY", SECRET_KEY.to_owned()),
        ("ANTENNA_SPOOL_DIR", spool.display().to_string()),
        ("ANTENNA_HOST_ID", "device-1234".to_owned()),
        ("ANTENNA_TIMEOUT_MS", TIMEOUT_MS.to_string()),
    ];
    if let Some(user) = user {
        vars.push(("ANTENNA_USER_ID", user.to_owned()));
    }
    vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn endpoint_of(host: &TestHost) -> String {
    format!("{}/api/public/otel", host.base)
}

/// Run the hook once, off the runtime's thread (the host serves on it meanwhile).
async fn run_hook(env: &[(String, String)], input: &[u8]) -> (Output, Duration) {
    let env = env.to_vec();
    let input = input.to_vec();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut child = Command::new(BIN)
            .env_clear()
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the hook starts");
        child.stdin.take().expect("stdin").write_all(&input).expect("payload written");
        let output = child.wait_with_output().expect("the hook ends");
        (output, started.elapsed())
    })
    .await
    .expect("hook task")
}

/// What Cursor must read on stdout: the session and the user's prompt go on; nothing else is
/// decided (no `permission`, no follow-up message).
fn expected_answer(hook: &str) -> Value {
    match hook {
        "beforeSubmitPrompt" | "sessionStart" => json!({"continue": true}),
        _ => json!({}),
    }
}

/// Run every payload; each must answer its go-ahead and exit 0. Returns each run's time.
async fn drive(env: &[(String, String)], payloads: &[(String, Vec<u8>)]) -> Vec<(Output, Duration)> {
    let mut runs = Vec::new();
    for (hook, input) in payloads {
        let (output, elapsed) = run_hook(env, input).await;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(0), "{hook}: {stderr}");
        let answer: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{hook}: stdout is not JSON ({e}): {:?}", output.stdout));
        assert_eq!(answer, expected_answer(hook), "{hook}");
        runs.push((output, elapsed));
    }
    runs
}

fn spooled(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(Result::ok).filter(|e| e.path().extension().is_some_and(|x| x == "json")).count()
        })
        .unwrap_or(0)
}

/// The fixture session's trace, field by field (times are the hook runs' own).
fn assert_expected_trace(trace: &Value, user: &str) {
    assert_eq!(trace["id"], TRACE_ID, "{trace:#}");
    assert_eq!(trace["agent"], "cursor");
    assert_eq!(trace["session_id"], SESSION);
    assert_eq!(trace["user_id"], user);
    assert_eq!(trace["device_id"], "device-1234");
    assert_eq!(
        trace["prompt"],
        "GET /todos returns a 500 when there are no todos. Find out why, fix it, and note the fix on issue #42."
    );
    assert_eq!(
        trace["response"],
        "The 500 came from `items[0].id` in src/routes/todos.ts, which throws when the list is empty. I guarded it \
         so the route returns an empty list with `latest: null`, and left a comment on issue #42."
    );
    assert_eq!(trace["models"], json!(["claude-4.5-sonnet"]));
    for field in ["input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens"] {
        assert_eq!(trace[field], 0, "{field}: Cursor's hooks carry no tokens");
    }
    assert_eq!(trace["cost_usd"], Value::Null);
    assert_eq!(trace["errors"], json!([]));

    let mut tools = trace["tool_calls"].clone();
    let calls = tools.as_array_mut().expect("tool_calls");
    // Observed from the after-hooks alone, calls carry no start time of their own: compare them
    // in a fixed order.
    calls.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let ids: Vec<String> = calls.iter_mut().map(|c| c["id"].take().as_str().unwrap_or("").to_owned()).collect();
    assert!(ids[0].starts_with("shell-") && ids[1].starts_with("mcp-"), "{ids:?}");
    for call in calls.iter_mut().filter_map(Value::as_object_mut) {
        call.remove("id");
    }
    assert_eq!(
        tools,
        json!([
            {
                "name": "Shell",
                "args": "npm test -- --silent",
                "result": "FAIL src/routes/todos.test.ts\n  GET /todos > returns an empty list when there are no todos\n    \
                           TypeError: Cannot read properties of undefined (reading 'id')\n\nTests: 1 failed, 11 passed, 12 total",
                "duration_ms": 4210,
                "success": true,
                "decision": null,
                "decision_source": null,
            },
            {
                "name": "add_issue_comment",
                "args": r#"{"body":"Fixed in the working tree: GET /todos returns an empty list instead of a 500.","issue_number":42,"owner":"acme","repo":"todo-api"}"#,
                "result": r#"{"content": [{"type": "text", "text": "Comment 1874 created on acme/todo-api#42"}]}"#,
                "duration_ms": 812,
                "success": true,
                "decision": null,
                "decision_source": null,
            },
        ])
    );
    let (start, end) = (trace["start_time"].as_str().expect("start"), trace["end_time"].as_str().expect("end"));
    assert!(start < end, "{start} .. {end}");
}

/// The detail view with the shipped hooks.json: the model, the tool calls and the events.
const TIMELINE: &[(&str, &str)] = &[
    ("llm_call", "claude-4.5-sonnet"),
    ("event", "cursor.afterAgentThought"),
    ("tool_call", "Shell"),
    ("event", "cursor.afterFileEdit"),
    ("tool_call", "add_issue_comment"),
    ("event", "cursor.stop"),
];

/// The same with an older hooks.json that still runs the program for the before-hooks.
const TIMELINE_WITH_BEFORE_HOOKS: &[(&str, &str)] = &[
    ("llm_call", "claude-4.5-sonnet"),
    ("event", "cursor.afterAgentThought"),
    ("tool_call", "Shell"),
    ("event", "cursor.beforeReadFile"),
    ("event", "cursor.afterFileEdit"),
    ("tool_call", "add_issue_comment"),
    ("event", "cursor.stop"),
];

/// The detail view: the model, the tool calls and the events, in the order the hooks ran.
async fn assert_timeline(host: &TestHost, expected: &[(&str, &str)]) {
    let detail = host.get_json(&format!("/api/public/traces/{TRACE_ID}")).await;
    let timeline: Vec<(&str, &str)> = detail["observations"]
        .as_array()
        .expect("observations")
        .iter()
        .map(|o| (o["type"].as_str().unwrap_or(""), o["name"].as_str().unwrap_or("")))
        .collect();
    if expected.contains(&("event", "cursor.beforeReadFile")) {
        assert_eq!(timeline, expected);
    } else {
        // From the after-hooks alone a tool call has no start of its own (the cursor parser
        // takes starts from the before-hooks), so the host lists it after the timed entries:
        // everything is there, the non-tool entries in hook order.
        fn untimed<'a>(t: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
            t.iter().copied().filter(|(kind, _)| *kind != "tool_call").collect()
        }
        assert_eq!(untimed(&timeline), untimed(expected));
        let (mut got, mut want) = (timeline.clone(), expected.to_vec());
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
    }
    if let Some(read) =
        detail["observations"].as_array().and_then(|o| o.iter().find(|o| o["name"] == "cursor.beforeReadFile"))
    {
        assert_eq!(read["attributes"]["file_path"], "/home/dev/projects/todo-api/src/routes/todos.ts");
        assert!(read["attributes"].get("content").is_none(), "file contents stay on the machine by default");
        assert!(read["attributes"]["content_bytes"].as_u64().is_some_and(|n| n > 0));
    }
}

async fn only_trace(host: &TestHost) -> Value {
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1, "one prompt, one trace: {traces:#?}");
    traces[0].clone()
}

#[tokio::test]
async fn the_session_through_the_hook_gives_one_exact_trace() {
    let host = TestHost::start().await;
    let spool = tempfile::tempdir().expect("spool directory");
    let env = env(&endpoint_of(&host), spool.path(), Some("dev@example.com"));
    let runs = drive(&env, &registered_fixtures()).await;
    for (output, _) in &runs {
        assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    assert_eq!(spooled(spool.path()), 0, "everything delivered");
    let trace = only_trace(&host).await;
    assert_expected_trace(&trace, "dev@example.com");
    assert_timeline(&host, TIMELINE).await;
}

#[tokio::test]
async fn running_the_hooks_again_duplicates_nothing() {
    let host = TestHost::start().await;
    let spool = tempfile::tempdir().expect("spool directory");
    // No user in the environment: Cursor's own login attributes the trace.
    let env = env(&endpoint_of(&host), spool.path(), None);
    let payloads = registered_fixtures();
    drive(&env, &payloads).await;
    let first = only_trace(&host).await;
    let first_detail = host.get_json(&format!("/api/public/traces/{TRACE_ID}")).await;
    drive(&env, &payloads).await;
    let second = only_trace(&host).await;
    assert_expected_trace(&second, CURSOR_LOGIN);
    assert_eq!(first["tool_calls"], second["tool_calls"]);
    let second_detail = host.get_json(&format!("/api/public/traces/{TRACE_ID}")).await;
    assert_eq!(
        first_detail["observations"].as_array().map(Vec::len),
        second_detail["observations"].as_array().map(Vec::len),
        "no event, tool call or model call twice"
    );
    assert_timeline(&host, TIMELINE).await;
}

#[tokio::test]
async fn with_the_host_down_the_hook_fails_open_and_delivers_later() {
    let spool = tempfile::tempdir().expect("spool directory");
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let down = env(&format!("http://127.0.0.1:{closed}/api/public/otel"), spool.path(), None);
    let payloads = registered_fixtures();
    let (offline, online) = payloads.split_at(6);

    for (output, elapsed) in drive(&down, offline).await {
        assert!(elapsed < Duration::from_millis(TIMEOUT_MS) + SLACK, "took {elapsed:?}");
        assert!(String::from_utf8_lossy(&output.stderr).contains("spooled"), "says what it did");
    }
    assert_eq!(spooled(spool.path()), offline.len(), "every event kept");

    let host = TestHost::start().await;
    assert!(host.traces().await.is_empty());
    let up = env(&endpoint_of(&host), spool.path(), None);
    drive(&up, online).await;
    assert_eq!(spooled(spool.path()), 0, "the backlog went with the next post");
    let trace = only_trace(&host).await;
    assert_expected_trace(&trace, CURSOR_LOGIN);
    assert_timeline(&host, TIMELINE).await;
}

#[tokio::test]
async fn a_host_that_never_answers_costs_one_timeout_then_the_hook_backs_off() {
    let spool = tempfile::tempdir().expect("spool directory");
    // Connections complete in the kernel's backlog, but nothing ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let env = env(&format!("http://127.0.0.1:{port}/api/public/otel"), spool.path(), None);
    let payloads = registered_fixtures();

    let runs = drive(&env, &payloads[1..2]).await;
    let (_, elapsed) = &runs[0];
    assert!(*elapsed >= Duration::from_millis(TIMEOUT_MS), "waited for the timeout: {elapsed:?}");
    assert!(*elapsed < Duration::from_millis(TIMEOUT_MS) + SLACK, "and no longer: {elapsed:?}");

    // The next hooks do not wait on the same slow host again.
    for (_, elapsed) in drive(&env, &payloads[2..5]).await {
        assert!(elapsed < Duration::from_millis(TIMEOUT_MS), "backed off: {elapsed:?}");
    }
    assert_eq!(spooled(spool.path()), 4);
    drop(silent);
}

#[test]
fn the_shipped_hooks_json_registers_no_permission_hook() {
    let registered = registered_hooks();
    for hook in antenna_cursor_hook::PERMISSION_HOOKS {
        assert!(!registered.iter().any(|h| h == hook), "{hook}: its answer would be a permission decision");
    }
    // What it still sees: the session, the prompt, and every tool call after it ran.
    for hook in
        ["sessionStart", "beforeSubmitPrompt", "afterShellExecution", "afterMCPExecution", "postToolUse", "stop"]
    {
        assert!(registered.iter().any(|h| h == hook), "{hook}");
    }
}

#[tokio::test]
async fn an_older_hooks_json_with_the_before_hooks_gets_no_approval_and_the_same_trace() {
    let host = TestHost::start().await;
    let spool = tempfile::tempdir().expect("spool directory");
    let env = env(&endpoint_of(&host), spool.path(), Some("dev@example.com"));
    // drive() checks every answer: `{}` for beforeShellExecution, beforeMCPExecution, beforeReadFile.
    let runs = drive(&env, &fixtures()).await;
    for (output, _) in &runs {
        let answer = String::from_utf8_lossy(&output.stdout);
        assert!(!answer.contains("permission"), "{answer}");
    }
    for hook in antenna_cursor_hook::PERMISSION_HOOKS {
        let input = json!({ "hook_event_name": hook, "conversation_id": SESSION, "generation_id": "g" }).to_string();
        let (output, _) = run_hook(&env, input.as_bytes()).await;
        assert_eq!(output.status.code(), Some(0));
        assert_eq!(serde_json::from_slice::<Value>(&output.stdout).expect("JSON"), json!({}), "{hook}");
    }
    let trace = host.traces().await.into_iter().find(|t| t["id"] == TRACE_ID).expect("the session's trace");
    assert_expected_trace(&trace, "dev@example.com");
    assert_timeline(&host, TIMELINE_WITH_BEFORE_HOOKS).await;
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o7777
}

/// The environment without ANTENNA_SPOOL_DIR, with `extra` instead.
fn env_without_spool(endpoint: &str, extra: &[(&str, &Path)]) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> =
        env(endpoint, Path::new("/unused"), None).into_iter().filter(|(k, _)| k != "ANTENNA_SPOOL_DIR").collect();
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.display().to_string())));
    vars
}

fn closed_port_endpoint() -> String {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    format!("http://127.0.0.1:{closed}/api/public/otel")
}

#[cfg(unix)]
#[tokio::test]
async fn the_default_spool_is_in_the_users_state_directory_and_private() {
    let home = tempfile::tempdir().expect("home");
    let tmp = tempfile::tempdir().expect("TMPDIR");
    let env = env_without_spool(&closed_port_endpoint(), &[("HOME", home.path()), ("TMPDIR", tmp.path())]);
    drive(&env, &registered_fixtures()[..3]).await;
    let dir = home.path().join(".local/state/antenna/cursor-spool");
    assert_eq!(spooled(&dir), 3);
    assert_eq!(mode(&dir), 0o700);
    for entry in std::fs::read_dir(&dir).expect("spool") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(std::fs::read_dir(tmp.path()).expect("TMPDIR").count(), 0, "nothing in the temporary directory");
}

#[tokio::test]
async fn with_no_per_user_directory_nothing_is_spooled_and_cursor_still_goes_on() {
    let tmp = tempfile::tempdir().expect("TMPDIR");
    // No ANTENNA_SPOOL_DIR, HOME or XDG_STATE_HOME; the host is down.
    let env = env_without_spool(&closed_port_endpoint(), &[("TMPDIR", tmp.path())]);
    for (output, _) in drive(&env, &registered_fixtures()[..3]).await {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("event not recorded") && stderr.contains("no spool directory"), "{stderr}");
    }
    assert_eq!(std::fs::read_dir(tmp.path()).expect("TMPDIR").count(), 0, "never the shared temporary directory");
}

#[cfg(unix)]
#[tokio::test]
async fn a_spool_directory_other_users_can_write_is_neither_read_nor_written() {
    use std::os::unix::fs::PermissionsExt;
    // A genuine spooled record (afterAgentThought), kept while the host was down.
    let private = tempfile::tempdir().expect("private spool");
    let down = env(&closed_port_endpoint(), private.path(), None);
    drive(&down, &[("afterAgentThought".to_owned(), fixture("afterAgentThought"))]).await;
    let record = std::fs::read_dir(private.path())
        .expect("spool")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("spooled record");

    // Someone plants it in a directory everyone can write to.
    let shared = tempfile::tempdir().expect("shared directory");
    std::fs::copy(&record, shared.path().join(record.file_name().expect("name"))).expect("plant");
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");

    let host = TestHost::start().await;
    let up = env(&endpoint_of(&host), shared.path(), None);
    for (output, _) in drive(&up, &[("stop".to_owned(), fixture("stop"))]).await {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("event sent") && stderr.contains("writable by other users"), "{stderr}");
    }
    let detail = host.get_json(&format!("/api/public/traces/{TRACE_ID}")).await;
    let names: Vec<&str> =
        detail["observations"].as_array().expect("observations").iter().filter_map(|o| o["name"].as_str()).collect();
    assert!(names.contains(&"cursor.stop"), "{names:?}");
    assert!(!names.contains(&"cursor.afterAgentThought"), "the planted record was not sent: {names:?}");

    let down = env(&closed_port_endpoint(), shared.path(), None);
    for (output, _) in drive(&down, &[("stop".to_owned(), fixture("stop"))]).await {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("event not recorded") && stderr.contains("writable by other users"), "{stderr}");
    }
    assert_eq!(std::fs::read_dir(shared.path()).expect("shared").count(), 1, "only the planted file");
    assert_eq!(mode(shared.path()), 0o777, "left as it was");
}
