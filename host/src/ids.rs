//! Identifiers every stage needs: random hex from the operating system, and content digests.

use sha2::{Digest, Sha256};

/// `bytes` random bytes as hex, from the operating system.
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // The OS RNG failing is not recoverable for key generation; it does not happen on Linux.
    getrandom::fill(&mut buf).expect("operating system random source");
    hex::encode(buf)
}

/// Lowercase hex SHA-256 of `bytes`: batch deduplication, plugin digests, cache keys.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}
