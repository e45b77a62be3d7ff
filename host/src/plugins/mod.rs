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

mod breaker;
pub mod builtin;
pub mod detect;
pub mod watcher;

pub use breaker::{BREAKER_COOL_DOWN, BREAKER_THRESHOLD};
pub use detect::{Signature, detect};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::sandbox::{Claims, Plugin, Runtime, RuntimeError};

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

    pub fn record_success(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.breaker.success();
    }

    /// Count a failure; after [`BREAKER_THRESHOLD`] in a row the plugin is put aside.
    pub fn record_failure(&self, error: &str) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.write() {
            *last = Some(error.to_owned());
        }
        if self.breaker.failure() {
            tracing::warn!(plugin = %self.label(), "plugin keeps failing: put aside; its batches are kept for replay");
        }
    }

    /// Whether the circuit breaker has put this plugin aside right now.
    pub fn is_put_aside(&self) -> bool {
        self.breaker.is_open()
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
    builtin: RwLock<BTreeMap<String, Arc<Loaded>>>,
    files: RwLock<BTreeMap<PathBuf, Arc<Loaded>>>,
    /// Files in the plugins directory that were refused, with the reason.
    refused: RwLock<BTreeMap<PathBuf, String>>,
    active: RwLock<Arc<Vec<Arc<Loaded>>>>,
}

impl Registry {
    pub fn new(runtime: Runtime, cache_dir: Option<PathBuf>) -> Self {
        Registry {
            runtime,
            cache_dir,
            builtin: Default::default(),
            files: Default::default(),
            refused: Default::default(),
            active: Default::default(),
        }
    }

    /// The active plugins, in detection precedence order.
    pub fn snapshot(&self) -> Arc<Vec<Arc<Loaded>>> {
        self.active.read().map(|p| p.clone()).unwrap_or_default()
    }

    /// Load a component's bytes, through the compiled-code cache. Blocking (compiles).
    pub fn compile(&self, bytes: &[u8]) -> Result<Plugin, RuntimeError> {
        self.runtime.load_cached(bytes, self.cache_dir.as_deref())
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
