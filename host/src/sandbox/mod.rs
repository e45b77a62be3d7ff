//! The plugin sandbox: wasmtime narrowed to what a parser needs.
//!
//! One process-wide [`Engine`] with epoch interruption; one [`Linker`] that offers WASI with
//! an empty context (no files, no environment, no network, no arguments; clocks and random
//! only, which the Rust standard library expects); each component compiled once and pre-linked
//! into an `InstancePre`; a fresh [`Store`] per call, so nothing one batch leaves in guest
//! memory can reach the next; a CPU deadline (epoch ticks) and a memory cap per call.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config as EngineConfig, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::config::Limits;
use crate::model::PluginInfo;

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit/since_v0.1.0",
        world: "antenna:normalizer/normalizer@0.1.0",
    });
}

pub use bindings::antenna::normalizer::types as wit;

/// The WIT package versions this host loads.
pub const SUPPORTED_WIT: &[&str] = &["0.1.0"];

/// How often the epoch advances: the granularity of plugin deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("not a valid component: {0}")]
    Compile(String),
    #[error("built against antenna:normalizer@{found}, this host supports {supported:?}")]
    WitVersion { found: String, supported: &'static [&'static str] },
    #[error("does not export the antenna:normalizer world: {0}")]
    Exports(String),
    #[error("failed its self-check: {0}")]
    SelfCheck(String),
    #[error("plugin {plugin} trapped: {message}")]
    Trap { plugin: String, message: String },
    #[error("plugin {plugin} ran out of time ({timeout_ms} ms)")]
    Timeout { plugin: String, timeout_ms: u64 },
    #[error("plugin {plugin} rejected the batch: {message}")]
    Rejected { plugin: String, message: String },
}

/// What a guest may touch: an empty WASI context and its limits.
struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The engine, the linker and the limits every plugin runs under.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
    limits: Limits,
}

/// A loaded, pre-linked plugin.
pub struct Plugin {
    pub info: PluginInfo,
    pub wit_version: String,
    /// SHA-256 of the component bytes.
    pub digest: String,
    pre: bindings::NormalizerPre<GuestState>,
    runtime: Runtime,
}

impl Runtime {
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        let mut config = EngineConfig::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        // The ticker holds only a weak reference: it stops when the engine is dropped.
        let weak = engine.weak();
        std::thread::Builder::new().name("antenna-epoch".into()).spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
        Ok(Runtime { engine, linker: Arc::new(linker), limits })
    }

    /// Check, compile, pre-link and self-check a component.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Check, compile, pre-link and self-check a component.
    pub fn load(&self, bytes: &[u8]) -> Result<Plugin, RuntimeError> {
        self.load_inner(bytes, None)
    }

    /// [`Runtime::load`], reusing (or writing) compiled code at `cache_path`.
    pub(crate) fn load_with_cache(&self, bytes: &[u8], cache_path: &Path) -> Result<Plugin, RuntimeError> {
        self.load_inner(bytes, Some(cache_path))
    }

    fn load_inner(&self, bytes: &[u8], cache_path: Option<&Path>) -> Result<Plugin, RuntimeError> {
        // The WIT version is checked before anything is compiled.
        let wit_version = wit_version(bytes)?;
        if !SUPPORTED_WIT.contains(&wit_version.as_str()) {
            return Err(RuntimeError::WitVersion { found: wit_version, supported: SUPPORTED_WIT });
        }
        let cached = cache_path.filter(|p| p.exists()).and_then(|path| {
            // SAFETY: the cache directory is the host's own; its entries are written only by
            // `Component::serialize` below, under a key that covers the bytes and the engine.
            unsafe { Component::deserialize_file(&self.engine, path) }
                .inspect_err(|e| tracing::warn!(cache = %path.display(), error = %e, "ignoring an unusable compiled-code cache entry"))
                .ok()
        });
        let component = match cached {
            Some(component) => component,
            None => {
                let component =
                    Component::new(&self.engine, bytes).map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
                if let Some(path) = cache_path {
                    write_cache(&component, path);
                }
                component
            }
        };
        let instance_pre =
            self.linker.instantiate_pre(&component).map_err(|e| RuntimeError::Exports(format!("{e:#}")))?;
        let pre = bindings::NormalizerPre::new(instance_pre).map_err(|e| RuntimeError::Exports(format!("{e:#}")))?;
        let mut plugin = Plugin {
            info: PluginInfo {
                name: "(loading)".into(),
                version: String::new(),
                agent: String::new(),
                claims: Default::default(),
            },
            wit_version,
            digest: crate::store::sha256_hex(bytes),
            pre,
            runtime: self.clone(),
        };
        let info = plugin.describe().map_err(|e| RuntimeError::SelfCheck(e.to_string()))?;
        if info.name.is_empty() || info.agent.is_empty() || info.name.len() > 64 || info.agent.len() > 64 {
            return Err(RuntimeError::SelfCheck("describe() must give a name and an agent of 1-64 characters".into()));
        }
        plugin.info = info;
        Ok(plugin)
    }

    fn store(&self) -> Store<GuestState> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.plugin_memory_bytes)
            .instances(16)
            .tables(64)
            .memories(16)
            .trap_on_grow_failure(true)
            .build();
        let state = GuestState { wasi: WasiCtx::builder().build(), table: ResourceTable::new(), limits };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let ticks = self.limits.plugin_timeout_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }
}

impl Plugin {
    fn trap(&self, error: wasmtime::Error, started: Instant) -> RuntimeError {
        let plugin = format!("{}@{}", self.info.name, self.info.version);
        if matches!(error.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
            let _ = started;
            return RuntimeError::Timeout { plugin, timeout_ms: self.runtime.limits.plugin_timeout_ms };
        }
        RuntimeError::Trap { plugin, message: format!("{error:#}") }
    }

    /// Call `describe` in a fresh instance.
    pub fn describe(&self) -> Result<PluginInfo, RuntimeError> {
        let started = Instant::now();
        let mut store = self.runtime.store();
        let instance = self.pre.instantiate(&mut store).map_err(|e| self.trap(e, started))?;
        let info = instance.call_describe(&mut store).map_err(|e| self.trap(e, started))?;
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            agent: info.agent,
            claims: crate::model::Claims {
                scope_names: info.claims.scope_names,
                event_names: info.claims.event_names,
                service_names: info.claims.service_names,
            },
        })
    }

    /// Normalize one resource batch in a fresh instance. The output is untrusted: the caller
    /// validates it (see `pipeline::validate`).
    pub fn normalize(&self, batch: &wit::ResourceBatch) -> Result<Vec<wit::Fragment>, RuntimeError> {
        let started = Instant::now();
        let mut store = self.runtime.store();
        let instance = self.pre.instantiate(&mut store).map_err(|e| self.trap(e, started))?;
        instance.call_normalize(&mut store, batch).map_err(|e| self.trap(e, started))?.map_err(|message| {
            RuntimeError::Rejected {
                plugin: format!("{}@{}", self.info.name, self.info.version),
                message: truncate(message, 500),
            }
        })
    }
}

/// Write compiled code atomically (temporary file, then rename); a failure only costs a
/// recompile next time.
fn write_cache(component: &Component, path: &Path) {
    let result = component.serialize().map_err(|e| e.to_string()).and_then(|bytes| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        // A unique temporary name: several hosts (or threads) may fill the same cache at once.
        let tmp = path.with_extension(format!("tmp-{}", crate::auth::random_hex(8)));
        std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| e.to_string())
    });
    if let Err(e) = result {
        tracing::warn!(cache = %path.display(), error = %e, "could not write the compiled-code cache");
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// The `antenna:normalizer` version a component was built against, read from its imports
/// before anything is compiled.
pub fn wit_version(bytes: &[u8]) -> Result<String, RuntimeError> {
    const PREFIX: &str = "antenna:normalizer/types@";
    let mut found = None;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| RuntimeError::Compile(e.to_string()))?;
        if let wasmparser::Payload::ComponentImportSection(section) = payload {
            for import in section {
                let import = import.map_err(|e| RuntimeError::Compile(e.to_string()))?;
                if let Some(version) = import.name.name.strip_prefix(PREFIX) {
                    found = Some(version.to_owned());
                }
            }
        }
    }
    found.ok_or_else(|| RuntimeError::Exports("it does not use the antenna:normalizer types".into()))
}
