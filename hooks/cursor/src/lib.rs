//! # antenna-cursor-hook
//!
//! Cursor emits no OpenTelemetry; it runs hooks. This program is the hook: Cursor's
//! `hooks.json` runs it for each agent hook with the hook's JSON on stdin. It answers Cursor on
//! stdout with an answer that neither blocks nor approves anything (see [`answer`]), then posts
//! the event to Antenna as one OTLP/HTTP JSON log record (see [`otlp`]).
//!
//! It observes and never decides: the shipped `hooks.json` registers no permission hook, and the
//! answer never carries a `permission`. It never stands in the agent's way: the answer is printed
//! before any network I/O; the exit code is always 0; a post is bounded by a short timeout;
//! records the host did not take wait in a private spool directory (see [`spool`]) and go with
//! the next successful post; after a timeout, later hooks skip the network for a while
//! (`ANTENNA_BACKOFF_MS`) instead of each waiting on a slow host.

pub mod config;
pub mod git;
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

/// The hooks whose answer is a permission decision (`allow` / `deny` / `ask`). The shipped
/// `hooks.json` registers none of them: Antenna observes, it does not decide. If a user's
/// `hooks.json` still runs the program for one, the answer carries no decision at all (see
/// [`answer`]).
pub const PERMISSION_HOOKS: &[&str] = &[
    "beforeShellExecution",
    "beforeMCPExecution",
    "beforeReadFile",
    "beforeTabFileRead",
    "preToolUse",
    "subagentStart",
];

/// What Cursor reads on stdout after `hook`.
///
/// Never a permission: Cursor's hooks documentation (cursor.com/docs/agent/hooks) defines
/// `{"permission":"allow"}` on the before-hooks as the hook's own approval, so answering it would
/// make installing Antenna approve the agent's commands, MCP calls and file reads. Every hook
/// gets `{}` (no decision, no follow-up message) except the two whose only field is whether the
/// session or the prompt the user sent goes on, which get `{"continue":true}`.
pub fn answer(hook: &str) -> &'static str {
    match hook {
        "beforeSubmitPrompt" | "sessionStart" => r#"{"continue":true}"#,
        _ => "{}",
    }
}

/// What became of the event.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Posted, with `records - 1` spooled ones; `note` says why the spool was left out, if it was.
    Sent { records: usize, note: Option<String> },
    /// Kept in the spool for a later run.
    Spooled { reason: String },
    /// Not recorded (the reason says why).
    Dropped { reason: String },
}

impl Delivery {
    /// A line for stderr (Cursor shows it in its hooks output), when there is news.
    pub fn message(&self) -> Option<String> {
        match self {
            Delivery::Sent { note, .. } => note.as_ref().map(|n| format!("event sent; {n}")),
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
/// Without a private spool directory it is sent alone and dropped on failure (never kept in a
/// place other users share).
pub fn deliver(config: &Config, resource_logs: Value) -> Delivery {
    let spool = match &config.spool_dir {
        Some(dir) => Spool::open(dir).map_err(|e| format!("spool directory not used: {e}")),
        None => Err("no spool directory (set ANTENNA_SPOOL_DIR, XDG_STATE_HOME or HOME)".to_owned()),
    };
    match spool {
        Ok(spool) => deliver_spooled(config, &spool, resource_logs),
        Err(why) => deliver_alone(config, resource_logs, &why),
    }
}

fn deliver_spooled(config: &Config, spool: &Spool, resource_logs: Value) -> Delivery {
    if spool.backing_off() {
        return keep(spool, &resource_logs, "it timed out recently".into());
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
            Delivery::Sent { records, note: None }
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
            keep(spool, &own, reason)
        }
    }
}

fn deliver_alone(config: &Config, resource_logs: Value, why: &str) -> Delivery {
    let body = json!({ "resourceLogs": [resource_logs] }).to_string();
    match send::post(config, body.as_bytes()) {
        // Only worth a word when the directory was refused: a plain missing one is a choice.
        Ok(()) => Delivery::Sent { records: 1, note: config.spool_dir.is_some().then(|| why.to_owned()) },
        Err(send::Failure::Refused(reason)) => {
            Delivery::Dropped { reason: format!("the host refused 1 record(s): {reason}") }
        }
        Err(send::Failure::Retry { reason, .. }) => {
            Delivery::Dropped { reason: format!("{reason}; not spooled: {why}") }
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
    fn answers_let_the_agent_go_on_and_never_grant_a_permission() {
        assert_eq!(answer("beforeSubmitPrompt"), r#"{"continue":true}"#);
        assert_eq!(answer("sessionStart"), r#"{"continue":true}"#);
        for hook in PERMISSION_HOOKS.iter().copied().chain(["somethingNew", ""]) {
            assert_eq!(answer(hook), "{}", "{hook}: no decision");
        }
        assert_eq!(answer("stop"), "{}", "no follow-up message");
        assert_eq!(answer("afterAgentResponse"), "{}");
        for hook in PERMISSION_HOOKS.iter().copied().chain(["stop", "sessionStart", "beforeSubmitPrompt", "x"]) {
            let value: Value = serde_json::from_str(answer(hook)).expect("JSON");
            assert!(value.get("permission").is_none(), "{hook}: {value}");
        }
    }

    #[test]
    fn bad_input_still_gets_an_answer() {
        let invocation = Invocation::parse(b"not json", Some("beforeReadFile".into()));
        assert_eq!(invocation.answer(), "{}");
        let config = Config::from_lookup(|_| None);
        assert!(matches!(invocation.forward(&config, 1), Delivery::Dropped { .. }));
        let invocation = Invocation::parse(br#"{"hook_event_name":"stop"}"#, None);
        assert_eq!(invocation.hook, "stop");
    }
}
