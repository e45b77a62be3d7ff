//! The on-disk cache of compiled plugin code: a restart does not recompile. The key covers the
//! component's SHA-256 and the engine's compatibility hash, so a stale entry is never used;
//! entries are written atomically (temporary file, then rename).
//!
//! Loading an entry runs native code, so an entry is trusted only when nobody but the host's
//! user could have written it: the directory is created 0700 and entries 0600, and before an
//! entry is deserialized it must be a regular file owned by the host's user and not writable by
//! group or others, in a directory owned by the host's user (or root) that group and others
//! cannot write either. Anything else is refused with a warning and the component recompiled.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::{Plugin, Runtime, RuntimeError};

/// Group- or other-writable mode bits.
const GROUP_OTHER_WRITE: u32 = 0o022;

/// The user the host runs as: the owner of a file it has just created (std has no `getuid`).
pub fn host_uid() -> Option<u32> {
    static UID: OnceLock<Option<u32>> = OnceLock::new();
    *UID.get_or_init(|| {
        let probe = std::env::temp_dir().join(format!(".antenna-uid-{}", crate::ids::random_hex(8)));
        let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&probe);
        let uid = created.and_then(|file| file.metadata()).map(|m| m.uid());
        let _ = std::fs::remove_file(&probe);
        // Where the temporary directory is not writable: the owner of this process's /proc entry.
        uid.or_else(|_| std::fs::metadata("/proc/self").map(|m| m.uid())).ok()
    })
}

/// Why a directory cannot be trusted with code (`None`: it can): not owned by the host's user or
/// root, or writable by group or others.
pub fn untrusted_dir(dir: &Path) -> Option<String> {
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(e) => return Some(format!("cannot read {}: {e}", dir.display())),
    };
    let Some(uid) = host_uid() else { return Some("cannot tell which user the host runs as".into()) };
    if meta.uid() != uid && meta.uid() != 0 {
        return Some(format!(
            "{} is owned by uid {}, not by the host's user ({uid}) or root",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & GROUP_OTHER_WRITE != 0 {
        return Some(format!("{} is writable by group or others (mode {:o})", dir.display(), meta.mode() & 0o7777));
    }
    None
}

/// Why a file cannot be trusted with code (`None`: it can): not a regular file, not owned by
/// one of `owners`, or writable by group or others.
pub fn untrusted_file(meta: &std::fs::Metadata, owners: &[u32]) -> Option<String> {
    if !meta.file_type().is_file() {
        return Some("not a regular file".into());
    }
    if !owners.contains(&meta.uid()) {
        return Some(format!("owned by uid {}, not by the host's user", meta.uid()));
    }
    if meta.mode() & GROUP_OTHER_WRITE != 0 {
        return Some(format!("writable by group or others (mode {:o})", meta.mode() & 0o7777));
    }
    None
}

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

    /// The entry's bytes if it can be trusted; a warning and `None` if it cannot.
    fn read_trusted(&self) -> Option<Vec<u8>> {
        let path = &self.path;
        let link = std::fs::symlink_metadata(path).ok()?;
        let refuse = |reason: String| {
            tracing::warn!(cache = %path.display(), %reason, "refused a compiled-code cache entry: recompiling");
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Some(reason) = untrusted_dir(dir) {
            refuse(reason);
            return None;
        }
        let Some(uid) = host_uid() else {
            refuse("cannot tell which user the host runs as".into());
            return None;
        };
        if let Some(reason) = untrusted_file(&link, &[uid]) {
            refuse(reason);
            return None;
        }
        // Checked on the open file, and that file must be the one checked by name (no swap).
        let mut file = std::fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if meta.dev() != link.dev() || meta.ino() != link.ino() {
            refuse("replaced while being checked".into());
            return None;
        }
        if let Some(reason) = untrusted_file(&meta, &[uid]) {
            refuse(reason);
            return None;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        std::io::Read::read_to_end(&mut file, &mut bytes).ok()?;
        Some(bytes)
    }

    /// The cached compiled code, if there is a usable entry.
    // The one `unsafe` of the host: loading native code that wasmtime compiled earlier.
    #[allow(unsafe_code)]
    pub(crate) fn read(&self, engine: &Engine) -> Option<Component> {
        let bytes = self.read_trusted()?;
        // SAFETY: the entry is a regular file owned by the host's user, writable by nobody else,
        // in a directory nobody else can write (checked just above, on the open file); such
        // entries are written only by `Component::serialize` below, under a key that covers the
        // bytes and the engine.
        unsafe { Component::deserialize(engine, &bytes) }
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
                std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| e.to_string())?;
                if let Some(reason) = untrusted_dir(dir) {
                    return Err(format!("not writing into an untrusted directory: {reason}"));
                }
            }
            // A unique temporary name: several hosts (or threads) may fill the same cache at once.
            let tmp = path.with_extension(format!("tmp-{}", crate::ids::random_hex(8)));
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut file| file.write_all(&bytes))
                .and_then(|()| std::fs::rename(&tmp, path));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written.map_err(|e| e.to_string())
        });
        if let Err(e) = result {
            tracing::warn!(cache = %path.display(), error = %e, "could not write the compiled-code cache");
        }
    }
}

impl Runtime {
    /// [`Runtime::load`] through the cache in `cache_dir` (none: compile every time).
    pub fn load_cached(
        &self,
        bytes: &[u8],
        cache_dir: Option<&Path>,
        compiler: Option<&super::compile::Compiler>,
    ) -> Result<Plugin, RuntimeError> {
        let entry = cache_dir.map(|dir| Entry::new(self.engine(), bytes, dir));
        self.load_inner(bytes, entry.as_ref(), compiler)
    }
}
