//! A parser need not be Rust: the Python example in `examples/python-parser`, built by its
//! `build.sh` (componentize-py) against `wit/since_v0.1.0`, loads into a running host through
//! the plugins directory and turns its fixture into a trace.
//!
//! The component carries a CPython interpreter (about 18 MB), so the host takes tens of
//! seconds to compile it: the wait below is longer than the harness's usual 30 s.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use antenna_e2e::TestHost;
use serde_json::{Value, json};

const INSTALL: &str = "pip install componentize-py==0.25.1";
const LOAD_TIMEOUT: Duration = Duration::from_secs(600);

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("examples").join("python-parser")
}

#[tokio::test]
async fn a_python_parser_loads_from_the_plugins_dir_and_makes_a_trace() {
    let version = Command::new("componentize-py").arg("--version").output();
    if !version.as_ref().is_ok_and(|o| o.status.success()) {
        panic!(
            "componentize-py is not installed, so the Python example cannot be built: install it with `{INSTALL}` \
             (CI installs it in .ci/run)"
        );
    }

    let component = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-parser.wasm");
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(example_dir().join("build.sh"))
        .arg(&component)
        .output()
        .expect("running examples/python-parser/build.sh");
    assert!(
        output.status.success(),
        "examples/python-parser/build.sh failed ({})\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let size = std::fs::metadata(&component).expect("the built component").len();
    eprintln!("python-parser: built in {:.1?}, {size} bytes", started.elapsed());

    let host = TestHost::with_plugins_dir().await;
    let started = Instant::now();
    host.install_plugin(component.to_str().expect("a UTF-8 path"), "python-parser.wasm");
    let plugin = loop {
        let plugins = host.admin_plugins().await;
        let found = plugins["data"].as_array().and_then(|d| d.iter().find(|p| p["name"] == "example-python")).cloned();
        if let Some(plugin) = found.filter(|p| p["active"] == true) {
            break plugin;
        }
        let refused = plugins["refused"].as_array().cloned().unwrap_or_default();
        assert!(refused.is_empty(), "the Python component was refused: {refused:#?}");
        assert!(started.elapsed() < LOAD_TIMEOUT, "not loaded after {LOAD_TIMEOUT:?}: {plugins:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    eprintln!("python-parser: loaded (compiled, pre-linked, self-checked) in {:.1?}", started.elapsed());
    assert_eq!(plugin["wit_version"], "0.1.0");
    assert_eq!(plugin["source"]["kind"], "file");
    assert_eq!(plugin["claims"]["scope_names"], json!(["example.python"]));

    let body = std::fs::read(example_dir().join("fixtures").join("logs.json")).expect("the example's fixture");
    let started = Instant::now();
    let response = host.post("/v1/logs", "application/json", body).await;
    assert_eq!(response.status(), 200);
    let trace = only_trace(&host).await;
    eprintln!("python-parser: first batch normalized in {:.1?}", started.elapsed());
    assert_eq!(trace["id"], "prompt-py-1", "{trace:#}");
    assert_eq!(trace["agent"], "example-python");
    assert_eq!(trace["prompt"], "Hello from a Python parser");
    assert_eq!(trace["session_id"], "py-session");
    assert_eq!(trace["user_id"], "dev@example.com");
    assert_eq!(trace["device_id"], "laptop-1");
    assert_eq!(trace["start_time"], "2026-01-01T00:00:01Z");
}

async fn only_trace(host: &TestHost) -> Value {
    for _ in 0..100 {
        let traces = host.traces().await;
        if !traces.is_empty() {
            assert_eq!(traces.len(), 1, "{traces:#?}");
            return traces[0].clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no trace; batches: {:#}", host.get_json("/api/public/batches").await);
}
