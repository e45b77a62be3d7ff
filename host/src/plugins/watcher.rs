//! The plugins directory, watched: a new or fixed parser goes live without a restart, and
//! removing a file falls back to the built-in of the same name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::Registry;

/// Watch `dir`: load what is there now, then rescan whenever it changes. Each rescan compares
/// file digests with what is loaded, so duplicate or partial-write events are harmless: a half
/// written file is refused, and loaded once its last write lands.
pub fn watch_dir(
    registry: Arc<Registry>,
    dir: PathBuf,
    on_change: impl Fn() + Send + Sync + 'static,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    std::fs::create_dir_all(&dir)?;
    rescan(&registry, &dir);
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    std::thread::Builder::new().name("antenna-plugins-dir".into()).spawn(move || {
        while rx.recv().is_ok() {
            // Let a burst of events (create, write, close, rename) settle into one rescan.
            std::thread::sleep(Duration::from_millis(100));
            while rx.try_recv().is_ok() {}
            if rescan(&registry, &dir) {
                on_change();
            }
        }
    })?;
    Ok(watcher)
}

/// Bring the registry in line with the `*.wasm` files in `dir`. Returns whether anything
/// changed.
pub fn rescan(registry: &Registry, dir: &Path) -> bool {
    let mut changed = false;
    let mut present = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot read the plugins directory");
            return false;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "wasm") || !path.is_file() {
            continue;
        }
        present.push(path.clone());
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "refused plugin: cannot read it");
                continue;
            }
        };
        let digest = crate::ids::sha256_hex(&bytes);
        if registry.file_digest(&path).as_deref() == Some(digest.as_str()) {
            continue;
        }
        match registry.compile(&bytes) {
            Ok(plugin) => {
                registry.set_refused(&path, None);
                registry.set_file(&path, plugin);
                changed = true;
            }
            Err(e) => {
                tracing::error!(file = %path.display(), reason = %e, "refused plugin; the version already serving keeps serving");
                registry.set_refused(&path, Some(e.to_string()));
            }
        }
    }
    for (path, _) in registry.refused() {
        if !present.contains(&path) {
            registry.set_refused(&path, None);
        }
    }
    for path in registry.file_paths() {
        if !present.contains(&path) {
            changed |= registry.remove_file(&path);
        }
    }
    changed
}
