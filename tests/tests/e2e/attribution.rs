//! The attribution rules of the blueprint, and project isolation on every endpoint.

use antenna_e2e::{Capture, PUBLIC_KEY, SECRET_KEY, TestHost};
use serde_json::{Value, json};

const CONTENT_OFF: &str = "claude-code/json-content-off";

/// Apply `f` to every attribute list of every record (spans, log records, data points).
fn for_each_record_attributes(body: &mut Value, f: &dyn Fn(&mut Vec<Value>)) {
    for resource_key in ["resourceSpans", "resourceLogs", "resourceMetrics"] {
        for resource in body[resource_key].as_array_mut().into_iter().flatten() {
            for scope_key in ["scopeSpans", "scopeLogs", "scopeMetrics"] {
                for scope in resource[scope_key].as_array_mut().into_iter().flatten() {
                    for records_key in ["spans", "logRecords"] {
                        for record in scope[records_key].as_array_mut().into_iter().flatten() {
                            if let Some(attrs) = record["attributes"].as_array_mut() {
                                f(attrs);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn resource_attributes(body: &mut Value, f: &dyn Fn(&mut Vec<Value>)) {
    for resource_key in ["resourceSpans", "resourceLogs", "resourceMetrics"] {
        for resource in body[resource_key].as_array_mut().into_iter().flatten() {
            if let Some(attrs) = resource["resource"]["attributes"].as_array_mut() {
                f(attrs);
            }
        }
    }
}

fn remove(attrs: &mut Vec<Value>, key: &str) {
    attrs.retain(|a| a["key"] != key);
}

fn set(attrs: &mut Vec<Value>, key: &str, value: &str) {
    remove(attrs, key);
    attrs.push(json!({"key": key, "value": {"stringValue": value}}));
}

async fn user_of(capture: &Capture, adjust: impl FnOnce(&mut antenna::Config)) -> Value {
    let host = TestHost::start_with(adjust).await;
    host.replay(capture).await;
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1);
    traces[0]["user_id"].clone()
}

#[tokio::test]
async fn the_resource_user_id_wins_over_the_record_login_and_the_installation_hash() {
    let capture = Capture::load(CONTENT_OFF).map_json(|body| {
        for_each_record_attributes(body, &|attrs| set(attrs, "user.email", "login@example.com"));
    });
    assert_eq!(user_of(&capture, |_| {}).await, "dev@example.com");
}

#[tokio::test]
async fn without_a_resource_user_the_agent_login_attributes_and_a_resource_email_never_overrides() {
    let capture = Capture::load(CONTENT_OFF).map_json(|body| {
        resource_attributes(body, &|attrs| {
            remove(attrs, "user.id");
            set(attrs, "user.email", "resource@example.com");
        });
        for_each_record_attributes(body, &|attrs| set(attrs, "user.email", "login@example.com"));
    });
    assert_eq!(user_of(&capture, |_| {}).await, "login@example.com");
}

#[tokio::test]
async fn a_stale_resource_email_is_never_the_user_the_fallback_is() {
    // MDM or a shell profile pushed `user.email` into OTEL_RESOURCE_ATTRIBUTES; the trace has
    // no other user.
    let capture = Capture::load(CONTENT_OFF).map_json(|body| {
        resource_attributes(body, &|attrs| {
            remove(attrs, "user.id");
            set(attrs, "user.email", "stale@example.com");
        });
    });
    assert_eq!(user_of(&capture, |_| {}).await, Value::Null);
    let fallback = user_of(&capture, |c| c.fallback_user = Some("fallback@example.com".into())).await;
    assert_eq!(fallback, "fallback@example.com");
}

#[tokio::test]
async fn enduser_id_then_account_id_on_the_resource() {
    let capture = Capture::load(CONTENT_OFF).map_json(|body| {
        resource_attributes(body, &|attrs| {
            remove(attrs, "user.id");
            set(attrs, "enduser.id", "end-user");
            set(attrs, "user.account_id", "acct");
        });
    });
    assert_eq!(user_of(&capture, |_| {}).await, "end-user");
}

#[tokio::test]
async fn the_installation_hash_is_never_the_user_and_the_fallback_applies() {
    let capture = Capture::load(CONTENT_OFF).map_json(|body| {
        resource_attributes(body, &|attrs| remove(attrs, "user.id"));
    });
    assert_eq!(user_of(&capture, |_| {}).await, Value::Null);
    let fallback = user_of(&capture, |c| c.fallback_user = Some("fallback@example.com".into())).await;
    assert_eq!(fallback, "fallback@example.com");
    // The fallback never overrides a real user.
    let original = Capture::load(CONTENT_OFF);
    let kept = user_of(&original, |c| c.fallback_user = Some("fallback@example.com".into())).await;
    assert_eq!(kept, "dev@example.com");
}

#[tokio::test]
async fn host_id_is_the_device() {
    let capture = Capture::load(CONTENT_OFF).map_json(|body| {
        resource_attributes(body, &|attrs| set(attrs, "host.id", "laptop-42"));
    });
    let host = TestHost::start().await;
    host.replay(&capture).await;
    let traces = host.get_json("/api/public/traces?device_id=laptop-42").await;
    assert_eq!(traces["data"][0]["device_id"], "laptop-42");
}

#[tokio::test]
async fn a_project_never_reads_another_projects_data() {
    let host = TestHost::start().await;
    host.replay(&Capture::load("claude-code/protobuf-content-on")).await;
    let ours = host.traces().await;
    assert_eq!(ours.len(), 1);
    let trace_id = ours[0]["id"].as_str().expect("id").to_owned();
    let session_id = ours[0]["session_id"].as_str().expect("session").to_owned();

    let (_, other_pk, other_sk) =
        antenna::auth::create_project(&*host.server.state.storage, "other").await.expect("project");
    let other = (other_pk.as_str(), other_sk.as_str());
    // Something unclaimed and something failed in our project, too, so every list has data.
    let unknown = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "mystery-agent"}}]},
        "scopeLogs": [{"scope": {"name": "mystery"}, "logRecords": [{"timeUnixNano": "1"}]}]}]});
    let response = host.post("/v1/logs", "application/json", serde_json::to_vec(&unknown).expect("json")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(host.get_json("/api/public/unclaimed").await["data"].as_array().map(Vec::len), Some(1));
    for path in [
        "/api/public/traces",
        "/api/public/sessions",
        "/api/public/users",
        "/api/public/batches",
        "/api/public/unclaimed",
    ] {
        let page = host.get_json_as(other, path).await;
        assert_eq!(page["data"], json!([]), "{path} leaks another project's data");
    }
    for path in [format!("/api/public/traces/{trace_id}"), format!("/api/public/sessions/{session_id}")] {
        let response = host
            .client
            .get(host.url(&path))
            .header("authorization", antenna_e2e::basic(other.0, other.1))
            .send()
            .await
            .expect("send");
        assert_eq!(response.status(), 404, "{path}");
    }

    // The same batches posted by the other project make its own trace; ours is unchanged.
    for request in &Capture::load("claude-code/protobuf-content-on").requests {
        let response = host.post_as(Some(other), &request.path, &request.content_type, request.body.clone()).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(host.get_json_as(other, "/api/public/traces").await["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(host.get_json_as((PUBLIC_KEY, SECRET_KEY), "/api/public/traces").await["data"][0], ours[0]);
}
