//! One hook invocation as OTLP/JSON: a `ResourceLogs` holding one log record.
//!
//! Resource: `service.name=cursor`, `user.id`, `host.id`, the git remote and branch of the
//! working directory (see [`crate::git`]) and `OTEL_RESOURCE_ATTRIBUTES`. Scope:
//! `antenna.cursor-hook`. Record: event name `cursor.<hook_event_name>`, the payload's fields as
//! attributes under their own names (nested values as OTLP arrays and key-value lists).

use serde_json::{Map, Value, json};

use crate::config::Config;

/// The instrumentation scope the Cursor parser claims.
pub const SCOPE_NAME: &str = "antenna.cursor-hook";
/// Longest string value sent; longer text (a shell command's output, say) is cut, so one hook
/// never makes a request the host refuses as too large.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

const TRUNCATED: &str = "[…truncated by antenna-cursor-hook]";

/// The `ResourceLogs` for one hook invocation at `time_unix_nano`.
pub fn resource_logs(config: &Config, payload: &Map<String, Value>, hook: &str, time_unix_nano: u64) -> Value {
    let mut resource: Vec<(String, String)> = config
        .resource
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "service.name" | "user.id" | "host.id"))
        .cloned()
        .collect();
    resource.push(("service.name".into(), "cursor".into()));
    // The environment names the user; else Cursor's own login.
    let user = config
        .user_id
        .clone()
        .or_else(|| payload.get("user_email").and_then(Value::as_str).filter(|e| !e.is_empty()).map(str::to_owned));
    resource.extend(user.map(|u| ("user.id".to_owned(), u)));
    resource.extend(config.host_id.clone().map(|h| ("host.id".to_owned(), h)));
    // The repository and branch, unless OTEL_RESOURCE_ATTRIBUTES names them.
    if !resource.iter().any(|(k, _)| k.starts_with("vcs.")) {
        resource.extend(crate::git::workplace(payload));
    }
    let time = time_unix_nano.to_string();
    json!({
        "resource": {
            "attributes": resource
                .iter()
                .map(|(k, v)| key_value(k, json!({ "stringValue": v })))
                .collect::<Vec<_>>(),
        },
        "scopeLogs": [{
            "scope": { "name": SCOPE_NAME, "version": env!("CARGO_PKG_VERSION") },
            "logRecords": [{
                "timeUnixNano": time,
                "observedTimeUnixNano": time,
                "severityNumber": 9,
                "severityText": "INFO",
                "eventName": format!("cursor.{hook}"),
                "attributes": attributes(config, payload, hook),
            }],
        }],
    })
}

/// The payload's fields, in key order, as OTLP attributes.
fn attributes(config: &Config, payload: &Map<String, Value>, hook: &str) -> Vec<Value> {
    let mut keys: Vec<&String> = payload.keys().collect();
    keys.sort();
    let mut out = Vec::with_capacity(keys.len() + 1);
    for key in keys {
        let value = &payload[key];
        match key.as_str() {
            _ if value.is_null() => {}
            "content" if !config.file_content && matches!(hook, "beforeReadFile" | "beforeTabFileRead") => {
                // The file itself stays on the machine; its size says enough.
                let bytes = value.as_str().map_or(0, str::len);
                out.push(key_value("content_bytes", json!({ "intValue": bytes.to_string() })));
            }
            // One text form for tool inputs, whether Cursor sent an object or JSON text: the
            // parser pairs a tool's before and after reports by it.
            "tool_input" => out.push(key_value(key, json!({ "stringValue": clip(&canonical_text(value)) }))),
            _ => out.push(key_value(key, any_value(value))),
        }
    }
    // preToolUse/postToolUse name a shell command inside tool_input; the shell hooks name it at
    // the top: lift it so the parser can pair the two kinds of report.
    if !payload.contains_key("command")
        && payload.get("tool_name").and_then(Value::as_str) == Some("Shell")
        && let Some(command) = payload.get("tool_input").and_then(shell_command)
    {
        out.push(key_value("command", json!({ "stringValue": clip(&command) })));
    }
    out
}

fn key_value(key: &str, value: Value) -> Value {
    json!({ "key": key, "value": value })
}

/// A JSON value as an OTLP AnyValue (JSON mapping: 64-bit integers as strings).
pub fn any_value(value: &Value) -> Value {
    match value {
        Value::Null => json!({}),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({ "intValue": i.to_string() }),
            None => json!({ "doubleValue": n.as_f64().unwrap_or_default() }),
        },
        Value::String(s) => json!({ "stringValue": clip(s) }),
        Value::Array(items) => json!({
            "arrayValue": { "values": items.iter().map(any_value).collect::<Vec<_>>() }
        }),
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            json!({
                "kvlistValue": {
                    "values": entries
                        .into_iter()
                        .map(|(k, v)| key_value(k, any_value(v)))
                        .collect::<Vec<_>>()
                }
            })
        }
    }
}

/// JSON text with sorted keys and no spaces: objects, and strings that hold JSON objects or
/// arrays; any other string as it is.
pub fn canonical_text(value: &Value) -> String {
    match value {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(parsed @ (Value::Object(_) | Value::Array(_))) => sorted(&parsed).to_string(),
            _ => s.clone(),
        },
        other => sorted(other).to_string(),
    }
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// `tool_input.command`, from an object or from JSON text.
fn shell_command(tool_input: &Value) -> Option<String> {
    let parsed;
    let object = match tool_input {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        other => other,
    };
    object.get("command")?.as_str().map(str::to_owned)
}

/// At most `MAX_TEXT_BYTES`, cut on a character boundary.
fn clip(text: &str) -> String {
    if text.len() <= MAX_TEXT_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let mut c = Config::from_lookup(|_| None);
        c.host_id = Some("device-1".into());
        c.resource = vec![("deployment.environment".into(), "test".into()), ("service.name".into(), "stale".into())];
        c
    }

    fn attr<'a>(record: &'a Value, key: &str) -> Option<&'a Value> {
        record["attributes"].as_array()?.iter().find(|kv| kv["key"] == key).map(|kv| &kv["value"])
    }

    #[test]
    fn a_prompt_becomes_one_log_record() {
        let payload = json!({
            "hook_event_name": "beforeSubmitPrompt",
            "conversation_id": "c1",
            "generation_id": "g1",
            "prompt": "hello",
            "attachments": [],
            "workspace_roots": ["/w"],
            "user_email": "dev@example.com",
            "transcript_path": null,
            "loop_count": 3,
            "sandbox": false,
            "model_params": {"temperature": 0.5, "effort": "high"}
        });
        let payload = payload.as_object().cloned().unwrap_or_default();
        let value = resource_logs(&config(), &payload, "beforeSubmitPrompt", 42);
        let resource = &value["resource"]["attributes"];
        assert_eq!(
            resource,
            &json!([
                {"key": "deployment.environment", "value": {"stringValue": "test"}},
                {"key": "service.name", "value": {"stringValue": "cursor"}},
                {"key": "user.id", "value": {"stringValue": "dev@example.com"}},
                {"key": "host.id", "value": {"stringValue": "device-1"}},
            ])
        );
        assert_eq!(value["scopeLogs"][0]["scope"]["name"], SCOPE_NAME);
        let record = &value["scopeLogs"][0]["logRecords"][0];
        assert_eq!(record["eventName"], "cursor.beforeSubmitPrompt");
        assert_eq!(record["timeUnixNano"], "42");
        assert_eq!(attr(record, "prompt"), Some(&json!({"stringValue": "hello"})));
        assert_eq!(attr(record, "loop_count"), Some(&json!({"intValue": "3"})));
        assert_eq!(attr(record, "sandbox"), Some(&json!({"boolValue": false})));
        assert_eq!(attr(record, "workspace_roots"), Some(&json!({"arrayValue": {"values": [{"stringValue": "/w"}]}})));
        assert_eq!(
            attr(record, "model_params"),
            Some(&json!({"kvlistValue": {"values": [
                {"key": "effort", "value": {"stringValue": "high"}},
                {"key": "temperature", "value": {"doubleValue": 0.5}},
            ]}}))
        );
        assert_eq!(attr(record, "transcript_path"), None, "nulls are left out");
    }

    #[test]
    fn tool_inputs_are_canonical_and_shell_commands_lifted() {
        let object = json!({"b": 1, "a": {"d": [1, 2], "c": "x"}});
        let text = Value::String(r#"{ "a": {"c": "x", "d": [1,2]}, "b": 1 }"#.into());
        assert_eq!(canonical_text(&object), canonical_text(&text));
        assert_eq!(canonical_text(&object), r#"{"a":{"c":"x","d":[1,2]},"b":1}"#);
        assert_eq!(canonical_text(&Value::String("ls -la".into())), "ls -la");

        let payload = json!({
            "hook_event_name": "preToolUse",
            "tool_name": "Shell",
            "tool_input": {"command": "npm test", "working_directory": "/w"},
        });
        let payload = payload.as_object().cloned().unwrap_or_default();
        let value = resource_logs(&config(), &payload, "preToolUse", 1);
        let record = &value["scopeLogs"][0]["logRecords"][0];
        assert_eq!(attr(record, "command"), Some(&json!({"stringValue": "npm test"})));
        assert_eq!(
            attr(record, "tool_input"),
            Some(&json!({"stringValue": r#"{"command":"npm test","working_directory":"/w"}"#}))
        );
    }

    #[test]
    fn file_contents_stay_home_unless_asked_for() {
        let payload = json!({"file_path": "/w/.env", "content": "SECRET=1"});
        let payload = payload.as_object().cloned().unwrap_or_default();
        let value = resource_logs(&config(), &payload, "beforeReadFile", 1);
        let record = &value["scopeLogs"][0]["logRecords"][0];
        assert_eq!(attr(record, "content"), None);
        assert_eq!(attr(record, "content_bytes"), Some(&json!({"intValue": "8"})));
        let mut c = config();
        c.file_content = true;
        let value = resource_logs(&c, &payload, "beforeReadFile", 1);
        let record = &value["scopeLogs"][0]["logRecords"][0];
        assert_eq!(attr(record, "content"), Some(&json!({"stringValue": "SECRET=1"})));
    }

    #[test]
    fn long_text_is_clipped_on_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT_BYTES);
        let clipped = clip(&long);
        assert!(clipped.len() <= MAX_TEXT_BYTES + TRUNCATED.len());
        assert!(clipped.ends_with(TRUNCATED));
    }
}
