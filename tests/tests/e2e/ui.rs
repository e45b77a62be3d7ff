//! The web UI is one static page served at `/` that reads the query API with the project's keys.

use antenna_e2e::TestHost;

#[tokio::test]
async fn the_ui_page_is_served_without_keys_and_reads_the_public_api() {
    let host = TestHost::start().await;
    let response = host.client.get(host.url("/")).send().await.expect("GET /");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/html")));
    let page = response.text().await.expect("text");
    for path in ["/api/public/traces", "/api/public/sessions", "/api/public/users"] {
        assert!(page.contains(path), "the page reads {path}");
    }
    // The page itself holds no data: without keys the API it calls answers 401.
    let api = host.client.get(host.url("/api/public/traces")).send().await.expect("GET");
    assert_eq!(api.status(), 401);
}
