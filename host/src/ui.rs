//! The web UI: a single-page app at `/` (overview, traces, a trace's waterfall, sessions,
//! users, operators' view), its scripts and style served as files of their own under `/ui/`
//! and embedded in the binary, so the Content-Security-Policy allows no inline code and no
//! other origin. Every UI response carries headers that keep it from being framed,
//! MIME-sniffed or leaking its address through the Referer.
//!
//! Signing in (`/api/ui/session`) exchanges a project's key pair for an HttpOnly,
//! SameSite=Strict session cookie ([`crate::auth::session`]); the page then reads the query
//! API with that cookie and never holds the secret. The admin token of the operators' view is
//! kept in the page's memory only, sent as `Authorization: Bearer`.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::api::{Api, ApiError};
use crate::auth::{AuthError, session};

/// Only this host's own script, style and API; nothing inline, no framing, no form posts.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE: &str = include_str!("ui/index.html");

/// The embedded assets under `/ui/`: (file name, content type, body).
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("ui/app.js")),
    ("lib.js", "text/javascript; charset=utf-8", include_str!("ui/lib.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("ui/charts.js")),
    ("pages.js", "text/javascript; charset=utf-8", include_str!("ui/pages.js")),
    ("app.css", "text/css; charset=utf-8", include_str!("ui/app.css")),
];

/// The UI's routes: the page, its assets, and sign-in / sign-out.
pub fn router<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Api: FromRef<S>,
{
    let mut router = Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", PAGE) }))
        .route("/api/ui/session", get(who_am_i).post(sign_in).delete(sign_out));
    for &(name, content_type, body) in ASSETS {
        router = router.route(&format!("/ui/{name}"), get(move || async move { asset(content_type, body) }));
    }
    router
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

/// The client's address (the peer, or behind a trusted proxy the one it forwards), when known.
struct Client(Option<IpAddr>);

impl<S> FromRequestParts<S> for Client
where
    S: Send + Sync,
    Api: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let api = Api::from_ref(state);
        Ok(Client(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| api.authenticator.client_address(c.0.ip(), &parts.headers)),
        ))
    }
}

/// The body of `POST /api/ui/session`.
#[derive(Deserialize, utoipa::ToSchema)]
struct SignIn {
    public_key: String,
    secret_key: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn").field("public_key", &self.public_key).field("secret_key", &"<redacted>").finish()
    }
}

/// A 401 of the UI endpoints: no `WWW-Authenticate`, so the browser shows no dialog of its own.
fn refused(error: AuthError) -> ApiError {
    match error {
        AuthError::TooManyFailures(_) | AuthError::Unavailable => ApiError::from(error),
        _ => ApiError::new(StatusCode::UNAUTHORIZED, error.to_string()),
    }
}

/// `POST /api/ui/session` with `{"public_key", "secret_key"}` (JSON only, so a cross-site form
/// cannot post it): checks the pair like Basic auth (failures limited per client) and answers
/// 204 with the session cookie.
#[utoipa::path(
    post,
    path = "/api/ui/session",
    tag = "ui",
    request_body(content = SignIn, content_type = "application/json"),
    responses(
        (status = 204, description = "Signed in", headers(("Set-Cookie" = String, description = "The HttpOnly, SameSite=Strict session cookie"))),
        (status = 400, description = "Not JSON {public_key, secret_key}", body = crate::api::openapi::ErrorBody),
        (status = 401, description = "Unknown public key or wrong secret key (no WWW-Authenticate)", body = crate::api::openapi::ErrorBody),
        (status = 429, description = "Too many failed sign-ins from this address", body = crate::api::openapi::ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "The database does not answer", body = crate::api::openapi::ErrorBody, headers(("Retry-After" = u64))),
    )
)]
async fn sign_in(
    State(api): State<Api>,
    Client(client): Client,
    headers: HeaderMap,
    body: Result<Json<SignIn>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(form) = body.map_err(|e| ApiError::bad_request(format!("send JSON {{public_key, secret_key}}: {e}")))?;
    let project = api.authenticator.check_keys(&form.public_key, &form.secret_key, client).await.map_err(refused)?;
    let token = api.authenticator.start_session(&project).await.map_err(refused)?;
    tracing::info!(project = %project, client = ?client, "UI session started");
    Ok(with_cookie(StatusCode::NO_CONTENT, &session::session_cookie(&token, session::is_https(&headers))))
}

/// `GET /api/ui/session`: whether this browser is signed in, and to which project.
#[utoipa::path(
    get,
    path = "/api/ui/session",
    tag = "ui",
    responses(
        (status = 200, description = "Signed in", body = inline(crate::api::openapi::SignedIn)),
        (status = 401, description = "No session cookie, or an expired or ended session", body = crate::api::openapi::ErrorBody),
        (status = 429, description = "Too many failed authentications from this address", body = crate::api::openapi::ErrorBody, headers(("Retry-After" = u64))),
        (status = 503, description = "The database does not answer", body = crate::api::openapi::ErrorBody, headers(("Retry-After" = u64))),
    ),
    security(("session" = []))
)]
async fn who_am_i(State(api): State<Api>, Client(client): Client, headers: HeaderMap) -> Result<Response, ApiError> {
    if session::cookie_token(&headers).is_none() {
        return Err(refused(AuthError::NoSession));
    }
    let project = api.authenticator.authenticate_request(&headers, client).await.map_err(refused)?;
    Ok(Json(json!({ "project_id": project })).into_response())
}

/// `DELETE /api/ui/session`: revokes the session (on every replica) and clears the cookie.
#[utoipa::path(
    delete,
    path = "/api/ui/session",
    tag = "ui",
    responses(
        (status = 204, description = "Signed out (also without a session)", headers(("Set-Cookie" = String, description = "Clears the session cookie"))),
        (status = 503, description = "The database does not answer", body = crate::api::openapi::ErrorBody, headers(("Retry-After" = u64))),
    ),
    security((), ("session" = []))
)]
async fn sign_out(State(api): State<Api>, headers: HeaderMap) -> Result<Response, ApiError> {
    api.authenticator.end_session(&headers).await.map_err(refused)?;
    Ok(with_cookie(StatusCode::NO_CONTENT, &session::clearing_cookie(session::is_https(&headers))))
}

fn with_cookie(status: StatusCode, cookie: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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

    #[test]
    fn the_scripts_never_put_text_into_html() {
        for (name, _, body) in ASSETS {
            for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
                assert!(!body.contains(sink), "{name} uses {sink}");
            }
            for store in ["localStorage", "sessionStorage", "document.cookie"] {
                assert!(!body.contains(store), "{name} touches {store}");
            }
        }
    }
}
