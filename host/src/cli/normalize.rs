//! `antenna normalize`: what a plugin makes of a capture, without a server or a database —
//! for operators checking a new version and for plugin authors.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::config::Limits;
use crate::otlp::{self, Encoding, Signal};
use crate::pipeline::run_plugin;
use crate::plugins::{Registry, Signature, detect};
use crate::sandbox::Runtime;
use crate::trace;

/// One body of a capture.
pub struct CaptureFile {
    pub path: PathBuf,
    pub signal: Signal,
    pub encoding: Encoding,
}

/// The request bodies of `input`: one file, or a folder of `NNNN-<signal>.bin|.json` files
/// (readable renderings `*.decoded.json` and `*.meta.json` are skipped), in name order.
pub fn capture_files(input: &Path) -> anyhow::Result<Vec<CaptureFile>> {
    let mut paths = if input.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(input)
            .with_context(|| format!("reading {}", input.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                (name.ends_with(".bin") || name.ends_with(".json") || name.ends_with(".pb"))
                    && !name.ends_with(".meta.json")
                    && !name.ends_with(".decoded.json")
                    && name != "summary.json"
            })
            .collect();
        paths.sort();
        paths
    } else {
        vec![input.to_owned()]
    };
    paths
        .drain(..)
        .map(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_owned();
            let signal = ["traces", "logs", "metrics"]
                .into_iter()
                .find(|s| name.contains(s))
                .and_then(Signal::parse)
                .with_context(|| format!("{name}: the file name must say traces, logs or metrics"))?;
            let encoding = if name.ends_with(".json") { Encoding::Json } else { Encoding::Protobuf };
            Ok(CaptureFile { path, signal, encoding })
        })
        .collect()
}

/// Run `plugin_file` over every resource of `input`; returns the fragments and the traces
/// they merge into, as JSON.
pub fn normalize(plugin_file: &Path, input: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(plugin_file).with_context(|| format!("reading {}", plugin_file.display()))?;
    let limits = Limits::default();
    let runtime = Runtime::new(limits.clone())?;
    let plugin = runtime.load(&bytes).with_context(|| format!("loading {}", plugin_file.display()))?;
    let registry = Registry::new(runtime, None);
    registry.add_builtin(plugin);
    let plugins = registry.snapshot();
    let Some(loaded) = plugins.first().cloned() else { bail!("the plugin did not load") };
    let agent = loaded.plugin.info.agent.clone();

    let mut resources = Vec::new();
    let mut fragments = Vec::new();
    for file in capture_files(input)? {
        let body = std::fs::read(&file.path).with_context(|| format!("reading {}", file.path.display()))?;
        let export =
            otlp::decode(file.signal, file.encoding, &body).with_context(|| file.path.display().to_string())?;
        for batch in export.into_resource_batches() {
            // The plugin runs on every resource, claimed or not: an author sees what it makes
            // of input it does not claim yet.
            let claimed = detect(&plugins, &Signature::of(&batch)).is_some();
            let file_name = file.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            match run_plugin(&loaded, batch, &limits) {
                Ok(out) => {
                    resources.push(json!({ "file": file_name, "claimed": claimed, "fragments": out.len() }));
                    fragments.extend(out.into_iter().map(|f| (agent.clone(), f)));
                }
                Err(e) => resources.push(json!({ "file": file_name, "claimed": claimed, "error": e })),
            }
        }
    }

    // Merged like the host merges them.
    let traces: Vec<Value> = trace::in_memory(&fragments, &trace::prices::Prices::load(None)?)
        .into_iter()
        .map(|(id, trace)| json!({ "id": id, "trace": trace }))
        .collect();
    let fragments: Vec<_> = fragments.into_iter().map(|(_, f)| f).collect();
    Ok(json!({
        "plugin": loaded.plugin.info,
        "wit_version": loaded.plugin.wit_version,
        "resources": resources,
        "fragments": fragments,
        "traces": traces,
    }))
}
