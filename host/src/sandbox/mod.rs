//! The plugin sandbox: wasmtime narrowed to what a parser needs.
//!
//! One process-wide [`Engine`] with epoch interruption; one [`Linker`] that offers WASI with
//! an empty context (no files, no environment, no network, no arguments; clocks and random
//! only, which the Rust standard library expects); each component compiled once (through the
//! on-disk [`cache`]) and pre-linked for its WIT version ([`wit`]); a fresh [`Store`] per call,
//! so nothing one batch leaves in guest memory can reach the next; a CPU deadline (epoch
//! ticks) and a memory cap per call, installed in one place ([`Runtime::store`]).

pub mod cache;
pub mod wit;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Config as EngineConfig, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::config::Limits;
use crate::trace::model::{Fragment, clip};

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

/// What a plugin claims (see `claims` in the WIT).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub scope_names: Vec<String>,
    pub event_names: Vec<String>,
    pub service_names: Vec<String>,
}

/// How a plugin describes itself (see `plugin-info` in the WIT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    pub agent: String,
    pub claims: Claims,
}

/// What a guest may touch: an empty WASI context and its limits.
pub(crate) struct GuestState {
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
    normalizer: wit::Normalizer,
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

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Check, compile, pre-link and self-check a component.
    pub fn load(&self, bytes: &[u8]) -> Result<Plugin, RuntimeError> {
        self.load_inner(bytes, None)
    }

    pub(crate) fn load_inner(&self, bytes: &[u8], cache: Option<&cache::Entry>) -> Result<Plugin, RuntimeError> {
        // The WIT version is checked before anything is compiled.
        let wit_version = wit::version_of(bytes)?;
        let component = match cache.and_then(|entry| entry.read(&self.engine)) {
            Some(component) => component,
            None => {
                let component = wasmtime::component::Component::new(&self.engine, bytes)
                    .map_err(|e| RuntimeError::Compile(format!("{e:#}")))?;
                if let Some(entry) = cache {
                    entry.write(&component);
                }
                component
            }
        };
        let instance_pre =
            self.linker.instantiate_pre(&component).map_err(|e| RuntimeError::Exports(format!("{e:#}")))?;
        let normalizer = wit::Normalizer::new(&wit_version, instance_pre)?;
        let mut plugin = Plugin {
            info: PluginInfo {
                name: "(loading)".into(),
                version: String::new(),
                agent: String::new(),
                claims: Default::default(),
            },
            wit_version,
            digest: crate::ids::sha256_hex(bytes),
            normalizer,
            runtime: self.clone(),
        };
        let info = plugin.describe().map_err(|e| RuntimeError::SelfCheck(e.to_string()))?;
        if info.name.is_empty() || info.agent.is_empty() || info.name.len() > 64 || info.agent.len() > 64 {
            return Err(RuntimeError::SelfCheck("describe() must give a name and an agent of 1-64 characters".into()));
        }
        plugin.info = info;
        Ok(plugin)
    }

    /// A fresh store with every per-call limit: memory, instances, tables, the CPU deadline.
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
    fn label(&self) -> String {
        format!("{}@{}", self.info.name, self.info.version)
    }

    fn trap(&self, error: wasmtime::Error) -> RuntimeError {
        if matches!(error.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
            return RuntimeError::Timeout { plugin: self.label(), timeout_ms: self.runtime.limits.plugin_timeout_ms };
        }
        RuntimeError::Trap { plugin: self.label(), message: format!("{error:#}") }
    }

    /// Call `describe` in a fresh instance.
    pub fn describe(&self) -> Result<PluginInfo, RuntimeError> {
        let mut store = self.runtime.store();
        self.normalizer.describe(&mut store).map_err(|e| self.trap(e))
    }

    /// Normalize one resource batch in a fresh instance. The output is untrusted: the caller
    /// validates it (see `pipeline::validate`).
    pub fn normalize(&self, batch: wit::ResourceBatch) -> Result<Vec<Fragment>, RuntimeError> {
        let mut store = self.runtime.store();
        self.normalizer.normalize(&mut store, batch).map_err(|e| self.trap(e))?.map_err(|message| {
            let long = message.len() > 500;
            let mut message = clip(message, 500);
            if long {
                message.push('…');
            }
            RuntimeError::Rejected { plugin: self.label(), message }
        })
    }
}
