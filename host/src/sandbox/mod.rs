//! The plugin sandbox: wasmtime narrowed to what a parser needs.
//!
//! One process-wide [`Engine`] with epoch interruption; one [`Linker`] that offers WASI with
//! an empty context (no files, no environment, no network, no arguments; clocks and random
//! only, which the Rust standard library expects); each component compiled once (through the
//! on-disk [`cache`]) and pre-linked for its WIT version ([`wit`]); a fresh [`Store`] per call,
//! so nothing one batch leaves in guest memory can reach the next; a deadline and a budget per
//! call, installed in one place ([`Runtime::store`]): the deadline stops running code (epoch
//! ticks) *and* waiting code (`wasi:io/poll`, see `Waits`); the budget counts memory bytes and
//! table elements over the whole store, and caps instances, memories, tables, WASI handles and
//! what the host copies out of the guest.

pub mod cache;
pub mod compile;
pub mod wit;

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime::{Config as EngineConfig, Engine, ResourceLimiter, Store};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll as async_poll;
use wasmtime_wasi::p2::bindings::sync::io::poll as sync_poll;
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::config::Limits;
use crate::trace::model::{Fragment, clip};

/// How often the epoch advances: the granularity of plugin deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

// Per-store caps besides the configured memory and time (`Limits`). What the components we
// run need: every Rust parser (plugins/*, tests/plugins/*) instantiates 3 core modules with 1
// memory and 2 tables of about 100 elements; the Python example (componentize-py) 14 core
// modules, 1 memory, 2 tables of about 5 800 elements.

/// Core module instances per store.
const MAX_INSTANCES: usize = 16;
/// Linear memories per store (their sizes count together against `plugin_memory_bytes`).
const MAX_MEMORIES: usize = 2;
/// Tables per store.
const MAX_TABLES: usize = 8;
/// Table elements per store, all tables together.
const MAX_TABLE_ELEMENTS: usize = 65_536;
/// WASI resources (streams, pollables, ...) the host keeps for one guest at once.
const MAX_WASI_RESOURCES: usize = 1_024;
/// Component-model handles one guest may hold at once.
const MAX_COMPONENT_HANDLES: usize = 1_024;
/// Bytes the host copies out of the guest for one host call or one returned value (strings,
/// lists: `normalize`'s whole output included). Wasmtime's default, made explicit.
const HOSTCALL_FUEL: usize = 128 << 20;
/// The largest `wasi:random` request (wasmtime's default is 64 MiB; Rust's std and CPython
/// ask for a few bytes).
const MAX_RANDOM_BYTES: u64 = 1 << 20;

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
    #[error("plugin {plugin} ran out of time ({timeout_ms} ms) waiting in WASI (a sleep or a poll)")]
    Blocked { plugin: String, timeout_ms: u64 },
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

/// What a guest may touch: an empty WASI context, its budget and its deadline.
pub(crate) struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    budget: Budget,
    /// When this call's time is up: the epoch deadline stops running code at about this
    /// instant, and a wait in `wasi:io/poll` ends at it (`Waits`).
    deadline: Instant,
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The largest component the host reads (the plugins directory's limit; what a compiler child
/// reads at most).
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// The engine's configuration, the same in the host and in a compiler child (so what a child
/// compiles loads here).
pub fn engine_config() -> EngineConfig {
    let mut config = EngineConfig::new();
    config.epoch_interruption(true);
    config
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
        let engine = Engine::new(&engine_config())?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        // The epoch deadline interrupts running Wasm, not a host call that waits: a guest
        // sleeping (`monotonic-clock.subscribe-duration` + `pollable.block` or `poll`) would hold
        // its thread forever. In WASI 0.2 every wait a guest can ask for goes through
        // `wasi:io/poll` (the `blocking-*` stream methods wait too, but only on streams, and the
        // context gives none that can stall: stdin closed, stdout/stderr discarded, no files,
        // no sockets). So that interface is replaced, under the same name and version (the
        // bindings' own `add_to_linker`), by one whose waits end at the call's deadline with an
        // error: the call fails as a timeout, like a loop. Short waits still work.
        linker.allow_shadowing(true);
        sync_poll::add_to_linker::<GuestState, Waits>(&mut linker, |state| Waiting {
            table: &mut state.table,
            deadline: state.deadline,
        })?;
        linker.allow_shadowing(false);
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
        self.load_inner(bytes, None, None)
    }

    /// [`Runtime::load`] through the compiled-code cache, compiling in a bounded child process
    /// when `compiler` is given (untrusted components).
    pub(crate) fn load_inner(
        &self,
        bytes: &[u8],
        cache: Option<&cache::Entry>,
        compiler: Option<&compile::Compiler>,
    ) -> Result<Plugin, RuntimeError> {
        // The WIT version is checked before anything is compiled.
        let wit_version = wit::version_of(bytes)?;
        let component = match cache.and_then(|entry| entry.read(&self.engine)) {
            Some(component) => component,
            None => {
                let component = match compiler {
                    Some(compiler) => compiler.compile(&self.engine, bytes)?,
                    None => wasmtime::component::Component::new(&self.engine, bytes)
                        .map_err(|e| RuntimeError::Compile(format!("{e:#}")))?,
                };
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

    /// A fresh store with every per-call limit: the deadline (running and waiting), memory
    /// and table elements (in total), instances, memories, tables, WASI handles, host copies.
    fn store(&self) -> Store<GuestState> {
        // No preopened directories, environment or arguments (the builder's defaults); the
        // network denied outright, whatever the builder's defaults become.
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).max_random_size(MAX_RANDOM_BYTES);
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_WASI_RESOURCES);
        let state = GuestState {
            wasi: wasi.build(),
            table,
            budget: Budget { memory_bytes: self.limits.plugin_memory_bytes, table_elements: MAX_TABLE_ELEMENTS },
            deadline: Instant::now() + Duration::from_millis(self.limits.plugin_timeout_ms),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.budget);
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        store.set_max_component_handles(MAX_COMPONENT_HANDLES);
        let ticks = self.limits.plugin_timeout_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1);
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }
}

/// What a store may still allocate. Wasmtime's `StoreLimits` caps each memory and each table
/// on its own (N memories would get N times the cap); this counts every memory's bytes and
/// every table's elements together, from their initial sizes on. Any refusal traps.
struct Budget {
    memory_bytes: usize,
    table_elements: usize,
}

impl ResourceLimiter for Budget {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            wasmtime::bail!("memory growth to {desired} bytes is beyond that memory's own maximum");
        }
        let more = desired.saturating_sub(current);
        if more > self.memory_bytes {
            wasmtime::bail!("plugin memory limit reached: {more} bytes more asked for, {} left", self.memory_bytes);
        }
        self.memory_bytes -= more;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("growing a plugin memory failed"))
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            wasmtime::bail!("table growth to {desired} elements is beyond that table's own maximum");
        }
        let more = desired.saturating_sub(current);
        if more > self.table_elements {
            wasmtime::bail!("plugin table limit reached: {more} elements more asked for, {} left", self.table_elements);
        }
        self.table_elements -= more;
        Ok(true)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("growing a plugin table failed"))
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// `wasi:io/poll` with every wait bounded by the call's deadline (see `Runtime::new`).
struct Waits;

impl HasData for Waits {
    type Data<'a> = Waiting<'a>;
}

struct Waiting<'a> {
    table: &'a mut ResourceTable,
    deadline: Instant,
}

/// The error a wait past the deadline ends with (reported as [`RuntimeError::Blocked`]).
#[derive(Debug, thiserror::Error)]
#[error("waited in wasi:io/poll past the call's deadline")]
struct WaitedPastDeadline;

/// Run one wait of wasmtime-wasi's own `wasi:io/poll`, up to `deadline`. The wait and its
/// timers run on a runtime of their own, whose thread drives the timers whatever runtime the
/// call comes from (a current-thread runtime only drives them from its own thread, and one
/// shutting down not at all).
fn until<R>(deadline: Instant, wait: impl Future<Output = wasmtime::Result<R>>) -> wasmtime::Result<R> {
    static WAITS: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    let waits = WAITS.get_or_init(|| {
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("antenna-plugin-waits")
            .enable_all()
            .build();
        built.inspect_err(|e| tracing::error!(error = %e, "no runtime for plugin waits; using the caller's")).ok()
    });
    let bounded = async move { tokio::time::timeout_at(deadline.into(), wait).await };
    let outcome = match waits {
        Some(runtime) => runtime.block_on(bounded),
        None => in_tokio(bounded),
    };
    outcome.unwrap_or_else(|_| Err(WaitedPastDeadline.into()))
}

impl sync_poll::Host for Waiting<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        until(self.deadline, async_poll::Host::poll(&mut *self.table, pollables))
    }
}

impl sync_poll::HostPollable for Waiting<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        // Checks once, never waits.
        in_tokio(async_poll::HostPollable::ready(&mut *self.table, pollable))
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        until(self.deadline, async_poll::HostPollable::block(&mut *self.table, pollable))
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        async_poll::HostPollable::drop(&mut *self.table, pollable)
    }
}

impl Plugin {
    fn label(&self) -> String {
        format!("{}@{}", self.info.name, self.info.version)
    }

    fn trap(&self, error: wasmtime::Error) -> RuntimeError {
        let (plugin, timeout_ms) = (self.label(), self.runtime.limits.plugin_timeout_ms);
        if matches!(error.downcast_ref::<wasmtime::Trap>(), Some(wasmtime::Trap::Interrupt)) {
            return RuntimeError::Timeout { plugin, timeout_ms };
        }
        if error.downcast_ref::<WaitedPastDeadline>().is_some() {
            return RuntimeError::Blocked { plugin, timeout_ms };
        }
        RuntimeError::Trap { plugin, message: format!("{error:#}") }
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

#[cfg(test)]
mod tests {
    //! The per-store caps, shown with core modules run in the store every plugin call gets
    //! (a Rust component cannot ask for a second memory or grow its table on purpose).

    use super::*;

    fn runtime(memory_bytes: usize) -> Runtime {
        Runtime::new(Limits { plugin_memory_bytes: memory_bytes, ..Limits::default() }).expect("runtime")
    }

    /// Instantiate `wat` in a plugin call's store and call its `run` export.
    fn run(runtime: &Runtime, wat: &str) -> wasmtime::Result<()> {
        let module = wasmtime::Module::new(runtime.engine(), wat)?;
        let mut store = runtime.store();
        let instance = wasmtime::Instance::new(&mut store, &module, &[])?;
        instance.get_typed_func::<(), ()>(&mut store, "run")?.call(&mut store, ())
    }

    #[test]
    fn the_memory_cap_counts_all_memories_together() {
        // Two memories growing to 40 MiB each under a 64 MiB cap: either alone fits.
        let wat = r#"(module (memory 0) (memory 0)
            (func (export "run")
              (if (i32.eq (memory.grow 0 (i32.const 640)) (i32.const -1)) (then unreachable))
              (if (i32.eq (memory.grow 1 (i32.const 640)) (i32.const -1)) (then unreachable))))"#;
        let error = run(&runtime(64 << 20), wat).expect_err("80 MiB in two memories under a 64 MiB cap");
        assert!(format!("{error:#}").contains("plugin memory limit reached"), "{error:#}");
        run(&runtime(96 << 20), wat).expect("80 MiB under a 96 MiB cap");
    }

    #[test]
    fn memories_tables_and_instances_per_store_are_capped() {
        let rt = runtime(64 << 20);
        let three_memories = r#"(module (memory 1) (memory 1) (memory 1) (func (export "run")))"#;
        let error = run(&rt, three_memories).expect_err("three memories");
        assert!(format!("{error:#}").contains("memory count too high"), "{error:#}");
        let nine_tables = r#"(module (table 1 funcref) (table 1 funcref) (table 1 funcref) (table 1 funcref)
            (table 1 funcref) (table 1 funcref) (table 1 funcref) (table 1 funcref) (table 1 funcref)
            (func (export "run")))"#;
        let error = run(&rt, nine_tables).expect_err("nine tables");
        assert!(format!("{error:#}").contains("table count too high"), "{error:#}");

        let module = wasmtime::Module::new(rt.engine(), r#"(module (memory 1))"#).expect("module");
        let mut store = rt.store();
        let made =
            (0..=MAX_INSTANCES).take_while(|_| wasmtime::Instance::new(&mut store, &module, &[]).is_ok()).count();
        // Two memories per store, so two instances of a module with one memory.
        assert_eq!(made, MAX_MEMORIES);
        let module = wasmtime::Module::new(rt.engine(), r#"(module)"#).expect("module");
        let mut store = rt.store();
        let made =
            (0..=MAX_INSTANCES).take_while(|_| wasmtime::Instance::new(&mut store, &module, &[]).is_ok()).count();
        assert_eq!(made, MAX_INSTANCES);
    }

    #[test]
    fn table_elements_are_capped_in_total() {
        let grow = |n: usize| {
            format!(
                r#"(module (table 0 funcref) (table 0 funcref)
                    (func (export "run")
                      (if (i32.eq (table.grow 0 (ref.null func) (i32.const {n})) (i32.const -1)) (then unreachable))
                      (if (i32.eq (table.grow 1 (ref.null func) (i32.const {n})) (i32.const -1)) (then unreachable))))"#
            )
        };
        let rt = runtime(64 << 20);
        run(&rt, &grow(MAX_TABLE_ELEMENTS / 2)).expect("half the elements in each of two tables");
        let error = run(&rt, &grow(MAX_TABLE_ELEMENTS / 2 + 1)).expect_err("one element too many in all");
        assert!(format!("{error:#}").contains("plugin table limit reached"), "{error:#}");
        let error = run(&rt, &grow(1_000_000)).expect_err("a million elements");
        assert!(format!("{error:#}").contains("plugin table limit reached"), "{error:#}");
    }
}
