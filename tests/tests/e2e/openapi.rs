//! The OpenAPI document (`GET /api/public/openapi.json`) of a real host: OpenAPI 3.1, every
//! route of the JSON and OTLP APIs in it and served; and the bugs the property-based run of
//! tests/openapi/run found, each answered as documented now.

use std::collections::BTreeSet;

use antenna_e2e::{ADMIN_TOKEN, Capture, Engine, PUBLIC_KEY, SECRET_KEY, TestHost};
use serde_json::{Value, json};

/// Every route of the query, admin, ingest and UI session APIs (method, path), as the router
/// registers them.
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/{signal}"),
    ("post", "/api/public/otel/v1/{signal}"),
    ("get", "/api/public/openapi.json"),
    ("get", "/api/public/traces"),
    ("get", "/api/public/traces/{id}"),
    ("get", "/api/public/traces/{id}/observations"),
    ("get", "/api/public/sessions"),
    ("get", "/api/public/sessions/{id}"),
    ("get", "/api/public/users"),
    ("get", "/api/public/usage"),
    ("get", "/api/public/outcomes"),
    ("get", "/api/public/batches"),
    ("get", "/api/public/unclaimed"),
    ("get", "/api/admin/plugins"),
    ("post", "/api/admin/replay"),
    ("put", "/api/admin/projects/{project}/retention"),
    ("delete", "/api/admin/projects/{project}/users/{user}"),
    ("post", "/api/admin/retention/run"),
    ("get", "/api/admin/budgets"),
    ("post", "/api/admin/budgets"),
    ("delete", "/api/admin/budgets/{id}"),
    ("get", "/api/ui/session"),
    ("post", "/api/ui/session"),
    ("delete", "/api/ui/session"),
];

async fn admin_host() -> TestHost {
    TestHost::start_with(|c| c.admin_token = Some(ADMIN_TOKEN.into())).await
}

/// The document, fetched without credentials.
async fn document(host: &TestHost) -> Value {
    let response = host.client.get(host.url("/api/public/openapi.json")).send().await.expect("GET");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("text").to_owned();
    assert!(content_type.starts_with("application/json"), "{content_type}");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route_the_host_serves() {
    let host = admin_host().await;
    let document = document(&host).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "Antenna");

    let documented: BTreeSet<(String, String)> = document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().expect("path item").keys().map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, served, "documented vs served");

    // Each documented operation is a route of the host: without credentials it gets anything
    // but the router's fallback (404 "not found") or a 405.
    for (method, path) in &documented {
        let concrete = path
            .replace("{signal}", "logs")
            .replace("{id}", "no-such-id")
            .replace("{project}", "no-such-project")
            .replace("{user}", "no-such-user");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let response = host.client.request(method.clone(), host.url(&concrete)).send().await.expect("request");
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {concrete}");
        assert!(!(status == 404 && body.contains("\"not found\"")), "{method} {concrete} is not routed");
        // And every status it answered is documented for it.
        let responses = &document["paths"][path][method.as_str().to_lowercase()]["responses"];
        assert!(responses.get(status.as_str()).is_some(), "{method} {path}: {status} is not documented");
    }

    // Security: Basic or the session cookie on the query API, the bearer token on the admin API.
    let traces = &document["paths"]["/api/public/traces"]["get"]["security"];
    assert_eq!(traces, &json!([{"basic": []}, {"session": []}]));
    let plugins = &document["paths"]["/api/admin/plugins"]["get"]["security"];
    assert_eq!(plugins, &json!([{"admin": []}]));
    assert!(document["paths"]["/api/public/openapi.json"]["get"].get("security").is_none());
}

/// GET with the default keys: (status, content type, body).
async fn get(host: &TestHost, path: &str) -> (u16, String, Value) {
    let response = host.client.get(host.url(path)).basic_auth(PUBLIC_KEY, Some(SECRET_KEY)).send().await.expect("GET");
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, content_type, response.json().await.unwrap_or(Value::Null))
}

/// Found by schemathesis: a repeated query parameter was refused by axum's extractor in plain
/// text, not the documented `{"error": ...}`; a path segment that is not UTF-8 likewise.
#[tokio::test]
async fn malformed_query_strings_and_paths_are_json_errors() {
    let host = TestHost::start().await;
    for path in ["/api/public/users?limit=1&limit=2", "/api/public/traces?cursor=1&cursor=2", "/api/public/traces/%FF"]
    {
        let (status, content_type, body) = get(&host, path).await;
        assert_eq!(status, 400, "{path}");
        assert!(content_type.starts_with("application/json"), "{path}: {content_type}");
        assert!(body["error"].is_string(), "{path}: {body}");
    }
}

/// Found by schemathesis: an RFC 3339 time past 2262 (or before 1677) was a 400 though the
/// document calls it valid; it is the latest (earliest) time there is.
#[tokio::test]
async fn times_beyond_the_nanosecond_range_select_nothing_or_everything() {
    let host = TestHost::start().await;
    host.replay(&Capture::load("claude-code/protobuf-content-on")).await;
    for (path, empty) in [
        ("/api/public/traces?from=9999-12-31T23:59:59Z", true),
        ("/api/public/traces?to=1000-01-01T00:00:00Z", true),
        ("/api/public/traces?from=1000-01-01T00:00:00Z", false),
        ("/api/public/sessions?from=0001-01-01T00:00:00Z&to=9999-01-01T00:00:00%2B05:00", false),
        ("/api/public/usage?group_by=agent&from=0001-01-01T00:00:00Z", false),
    ] {
        let (status, _, body) = get(&host, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(body["data"].as_array().expect("data").is_empty(), empty, "{path}");
    }
    let (status, _, _) = get(&host, "/api/public/traces?from=2026-13-01T00:00:00Z").await;
    assert_eq!(status, 400);
}

async fn admin_post(host: &TestHost, path: &str, body: &str) -> (u16, Value) {
    let response = host
        .client
        .post(host.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Found by schemathesis: a budget naming a project that does not exist broke a foreign key and
/// was answered 503 "storage unavailable"; it is a 404.
#[tokio::test]
async fn a_budget_for_a_project_that_does_not_exist_is_a_404_on_either_engine() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |c| c.admin_token = Some(ADMIN_TOKEN.into())).await;
        let budget = |scope: &str, subject: &str, project: Value| {
            json!({
                "scope": scope, "subject": subject, "period": "day", "limit_usd": 5.0,
                "webhook_url": "http://127.0.0.1:9/hook", "project_id": project,
            })
            .to_string()
        };
        let missing = budget("project", "proj-nope", Value::Null);
        let (status, body) = admin_post(&host, "/api/admin/budgets", &missing).await;
        assert_eq!(status, 404, "{engine:?}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("proj-nope")), "{body}");
        let (status, body) = admin_post(&host, "/api/admin/budgets", &budget("user", "u", json!("proj-nope"))).await;
        assert_eq!(status, 404, "{engine:?}: {body}");
        // A subject of 512 characters of several bytes each is taken (the limit counts characters).
        let long = budget("user", &"é".repeat(512), Value::Null);
        let (status, body) = admin_post(&host, "/api/admin/budgets", &long).await;
        assert_eq!(status, 201, "{engine:?}: {body}");
        let (status, _) = admin_post(&host, "/api/admin/budgets", &budget("user", &"é".repeat(513), Value::Null)).await;
        assert_eq!(status, 400);
    }
}

/// Found by schemathesis: the document allows `null` as the replay request (it is optional);
/// it is the same as no body.
#[tokio::test]
async fn replay_takes_null_as_no_filter() {
    let host = admin_host().await;
    let (status, body) = admin_post(&host, "/api/admin/replay", "null").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["batches"], 0);
    let (status, _) = admin_post(&host, "/api/admin/replay", "[]").await;
    assert_eq!(status, 400);
}

/// Found by schemathesis: serde reads a struct from an array of its fields, so `[null, null]`
/// was taken as a retention and a positional array as a budget; a request body is an object.
#[tokio::test]
async fn admin_request_bodies_are_objects() {
    let host = admin_host().await;
    let (status, body) =
        admin_post(&host, "/api/admin/budgets", r#"["user", "u", "day", 5.0, null, "http://127.0.0.1:9/hook", null]"#)
            .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = admin_post(&host, "/api/admin/replay", r#"[null, null, null, null, false]"#).await;
    assert_eq!(status, 400);
    let response = host
        .client
        .put(host.url("/api/admin/projects/any/retention"))
        .bearer_auth(ADMIN_TOKEN)
        .body("[null, null]")
        .send()
        .await
        .expect("PUT");
    assert_eq!(response.status(), 400);
}

/// Found by schemathesis: a JSON array was taken as an OTLP/JSON export (serde reads a struct
/// from an array of its fields); the document says an export is an object.
#[tokio::test]
async fn an_otlp_json_export_is_an_object() {
    let host = TestHost::start().await;
    for body in ["[]", " [[]]", "null", "3"] {
        let response = host.post("/v1/logs", "application/json", body.as_bytes().to_vec()).await;
        assert_eq!(response.status(), 400, "{body}");
    }
    let response = host.post("/v1/logs", "application/json", b" {}".to_vec()).await;
    assert_eq!(response.status(), 200);
}

/// Found by schemathesis: `30.0` is an integer to JSON Schema, and a retention of 30.0 days was
/// refused; whole numbers are taken, fractions still are not.
#[tokio::test]
async fn a_retention_in_whole_days_may_be_written_as_a_float() {
    let host = admin_host().await;
    // The bootstrap project's id, from a trace of it.
    host.replay(&Capture::load("claude-code/protobuf-content-on")).await;
    let project = host.traces().await[0]["project_id"].as_str().expect("project id").to_owned();
    let put = |body: &'static str| {
        host.client
            .put(host.url(&format!("/api/admin/projects/{project}/retention")))
            .bearer_auth(ADMIN_TOKEN)
            .body(body)
            .send()
    };
    let response = put(r#"{"batch_days": 30.0, "trace_days": null}"#).await.expect("PUT");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["retention"], json!({"batch_days": 30, "trace_days": null}));
    assert_eq!(put(r#"{"batch_days": 30.5}"#).await.expect("PUT").status(), 400);
    assert_eq!(put(r#"{"trace_days": 0}"#).await.expect("PUT").status(), 400);
}

/// NUL in a path (found by hand after the PostgreSQL run of tests/openapi/run): PostgreSQL text
/// cannot hold it, and the lookups answered 503 "storage unavailable"; a NUL in an id is
/// replaced like in stored values, so nothing matches. Likewise a webhook URL with NUL is a 400.
#[tokio::test]
async fn nul_in_paths_and_webhooks_is_no_server_error_on_either_engine() {
    for engine in Engine::ALL {
        let host = TestHost::on_engine(engine, |c| c.admin_token = Some(ADMIN_TOKEN.into())).await;
        let cases = [
            ("GET", "/api/public/traces/a%00b", 404),
            ("GET", "/api/public/sessions/a%00b", 404),
            ("PUT", "/api/admin/projects/a%00b/retention", 404),
            ("DELETE", "/api/admin/projects/a%00b/users/c%00d", 200),
            ("DELETE", "/api/admin/budgets/a%00b", 404),
        ];
        for (method, path, expected) in cases {
            let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
            let request = host.client.request(method.clone(), host.url(path));
            let request = if path.starts_with("/api/admin/") {
                request.bearer_auth(ADMIN_TOKEN).body(r#"{"batch_days": 3}"#)
            } else {
                request.basic_auth(PUBLIC_KEY, Some(SECRET_KEY))
            };
            let response = request.send().await.expect("request");
            assert_eq!(response.status(), expected, "{engine:?} {method} {path}");
        }
        let budget = json!({
            "scope": "user", "subject": "u", "period": "day", "limit_usd": 1.0,
            "webhook_url": "http://127.0.0.1:9/\u{0}",
        });
        let (status, body) = admin_post(&host, "/api/admin/budgets", &budget.to_string()).await;
        assert_eq!(status, 400, "{engine:?}: {body}");
    }
}
