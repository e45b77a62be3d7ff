//! # antenna-cursor-hook
//!
//! Cursor emits no OpenTelemetry; it runs hooks. This program is the hook: Cursor's
//! `hooks.json` runs it for each agent hook with the hook's JSON on stdin. It answers Cursor on
//! stdout with the output that lets the agent go on, then posts the event to Antenna as one
//! OTLP/HTTP JSON log record (see [`otlp`]).
//!
//! It never stands in the agent's way: the answer is always a go-ahead, printed before any
//! network I/O; the exit code is always 0; a post is bounded by a short timeout; records the
//! host did not take wait in a spool directory and go with the next successful post; after a
//! timeout, later hooks skip the network for a while (`ANTENNA_BACKOFF_MS`) instead of each
//! waiting on a slow host.

pub mod config;
pub mod otlp;
pub mod send;
pub mod spool;

use serde_json::{Map, Value, json};

pub use config::Config;
use spool::Spool;

/// Most records in one post (the spool's backlog goes in pieces).
pub const MAX_BATCH_RECORDS: usize = 200;
/// About the most bytes of spooled records in one post (the host takes 16 MiB).
pub const MAX_BATCH_BYTES: u64 = 4 << 20;

/// What Cursor needs on stdout to go on after `hook`.
pub fn answer(hook: &str) -> &'static str {
    match hook {
        "beforeSubmitPrompt" | "sessionStart" => r#"{"continue":true}"#,
        "beforeShellExecution"
        | "beforeMCPExecution"
        | "beforeReadFile"
        | "beforeTabFileRead"
        | "preToolUse"
        | "subagentStart" => r#"{"permission":"allow"}"#,
        "afterShellExecution"
        | "afterMCPExecution"
        | "afterFileEdit"
        | "afterTabFileEdit"
        | "afterAgentResponse"
        | "afterAgentThought"
        | "postToolUse"
        | "postToolUseFailure"
        | "subagentStop"
        | "preCompact"
        | "stop"
        | "sessionEnd"
        | "workspaceOpen" => "{}",
        // A hook newer than this program: both go-aheads; Cursor ignores the one it does not use.
        _ => r#"{"continue":true,"permission":"allow"}"#,
    }
}

/// What became of the event.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Posted, with `records - 1` spooled ones.
    Sent { records: usize },
    /// Kept in the spool for a later run.
    Spooled { reason: String },
    /// Not recorded (the reason says why).
    Dropped { reason: String },
}

impl Delivery {
    /// A line for stderr (Cursor shows it in its hooks output), when there is news.
    pub fn message(&self) -> Option<String> {
        match self {
            Delivery::Sent { .. } => None,
            Delivery::Spooled { reason } => {
                Some(format!("host not reached ({reason}); the event is spooled for the next run"))
            }
            Delivery::Dropped { reason } => Some(format!("event not recorded: {reason}")),
        }
    }
}

/// One run of the hook: the payload Cursor sent and the hook it is for.
pub struct Invocation {
    pub hook: String,
    payload: Option<Map<String, Value>>,
}

impl Invocation {
    /// From stdin's bytes; `hook_arg` (the program's first argument) names the hook when the
    /// payload does not.
    pub fn parse(input: &[u8], hook_arg: Option<String>) -> Self {
        let payload = match serde_json::from_slice::<Value>(input) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        };
        let hook = payload
            .as_ref()
            .and_then(|p| p.get("hook_event_name"))
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .or(hook_arg)
            .unwrap_or_default();
        Invocation { hook, payload }
    }

    pub fn answer(&self) -> &'static str {
        answer(&self.hook)
    }

    /// Post the event (with any spooled ones), or spool it.
    pub fn forward(self, config: &Config, time_unix_nano: u64) -> Delivery {
        let Some(payload) = self.payload else {
            return Delivery::Dropped { reason: "stdin held no JSON object".into() };
        };
        if self.hook.is_empty() {
            return Delivery::Dropped { reason: "no hook_event_name".into() };
        }
        deliver(config, otlp::resource_logs(config, &payload, &self.hook, time_unix_nano))
    }
}

/// Send `resource_logs` after what the spool holds, in one request; keep it on failure.
pub fn deliver(config: &Config, resource_logs: Value) -> Delivery {
    let spool = Spool::new(&config.spool_dir);
    if spool.backing_off() {
        return keep(&spool, &resource_logs, "it timed out recently".into());
    }
    let claimed = spool.claim(MAX_BATCH_RECORDS - 1, MAX_BATCH_BYTES);
    let mut resources: Vec<Value> = claimed.iter().map(|c| c.record.clone()).collect();
    resources.push(resource_logs);
    let records = resources.len();
    let body = json!({ "resourceLogs": resources }).to_string();
    match send::post(config, body.as_bytes()) {
        Ok(()) => {
            spool.finish(claimed);
            spool.clear_backoff();
            Delivery::Sent { records }
        }
        Err(send::Failure::Refused(reason)) => {
            spool.finish(claimed);
            Delivery::Dropped { reason: format!("the host refused {records} record(s): {reason}") }
        }
        Err(send::Failure::Retry { reason, timed_out }) => {
            spool.release(claimed);
            if timed_out {
                spool.back_off(config.backoff);
            }
            let own = resources.pop().unwrap_or(Value::Null);
            keep(&spool, &own, reason)
        }
    }
}

fn keep(spool: &Spool, record: &Value, reason: String) -> Delivery {
    match spool.push(record) {
        Ok(()) => Delivery::Spooled { reason },
        Err(e) => Delivery::Dropped { reason: format!("{reason}, and spooling failed: {e}") },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_let_the_agent_go_on() {
        assert_eq!(answer("beforeSubmitPrompt"), r#"{"continue":true}"#);
        for hook in ["beforeShellExecution", "beforeMCPExecution", "beforeReadFile", "preToolUse"] {
            assert_eq!(answer(hook), r#"{"permission":"allow"}"#, "{hook}");
        }
        assert_eq!(answer("stop"), "{}", "no follow-up message");
        assert_eq!(answer("afterAgentResponse"), "{}");
        assert_eq!(answer("somethingNew"), r#"{"continue":true,"permission":"allow"}"#);
    }

    #[test]
    fn bad_input_still_gets_an_answer() {
        let invocation = Invocation::parse(b"not json", Some("beforeReadFile".into()));
        assert_eq!(invocation.answer(), r#"{"permission":"allow"}"#);
        let config = Config::from_lookup(|_| None);
        assert!(matches!(invocation.forward(&config, 1), Delivery::Dropped { .. }));
        let invocation = Invocation::parse(br#"{"hook_event_name":"stop"}"#, None);
        assert_eq!(invocation.hook, "stop");
    }
}
