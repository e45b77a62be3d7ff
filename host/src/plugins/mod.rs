//! The plugins serving now: built-in ones from the binary ([`builtin`]), and `*.wasm` files in
//! the plugins directory ([`watcher`]), which is watched so that a new or fixed parser goes live
//! without a restart; [`detect`] picks the plugin for a resource; a [`breaker`] puts aside a
//! plugin that keeps failing.
//!
//! - Precedence: for one plugin name, a directory plugin replaces the built-in one; removing the
//!   file falls back to the built-in. Between different plugins whose claims overlap, detection
//!   prefers a directory plugin, then the higher version, then the name (and a warning is logged).
//! - Swaps are atomic: readers take a snapshot (`Arc<Vec<..>>`), so a batch in flight finishes
//!   on the version it started with, and new batches use the new one.
//! - A component that fails to load (not a component, wrong WIT version, wrong exports, failed
//!   self-check) is refused with one log line naming the file and the reason; the version
//!   already serving keeps serving.
//! - Trust ([`watcher`]): nothing loads from a directory group or others can write or that is not
//!   owned by the host's user or root, nor a file that is; a file over [`MAX_PLUGIN_BYTES`] is
//!   refused unread; with an allowlist ([`Registry::set_allowlist`]) only listed SHA-256 digests
//!   load; a plugin claiming a bare `*` is refused; bytes refused once are not compiled again.

mod breaker;
pub mod builtin;
pub mod detect;
pub mod watcher;

pub use breaker::{BREAKER_COOL_DOWN, BREAKER_THRESHOLD, PUT_ASIDE};
pub use detect::{Signature, detect};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::sandbox::compile::Compiler;
use crate::sandbox::{Claims, Plugin, Runtime, RuntimeError};

/// The largest component file loaded from the plugins directory (beyond: refused unread).
pub const MAX_PLUGIN_BYTES: u64 = crate::sandbox::MAX_COMPONENT_BYTES;

/// How many refused digests are remembered (then the memory starts over).
const MAX_REFUSED_DIGESTS: usize = 4096;

/// Fewest characters before the `*` of a prefix claim: a one-letter prefix (`c*`) would
/// claim nearly as much as a bare `*`.
pub const MIN_CLAIM_PREFIX: usize = 4;

/// Why a plugin's claims are refused: a bare `*` would claim every resource of every agent, and
/// a prefix shorter than [`MIN_CLAIM_PREFIX`] nearly as much.
pub fn check_claims(claims: &Claims) -> Result<(), String> {
    let all = claims.scope_names.iter().chain(&claims.event_names).chain(&claims.service_names);
    for claim in all {
        let Some(prefix) = claim.trim().strip_suffix('*') else { continue };
        if prefix.trim().is_empty() {
            return Err("claims a bare `*`, which would match every resource: claim names or prefixes (`name*`)".into());
        }
        if prefix.trim().chars().count() < MIN_CLAIM_PREFIX {
            return Err(format!(
                "claims {claim:?}, too broad a prefix: at least {MIN_CLAIM_PREFIX} characters before `*`"
            ));
        }
    }
    Ok(())
}

/// Parse an allowlist: one SHA-256 hex digest a line (the first word, so `sha256sum` output
/// works); blank lines and `#` comments skipped.
pub fn parse_allowlist(text: &str) -> Result<BTreeSet<String>, String> {
    let mut digests = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(word) = line.split_whitespace().next() else { continue };
        if word.len() != 64 || !word.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("line {}: {word:?} is not a SHA-256 hex digest", n + 1));
        }
        digests.insert(word.to_ascii_lowercase());
    }
    Ok(digests)
}

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub enum Source {
    BuiltIn,
    File(PathBuf),
}

/// A plugin with its provenance and counters.
pub struct Loaded {
    pub plugin: Plugin,
    pub source: Source,
    pub batches: AtomicU64,
    pub failures: AtomicU64,
    breaker: breaker::Breaker,
    pub last_error: RwLock<Option<String>>,
}

impl Loaded {
    fn new(plugin: Plugin, source: Source) -> Arc<Self> {
        Arc::new(Loaded {
            plugin,
            source,
            batches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            breaker: Default::default(),
            last_error: RwLock::new(None),
        })
    }

    /// `name@version`.
    pub fn label(&self) -> String {
        format!("{}@{}", self.plugin.info.name, self.plugin.info.version)
    }

    pub fn record_success(&self, project: &str) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.breaker.success(project);
    }

    /// Count a failure; after [`BREAKER_THRESHOLD`] in a row the plugin is put aside for that project.
    pub fn record_failure(&self, project: &str, error: &str, cool_down: std::time::Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.write() {
            *last = Some(error.to_owned());
        }
        if self.breaker.failure(project, cool_down) {
            tracing::warn!(plugin = %self.label(), project, "plugin keeps failing on this project's batches: put aside for it; they are retried after the cool-down");
        }
    }

    /// Whether the circuit breaker has put this plugin aside right now (for any project).
    pub fn is_put_aside(&self) -> bool {
        self.breaker.is_open()
    }

    /// Whether this plugin is put aside for `project` now (the batch asking is then retried later).
    pub fn turn_away(&self, project: &str) -> bool {
        self.breaker.turn_away(project)
    }

    /// Projects whose batches were turned away and whose cool-down is over: retry them now.
    pub fn retries_due(&self) -> Vec<String> {
        self.breaker.retries_due()
    }

    fn precedence(&self) -> (u8, Version, String) {
        let from_dir = u8::from(matches!(self.source, Source::File(_)));
        (from_dir, Version::parse(&self.plugin.info.version), self.plugin.info.name.clone())
    }
}

/// A semver-ish version for ordering (`1.10.0` > `1.9.3`); text that is not a number sorts low.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Version(Vec<u64>);

impl Version {
    fn parse(text: &str) -> Self {
        Version(text.split(['.', '-', '+']).map_while(|p| p.parse().ok()).collect())
    }
}

fn read_allowlist(path: &Path) -> Result<BTreeSet<String>, String> {
    // Trusted like the plugins it admits: owned by the host's user or root, written by no one else.
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let uid = crate::sandbox::cache::host_uid().ok_or("cannot tell which user the host runs as")?;
    if let Some(reason) = crate::sandbox::cache::untrusted_file(&meta, &[uid, 0]) {
        return Err(format!("{} is not trusted: {reason}", path.display()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_allowlist(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// What `GET /api/admin/plugins` shows of a plugin.
#[derive(Debug, Serialize)]
pub struct PluginStatus {
    pub name: String,
    pub version: String,
    pub agent: String,
    pub wit_version: String,
    pub source: Source,
    pub sha256: String,
    pub active: bool,
    pub claims: Claims,
    pub batches: u64,
    pub failures: u64,
    pub put_aside: bool,
    pub last_error: Option<String>,
}

/// The plugins serving now.
pub struct Registry {
    runtime: Runtime,
    cache_dir: Option<PathBuf>,
    /// How components from the plugins directory are compiled (`None`: in this process).
    compiler: RwLock<Option<Compiler>>,
    builtin: RwLock<BTreeMap<String, Arc<Loaded>>>,
    files: RwLock<BTreeMap<PathBuf, Arc<Loaded>>>,
    /// Files in the plugins directory that were refused, with the reason.
    refused: RwLock<BTreeMap<PathBuf, String>>,
    /// Digests of components that failed to load, with the reason: not compiled again.
    refused_digests: RwLock<BTreeMap<String, String>>,
    /// The allowlist file of component digests (`None`: any component may load).
    allowlist: RwLock<Option<PathBuf>>,
    active: RwLock<Arc<Vec<Arc<Loaded>>>>,
}

impl Registry {
    pub fn new(runtime: Runtime, cache_dir: Option<PathBuf>) -> Self {
        Registry {
            runtime,
            cache_dir,
            compiler: Default::default(),
            builtin: Default::default(),
            files: Default::default(),
            refused: Default::default(),
            refused_digests: Default::default(),
            allowlist: Default::default(),
            active: Default::default(),
        }
    }

    /// Only components whose SHA-256 is listed in `path` load from the plugins directory. The
    /// file is read now (an unreadable or malformed one is an error) and again at every rescan.
    pub fn set_allowlist(&self, path: Option<PathBuf>) -> anyhow::Result<()> {
        if let Some(path) = &path {
            let count = read_allowlist(path).map_err(|e| anyhow::anyhow!("ANTENNA_PLUGINS_ALLOWLIST: {e}"))?.len();
            tracing::info!(file = %path.display(), digests = count, "plugins allowlist: only listed components load");
        }
        if let Ok(mut allowlist) = self.allowlist.write() {
            *allowlist = path;
        }
        Ok(())
    }

    /// The digests allowed now: `Ok(None)` without an allowlist, an error if it cannot be read.
    pub fn allowed_digests(&self) -> Result<Option<BTreeSet<String>>, String> {
        let path = self.allowlist.read().ok().and_then(|a| a.clone());
        path.map(|path| read_allowlist(&path)).transpose()
    }

    /// Why these bytes were refused before, if they were.
    pub fn refused_digest(&self, digest: &str) -> Option<String> {
        self.refused_digests.read().ok()?.get(digest).cloned()
    }

    /// Remember that the component with `digest` failed to load.
    pub fn remember_refused_digest(&self, digest: &str, reason: &str) {
        if let Ok(mut refused) = self.refused_digests.write() {
            if refused.len() >= MAX_REFUSED_DIGESTS {
                refused.clear();
            }
            refused.insert(digest.to_owned(), reason.to_owned());
        }
    }

    /// The active plugins, in detection precedence order.
    pub fn snapshot(&self) -> Arc<Vec<Arc<Loaded>>> {
        self.active.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Load a built-in component's bytes, through the compiled-code cache. Blocking (compiles).
    pub fn compile(&self, bytes: &[u8]) -> Result<Plugin, RuntimeError> {
        self.runtime.load_cached(bytes, self.cache_dir.as_deref(), None)
    }

    /// Load a component from the plugins directory: compiled by the bounded [`Compiler`] when
    /// one is set. Blocking.
    pub fn compile_untrusted(&self, bytes: &[u8]) -> Result<Plugin, RuntimeError> {
        let compiler = self.compiler.read().ok().and_then(|c| c.clone());
        self.runtime.load_cached(bytes, self.cache_dir.as_deref(), compiler.as_ref())
    }

    /// Compile components from the plugins directory in bounded child processes.
    pub fn set_compiler(&self, compiler: Option<Compiler>) {
        if let Ok(mut slot) = self.compiler.write() {
            *slot = compiler;
        }
    }

    pub fn add_builtin(&self, plugin: Plugin) {
        if let Ok(mut builtin) = self.builtin.write() {
            builtin.insert(plugin.info.name.clone(), Loaded::new(plugin, Source::BuiltIn));
        }
        self.rebuild();
    }

    /// Install (or replace) the plugin loaded from `path`.
    pub fn set_file(&self, path: &Path, plugin: Plugin) {
        let loaded = Loaded::new(plugin, Source::File(path.to_owned()));
        tracing::info!(
            plugin = %loaded.label(), file = %path.display(), wit = %loaded.plugin.wit_version,
            "plugin loaded from the plugins directory"
        );
        if let Ok(mut files) = self.files.write() {
            files.insert(path.to_owned(), loaded);
        }
        self.rebuild();
    }

    /// Record that the file at `path` was refused, and why (shown by the admin API).
    pub fn set_refused(&self, path: &Path, reason: Option<String>) {
        if let Ok(mut refused) = self.refused.write() {
            match reason {
                Some(reason) => refused.insert(path.to_owned(), reason),
                None => refused.remove(path),
            };
        }
    }

    /// Files refused from the plugins directory: (path, reason).
    pub fn refused(&self) -> Vec<(PathBuf, String)> {
        self.refused.read().map(|r| r.iter().map(|(p, e)| (p.clone(), e.clone())).collect()).unwrap_or_default()
    }

    /// Forget the plugin loaded from `path` (a built-in of the same name takes over again).
    pub fn remove_file(&self, path: &Path) -> bool {
        let removed = self.files.write().map(|mut files| files.remove(path)).ok().flatten();
        if let Some(removed) = &removed {
            tracing::info!(plugin = %removed.label(), file = %path.display(), "plugin removed");
            self.rebuild();
        }
        removed.is_some()
    }

    /// The digest of the component loaded from `path`, if any.
    pub fn file_digest(&self, path: &Path) -> Option<String> {
        self.files.read().ok()?.get(path).map(|l| l.plugin.digest.clone())
    }

    pub fn file_paths(&self) -> Vec<PathBuf> {
        self.files.read().map(|f| f.keys().cloned().collect()).unwrap_or_default()
    }

    /// Recompute the active list: per name a directory plugin over the built-in, then sort by
    /// precedence, and warn about overlapping claims.
    fn rebuild(&self) {
        let mut by_name: BTreeMap<String, Arc<Loaded>> = self.builtin.read().map(|b| b.clone()).unwrap_or_default();
        if let Ok(files) = self.files.read() {
            for loaded in files.values() {
                let name = loaded.plugin.info.name.clone();
                let replace = by_name.get(&name).is_none_or(|current| loaded.precedence() > current.precedence());
                if replace {
                    by_name.insert(name, loaded.clone());
                }
            }
        }
        let mut list: Vec<Arc<Loaded>> = by_name.into_values().collect();
        list.sort_by_key(|l| std::cmp::Reverse(l.precedence()));
        for (i, a) in list.iter().enumerate() {
            for b in &list[i + 1..] {
                let (ca, cb) = (&a.plugin.info.claims, &b.plugin.info.claims);
                let overlap =
                    ca.scope_names.iter().chain(&ca.event_names).chain(&ca.service_names).find(|c| {
                        cb.scope_names.contains(c) || cb.event_names.contains(c) || cb.service_names.contains(c)
                    });
                if let Some(claim) = overlap {
                    tracing::warn!(
                        winner = %a.label(), other = %b.label(), %claim,
                        "two plugins claim the same name: the first wins (directory over built-in, then higher version)"
                    );
                }
            }
        }
        if let Ok(mut active) = self.active.write() {
            *active = Arc::new(list);
        }
    }

    /// Every plugin, active or shadowed, for the admin API.
    pub fn status(&self) -> Vec<PluginStatus> {
        let active = self.snapshot();
        let mut all: Vec<Arc<Loaded>> = self.builtin.read().map(|b| b.values().cloned().collect()).unwrap_or_default();
        all.extend(self.files.read().map(|f| f.values().cloned().collect::<Vec<_>>()).unwrap_or_default());
        all.iter()
            .map(|l| PluginStatus {
                name: l.plugin.info.name.clone(),
                version: l.plugin.info.version.clone(),
                agent: l.plugin.info.agent.clone(),
                wit_version: l.plugin.wit_version.clone(),
                source: l.source.clone(),
                sha256: l.plugin.digest.clone(),
                active: active.iter().any(|a| Arc::ptr_eq(a, l)),
                claims: l.plugin.info.claims.clone(),
                batches: l.batches.load(Ordering::Relaxed),
                failures: l.failures.load(Ordering::Relaxed),
                put_aside: l.is_put_aside(),
                last_error: l.last_error.read().ok().and_then(|e| e.clone()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_star_claim_is_refused_prefixes_are_not() {
        let claims = |scope: &[&str], event: &[&str], service: &[&str]| Claims {
            scope_names: scope.iter().map(|s| s.to_string()).collect(),
            event_names: event.iter().map(|s| s.to_string()).collect(),
            service_names: service.iter().map(|s| s.to_string()).collect(),
        };
        assert!(check_claims(&claims(&["codex", "codex_*"], &["codex.*"], &["codex*"])).is_ok());
        for bare in [claims(&["*"], &[], &[]), claims(&[], &["x", " * "], &[]), claims(&[], &[], &["*"])] {
            assert!(check_claims(&bare).expect_err("refused").contains("bare `*`"));
        }
        for broad in [claims(&["c*"], &[], &[]), claims(&[], &["ab *"], &[]), claims(&[], &[], &["cod*"])] {
            assert!(check_claims(&broad).expect_err("refused").contains("too broad"));
        }
        assert!(check_claims(&claims(&[], &["chat *"], &["gemini*"])).is_ok());
    }

    #[test]
    fn an_allowlist_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("allowlist");
        std::fs::write(&file, format!("{}\n", "a".repeat(64))).expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(read_allowlist(&file).expect("trusted").len(), 1);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).expect("chmod");
        let error = read_allowlist(&file).expect_err("refused");
        assert!(error.contains("writable by group or others"), "{error}");
    }

    #[test]
    fn allowlists_read_digests_and_sha256sum_output() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let text = format!("# plugins we trust\n{a}\n\n{b}  claude-code.wasm # v2\n");
        let digests = parse_allowlist(&text).expect("parsed");
        assert_eq!(digests.into_iter().collect::<Vec<_>>(), vec![a.clone(), "b".repeat(64)]);
        assert!(parse_allowlist("not-a-digest\n").expect_err("refused").contains("line 1"));
        assert!(parse_allowlist(&a[..63]).is_err());
    }
}
