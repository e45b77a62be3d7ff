//! `antenna plugin new NAME`: a ready plugin crate — an example parser, an OTLP/JSON fixture
//! with a native test, and a README with the build command and how to load the component.
//!
//! Inside this repository's `plugins/` folder the crate is a workspace member (the workspace
//! globs `plugins/*`); anywhere else it is standalone: a `[workspace]` of its own and the SDK
//! by absolute path.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

const CARGO_MEMBER: &str = include_str!("../../templates/plugin/Cargo.member.toml.tmpl");
const CARGO_STANDALONE: &str = include_str!("../../templates/plugin/Cargo.standalone.toml.tmpl");
const LIB_RS: &str = include_str!("../../templates/plugin/lib.rs.tmpl");
const FIXTURE_TEST: &str = include_str!("../../templates/plugin/fixture_test.rs.tmpl");
const FIXTURE: &str = include_str!("../../templates/plugin/logs.json.tmpl");
const README: &str = include_str!("../../templates/plugin/README.md.tmpl");
const RUSTFMT: &str = include_str!("../../templates/plugin/rustfmt.toml.tmpl");
const GITIGNORE: &str = include_str!("../../templates/plugin/gitignore.tmpl");

/// Plugin names are crate names, scope claims and agent names at once (`describe` allows 64);
/// 40 keeps every generated line within rustfmt's width, so the crate is `cargo fmt`-clean.
const MAX_NAME_LEN: usize = 40;

/// Names that cannot be a crate (keywords and the standard crates).
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "const",
    "continue",
    "core",
    "crate",
    "do",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc_macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "union",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// What `antenna plugin new` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub name: String,
    /// Where to create the crate; `./NAME` when absent.
    pub path: Option<PathBuf>,
    /// The `antenna-sdk` crate; [`default_sdk_path`] when absent.
    pub sdk_path: Option<PathBuf>,
}

/// How the new crate finds the SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// A member of the Antenna workspace at `root`: `antenna-sdk.workspace = true`.
    Member { root: PathBuf },
    /// A workspace of its own, with the SDK by absolute path.
    Standalone { sdk: PathBuf },
}

/// A created plugin crate.
#[derive(Debug, Clone)]
pub struct Created {
    pub dir: PathBuf,
    pub layout: Layout,
    /// The component `cargo build --release --target wasm32-wasip2` writes, relative to `dir`.
    pub component: String,
}

/// The SDK of the checkout this binary was built from.
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("sdk")
}

/// Check a plugin name: lowercase ASCII letters, digits, `-` and `_`, starting with a letter.
pub fn validate_name(name: &str) -> anyhow::Result<()> {
    let well_formed = name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !well_formed {
        bail!(
            "invalid plugin name {name:?}: use 1-{MAX_NAME_LEN} lowercase letters, digits, '-' or '_', starting with a letter"
        );
    }
    if RESERVED.contains(&name.replace('-', "_").as_str()) {
        bail!("invalid plugin name {name:?}: it is a Rust keyword or a standard crate");
    }
    Ok(())
}

/// `my-agent` -> `MyAgentParser`.
fn type_name(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['-', '_']) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out.push_str("Parser");
    out
}

/// A TOML basic string.
fn toml_string(value: &str) -> String {
    let mut out = String::from('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Where `cargo build --release --target wasm32-wasip2` writes the component, relative to the
/// crate (cargo names it after the crate, `-` becoming `_`).
pub fn component_path(name: &str, layout: &Layout) -> String {
    let file = format!("wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
    match layout {
        Layout::Member { .. } => format!("../../target/{file}"),
        Layout::Standalone { .. } => format!("target/{file}"),
    }
}

/// The files of a new plugin crate: (path relative to the crate, contents).
pub fn render(name: &str, layout: &Layout) -> Vec<(&'static str, String)> {
    let crate_name = name.replace('-', "_");
    let component = component_path(name, layout);
    let (cargo, layout_note) = match layout {
        Layout::Member { .. } => (
            CARGO_MEMBER.to_owned(),
            "This crate is a member of the Antenna workspace (`plugins/*`): it builds into the \
             workspace's `target/`.",
        ),
        Layout::Standalone { sdk } => (
            CARGO_STANDALONE.replace("{{sdk_path}}", &toml_string(&sdk.to_string_lossy())),
            "This crate is a workspace of its own and uses the `antenna-sdk` crate by path.",
        ),
    };
    let fill = |template: &str| {
        template
            .replace("{{layout_note}}", layout_note)
            .replace("{{wasm}}", &component)
            .replace("{{type}}", &type_name(name))
            .replace("{{crate}}", &crate_name)
            .replace("{{name}}", name)
    };
    let mut files = vec![
        ("Cargo.toml", fill(&cargo)),
        ("src/lib.rs", fill(LIB_RS)),
        ("tests/fixture.rs", fill(FIXTURE_TEST)),
        ("fixtures/logs.json", fill(FIXTURE)),
        ("README.md", fill(README)),
    ];
    // A member inherits the workspace's rustfmt.toml and target/; a standalone crate needs its own.
    if matches!(layout, Layout::Standalone { .. }) {
        files.push(("rustfmt.toml", RUSTFMT.to_owned()));
        files.push((".gitignore", GITIGNORE.to_owned()));
    }
    files
}

/// Create the plugin crate described by `options`.
pub fn new_plugin(options: &Options) -> anyhow::Result<Created> {
    validate_name(&options.name)?;
    let dir = options.path.clone().unwrap_or_else(|| PathBuf::from(&options.name));
    if dir.is_file() {
        bail!("{} is a file", dir.display());
    }
    if dir.is_dir() && std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk_arg = options.sdk_path.clone().unwrap_or_else(default_sdk_path);
    let sdk = sdk_arg.canonicalize().ok().filter(|p| p.join("Cargo.toml").is_file()).with_context(|| {
        format!(
            "the antenna-sdk crate is not at {} (this binary was built from a checkout that is not there): \
             pass --sdk-path DIR",
            sdk_arg.display()
        )
    })?;

    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let dir = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
    let layout = layout_for(&dir, &sdk);
    let files = render(&options.name, &layout);
    for (relative, contents) in &files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    let component = component_path(&options.name, &layout);
    Ok(Created { dir, layout, component })
}

/// A member when `dir` sits directly in `plugins/` of the workspace that holds the SDK.
fn layout_for(dir: &Path, sdk: &Path) -> Layout {
    let member_root = sdk.parent().filter(|root| {
        let plugins = root.join("plugins").canonicalize().ok();
        let is_workspace = std::fs::read_to_string(root.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"));
        is_workspace && plugins.is_some() && dir.parent() == plugins.as_deref()
    });
    match member_root {
        Some(root) => Layout::Member { root: root.to_owned() },
        None => Layout::Standalone { sdk: sdk.to_owned() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(label: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("antenna-scaffold-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn names_are_checked() {
        for good in ["demo", "my-agent", "agent_2", "a"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Demo", "2agent", "-x", "my agent", "../x", "type", "std", "a".repeat(41).as_str()] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name("my-agent_2"), "MyAgent2Parser");
    }

    #[test]
    fn every_placeholder_is_filled() {
        let standalone = Layout::Standalone { sdk: PathBuf::from("/opt/antenna \"x\"/sdk") };
        for layout in [Layout::Member { root: PathBuf::from("/repo") }, standalone] {
            for (path, contents) in render("my-agent", &layout) {
                assert!(!contents.contains("{{"), "{path}: {contents}");
            }
        }
        let files = render("my-agent", &Layout::Standalone { sdk: PathBuf::from("/opt/antenna \"x\"/sdk") });
        let cargo = &files.iter().find(|(p, _)| *p == "Cargo.toml").expect("Cargo.toml").1;
        assert!(cargo.contains(r#"antenna-sdk = { path = "/opt/antenna \"x\"/sdk" }"#), "{cargo}");
        assert!(cargo.contains("\n[workspace]\n"), "{cargo}");
        let lib = &files.iter().find(|(p, _)| *p == "src/lib.rs").expect("lib.rs").1;
        assert!(lib.contains("pub struct MyAgentParser;") && lib.contains("const NAME: &str = \"my-agent\";"));
        let test = &files.iter().find(|(p, _)| *p == "tests/fixture.rs").expect("test").1;
        assert!(test.contains("use my_agent::MyAgentParser;"));
    }

    #[test]
    fn the_longest_name_keeps_the_code_within_rustfmt_width() {
        // Without separators the type name is the longest: `Aaaa…Parser`.
        let name = "a".repeat(MAX_NAME_LEN);
        assert!(validate_name(&name).is_ok());
        for (path, contents) in render(&name, &Layout::Member { root: PathBuf::from("/repo") }) {
            if path.ends_with(".rs") {
                assert!(contents.lines().all(|l| l.chars().count() <= 120), "{path}");
            }
        }
    }

    #[test]
    fn inside_the_plugins_folder_it_is_a_member_elsewhere_standalone() {
        let root = scratch("layout");
        std::fs::create_dir_all(root.join("sdk")).expect("sdk");
        std::fs::write(root.join("sdk/Cargo.toml"), "[package]\nname = \"antenna-sdk\"\n").expect("sdk manifest");
        std::fs::create_dir_all(root.join("plugins")).expect("plugins");
        std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = [\"sdk\", \"plugins/*\"]\n").expect("root");

        let options = |path: PathBuf| Options {
            name: "demo".into(),
            path: Some(path),
            sdk_path: Some(root.join("plugins/../sdk")),
        };
        let member = new_plugin(&options(root.join("plugins/demo"))).expect("member");
        assert!(matches!(member.layout, Layout::Member { .. }), "{:?}", member.layout);
        let cargo = std::fs::read_to_string(member.dir.join("Cargo.toml")).expect("Cargo.toml");
        assert!(cargo.contains("antenna-sdk.workspace = true") && !cargo.contains("[workspace]"), "{cargo}");
        assert!(!member.dir.join("rustfmt.toml").exists());

        let standalone = new_plugin(&options(root.join("elsewhere/demo"))).expect("standalone");
        let sdk = root.join("sdk").canonicalize().expect("sdk");
        assert_eq!(standalone.layout, Layout::Standalone { sdk: sdk.clone() });
        let cargo = std::fs::read_to_string(standalone.dir.join("Cargo.toml")).expect("Cargo.toml");
        assert!(cargo.contains(&format!("path = {}", toml_string(&sdk.to_string_lossy()))), "{cargo}");
        for file in ["src/lib.rs", "tests/fixture.rs", "fixtures/logs.json", "README.md", ".gitignore"] {
            assert!(standalone.dir.join(file).is_file(), "{file}");
        }

        // Nothing is overwritten.
        let again = new_plugin(&options(root.join("elsewhere/demo"))).expect_err("not empty");
        assert!(again.to_string().contains("not empty"), "{again}");
        let missing_sdk = Options { sdk_path: Some(root.join("nowhere")), ..options(root.join("other")) };
        assert!(new_plugin(&missing_sdk).expect_err("no sdk").to_string().contains("--sdk-path"));
        std::fs::remove_dir_all(&root).expect("cleanup");
    }
}
