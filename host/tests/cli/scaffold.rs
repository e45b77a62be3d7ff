//! `antenna plugin new`: the crate it writes builds to a component with the one documented
//! command, passes its own native test, and a real host that finds the component in its
//! plugins directory turns the crate's fixture into the expected trace.
//!
//! This compiles a crate from scratch: one wasm build and one native test build per run, in a
//! shared target directory (`target/scaffold-test`) so that later runs are incremental.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use antenna_e2e::TestHost;
use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("host/ lives in the workspace").to_path_buf()
}

/// A cargo command without the outer cargo's settings (as tools/component-build does): its
/// target directory, flags and wrappers are for the host build, not for the plugin's.
fn cargo(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(dir).args(args);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if (key.starts_with("CARGO_") && key != "CARGO_HOME") || key == "RUSTFLAGS" || key.starts_with("RUSTC") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Run `cmd`; its output is shown only when it fails (a nested `cargo test` would otherwise
/// mix its own summary lines into this test's output).
fn run(mut cmd: Command, what: &str) -> Duration {
    let started = Instant::now();
    let output = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}; for wasm32-wasip2: `rustup target add wasm32-wasip2`)\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}

/// A directory outside the repository, removed at the end even when the test fails.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn a_new_plugin_builds_passes_its_test_and_makes_its_trace_in_a_host() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let scratch = Scratch(std::env::temp_dir().join(format!("antenna-scaffold-{}-{nanos}", std::process::id())));
    let dir = scratch.0.join("demo");

    let output = Command::new(env!("CARGO_BIN_EXE_antenna"))
        .args(["plugin", "new", "demo", "--path"])
        .arg(&dir)
        .output()
        .expect("running antenna plugin new");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("standalone") && stdout.contains("cargo build --release --target wasm32-wasip2"),
        "{stdout}"
    );

    // Outside the repository: a workspace of its own, the SDK by absolute path.
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    let sdk = workspace().join("sdk").canonicalize().expect("sdk/");
    assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    assert!(manifest.contains(&format!("antenna-sdk = {{ path = {:?} }}", sdk.display().to_string())), "{manifest}");
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README.md");
    assert!(readme.contains("cargo build --release --target wasm32-wasip2"), "{readme}");
    assert!(readme.contains("target/wasm32-wasip2/release/demo.wasm"), "{readme}");

    // The workspace's lock file pins the versions the SDK is tested with: the build does not
    // depend on what the registry published since, and reuses what target/scaffold-test holds.
    std::fs::copy(workspace().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copying Cargo.lock");
    let target = workspace().join("target").join("scaffold-test");
    let mut build = cargo(&dir, &["build", "--release", "--target", "wasm32-wasip2", "--target-dir"]);
    build.arg(&target);
    let took = run(build, "cargo build --release --target wasm32-wasip2 (the scaffold)");
    eprintln!("scaffold: wasm32-wasip2 release build took {took:.1?}");
    let mut test = cargo(&dir, &["test", "--target-dir"]);
    test.arg(&target);
    let took = run(test, "cargo test (the scaffold's native test)");
    eprintln!("scaffold: native cargo test took {took:.1?}");

    let component = target.join("wasm32-wasip2").join("release").join("demo.wasm");
    let host = TestHost::with_plugins_dir().await;
    host.install_plugin(component.to_str().expect("a UTF-8 path"), "demo.wasm");
    let plugins = host
        .wait_for_plugins("demo loaded", |p| {
            p["data"].as_array().is_some_and(|d| d.iter().any(|p| p["name"] == "demo" && p["active"] == true))
        })
        .await;
    let demo = plugins["data"].as_array().and_then(|d| d.iter().find(|p| p["name"] == "demo")).expect("listed");
    assert_eq!(demo["source"]["kind"], "file");
    assert_eq!(demo["wit_version"], "0.1.0");
    assert_eq!(demo["claims"]["scope_names"], json!(["demo"]));

    let body = std::fs::read(dir.join("fixtures").join("logs.json")).expect("the scaffold's fixture");
    let response = host.post("/v1/logs", "application/json", body).await;
    assert_eq!(response.status(), 200);
    let trace = only_trace(&host).await;
    assert_eq!(trace["id"], "prompt-p-1", "{trace:#}");
    assert_eq!(trace["agent"], "demo");
    assert_eq!(trace["prompt"], "Write a haiku about telemetry");
    assert_eq!(trace["session_id"], "session-1");
    assert_eq!(trace["user_id"], "dev@example.com");
    assert_eq!(trace["device_id"], "laptop-1");
    assert_eq!(trace["models"], json!(["example-model-1"]));
    // 1200 input tokens of which 200 were cached: each token counted once.
    let tokens = ["input_tokens", "cache_read_tokens", "output_tokens", "cache_creation_tokens", "reasoning_tokens"];
    assert_eq!(tokens.map(|k| trace[k].as_u64()), [1000, 200, 80, 0, 0].map(Some), "{trace:#}");
    // The prompt spans its events, from the user's prompt to the model call's end.
    assert_eq!(trace["start_time"], "2026-01-01T00:00:01Z");
    assert_eq!(trace["end_time"], "2026-01-01T00:00:03.500Z");
}

/// The one trace the fixture makes, once the batch has been normalized.
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
