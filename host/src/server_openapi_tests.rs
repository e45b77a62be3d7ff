//! Unit tests of the OpenAPI document (host/src/api/openapi.rs) against the document the
//! server assembles: they live with the server, which knows every router, so that the API
//! module never depends on the server.
use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::api::openapi::*;
use crate::auth::session::COOKIE_NAME;
use std::collections::BTreeMap;

/// The document as served, of a router with every API (what `server::router` builds).
fn served() -> Value {
    serde_json::to_value(super::openapi_document()).expect("the document serializes")
}

/// The property names of a schema, following `$ref` and `allOf`.
fn properties(document: &Value, schema: &Value) -> BTreeSet<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return properties(document, &document["components"]["schemas"][name]);
    }
    let mut names: BTreeSet<String> =
        schema["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        names.extend(properties(document, part));
    }
    names
}

/// Assert that `value`'s keys are the properties of the component schema `name`
/// (`optional`: properties a value may leave out).
fn assert_describes(document: &Value, name: &str, value: &Value, optional: &[&str]) {
    let documented = properties(document, &json!({ "$ref": format!("#/components/schemas/{name}") }));
    assert!(!documented.is_empty(), "no schema {name}");
    let written: BTreeSet<String> = value.as_object().expect("an object").keys().cloned().collect();
    let missing: Vec<_> = written.difference(&documented).collect();
    assert!(missing.is_empty(), "{name} does not document {missing:?}");
    let absent: Vec<_> = documented.difference(&written).filter(|field| !optional.contains(&field.as_str())).collect();
    assert!(absent.is_empty(), "{name} documents {absent:?}, which the code does not write");
}

#[test]
fn the_document_is_openapi_3_1_with_its_security_schemes() {
    let document = served();
    assert_eq!(document["openapi"], "3.1.0");
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["admin"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], COOKIE_NAME);
    // Every requirement names a scheme that exists.
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for scheme in requirement.as_object().expect("requirement").keys() {
                    assert!(schemes.get(scheme).is_some(), "{method} {path}: unknown scheme {scheme}");
                }
            }
            assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
        }
    }
}

#[test]
fn the_trace_schemas_are_what_the_view_writes() {
    use crate::trace::merge::{Observation as Seen, ToolCallView, Trace as Merged};
    use crate::trace::model::{Channel, Usage};
    let document = served();
    let tool_call = ToolCallView {
        id: "t".into(),
        name: None,
        args: None,
        result: None,
        duration_ms: None,
        success: None,
        decision: None,
        decision_source: None,
        start_unix_nano: None,
    };
    let observation = Seen {
        kind: "llm_call",
        id: "o".into(),
        name: "n".into(),
        start_unix_nano: Some(1),
        end_unix_nano: Some(2),
        model: Some("m".into()),
        usage: Some(Usage::default()),
        cost_usd: Some(0.1),
        cost_source: Some("agent"),
        error: Some("e".into()),
        attributes: Some(json!({"a": 1})),
        reported_via: vec![Channel::Log],
    };
    let trace = Merged {
        agent: "claude-code".into(),
        tool_calls: vec![tool_call],
        observations: vec![observation],
        ..Default::default()
    };
    let summary = crate::trace::view::summary("proj", "id", &trace, crate::trace::view::Counts::of(&trace));
    assert_describes(&document, "Trace", &summary, &[]);
    assert_describes(&document, "ToolCall", &summary["tool_calls"][0], &[]);
    let observations = json!(trace.observations.iter().map(crate::trace::view::observation).collect::<Vec<_>>());
    assert_describes(&document, "Observation", &observations[0], &[]);
    assert_describes(&document, "TokenUsage", &observations[0]["usage"], &[]);
    // What the query API adds to a trace.
    let mut item = summary.clone();
    item["truncated"] = json!(false);
    assert_describes(&document, "TraceListItem", &item, &[]);
    let mut detail = summary;
    detail["observations"] = observations;
    detail["observations_next_cursor"] = json!("cursor");
    assert_describes(&document, "TraceDetail", &detail, &[]);
}

#[test]
fn the_row_schemas_are_what_storage_writes() {
    use crate::storage;
    let document = served();
    let session = storage::SessionRow {
        id: "s".into(),
        agent: "a".into(),
        user_id: None,
        device_id: None,
        repository: None,
        branch: None,
        team: None,
        start_time: None,
        end_time: None,
        trace_count: 1,
        input_tokens: 0,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_creation_tokens: 0,
        reasoning_tokens: 0,
        cost_usd: None,
    };
    let session = serde_json::to_value(session).expect("json");
    assert_describes(&document, "Session", &session, &[]);
    let mut detail = session;
    detail["traces"] = json!([]);
    assert_describes(&document, "SessionDetail", &detail, &[]);
    let user = storage::UserRow {
        id: "u".into(),
        traces: 0,
        sessions: 0,
        input_tokens: 0,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_creation_tokens: 0,
        reasoning_tokens: 0,
        cost_usd: None,
        last_seen: None,
        agents: BTreeMap::new(),
    };
    assert_describes(&document, "User", &serde_json::to_value(user).expect("json"), &[]);
    let usage = storage::UsageRow {
        key: None,
        prompts: 0,
        sessions: 0,
        input_tokens: 0,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_creation_tokens: 0,
        reasoning_tokens: 0,
        cost_usd: None,
        unpriced_prompts: 0,
        tool_calls: 0,
        tool_failures: 0,
    };
    assert_describes(&document, "UsageGroup", &serde_json::to_value(usage).expect("json"), &[]);
    let outcome = storage::OutcomeRow {
        key: None,
        lines_added: 0.0,
        lines_removed: 0.0,
        commits: 0.0,
        pull_requests: 0.0,
        edits_accepted: 0.0,
        edits_rejected: 0.0,
        acceptance_rate: None,
        active_seconds: 0.0,
    };
    assert_describes(&document, "OutcomeGroup", &serde_json::to_value(outcome).expect("json"), &[]);
    let unclaimed =
        storage::UnclaimedRow { service_name: "s".into(), scope_name: "x".into(), resources: 1, last_seen: None };
    assert_describes(&document, "UnclaimedResource", &serde_json::to_value(unclaimed).expect("json"), &[]);
    let erased = serde_json::to_value(storage::Erased::default()).expect("json");
    assert_describes(&document, "Erased", &erased, &[]);
    assert_describes(&document, "Expired", &serde_json::to_value(storage::Expired::default()).expect("json"), &[]);
    let retention = serde_json::to_value(storage::Retention::default()).expect("json");
    assert_describes(&document, "Retention", &retention, &[]);
    let report = serde_json::to_value(crate::pipeline::ReplayReport::default()).expect("json");
    assert_describes(&document, "ReplayReport", &report, &[]);
}

#[test]
fn the_admin_schemas_are_what_the_admin_api_writes() {
    let document = served();
    let budget = crate::storage::Budget {
        id: "b".into(),
        project_id: None,
        all_projects: true,
        scope: "user".into(),
        subject: "u".into(),
        period: "day".into(),
        limit_usd: 1.0,
        thresholds: vec![1.0],
        webhook_url: "http://127.0.0.1/".into(),
        created_at: 0,
    };
    assert_describes(&document, "Budget", &serde_json::to_value(&budget).expect("json"), &[]);
    let alert = crate::storage::Alert {
        budget_id: "b".into(),
        period_start: "2026-11".into(),
        threshold: 1.0,
        payload: String::new(),
        attempts: 0,
        delivered_at: None,
        last_error: None,
    };
    assert_describes(&document, "BudgetAlert", &serde_json::to_value(&alert).expect("json"), &[]);
    let status = crate::budgets::BudgetStatus {
        budget,
        period_start: None,
        spent_usd: 0.0,
        state: "ok",
        undelivered_alerts: 1,
        last_delivery_error: Some("could not deliver to http://127.0.0.1".into()),
        alerts: vec![alert],
    };
    assert_describes(&document, "BudgetStatus", &serde_json::to_value(&status).expect("json"), &[]);
    let plugin = crate::plugins::PluginStatus {
        name: "p".into(),
        version: "1".into(),
        agent: "a".into(),
        wit_version: "0.1.0".into(),
        source: crate::plugins::Source::File("/p.wasm".into()),
        sha256: "00".into(),
        active: true,
        claims: Default::default(),
        batches: 0,
        failures: 0,
        put_aside: false,
        last_error: None,
    };
    let plugin = serde_json::to_value(&plugin).expect("json");
    assert_describes(&document, "Plugin", &plugin, &[]);
    assert_describes(&document, "PluginSource", &plugin["source"], &[]);
    assert_describes(&document, "PluginClaims", &plugin["claims"], &[]);
    let built_in = serde_json::to_value(crate::plugins::Source::BuiltIn).expect("json");
    assert_describes(&document, "PluginSource", &built_in, &["path"]);
}

/// The values a query parameter of an operation documents.
fn parameter_enum(document: &Value, path: &str, name: &str) -> Vec<String> {
    let parameters = document["paths"][path]["get"]["parameters"].as_array().expect("parameters");
    let parameter = parameters.iter().find(|p| p["name"] == name).expect("the parameter");
    let schema = &parameter["schema"];
    let schema = match schema["$ref"].as_str() {
        Some(r) => &document["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    };
    schema["enum"].as_array().expect("an enum").iter().map(|v| v.as_str().expect("text").to_owned()).collect()
}

#[test]
fn group_by_documents_what_the_handlers_take() {
    let document = served();
    let cases = [("/api/public/usage", crate::api::USAGE_GROUPS), ("/api/public/outcomes", crate::api::OUTCOME_GROUPS)];
    for (path, allowed) in cases {
        let documented = parameter_enum(&document, path, "group_by");
        let taken: Vec<String> = allowed.split(", ").map(str::to_owned).collect();
        assert_eq!(documented, taken, "{path}");
    }
    for name in parameter_enum(&document, "/api/public/usage", "group_by") {
        let group: Result<crate::storage::UsageGroup, _> = serde_json::from_value(json!(name));
        assert!(group.is_ok(), "{name}");
    }
    for name in parameter_enum(&document, "/api/public/outcomes", "group_by") {
        let group: Result<crate::storage::OutcomeGroup, _> = serde_json::from_value(json!(name));
        assert!(group.is_ok(), "{name}");
    }
}

#[test]
fn every_documented_query_parameter_is_read() {
    let document = served();
    for (path, item) in document["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/public/") {
            continue;
        }
        for parameter in item["get"]["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] != "query" {
                continue;
            }
            let name = parameter["name"].as_str().expect("name");
            let params: crate::api::params::ListParams =
                serde_json::from_value(json!({ name: "7" })).expect("list parameters");
            assert!(format!("{params:?}").contains(&format!("{name}: Some(\"7\")")), "{path} documents {name}");
        }
    }
}

#[test]
fn errors_are_the_error_body() {
    let document = served();
    let body = serde_json::to_value(ErrorBody { error: "x".into() }).expect("json");
    assert_describes(&document, "ErrorBody", &body, &[]);
}
