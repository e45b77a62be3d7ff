//! The on-disk cache of compiled plugin code: a restart does not recompile. The key covers the
//! component's SHA-256 and the engine's compatibility hash, so a stale entry is never used;
//! entries are written atomically (temporary file, then rename).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::{Plugin, Runtime, RuntimeError};

/// Where the compiled code of one component lives.
pub(crate) struct Entry {
    path: PathBuf,
}

impl Entry {
    fn new(engine: &Engine, bytes: &[u8], dir: &Path) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let key = format!("{}-{:016x}.cwasm", crate::ids::sha256_hex(bytes), hasher.finish());
        Entry { path: dir.join(key) }
    }

    /// The cached compiled code, if there is a usable entry.
    // The one `unsafe` of the host: loading native code that wasmtime compiled earlier.
    #[allow(unsafe_code)]
    pub(crate) fn read(&self, engine: &Engine) -> Option<Component> {
        if !self.path.exists() {
            return None;
        }
        // SAFETY: the cache directory is the host's own; its entries are written only by
        // `Component::serialize` below, under a key that covers the bytes and the engine.
        unsafe { Component::deserialize_file(engine, &self.path) }
            .inspect_err(|e| {
                tracing::warn!(cache = %self.path.display(), error = %e, "ignoring an unusable compiled-code cache entry")
            })
            .ok()
    }

    /// Write compiled code; a failure only costs a recompile next time.
    pub(crate) fn write(&self, component: &Component) {
        let path = &self.path;
        let result = component.serialize().map_err(|e| e.to_string()).and_then(|bytes| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
            }
            // A unique temporary name: several hosts (or threads) may fill the same cache at once.
            let tmp = path.with_extension(format!("tmp-{}", crate::ids::random_hex(8)));
            std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!(cache = %path.display(), error = %e, "could not write the compiled-code cache");
        }
    }
}

impl Runtime {
    /// [`Runtime::load`] through the cache in `cache_dir` (none: compile every time).
    pub fn load_cached(&self, bytes: &[u8], cache_dir: Option<&Path>) -> Result<Plugin, RuntimeError> {
        let entry = cache_dir.map(|dir| Entry::new(self.engine(), bytes, dir));
        self.load_inner(bytes, entry.as_ref())
    }
}
