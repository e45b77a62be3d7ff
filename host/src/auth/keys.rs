//! Key material: HTTP Basic `public:secret`. Secrets are stored only as a salted SHA-256 hash
//! and compared in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::random_hex;

/// The `public:secret` pair from an `Authorization: Basic ...` header value.
pub fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (public, secret) = text.split_once(':')?;
    (!public.is_empty() && !secret.is_empty()).then(|| (public.to_owned(), secret.to_owned()))
}

/// `salt$hex(sha256(salt || secret))`.
pub fn hash_secret(secret: &str) -> String {
    let salt = random_hex(16);
    format!("{salt}${}", digest(&salt, secret))
}

fn digest(salt: &str, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether `secret` matches a stored hash, in constant time.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    let Some((salt, expected)) = stored.split_once('$') else {
        return false;
    };
    digest(salt, secret).as_bytes().ct_eq(expected.as_bytes()).into()
}

/// A new key pair: (`pk-ant-...`, `sk-ant-...`).
pub fn generate_key_pair() -> (String, String) {
    (format!("pk-ant-{}", random_hex(12)), format!("sk-ant-{}", random_hex(24)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_round_trip_and_verification() {
        assert_eq!(parse_basic("Basic cGstbG9jYWw6c2stbG9jYWw="), Some(("pk-local".into(), "sk-local".into())));
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
        let stored = hash_secret("sk-local");
        assert!(!stored.contains("sk-local"));
        assert!(verify_secret("sk-local", &stored));
        assert!(!verify_secret("sk-other", &stored));
    }
}
