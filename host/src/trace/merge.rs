//! Fragments -> one trace. Pure and order-independent: the same set of fragments gives the
//! same trace whatever order the batches arrived in.
//!
//! Rules:
//! - Fragments of the same kind and id are one thing (a tool call, a model call, the prompt).
//!   Their reports are merged field by field; per field the first value present in
//!   `report_id` order wins, and a real value beats a placeholder (`[... not captured: ...]`).
//!   Exceptions: a prompt's start is the earliest, its end and `response` the latest.
//! - Model calls reported through two channels (an agent's log event and its span for the same
//!   call) count once: calls that share an id merged above; the rest are paired per channel in
//!   time order, and each pair counts once (the log report preferred: it carries cost).

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::{Attribution, Body, Channel, Event, Fragment, ModelCall, Prompt, ToolCall, Usage};

/// The normalized per-prompt trace (the contract's JSON field names).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trace {
    pub agent: String,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub team: Option<String>,
    pub start_unix_nano: Option<u64>,
    pub end_unix_nano: Option<u64>,
    pub models: Vec<String>,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    /// `agent` or `price-table`, set by [`super::prices::price`]; `None` when not known.
    pub cost_source: Option<&'static str>,
    pub prompt: Option<String>,
    pub response: Option<String>,
    pub tool_calls: Vec<ToolCallView>,
    pub errors: Vec<String>,
    pub observations: Vec<Observation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCallView {
    pub id: String,
    pub name: Option<String>,
    pub args: Option<String>,
    pub result: Option<String>,
    pub duration_ms: Option<u64>,
    pub success: Option<bool>,
    /// The agent's word alone (`accept`, `reject`, ...).
    pub decision: Option<String>,
    /// Where the decision came from (`config`, `user_temporary`, ...).
    pub decision_source: Option<String>,
    #[serde(skip)]
    pub start_unix_nano: Option<u64>,
}

/// One entry of a trace's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: String,
    pub name: String,
    pub start_unix_nano: Option<u64>,
    pub end_unix_nano: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_source: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<serde_json::Value>,
    /// Through which channels the thing was reported.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reported_via: Vec<Channel>,
}

/// A stored fragment with the agent that produced it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub agent: String,
    pub fragment: Fragment,
}

/// A placeholder for content that is not there; any real value beats it.
pub fn is_placeholder(value: &str) -> bool {
    value.starts_with('[')
        && value.ends_with(']')
        && (value.contains(" not captured: ") || value.contains(" not exported by "))
}

/// Merge text fields: keep the current value unless it is absent or a placeholder that a real
/// value can replace.
pub(super) fn take_text(slot: &mut Option<String>, value: &Option<String>) {
    match (slot.as_deref(), value.as_deref()) {
        (None, Some(_)) => *slot = value.clone(),
        (Some(current), Some(new)) if is_placeholder(current) && !is_placeholder(new) => *slot = value.clone(),
        _ => {}
    }
}

pub(super) fn take<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

/// Build the trace from all fragments stored under its keys.
pub fn merge(mut fragments: Vec<Stored>) -> Trace {
    // Deterministic order whatever the arrival order.
    fragments.sort_by(|a, b| order(&a.fragment).cmp(&order(&b.fragment)));

    let mut trace = Trace::default();
    let mut who = Attribution::default();
    let mut prompt = Prompt::default();
    let mut response_time = 0u64;
    let mut calls: BTreeMap<&str, (ModelCall, Vec<Channel>)> = BTreeMap::new();
    let mut tools: BTreeMap<&str, ToolCall> = BTreeMap::new();
    let mut events = Vec::new();

    for stored in &fragments {
        let f = &stored.fragment;
        if trace.agent.is_empty() {
            trace.agent.clone_from(&stored.agent);
        }
        take(&mut who.session_id, &f.attribution.session_id);
        take(&mut who.user_id, &f.attribution.user_id);
        take(&mut who.device_id, &f.attribution.device_id);
        take(&mut who.repository, &f.attribution.repository);
        take(&mut who.branch, &f.attribution.branch);
        take(&mut who.team, &f.attribution.team);
        match &f.body {
            Body::Prompt(p) => merge_prompt(&mut prompt, &mut response_time, p),
            Body::ModelCall(c) => merge_call(calls.entry(&f.id).or_insert_with(|| (c.clone(), Vec::new())), c),
            Body::ToolCall(t) => merge_tool(tools.entry(&f.id).or_default(), t),
            Body::Event(e) => events.push((f.id.as_str(), e)),
            Body::UsageMetric(_) => {}
        }
    }

    let mut observations = Vec::new();
    add_calls(&mut trace, &mut observations, count_calls(calls.iter().map(|(id, call)| (*id, call))));
    for (id, tool) in &tools {
        observations.push(tool_observation(id, tool));
        trace.tool_calls.push(tool_view(id, tool));
    }
    trace.tool_calls.sort_by_key(tool_order);
    for (id, event) in events {
        if let Some(error) = &event.error {
            trace.errors.push(error.clone());
        }
        observations.push(event_observation(id, event));
    }
    sort_timeline(&mut observations);

    let times = observations.iter().flat_map(|o| [o.start_unix_nano, o.end_unix_nano]).flatten();
    trace.start_unix_nano = prompt.start_unix_nano.or_else(|| times.clone().min());
    trace.end_unix_nano = prompt.end_unix_nano.max(times.max());
    trace.prompt = prompt.text;
    trace.response = prompt.response;
    trace.session_id = who.session_id;
    trace.user_id = who.user_id;
    trace.device_id = who.device_id;
    trace.repository = who.repository;
    trace.branch = who.branch;
    trace.team = who.team;
    trace.observations = observations;
    trace
}

/// Where a fragment sorts when merging: per field the first value in this order wins.
pub(super) fn order(f: &Fragment) -> (&'static str, &str, &str, &str) {
    (f.body.kind(), &f.id, &f.report_id, &f.trace_key)
}

/// Fold one report of the prompt into it: the first real text, the latest real response,
/// the earliest start and the latest end.
pub(super) fn merge_prompt(prompt: &mut Prompt, response_time: &mut u64, p: &Prompt) {
    take_text(&mut prompt.text, &p.text);
    if let Some(response) = &p.response {
        let at = p.end_unix_nano.unwrap_or(0);
        let replace = prompt.response.as_deref().is_none_or(|current| {
            (at > *response_time && !is_placeholder(response)) || (is_placeholder(current) && !is_placeholder(response))
        });
        if replace {
            prompt.response = Some(response.clone());
            *response_time = at;
        }
    }
    prompt.start_unix_nano = min_opt(prompt.start_unix_nano, p.start_unix_nano);
    prompt.end_unix_nano = prompt.end_unix_nano.max(p.end_unix_nano);
}

/// Fold one report of a model call into the call merged so far (with its channels).
pub(super) fn merge_call((merged, via): &mut (ModelCall, Vec<Channel>), c: &ModelCall) {
    if !via.contains(&c.channel) {
        via.push(c.channel);
    }
    take(&mut merged.model, &c.model);
    take(&mut merged.usage, &c.usage);
    take(&mut merged.cost_usd, &c.cost_usd);
    take(&mut merged.start_unix_nano, &c.start_unix_nano);
    take(&mut merged.end_unix_nano, &c.end_unix_nano);
    take(&mut merged.duration_ms, &c.duration_ms);
    take(&mut merged.error, &c.error);
}

/// Fold one report of a tool call into the call merged so far.
pub(super) fn merge_tool(merged: &mut ToolCall, t: &ToolCall) {
    take(&mut merged.name, &t.name);
    take_text(&mut merged.args, &t.args);
    take_text(&mut merged.result, &t.result);
    take(&mut merged.duration_ms, &t.duration_ms);
    take(&mut merged.success, &t.success);
    take(&mut merged.decision, &t.decision);
    merged.start_unix_nano = min_opt(merged.start_unix_nano, t.start_unix_nano);
}

/// Count each model call once: calls reported through both channels as they are; the
/// single-channel ones paired across channels in time order (the log report preferred: it
/// carries cost). `calls` in id order.
pub(super) fn count_calls<'a>(
    calls: impl Iterator<Item = (&'a str, &'a (ModelCall, Vec<Channel>))>,
) -> Vec<(&'a str, ModelCall, Vec<Channel>)> {
    let end_of = |c: &ModelCall| c.end_unix_nano.or(c.start_unix_nano).unwrap_or(0);
    let mut by_channel: BTreeMap<Vec<Channel>, Vec<(&str, &ModelCall)>> = BTreeMap::new();
    for (id, (call, via)) in calls {
        let key = if via.len() == 1 { via.clone() } else { Vec::new() };
        by_channel.entry(key).or_default().push((id, call));
    }
    for list in by_channel.values_mut() {
        list.sort_by_key(|(id, c)| (end_of(c), *id));
    }
    let both = by_channel.remove(&Vec::new()).unwrap_or_default();
    let logs = by_channel.remove(&vec![Channel::Log]).unwrap_or_default();
    let spans = by_channel.remove(&vec![Channel::Span]).unwrap_or_default();
    let mut counted: Vec<(&str, ModelCall, Vec<Channel>)> =
        both.into_iter().map(|(id, c)| (id, c.clone(), vec![Channel::Log, Channel::Span])).collect();
    for i in 0..logs.len().max(spans.len()) {
        match (logs.get(i), spans.get(i)) {
            (Some((id, log)), Some((_, span))) => {
                // The log report has the cost; the span may know what the log lacks.
                let mut call = (*log).clone();
                take(&mut call.model, &span.model);
                take(&mut call.usage, &span.usage);
                take(&mut call.start_unix_nano, &span.start_unix_nano);
                take(&mut call.error, &span.error);
                counted.push((id, call, vec![Channel::Log, Channel::Span]));
            }
            (Some((id, c)), None) => counted.push((id, (*c).clone(), vec![Channel::Log])),
            (None, Some((id, c))) => counted.push((id, (*c).clone(), vec![Channel::Span])),
            (None, None) => {}
        }
    }
    counted
}

/// The counted model calls into the trace: tokens, models, errors and timeline entries.
pub(super) fn add_calls(
    trace: &mut Trace,
    observations: &mut Vec<Observation>,
    counted: Vec<(&str, ModelCall, Vec<Channel>)>,
) {
    for (id, call, via) in counted {
        if let Some(u) = &call.usage {
            trace.usage.add(u);
        }
        if let Some(model) = &call.model
            && !trace.models.contains(model)
        {
            trace.models.push(model.clone());
        }
        if let Some(error) = &call.error {
            trace.errors.push(error.clone());
        }
        observations.push(Observation {
            kind: "llm_call",
            id: id.to_owned(),
            name: call.model.clone().unwrap_or_else(|| "model call".into()),
            start_unix_nano: call.start_unix_nano,
            end_unix_nano: call.end_unix_nano,
            model: call.model.clone(),
            usage: call.usage,
            cost_usd: call.cost_usd,
            cost_source: call.cost_usd.map(|_| "agent"),
            error: call.error.clone(),
            attributes: None,
            reported_via: via,
        });
    }
}

/// A timeline in order: by start (none: last), kind and id (stable: events of one id keep
/// their merge order).
pub(super) fn sort_timeline(observations: &mut [Observation]) {
    observations.sort_by(|a, b| {
        (a.start_unix_nano.unwrap_or(u64::MAX), a.kind, &a.id).cmp(&(
            b.start_unix_nano.unwrap_or(u64::MAX),
            b.kind,
            &b.id,
        ))
    });
}

/// A merged tool call's timeline entry.
pub(super) fn tool_observation(id: &str, tool: &ToolCall) -> Observation {
    let (decision, source) = split_decision(tool.decision.as_deref());
    Observation {
        kind: "tool_call",
        id: id.to_owned(),
        name: tool.name.clone().unwrap_or_else(|| "tool".into()),
        start_unix_nano: tool.start_unix_nano,
        end_unix_nano: tool_end(tool),
        model: None,
        usage: None,
        cost_usd: None,
        cost_source: None,
        error: (tool.success == Some(false)).then(|| tool.result.clone().unwrap_or_default()),
        // The whole call, for a trace whose `tool_calls` list is capped (see `view`).
        attributes: Some(serde_json::json!({
            "args": tool.args,
            "result": tool.result,
            "duration_ms": tool.duration_ms,
            "success": tool.success,
            "decision": decision,
            "decision_source": source,
        })),
        reported_via: Vec::new(),
    }
}

/// When a tool call ended. Plugin-reported numbers: an end past u64 (absurd start or
/// duration) is no end.
pub(super) fn tool_end(tool: &ToolCall) -> Option<u64> {
    tool.start_unix_nano
        .zip(tool.duration_ms)
        .and_then(|(s, d)| d.checked_mul(1_000_000).and_then(|d| s.checked_add(d)))
}

/// A merged tool call as the trace lists it.
pub(super) fn tool_view(id: &str, tool: &ToolCall) -> ToolCallView {
    let (decision, source) = split_decision(tool.decision.as_deref());
    ToolCallView {
        id: id.to_owned(),
        name: tool.name.clone(),
        args: tool.args.clone(),
        result: tool.result.clone(),
        duration_ms: tool.duration_ms,
        success: tool.success,
        decision: decision.map(str::to_owned),
        decision_source: source.map(str::to_owned),
        start_unix_nano: tool.start_unix_nano,
    }
}

/// The order of a trace's `tool_calls`: by start (none: last), then id.
pub(super) fn tool_order(t: &ToolCallView) -> (u64, String) {
    (t.start_unix_nano.unwrap_or(u64::MAX), t.id.clone())
}

/// An event's timeline entry.
pub(super) fn event_observation(id: &str, event: &Event) -> Observation {
    Observation {
        kind: "event",
        id: id.to_owned(),
        name: event.name.clone(),
        start_unix_nano: Some(event.time_unix_nano),
        end_unix_nano: None,
        model: None,
        usage: None,
        cost_usd: None,
        cost_source: None,
        error: event.error.clone(),
        attributes: serde_json::from_str(&event.attributes_json).ok(),
        reported_via: Vec::new(),
    }
}

/// A decision as WIT 0.1 plugins report it, `accept (config)`: the agent's word and, in
/// brackets, where it came from.
fn split_decision(decision: Option<&str>) -> (Option<&str>, Option<&str>) {
    let Some(decision) = decision else { return (None, None) };
    match decision.strip_suffix(')').and_then(|d| d.split_once(" (")) {
        Some((word, source)) if !word.is_empty() && !source.is_empty() => (Some(word), Some(source)),
        _ => (Some(decision), None),
    }
}

pub(super) fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Union-find over trace keys: keys named together (a fragment's key and its
/// `also_known_as`) end in one group, i.e. one trace.
#[derive(Default)]
pub struct KeyGroups {
    parent: BTreeMap<String, String>,
}

impl KeyGroups {
    fn root(&mut self, key: &str) -> String {
        let mut current = key.to_owned();
        while let Some(parent) = self.parent.get(&current).filter(|p| **p != current) {
            current = parent.clone();
        }
        // Path compression: point every key on the way straight at the root. Without it, keys
        // joined in decreasing order form one long chain and every lookup walks all of it (one
        // 5 MB body of 40 000 Claude Code log records took minutes in `into_groups`).
        let mut node = key.to_owned();
        while node != current {
            match self.parent.insert(node, current.clone()) {
                Some(next) => node = next,
                None => break,
            }
        }
        current
    }

    pub fn join<'a>(&mut self, keys: impl Iterator<Item = &'a String>) {
        let mut first: Option<String> = None;
        for key in keys {
            self.parent.entry(key.clone()).or_insert_with(|| key.clone());
            let root = self.root(key);
            match &first {
                None => first = Some(root),
                Some(f) if *f != root => {
                    let (keep, other) = if *f < root { (f.clone(), root) } else { (root, f.clone()) };
                    self.parent.insert(other, keep.clone());
                    first = Some(keep);
                }
                _ => {}
            }
        }
    }

    pub fn into_groups(mut self) -> Vec<Vec<String>> {
        let keys: Vec<String> = self.parent.keys().cloned().collect();
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in keys {
            let root = self.root(&key);
            groups.entry(root).or_default().push(key);
        }
        groups.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::Event;

    fn stored(key: &str, id: &str, report: &str, body: Body) -> Stored {
        Stored {
            agent: "claude-code".into(),
            fragment: Fragment {
                trace_key: key.into(),
                also_known_as: Vec::new(),
                id: id.into(),
                report_id: report.into(),
                attribution: Attribution {
                    session_id: Some("s".into()),
                    user_id: None,
                    device_id: Some("d".into()),
                    ..Default::default()
                },
                body,
            },
        }
    }

    fn call(channel: Channel, end: u64, input: u64, cost: Option<f64>) -> Body {
        Body::ModelCall(ModelCall {
            channel,
            model: Some("m".into()),
            usage: Some(Usage { input, output: 1, ..Default::default() }),
            cost_usd: cost,
            start_unix_nano: Some(end - 1),
            end_unix_nano: Some(end),
            duration_ms: None,
            error: None,
        })
    }

    #[test]
    fn a_call_reported_by_log_and_span_counts_once_and_keeps_the_log_cost() {
        let fragments = vec![
            stored("k", "log-1", "a", call(Channel::Log, 10, 100, Some(0.5))),
            stored("k", "span-1", "b", call(Channel::Span, 11, 100, None)),
            stored("k", "log-2", "c", call(Channel::Log, 20, 7, Some(0.25))),
        ];
        let mut trace = merge(fragments);
        assert_eq!(trace.usage.input, 107, "the first call once, the second once");
        super::super::prices::price(&mut trace, &Default::default());
        assert_eq!((trace.cost_usd, trace.cost_source), (Some(0.75), Some("agent")));
        let calls: Vec<_> = trace.observations.iter().filter(|o| o.kind == "llm_call").collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].reported_via, vec![Channel::Log, Channel::Span]);
        assert_eq!(calls[1].reported_via, vec![Channel::Log]);
    }

    #[test]
    fn the_same_fragments_in_any_order_give_the_same_trace() {
        let fragments = vec![
            stored(
                "k",
                "p",
                "1",
                Body::Prompt(Prompt {
                    text: Some("[prompt not captured: OTEL_LOG_USER_PROMPTS is off]".into()),
                    response: Some("first".into()),
                    start_unix_nano: Some(5),
                    end_unix_nano: Some(8),
                }),
            ),
            stored(
                "k",
                "p",
                "2",
                Body::Prompt(Prompt {
                    text: Some("hello".into()),
                    response: Some("last".into()),
                    start_unix_nano: Some(3),
                    end_unix_nano: Some(9),
                }),
            ),
            stored("k", "t", "1", Body::ToolCall(ToolCall { name: Some("Bash".into()), ..Default::default() })),
            stored(
                "k",
                "t",
                "2",
                Body::ToolCall(ToolCall { success: Some(false), result: Some("exit 1".into()), ..Default::default() }),
            ),
        ];
        let forward = merge(fragments.clone());
        let backward = merge(fragments.into_iter().rev().collect());
        assert_eq!(forward, backward);
        assert_eq!(forward.prompt.as_deref(), Some("hello"), "a real value beats a placeholder");
        assert_eq!(forward.response.as_deref(), Some("last"), "the latest response");
        assert_eq!(forward.start_unix_nano, Some(3), "the earliest start");
        assert_eq!(forward.tool_calls.len(), 1, "one tool call from two reports");
        assert_eq!(forward.tool_calls[0].name.as_deref(), Some("Bash"));
        assert_eq!(forward.tool_calls[0].success, Some(false));
        assert_eq!(forward.session_id.as_deref(), Some("s"));
    }

    #[test]
    fn event_errors_and_absurd_tool_times_do_not_break_the_timeline() {
        let fragments = vec![
            stored(
                "k",
                "e",
                "1",
                Body::Event(Event {
                    name: "api_error".into(),
                    time_unix_nano: 4,
                    attributes_json: "{\"status\":500}".into(),
                    error: Some("overloaded".into()),
                }),
            ),
            stored(
                "k",
                "t",
                "1",
                Body::ToolCall(ToolCall {
                    start_unix_nano: Some(u64::MAX - 1),
                    duration_ms: Some(u64::MAX),
                    ..Default::default()
                }),
            ),
        ];
        let trace = merge(fragments);
        assert_eq!(trace.errors, vec!["overloaded".to_owned()]);
        let tool = trace.observations.iter().find(|o| o.kind == "tool_call").expect("a tool observation");
        assert_eq!(tool.end_unix_nano, None, "an end past u64 is no end");
        let event = trace.observations.iter().find(|o| o.kind == "event").expect("an event observation");
        assert_eq!(event.attributes, Some(serde_json::json!({"status": 500})));
    }

    #[test]
    fn keys_named_together_form_one_group_whatever_the_order() {
        let key = |s: &str| s.to_owned();
        let mut groups = KeyGroups::default();
        groups.join([key("c"), key("d")].iter());
        groups.join([key("a"), key("b")].iter());
        groups.join([key("d"), key("a")].iter());
        groups.join([key("x")].iter());
        assert_eq!(groups.into_groups(), vec![vec!["a", "b", "c", "d"], vec!["x"]]);

        // A long chain joined in decreasing order stays one group (path compression).
        let mut chain = KeyGroups::default();
        let keys: Vec<String> = (0..2_000).rev().map(|i| format!("k{i:05}")).collect();
        for pair in keys.windows(2) {
            chain.join(pair.iter());
        }
        assert_eq!(chain.into_groups().len(), 1);
    }

    #[test]
    fn placeholders_are_recognized() {
        assert!(is_placeholder("[prompt not captured: OTEL_LOG_USER_PROMPTS is off]"));
        assert!(is_placeholder("[response not exported by Codex]"));
        assert!(!is_placeholder("[a real bracketed answer]"));
    }
}
