//! The whole ingest path on one request body: decode -> for each resource: detect -> normalize
//! in the real built-in Wasm parsers -> validate -> merge (like `dryrun.rs`, for every plugin
//! through `detect`, and like the host's pipeline: empty resources skipped). A plugin error or
//! trap returned as `Err` is expected; any panic in the host is a bug.

#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use antenna::Limits;
use antenna::otlp::{self, Signature};
use antenna::pipeline::validate;
use antenna::plugins::{Loaded, Registry, detect};
use antenna::runtime::Runtime;
use libfuzzer_sys::fuzz_target;

struct Host {
    plugins: Arc<Vec<Arc<Loaded>>>,
    limits: Limits,
}

/// The runtime and the five built-in parsers, compiled once per process.
fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let limits = Limits::default();
        let runtime = Runtime::new(limits.clone()).expect("runtime");
        let registry = Registry::new(runtime, None);
        for (file, bytes) in antenna::builtin::PLUGINS {
            let plugin = registry.compile(bytes).unwrap_or_else(|e| panic!("built-in {file}: {e}"));
            registry.add_builtin(plugin);
        }
        let plugins = registry.snapshot();
        assert_eq!(plugins.len(), antenna::builtin::PLUGINS.len(), "every built-in parser is active");
        Host { plugins, limits }
    })
}

/// How far inputs get (printed every 65 536 inputs when `ANTENNA_FUZZ_STATS` is set): inputs,
/// decoded, resources claimed by a parser, parser calls that returned fragments, valid outputs.
static COUNTS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

fn count(i: usize) {
    COUNTS[i].fetch_add(1, Ordering::Relaxed);
}

fn report() {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    let n = COUNTS[0].load(Ordering::Relaxed);
    if n % 65_536 == 0 && *ENABLED.get_or_init(|| std::env::var_os("ANTENNA_FUZZ_STATS").is_some()) {
        let c: Vec<u64> = COUNTS.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        eprintln!(
            "ANTENNA_FUZZ_STATS inputs={} decoded={} claimed={} normalized={} valid={}",
            c[0], c[1], c[2], c[3], c[4]
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let host = host();
    count(0);
    report();
    let Some((signal, encoding, body)) = antenna_fuzz::split(data) else { return };
    let Ok(export) = otlp::decode(signal, encoding, body) else { return };
    count(1);
    let _ = export.record_count();
    let mut fragments = Vec::new();
    for batch in export.into_resource_batches() {
        if antenna_fuzz::is_empty(&batch) {
            continue;
        }
        let Some(loaded) = detect(&host.plugins, &Signature::of(&batch)) else { continue };
        count(2);
        let Ok(output) = loaded.plugin.normalize(&batch) else { continue };
        count(3);
        let Ok(valid) = validate(output, &host.limits) else { continue };
        count(4);
        let agent = loaded.plugin.info.agent.clone();
        fragments.extend(valid.into_iter().map(|f| (agent.clone(), f)));
    }
    antenna_fuzz::merge_like_the_host(&fragments);
});
