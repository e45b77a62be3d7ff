//! Web UI sessions. Signing in with a project's key pair (`POST /api/ui/session`, see
//! the UI's routes) gives the browser a random 256-bit token in a cookie that scripts cannot read
//! (`HttpOnly`), that is never sent by another site's page (`SameSite=Strict`) and that expires
//! ([`SESSION_TTL`]). Only the token's SHA-256 is stored (table `ui_sessions`), in the database
//! rather than in a replica's memory, so every replica honours it and sign-out revokes it
//! everywhere at once. The query API takes the cookie as well as Basic keys
//! ([`super::Authenticator::authenticate_request`]).

use std::time::Duration;

use axum::http::{HeaderMap, header};

use crate::ids::{random_hex, sha256_hex};

/// The cookie's name.
pub const COOKIE_NAME: &str = "antenna_session";

/// How long a session lasts from sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// Longest cookie value accepted (a token is 64 hex characters).
const MAX_TOKEN_LEN: usize = 128;

/// A fresh session token: 32 random bytes from the OS, hex.
pub fn new_token() -> String {
    random_hex(32)
}

/// What is stored of a token: its SHA-256, hex.
pub fn token_digest(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// The session token of a request, from its `Cookie` headers: the first `antenna_session`
/// that looks like a token (hex, at most [`MAX_TOKEN_LEN`]).
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .find(|value| !value.is_empty() && value.len() <= MAX_TOKEN_LEN && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
}

/// Whether a request reached us over HTTPS (said by a proxy in `X-Forwarded-Proto`): then the
/// cookie is also `Secure`. Marking it so only ever narrows where the browser sends it.
pub fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

/// The `Set-Cookie` value that starts a session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_TTL.as_secs())
}

/// The `Set-Cookie` value that ends it in the browser.
pub fn clearing_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// Unix nanoseconds now.
pub fn now_ns() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Unix nanoseconds when a session started now expires.
pub fn expiry_ns(now_ns: i64) -> i64 {
    now_ns.saturating_add(i64::try_from(SESSION_TTL.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for cookie in cookies {
            headers.append(header::COOKIE, HeaderValue::from_str(cookie).expect("header"));
        }
        headers
    }

    #[test]
    fn the_token_is_read_from_any_cookie_header_and_must_look_like_one() {
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, new_token());
        let mine = format!("theme=dark; {COOKIE_NAME}={token}; other=1");
        assert_eq!(cookie_token(&headers(&["a=b", &mine])), Some(token.clone()));
        assert_eq!(cookie_token(&headers(&["a=b"])), None);
        assert_eq!(cookie_token(&headers(&[&format!("{COOKIE_NAME}=")])), None);
        assert_eq!(cookie_token(&headers(&[&format!("{COOKIE_NAME}=not-hex")])), None);
        assert_eq!(cookie_token(&headers(&[&format!("{COOKIE_NAME}={}", "a".repeat(500))])), None);
        // Another cookie whose name ends the same is not ours.
        assert_eq!(cookie_token(&headers(&[&format!("x{COOKIE_NAME}={token}")])), None);
        assert_ne!(token_digest(&token), token);
        assert_eq!(token_digest(&token).len(), 64);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_expiring() {
        let cookie = session_cookie("ab", false);
        for part in ["antenna_session=ab", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(cookie.contains(part), "{cookie} has {part}");
        }
        assert!(!cookie.contains("Secure"));
        assert!(session_cookie("ab", true).ends_with("; Secure"));
        assert!(clearing_cookie(false).contains("Max-Age=0"));
        let mut forwarded = HeaderMap::new();
        forwarded.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(is_https(&forwarded));
        assert!(!is_https(&HeaderMap::new()));
        assert!(expiry_ns(now_ns()) > now_ns());
    }
}
