//! The public JSON of a trace (the contract's field names) and its times as RFC 3339.

use serde_json::{Value, json};

use super::merge::{Observation, Trace};

/// Unix nanoseconds as RFC 3339 (UTC), as every API answer shows times.
pub fn rfc3339(ns: Option<i64>) -> Option<String> {
    ns.map(|n| chrono::DateTime::from_timestamp_nanos(n).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
}

/// Unsigned nanoseconds as the signed ones databases store (out of range: none).
pub fn ns(value: Option<u64>) -> Option<i64> {
    value.and_then(|v| i64::try_from(v).ok())
}

/// Most tool calls and errors a trace object lists; the rest are in its observations (paged:
/// `GET /api/public/traces/{id}/observations`), and `tool_call_count`, `error_count` and
/// `observation_count` say how many there are. A prompt that ran for hours keeps a small
/// trace object.
pub const LISTED: usize = 100;

/// How many tool calls, errors and timeline entries a trace has (its lists may hold only the
/// first [`LISTED`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub tool_calls: usize,
    pub tool_failures: usize,
    pub errors: usize,
    pub observations: usize,
}

impl Counts {
    /// The counts of a whole trace.
    pub fn of(t: &Trace) -> Self {
        Counts {
            tool_calls: t.tool_calls.len(),
            tool_failures: t.tool_calls.iter().filter(|c| c.success == Some(false)).count(),
            errors: t.errors.len(),
            observations: t.observations.len(),
        }
    }
}

/// The trace object of the contract (without observations).
pub fn summary(project_id: &str, id: &str, t: &Trace, counts: Counts) -> Value {
    let tool_calls: Vec<_> = t.tool_calls.iter().take(LISTED).collect();
    let errors: Vec<_> = t.errors.iter().take(LISTED).collect();
    json!({
        "id": id,
        "project_id": project_id,
        "agent": t.agent,
        "session_id": t.session_id,
        "user_id": t.user_id,
        "device_id": t.device_id,
        "repository": t.repository,
        "branch": t.branch,
        "team": t.team,
        "start_time": rfc3339(ns(t.start_unix_nano)),
        "end_time": rfc3339(ns(t.end_unix_nano)),
        "models": t.models,
        "input_tokens": t.usage.input,
        "output_tokens": t.usage.output,
        "cache_read_tokens": t.usage.cache_read,
        "cache_creation_tokens": t.usage.cache_creation,
        "reasoning_tokens": t.usage.reasoning,
        "cost_usd": t.cost_usd,
        "cost_source": t.cost_source,
        "prompt": t.prompt,
        "response": t.response,
        "tool_calls": tool_calls,
        "tool_call_count": counts.tool_calls,
        "errors": errors,
        "error_count": counts.errors,
        "observation_count": counts.observations,
    })
}

/// One entry of a trace's timeline as the API shows it, times as RFC 3339.
pub fn observation(o: &Observation) -> Value {
    let mut value = serde_json::to_value(o).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("start_unix_nano");
        map.remove("end_unix_nano");
        map.insert("start_time".into(), rfc3339(ns(o.start_unix_nano)).into());
        map.insert("end_time".into(), rfc3339(ns(o.end_unix_nano)).into());
    }
    value
}

/// Where an observation sorts in its trace's timeline: its start (none: last), then its kind
/// and id — the order `merge` gives them, and the order storage pages them in.
pub fn sort_ns(o: &Observation) -> i64 {
    o.start_unix_nano.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_and_out_of_range_is_none() {
        assert_eq!(rfc3339(Some(1_700_000_000_123_000_000)).as_deref(), Some("2023-11-14T22:13:20.123Z"));
        assert_eq!(rfc3339(None), None);
        assert_eq!(ns(Some(u64::MAX)), None);
        assert_eq!(ns(Some(5)), Some(5));
    }

    #[test]
    fn summary_has_the_contract_fields() {
        let trace = Trace { agent: "claude-code".into(), ..Default::default() };
        let value = summary("proj-1", "prompt-a", &trace, Counts::of(&trace));
        for field in [
            "id",
            "project_id",
            "agent",
            "session_id",
            "user_id",
            "device_id",
            "repository",
            "branch",
            "team",
            "start_time",
            "end_time",
            "models",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_creation_tokens",
            "reasoning_tokens",
            "cost_usd",
            "cost_source",
            "prompt",
            "response",
            "tool_calls",
            "tool_call_count",
            "errors",
            "error_count",
            "observation_count",
        ] {
            assert!(value.get(field).is_some(), "missing {field}");
        }
        assert_eq!(value["id"], "prompt-a");
    }
}
