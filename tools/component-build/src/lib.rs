//! Used by build scripts (the host's built-in plugins, the test suite's test plugins) to build
//! workspace crates to `wasm32-wasip2` components with one nested cargo call.
//!
//! The nested cargo uses its own target directory (the outer build holds a lock on its own),
//! and none of the outer build's settings: host `RUSTFLAGS` or clippy's wrapper must not leak
//! into the guest build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Build `packages` (cargo package names) in release mode for `wasm32-wasip2` under
/// `target_dir`, and return the path of each component, in order.
pub fn build_components(workspace: &Path, packages: &[&str], target_dir: &Path) -> Result<Vec<PathBuf>, String> {
    for dir in ["plugins", "sdk", "wit", "tests/plugins"] {
        println!("cargo:rerun-if-changed={}", workspace.join(dir).display());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(target_dir);
    for package in packages {
        cmd.args(["-p", package]);
    }
    for (key, _) in std::env::vars() {
        let outer_setting =
            (key.starts_with("CARGO_") && key != "CARGO_HOME") || key == "RUSTFLAGS" || key.starts_with("RUSTC");
        if outer_setting {
            cmd.env_remove(&key);
        }
    }
    let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building {} to wasm32-wasip2 failed (is the target installed? `rustup target add wasm32-wasip2`)",
            packages.join(", ")
        ));
    }
    Ok(packages
        .iter()
        .map(|p| target_dir.join("wasm32-wasip2").join("release").join(format!("{}.wasm", p.replace('-', "_"))))
        .collect())
}
