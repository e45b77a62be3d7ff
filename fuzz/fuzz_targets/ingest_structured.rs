//! The ingest path (see `antenna_fuzz::ingest`) on bodies built from the input: always a valid
//! OTLP request, with the scope, service and event names the parsers claim and the attribute
//! keys they read (`antenna_fuzz::structured`), so that nearly every input reaches a parser.
//! With `ANTENNA_FUZZ_DUMP=DIR`, each body is also written to DIR (to post a crash to a host).

#![no_main]

use libfuzzer_sys::arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok((signal, encoding, body)) = antenna_fuzz::structured::request(&mut u) else { return };
    if let Some(dir) = std::env::var_os("ANTENNA_FUZZ_DUMP") {
        let name = format!("{}-{}.bin", signal.as_str(), antenna_fuzz::prefix(signal, encoding));
        let mut input = vec![antenna_fuzz::prefix(signal, encoding)];
        input.extend_from_slice(&body);
        let _ = std::fs::write(std::path::Path::new(&dir).join(name), input);
    }
    antenna_fuzz::ingest(signal, encoding, &body);
});
