//! The whole ingest path on one request body as sent (see `antenna_fuzz::ingest`): decode ->
//! detect -> normalize in the real built-in Wasm parsers -> validate -> merge.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((signal, encoding, body)) = antenna_fuzz::split(data) else { return };
    antenna_fuzz::ingest(signal, encoding, body);
});
