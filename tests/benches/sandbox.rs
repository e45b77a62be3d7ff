//! What the sandbox costs. The same Claude Code capture (fixtures/claude-code/protobuf-content-on:
//! its traces, logs and metrics bodies: 3 resource batches, 31 fragments) normalized
//!
//! - natively: the plugin crate's `ClaudeCode::normalize`, on batches from the SDK's test
//!   harness;
//! - as a component: the built-in claude-code component in the host's sandbox
//!   (`Runtime::load`, then `Plugin::normalize`: a fresh instance per call, input copied in,
//!   output copied out), on batches from the host's own decoder;
//!
//! and the host's decoding alone (protobuf -> OTLP types -> resource batches), for scale.
//!
//! Run: `cargo bench -p antenna-e2e --bench sandbox -- --warm-up-time 1 --measurement-time 5`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use antenna::otlp::{self, Encoding, Signal};
use antenna::sandbox::wit::ResourceBatch;
use antenna::sandbox::{Plugin, Runtime};
use antenna_plugin_claude_code::ClaudeCode;
use antenna_sdk::Parser;
use antenna_sdk::testing::{self, Capture};
use criterion::{Criterion, criterion_group, criterion_main};

const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/claude-code/protobuf-content-on");

/// The capture's bodies with the host's names for their signal and encoding.
fn bodies(capture: &Capture) -> Vec<(Signal, Encoding, &[u8])> {
    capture
        .requests()
        .iter()
        .map(|r| {
            let signal = match r.signal {
                antenna_sdk::Signal::Traces => Signal::Traces,
                antenna_sdk::Signal::Logs => Signal::Logs,
                antenna_sdk::Signal::Metrics => Signal::Metrics,
            };
            let encoding = match r.encoding {
                testing::Encoding::Json => Encoding::Json,
                testing::Encoding::Protobuf => Encoding::Protobuf,
            };
            (signal, encoding, r.body.as_slice())
        })
        .collect()
}

/// The host's decoding: each body into the plugin input, per resource.
fn decode(bodies: &[(Signal, Encoding, &[u8])]) -> Vec<ResourceBatch> {
    bodies
        .iter()
        .flat_map(|(signal, encoding, body)| {
            otlp::decode(*signal, *encoding, body).expect("the capture decodes").into_resource_batches()
        })
        .collect()
}

fn native(batches: &[antenna_sdk::ResourceBatch]) -> usize {
    batches.iter().map(|b| ClaudeCode::normalize(black_box(b)).expect("normalizes").len()).sum()
}

fn component(plugin: &Plugin, batches: &[ResourceBatch]) -> usize {
    batches.iter().map(|b| plugin.normalize(black_box(b.clone())).expect("normalizes").len()).sum()
}

/// Mean time of `f` over about a second, for the summary line.
fn mean(mut f: impl FnMut() -> usize) -> Duration {
    let (started, mut runs) = (Instant::now(), 0u32);
    while started.elapsed() < Duration::from_secs(1) {
        black_box(f());
        runs += 1;
    }
    started.elapsed() / runs.max(1)
}

fn sandbox(c: &mut Criterion) {
    let capture = Capture::load(CAPTURE).expect("the capture loads");
    let bodies = bodies(&capture);
    let native_batches = capture.resource_batches().expect("the capture decodes");
    let host_batches = decode(&bodies);

    let runtime = Runtime::new(antenna::Limits::default()).expect("the runtime starts");
    let (_, bytes) = antenna::builtin::PLUGINS
        .iter()
        .find(|(file, _)| file.contains("claude_code"))
        .expect("the claude-code component is built in");
    let plugin = runtime.load(bytes).expect("the component loads");

    // Both paths see the same input and give the same output.
    assert_eq!(native_batches.len(), host_batches.len());
    let fragments = native(&native_batches);
    assert_eq!(fragments, component(&plugin, &host_batches), "native and component disagree");

    let mut group = c.benchmark_group("claude-code capture");
    group.bench_function("decode (host)", |b| b.iter(|| decode(black_box(&bodies))));
    group.bench_function("normalize native", |b| b.iter(|| native(&native_batches)));
    group.bench_function("normalize component", |b| b.iter(|| component(&plugin, &host_batches)));
    group.finish();

    let (native_time, component_time) = (mean(|| native(&native_batches)), mean(|| component(&plugin, &host_batches)));
    println!(
        "summary: {} batches, {fragments} fragments; native {native_time:?}, component {component_time:?} \
         (x{:.1}); decode {:?}",
        host_batches.len(),
        component_time.as_secs_f64() / native_time.as_secs_f64(),
        mean(|| decode(&bodies).len()),
    );
}

criterion_group!(benches, sandbox);
criterion_main!(benches);
