//! Findings of the security review, each against a real host: failed-authentication limits
//! that lock no one else out (per client and credential, IPv6 by /64, `X-Forwarded-For` only
//! from trusted proxies), weak admin tokens refused, admin failures limited, secrets kept out of
//! `Debug`, and the UI's security headers and Content-Security-Policy.

use antenna_e2e::{ADMIN_TOKEN, Capture, PUBLIC_KEY, SECRET_KEY, TestHost, basic};

fn logs_json() -> Vec<u8> {
    Capture::load("claude-code/json-content-off").only(&["logs"]).requests[0].body.clone()
}

/// A host whose failure limit is `limit` and whose only trusted proxy is this machine.
async fn behind_proxy(limit: u32) -> TestHost {
    TestHost::start_with(|c| {
        c.limits.auth_failures_per_minute = limit;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().expect("CIDR")];
    })
    .await
}

/// `POST /v1/logs` with wrong keys, as forwarded for `client` (`None`: no header).
async fn wrong_keys(host: &TestHost, client: Option<&str>) -> u16 {
    let mut request = host
        .client
        .post(host.url("/v1/logs"))
        .header("content-type", "application/json")
        .header("authorization", basic(PUBLIC_KEY, "guess"))
        .body(logs_json());
    if let Some(client) = client {
        request = request.header("x-forwarded-for", client);
    }
    request.send().await.expect("send").status().as_u16()
}

#[tokio::test]
async fn requests_without_credentials_are_no_strike() {
    let host = TestHost::start_with(|c| c.limits.auth_failures_per_minute = 2).await;
    for _ in 0..5 {
        let response = host.post_as(None, "/v1/logs", "application/json", logs_json()).await;
        assert_eq!(response.status(), 401, "no credentials: 401, never 429");
        let api = host.client.get(host.url("/api/public/traces")).send().await.expect("send");
        assert_eq!(api.status(), 401);
    }
    // None of those counted: the first wrong keys are still a plain 401.
    assert_eq!(wrong_keys(&host, None).await, 401);
    assert_eq!(wrong_keys(&host, None).await, 401);
    assert_eq!(wrong_keys(&host, None).await, 429);
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    // The peer (127.0.0.1) is a trusted proxy: each forwarded client has its own count.
    let host = behind_proxy(1).await;
    assert_eq!(wrong_keys(&host, Some("198.51.100.1")).await, 401);
    assert_eq!(wrong_keys(&host, Some("198.51.100.1")).await, 429);
    assert_eq!(wrong_keys(&host, Some("198.51.100.2")).await, 401, "another client behind the proxy");
    // The nearest address that is not a trusted proxy: what the client itself wrote further
    // left is not believed.
    assert_eq!(wrong_keys(&host, Some("203.0.113.7, 198.51.100.1")).await, 429);
    // IPv6 clients by their /64.
    assert_eq!(wrong_keys(&host, Some("2001:db8:1:2::1")).await, 401);
    assert_eq!(wrong_keys(&host, Some("2001:db8:1:2:ffff::9")).await, 429, "same /64");
    assert_eq!(wrong_keys(&host, Some("2001:db8:1:3::1")).await, 401, "another /64");
    // Valid keys behind the proxy always get in, whatever was forwarded.
    let response = host
        .client
        .get(host.url("/api/public/traces"))
        .header("authorization", basic(PUBLIC_KEY, SECRET_KEY))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 200);

    // No trusted proxies (the default): the header is the client's own text and changes nothing.
    let host = TestHost::start_with(|c| c.limits.auth_failures_per_minute = 1).await;
    assert_eq!(wrong_keys(&host, Some("198.51.100.1")).await, 401);
    assert_eq!(wrong_keys(&host, Some("198.51.100.2")).await, 429, "the peer is the client");
}

#[tokio::test]
async fn weak_admin_tokens_are_refused_at_start() {
    for (token, reason) in [("", "empty"), ("short-token", "at least 16")] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = antenna::Config::local(format!("sqlite://{}", dir.path().join("antenna.db").display()));
        config.listen = "127.0.0.1:0".parse().expect("address");
        config.cache_dir =
            Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-compiled-plugins"));
        config.admin_token = Some(token.into());
        let error = match antenna::start(config).await {
            Ok(_) => panic!("a host started with the admin token {token:?}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(error.contains("ANTENNA_ADMIN_TOKEN") && error.contains(reason), "{error}");
    }
}

#[tokio::test]
async fn admin_token_failures_are_limited_and_the_token_always_gets_in() {
    let host = TestHost::start_in(tempfile::tempdir().expect("temporary directory"), |c, _| {
        c.admin_token = Some(ADMIN_TOKEN.into());
        c.limits.auth_failures_per_minute = 2;
    })
    .await;
    let plugins = |token: Option<&'static str>| {
        let mut request = host.client.get(host.url("/api/admin/plugins"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.expect("send") }
    };
    // No token is no strike.
    for _ in 0..4 {
        assert_eq!(plugins(None).await.status(), 401);
    }
    assert_eq!(plugins(Some("wrong-token-0001")).await.status(), 401);
    assert_eq!(plugins(Some("wrong-token-0002")).await.status(), 401);
    let limited = plugins(Some("wrong-token-0003")).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    // The right token is never locked out.
    assert_eq!(plugins(Some(ADMIN_TOKEN)).await.status(), 200);
}

#[tokio::test]
async fn secrets_are_redacted_in_the_config_debug() {
    let host = TestHost::start_with(|c| c.admin_token = Some(ADMIN_TOKEN.into())).await;
    let shown = format!("{:?}", host.server.state.config);
    assert!(shown.contains(PUBLIC_KEY), "{shown}");
    for secret in [SECRET_KEY, ADMIN_TOKEN] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
}

#[tokio::test]
async fn the_ui_is_served_with_security_headers_and_no_inline_code() {
    let host = TestHost::start().await;
    for (path, content_type) in [("/", "text/html"), ("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
        let response = host.client.get(host.url(path)).send().await.expect("GET");
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        assert!(header("content-type").starts_with(content_type), "{path}");
        let csp = header("content-security-policy");
        for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
            assert!(csp.contains(directive), "{path}: {directive} in {csp:?}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
    }
    // The page loads its script and style from those files: nothing inline that the CSP would block.
    let page = host.client.get(host.url("/")).send().await.expect("GET").text().await.expect("text");
    assert!(page.contains(r#"src="/ui/app.js""#) && page.contains(r#"href="/ui/app.css""#));
    // Every script element names its file; no inline code, no inline style.
    assert!(page.matches("<script").count() == page.matches("<script type=\"module\" src=").count(), "{page}");
    assert!(
        !page.contains("<script>") && !page.contains("<style") && !page.contains(" style="),
        "inline code in the page"
    );
    let script = host.client.get(host.url("/ui/lib.js")).send().await.expect("GET").text().await.expect("text");
    assert!(script.contains("fetch("), "the scripts read the API");
}
