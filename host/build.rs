//! Builds every parser under `plugins/` to a wasm32-wasip2 component and embeds the bytes in
//! the host (`antenna::builtin::PLUGINS`), so `antenna serve` works with no setup.

use std::path::PathBuf;
use std::{env, fs};

const PLUGINS: &[&str] = &[
    "antenna-plugin-claude-code",
    "antenna-plugin-codex",
    "antenna-plugin-copilot",
    "antenna-plugin-gemini",
    "antenna-plugin-cursor",
    "antenna-plugin-genai",
];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("host/ lives in the workspace root").to_path_buf();
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let built = antenna_component_build::build_components(&root, PLUGINS, &root.join("target").join("plugins"))
        .unwrap_or_else(|e| panic!("{e}"));

    let mut generated = String::from(
        "/// (file name, component bytes) of each built-in parser.\npub static PLUGINS: &[(&str, &[u8])] = &[\n",
    );
    for path in built {
        let file = path.file_name().expect("a file name").to_string_lossy().into_owned();
        // Copied into OUT_DIR so that the embedded bytes cannot change under a finished build.
        let copy = out.join(&file);
        fs::copy(&path, &copy).unwrap_or_else(|e| panic!("copying {}: {e}", path.display()));
        generated.push_str(&format!("    ({file:?}, include_bytes!({:?})),\n", copy.display().to_string()));
    }
    generated.push_str("];\n");
    fs::write(out.join("builtin_plugins.rs"), generated).expect("writing builtin_plugins.rs");
}
