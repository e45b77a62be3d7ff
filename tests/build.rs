//! Builds the test plugins (tests/plugins/*) to components once per test build and writes
//! their paths as constants (`antenna_e2e::components::HOSTILE`, ...).

use std::path::PathBuf;
use std::{env, fs};

const COMPONENTS: &[(&str, &str)] = &[
    ("HOSTILE", "antenna-test-plugin-hostile"),
    ("CLAUDE_CODE_NEXT", "antenna-test-plugin-claude-code-next"),
    ("CLAUDE_CODE_BROKEN", "antenna-test-plugin-claude-code-broken"),
    ("WRONG_WIT", "antenna-test-plugin-wrong-wit"),
    ("NO_NORMALIZE", "antenna-test-plugin-no-normalize"),
];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest.parent().expect("tests/ lives in the workspace root").to_path_buf();
    let packages: Vec<&str> = COMPONENTS.iter().map(|(_, p)| *p).collect();
    let built = antenna_component_build::build_components(&root, &packages, &root.join("target").join("plugins"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut generated = String::new();
    for ((name, _), path) in COMPONENTS.iter().zip(built) {
        generated.push_str(&format!("pub const {name}: &str = {:?};\n", path.display().to_string()));
    }
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("components.rs"), generated).expect("writing components.rs");
}
