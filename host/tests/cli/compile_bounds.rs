//! Compiling a component from the plugins directory is bounded (security review item 6): the
//! real `antenna serve` compiles it in a child process with a deadline and a memory limit; a
//! component over either is refused with the reason, and the host keeps serving.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const ADMIN: &str = "compile-bounds-admin-token";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The built-in generic parser's component with a custom section named `tag` appended: valid,
/// and new bytes, so the compiled-code cache has no entry for it.
fn component(tag: &str) -> Vec<u8> {
    let (_, bytes) = antenna::builtin::PLUGINS.iter().find(|(file, _)| file.contains("genai")).expect("genai built in");
    let mut bytes = bytes.to_vec();
    let name_len = u8::try_from(tag.len()).expect("short tag");
    bytes.extend([0x00, name_len + 1, name_len]);
    bytes.extend(tag.as_bytes());
    bytes
}

struct Host {
    child: Child,
    base: String,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn serve(dir: &Path, plugins: &Path, env: &[(&str, &str)]) -> Host {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_antenna"));
    command
        .arg("serve")
        .env("ANTENNA_LISTEN", format!("127.0.0.1:{port}"))
        .env("ANTENNA_GRPC_LISTEN", "off")
        .env("ANTENNA_DATABASE_URL", format!("sqlite://{}", dir.join("antenna.db").display()))
        .env("ANTENNA_CACHE_DIR", dir.join("cache"))
        .env("ANTENNA_PLUGINS_DIR", plugins)
        .env("ANTENNA_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let host = Host { child: command.spawn().expect("start antenna"), base: format!("http://127.0.0.1:{port}") };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(r) = client.get(format!("{}/readyz", host.base)).send().await
            && r.status() == 200
        {
            return host;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the host did not become ready");
}

/// The admin plugin listing, once `done` holds for it.
async fn plugins_when(host: &Host, done: impl Fn(&Value) -> bool) -> Value {
    let client = reqwest::Client::new();
    let mut last = Value::Null;
    for _ in 0..400 {
        let response = client.get(format!("{}/api/admin/plugins", host.base)).bearer_auth(ADMIN).send().await;
        if let Ok(response) = response {
            last = response.json().await.unwrap_or(Value::Null);
            if done(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("plugins never reached the expected state: {last}");
}

fn refusal(listing: &Value, file: &str) -> Option<String> {
    listing["refused"].as_array()?.iter().find(|r| r["file"].as_str().is_some_and(|f| f.ends_with(file)))?["reason"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_is_compiled_in_a_bounded_child_and_refused_over_its_time_or_memory() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins dir");

    // Within the limits: compiled by the child, loaded, active.
    std::fs::write(plugins.join("within.wasm"), component("within")).expect("write component");
    let host = serve(dir.path(), &plugins, &[]).await;
    let listing = plugins_when(&host, |l| {
        l["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|p| p["active"] == true && p["source"].to_string().contains("within.wasm")))
    })
    .await;
    assert!(refusal(&listing, "within.wasm").is_none(), "{listing}");
    drop(host);

    // Over the deadline: the child is stopped, the file refused with the reason.
    std::fs::remove_file(plugins.join("within.wasm")).expect("remove");
    std::fs::write(plugins.join("slow.wasm"), component("slow")).expect("write component");
    let host = serve(dir.path(), &plugins, &[("ANTENNA_PLUGIN_COMPILE_TIMEOUT_MS", "1")]).await;
    let listing = plugins_when(&host, |l| refusal(l, "slow.wasm").is_some()).await;
    let reason = refusal(&listing, "slow.wasm").unwrap_or_default();
    assert!(reason.contains("longer than 1 ms"), "{reason}");
    drop(host);

    // Over the memory limit: refused, saying which limit.
    std::fs::remove_file(plugins.join("slow.wasm")).expect("remove");
    std::fs::write(plugins.join("big.wasm"), component("big")).expect("write component");
    let host = serve(dir.path(), &plugins, &[("ANTENNA_PLUGIN_COMPILE_MEMORY_MB", "16")]).await;
    let listing = plugins_when(&host, |l| refusal(l, "big.wasm").is_some()).await;
    let reason = refusal(&listing, "big.wasm").unwrap_or_default();
    assert!(reason.contains("16 MiB"), "{reason}");
    // The host still serves.
    let health = reqwest::get(format!("{}/healthz", host.base)).await.expect("healthz");
    assert_eq!(health.status(), 200);
}
