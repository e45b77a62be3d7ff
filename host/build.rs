//! Builds every parser under `plugins/` to a wasm32-wasip2 component and embeds the bytes in
//! the host (`antenna::builtin::PLUGINS`), so `antenna serve` works with no setup.
//!
//! The nested cargo uses its own target directory (the outer build holds a lock on ours).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

const PLUGINS: &[&str] = &["claude-code", "codex", "copilot", "gemini", "cursor"];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("host/ lives in the workspace root").to_path_buf();
    for dir in ["plugins", "sdk", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=ANTENNA_PLUGIN_PROFILE");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target_dir = root.join("target").join("plugins");

    let mut cmd = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root).args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"]).arg(&target_dir);
    for plugin in PLUGINS {
        cmd.args(["-p", &format!("antenna-plugin-{plugin}")]);
    }
    // Do not leak the outer build's settings (host flags, clippy's wrapper) into the guest build.
    for (key, _) in env::vars() {
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUSTFLAGS" || key.starts_with("RUSTC") {
            cmd.env_remove(&key);
        }
    }
    let status = cmd.status().expect("running cargo to build the plugins");
    if !status.success() {
        panic!("building the plugins failed (is the target installed? `rustup target add wasm32-wasip2`)");
    }

    let mut generated = String::from(
        "/// (file name, component bytes) of each built-in parser.\npub static PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for plugin in PLUGINS {
        let file = format!("antenna_plugin_{}.wasm", plugin.replace('-', "_"));
        let built = target_dir.join("wasm32-wasip2").join("release").join(&file);
        let copy = out.join(&file);
        copy_file(&built, &copy);
        generated.push_str(&format!("    ({file:?}, include_bytes!({:?})),\n", copy.display().to_string()));
    }
    generated.push_str("];\n");
    fs::write(out.join("builtin_plugins.rs"), generated).expect("writing builtin_plugins.rs");
}

fn copy_file(from: &Path, to: &Path) {
    fs::copy(from, to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
}
