//! The plugins directory, watched: a new or fixed parser goes live without a restart, and
//! removing a file falls back to the built-in of the same name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{MAX_PLUGIN_BYTES, Registry};

/// Watch `dir`: load what is there now, then rescan whenever it changes. Each rescan compares
/// file digests with what is loaded, so duplicate or partial-write events are harmless: a half
/// written file is refused, and loaded once its last write lands.
pub fn watch_dir(
    registry: Arc<Registry>,
    dir: PathBuf,
    on_change: impl Fn() + Send + Sync + 'static,
) -> anyhow::Result<notify::RecommendedWatcher> {
    use notify::Watcher;
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
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
/// changed. Nothing is loaded from a directory that is not trusted (see [`super`]); what is
/// serving keeps serving.
pub fn rescan(registry: &Registry, dir: &Path) -> bool {
    if let Some(reason) = crate::sandbox::cache::untrusted_dir(dir) {
        let reason = format!("plugins directory not trusted: {reason}; nothing is loaded from it");
        if registry.refused().iter().all(|(path, r)| path != dir || *r != reason) {
            tracing::error!(dir = %dir.display(), %reason, "refused the plugins directory: make it owned by the host's user (or root) and writable by nobody else (chmod go-w)");
        }
        registry.set_refused(dir, Some(reason));
        return false;
    }
    let mut changed = false;
    let mut present = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::error!(dir = %dir.display(), error = %e, "cannot read the plugins directory");
            return false;
        }
    };
    let allowed = registry.allowed_digests();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "wasm") || !path.is_file() {
            continue;
        }
        present.push(path.clone());
        let bytes = match read_trusted(&path) {
            Ok(bytes) => bytes,
            Err(reason) => {
                refuse(registry, &path, reason);
                continue;
            }
        };
        let digest = crate::ids::sha256_hex(&bytes);
        if registry.file_digest(&path).as_deref() == Some(digest.as_str()) {
            continue;
        }
        match &allowed {
            Err(e) => {
                refuse(registry, &path, format!("the plugins allowlist cannot be read: {e}"));
                continue;
            }
            Ok(Some(allowed)) if !allowed.contains(&digest) => {
                refuse(registry, &path, format!("SHA-256 {digest} is not in the plugins allowlist"));
                continue;
            }
            Ok(_) => {}
        }
        // The same bytes failed before: refuse them again without compiling.
        if let Some(reason) = registry.refused_digest(&digest) {
            registry.set_refused(&path, Some(reason));
            continue;
        }
        let loaded = registry
            .compile_untrusted(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|plugin| super::check_claims(&plugin.info.claims).map(|()| plugin));
        match loaded {
            Ok(plugin) => {
                registry.set_refused(&path, None);
                registry.set_file(&path, plugin);
                changed = true;
            }
            Err(reason) => {
                registry.remember_refused_digest(&digest, &reason);
                refuse(registry, &path, reason);
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

/// Log (once per reason) and record a refused file.
fn refuse(registry: &Registry, path: &Path, reason: String) {
    if registry.refused().iter().all(|(p, r)| p != path || *r != reason) {
        tracing::error!(file = %path.display(), %reason, "refused plugin; the version already serving keeps serving");
    }
    registry.set_refused(path, Some(reason));
}

/// The bytes of a component file, if it can be trusted: owned by the host's user or root,
/// writable by nobody else, at most [`MAX_PLUGIN_BYTES`] (a larger one is not read).
fn read_trusted(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read it: {e}"))?;
    let uid = crate::sandbox::cache::host_uid().ok_or("cannot tell which user the host runs as")?;
    if let Some(reason) = crate::sandbox::cache::untrusted_file(&meta, &[uid, 0]) {
        return Err(format!("not trusted: {reason} (it must be owned by the host's user or root, chmod go-w)"));
    }
    if meta.len() > MAX_PLUGIN_BYTES {
        return Err(format!("{} bytes: larger than the limit of {MAX_PLUGIN_BYTES} bytes", meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_PLUGIN_BYTES + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_PLUGIN_BYTES {
        return Err(format!("larger than the limit of {MAX_PLUGIN_BYTES} bytes"));
    }
    Ok(bytes)
}
