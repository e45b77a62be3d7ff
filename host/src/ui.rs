//! The web UI: one static page at `/` that reads the query API with the project's keys, its
//! script and style served as files of their own (`/ui/app.js`, `/ui/app.css`) so that the
//! Content-Security-Policy allows no inline code. Every UI response carries headers that keep it
//! from being framed, MIME-sniffed or leaking its address through the Referer.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Only this host's own script, style and API; nothing inline, no framing, no form posts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("ui/index.html");
const SCRIPT: &str = include_str!("ui/app.js");
const STYLE: &str = include_str!("ui/app.css");

/// The UI's routes: the page and its two assets.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", PAGE) }))
        .route("/ui/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/ui/app.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
}

/// One embedded file with the UI's security headers.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "no-referrer"),
            // Embedded in the binary: revalidate, so a new version is picked up at once.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_code() {
        let page = PAGE.to_ascii_lowercase();
        assert!(!page.contains("<style"), "inline style");
        assert!(!page.contains(" style="), "style attribute");
        let handler = page.match_indices(" on").any(|(i, _)| {
            let rest = &page[i + 3..];
            let name = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_alphabetic()).len();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!handler, "inline event handler");
        assert!(!page.contains("javascript:"), "javascript: URL");
        // Every <script> loads a file of this host.
        let scripts: Vec<_> = page.match_indices("<script").map(|(i, _)| &page[i..]).collect();
        assert!(!scripts.is_empty());
        for script in scripts {
            let tag = &script[..script.find('>').expect("tag end")];
            assert!(tag.contains("src=\"/ui/"), "inline script: {tag}");
        }
    }
}
