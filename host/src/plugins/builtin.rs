//! The parsers built from `plugins/` and embedded in the binary (host/build.rs), so
//! `antenna serve` works with no setup.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::Registry;

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// Compile every built-in parser side by side (one compile leaves cores idle), then register
/// them in a fixed order.
pub async fn load_all(registry: &Arc<Registry>) -> anyhow::Result<()> {
    let mut compiles = Vec::new();
    for (file, bytes) in PLUGINS {
        let loader = registry.clone();
        compiles.push((
            *file,
            tokio::task::spawn_blocking(move || {
                let loaded = Instant::now();
                loader.compile(bytes).map(|plugin| (plugin, loaded.elapsed()))
            }),
        ));
    }
    for (file, compile) in compiles {
        let (plugin, took) =
            compile.await.context("loading a built-in plugin")?.with_context(|| format!("built-in plugin {file}"))?;
        tracing::info!(
            plugin = %plugin.info.name, version = %plugin.info.version, wit = %plugin.wit_version,
            ms = took.as_millis() as u64, "built-in plugin loaded"
        );
        registry.add_builtin(plugin);
    }
    Ok(())
}
