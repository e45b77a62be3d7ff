//! The host side of the ingest path without the Wasm sandbox: decode -> resource batches ->
//! signature -> fragments made from the input itself (what a hostile or buggy plugin could
//! return) -> validate -> merge. Much faster per input than `ingest`, and it reaches `validate`
//! and `merge` with values no real parser would produce. Any panic is a bug.

#![no_main]

use antenna::Limits;
use antenna::otlp;
use antenna::pipeline::validate;
use antenna::plugins::Signature;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((signal, encoding, body)) = antenna_fuzz::split(data) else { return };
    let Ok(export) = otlp::decode(signal, encoding, body) else { return };
    let _ = export.record_count();
    let limits = Limits::default();
    let mut fragments = Vec::new();
    for batch in export.into_resource_batches() {
        let signature = Signature::of(&batch);
        std::hint::black_box((&signature.service_name, &signature.scope_names, &signature.event_names));
        // Through the same conversion a component's output takes into the host's model.
        let output = antenna_fuzz::synthesize(&batch).into_iter().map(Into::into).collect();
        if let Ok(valid) = validate(output, &limits) {
            fragments.extend(valid.into_iter().map(|f| ("fuzz".to_owned(), f)));
        }
    }
    antenna_fuzz::merge_like_the_host(&fragments);
});
