//! A trace updated from what a write adds, not from all its fragments. A trace keeps a small
//! state between writes: which fragment won each attribution field, the merged prompt, every
//! model call merged per id (counting a call once across channels needs them all, in time
//! order), the tool calls' counts, time span and first listed ones, the events' counts, time
//! span and first errors. A write moves that state with its own fragments and the stored
//! reports of the tool and model calls it touched, and the result is what merging every
//! fragment again gives ([`super::merge`]; the property test below holds them equal). What
//! the state cannot decide (an event id seen again, a tool call whose times move at the edge
//! of the trace's span) is left to a full merge: [`TraceState::apply`] says `None`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::assemble::{Assembly, Timeline, TraceRecord, rows};
use super::merge::{self, Stored, Trace};
use super::model::{Body, Channel, Event, ModelCall, Prompt, ToolCall};
use super::prices::price;
use super::view::{self, LISTED};

/// Where a fragment sorts when merging (kind, id, report id, trace key).
type Order = (String, String, String, String);

fn order_of(stored: &Stored) -> Order {
    let (kind, id, report, key) = merge::order(&stored.fragment);
    (kind.to_owned(), id.to_owned(), report.to_owned(), key.to_owned())
}

/// A field's value and the fragment it came from: the first fragment in merge order wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Won {
    order: Order,
    value: String,
}

fn win(slot: &mut Option<Won>, order: &Order, value: Option<&String>) {
    if let Some(value) = value
        && slot.as_ref().is_none_or(|won| *order < won.order)
    {
        *slot = Some(Won { order: order.clone(), value: value.clone() });
    }
}

/// Earliest and latest of some times.
fn widen(span: &mut Option<(u64, u64)>, times: impl IntoIterator<Item = Option<u64>>) {
    for t in times.into_iter().flatten() {
        *span = Some(span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t))));
    }
}

/// Insert into a list kept sorted by `key` and cut to [`LISTED`] entries.
fn insert_listed<T, K: Ord>(list: &mut Vec<T>, item: T, key: impl Fn(&T) -> K) {
    let at = list.partition_point(|other| key(other) < key(&item));
    if at < LISTED {
        list.insert(at, item);
        list.truncate(LISTED);
    }
}

/// What a trace keeps between writes (stored as JSON beside it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TraceState {
    agent: Option<Won>,
    session_id: Option<Won>,
    user_id: Option<Won>,
    device_id: Option<Won>,
    repository: Option<Won>,
    branch: Option<Won>,
    team: Option<Won>,
    prompt: Prompt,
    calls: BTreeMap<String, (ModelCall, Vec<Channel>)>,
    tools: usize,
    tool_failures: usize,
    /// The first [`LISTED`] tool calls in the trace's order, merged.
    listed_tools: Vec<(String, ToolCall)>,
    tool_span: Option<(u64, u64)>,
    events: usize,
    event_errors: usize,
    /// The first [`LISTED`] event errors in merge order (id, report id, trace key).
    listed_event_errors: Vec<((String, String, String), String)>,
    event_span: Option<(u64, u64)>,
}

/// A stored fragment of a model call, tool call or event that a write touched, with the
/// batch it came in.
#[derive(Debug, Clone)]
pub struct Entity {
    pub batch_id: i64,
    pub stored: Stored,
}

/// What one write adds to a trace that has a state.
#[derive(Debug)]
pub struct Addition<'a> {
    /// The fragments the write added (none of them replaced a stored one).
    pub added: &'a [Stored],
    /// The batches of the write.
    pub batches: &'a [i64],
    /// Every stored fragment, after the write, of each entity in [`Addition::touched`].
    pub entities: Vec<Entity>,
    /// Every stored prompt fragment of the trace, when the write added one.
    pub prompts: Vec<Stored>,
}

impl Addition<'_> {
    /// The model calls, tool calls and events (kind, id) whose stored fragments the write
    /// needs; and whether it needs the trace's prompt fragments.
    pub fn touched(added: &[Stored]) -> (BTreeSet<(&'static str, String)>, bool) {
        let mut entities = BTreeSet::new();
        let mut prompt = false;
        for s in added {
            match s.fragment.body {
                Body::Prompt(_) => prompt = true,
                Body::UsageMetric(_) => {}
                _ => {
                    entities.insert((s.fragment.body.kind(), s.fragment.id.clone()));
                }
            }
        }
        (entities, prompt)
    }
}

impl TraceState {
    /// The state of a trace made of these fragments.
    pub fn of(stored: &[Stored]) -> TraceState {
        let mut state = TraceState::default();
        for s in stored {
            state.attribute(s);
        }
        state.prompt = merged_prompt(stored.iter());
        let mut entities: BTreeMap<(&str, &str), Vec<&Stored>> = BTreeMap::new();
        for s in stored {
            entities.entry((s.fragment.body.kind(), &s.fragment.id)).or_default().push(s);
        }
        for ((kind, id), mut reports) in entities {
            reports.sort_by(|a, b| merge::order(&a.fragment).cmp(&merge::order(&b.fragment)));
            match kind {
                "model_call" => {
                    if let Some(call) = merged_call(reports.iter().copied()) {
                        state.calls.insert(id.to_owned(), call);
                    }
                }
                "tool_call" => {
                    // Nothing stored before: always decided.
                    let _ = state.add_tool(id, None, merged_tool(reports.iter().copied()));
                }
                "event" => {
                    for s in reports {
                        if let Body::Event(e) = &s.fragment.body {
                            state.add_event(s, e);
                        }
                    }
                }
                _ => {}
            }
        }
        state
    }

    /// The state as stored.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored state; `None` when it is not one (the trace is then merged whole).
    pub fn from_json(text: &str) -> Option<TraceState> {
        serde_json::from_str(text).ok()
    }

    /// The trace after `addition`, and what to write of it; `None` when only a full merge
    /// can tell.
    pub fn apply(
        mut self,
        addition: &Addition<'_>,
        project_id: &str,
        trace_id: &str,
        with: &Assembly,
    ) -> Option<TraceRecord> {
        // A report sent twice in one write: the one stored is the last, which the state cannot tell.
        let mut seen = BTreeSet::new();
        if !addition.added.iter().all(|s| seen.insert(merge::order(&s.fragment))) {
            return None;
        }
        for s in addition.added {
            self.attribute(s);
        }
        if addition.added.iter().any(|s| matches!(s.fragment.body, Body::Prompt(_))) {
            self.prompt = merged_prompt(addition.prompts.iter());
        }
        let mut entities: BTreeMap<(&str, &str), Vec<&Entity>> = BTreeMap::new();
        for e in &addition.entities {
            entities.entry((e.stored.fragment.body.kind(), &e.stored.fragment.id)).or_default().push(e);
        }
        let earlier = |e: &Entity| !addition.batches.contains(&e.batch_id);
        let mut changed = Vec::new();
        let mut calls_changed = false;
        for ((kind, id), mut reports) in entities {
            reports.sort_by(|a, b| merge::order(&a.stored.fragment).cmp(&merge::order(&b.stored.fragment)));
            match kind {
                "model_call" => {
                    let call = merged_call(reports.iter().map(|e| &e.stored))?;
                    self.calls.insert(id.to_owned(), call);
                    calls_changed = true;
                }
                "tool_call" => {
                    let old: Vec<&Stored> = reports.iter().filter(|e| earlier(e)).map(|e| &e.stored).collect();
                    let old = (!old.is_empty()).then(|| merged_tool(old.into_iter()));
                    let new = merged_tool(reports.iter().map(|e| &e.stored));
                    self.add_tool(id, old, new.clone())?;
                    changed.push(merge::tool_observation(id, &new));
                }
                "event" => {
                    // An id reported again replaces an entry: the state cannot tell which.
                    let [only] = reports.as_slice() else { return None };
                    if earlier(only) {
                        return None;
                    }
                    let Body::Event(event) = &only.stored.fragment.body else { return None };
                    self.add_event(&only.stored, event);
                    changed.push(merge::event_observation(id, event));
                }
                _ => {}
            }
        }
        Some(self.record(project_id, trace_id, with, rows(&changed), calls_changed))
    }

    /// The trace this state stands for, with the timeline rows a write changed.
    pub(super) fn record(
        &self,
        project_id: &str,
        trace_id: &str,
        with: &Assembly,
        mut changed: Vec<super::assemble::ObservationRow>,
        calls_changed: bool,
    ) -> TraceRecord {
        let value = |won: &Option<Won>| won.as_ref().map(|w| w.value.clone());
        let mut trace = Trace {
            agent: value(&self.agent).unwrap_or_default(),
            session_id: value(&self.session_id),
            user_id: value(&self.user_id).or_else(|| with.fallback_user.clone()),
            device_id: value(&self.device_id),
            repository: value(&self.repository),
            branch: value(&self.branch),
            team: value(&self.team),
            prompt: self.prompt.text.clone(),
            response: self.prompt.response.clone(),
            ..Trace::default()
        };
        let mut calls = Vec::new();
        merge::add_calls(&mut trace, &mut calls, merge::count_calls(self.calls.iter().map(|(id, c)| (id.as_str(), c))));
        // Priced in timeline order, as a whole merge prices them (the shares' order, the sums).
        merge::sort_timeline(&mut calls);
        trace.observations = calls;
        let models = price(&mut trace, &with.prices);
        let mut span = None;
        widen(&mut span, trace.observations.iter().flat_map(|o| [o.start_unix_nano, o.end_unix_nano]));
        for (lo, hi) in [self.tool_span, self.event_span].into_iter().flatten() {
            widen(&mut span, [Some(lo), Some(hi)]);
        }
        trace.start_unix_nano = self.prompt.start_unix_nano.or(span.map(|(lo, _)| lo));
        trace.end_unix_nano = self.prompt.end_unix_nano.max(span.map(|(_, hi)| hi));
        let counts = view::Counts {
            tool_calls: self.tools,
            tool_failures: self.tool_failures,
            errors: trace.errors.len() + self.event_errors,
            observations: trace.observations.len() + self.tools + self.events,
        };
        trace.errors.extend(self.listed_event_errors.iter().map(|(_, text)| text.clone()));
        trace.tool_calls = self.listed_tools.iter().map(|(id, t)| merge::tool_view(id, t)).collect();
        if calls_changed {
            changed.extend(rows(&trace.observations));
        }
        let timeline = Timeline::Changed { rows: changed, calls: calls_changed };
        TraceRecord::of(project_id, trace_id, &trace, models, counts, timeline, self)
    }

    fn attribute(&mut self, s: &Stored) {
        let order = order_of(s);
        let who = &s.fragment.attribution;
        win(&mut self.agent, &order, Some(&s.agent));
        win(&mut self.session_id, &order, who.session_id.as_ref());
        win(&mut self.user_id, &order, who.user_id.as_ref());
        win(&mut self.device_id, &order, who.device_id.as_ref());
        win(&mut self.repository, &order, who.repository.as_ref());
        win(&mut self.branch, &order, who.branch.as_ref());
        win(&mut self.team, &order, who.team.as_ref());
    }

    /// A tool call enters (`old`: what it was before the write); `None` when its times moved
    /// at the edge of the span the state keeps.
    fn add_tool(&mut self, id: &str, old: Option<ToolCall>, new: ToolCall) -> Option<()> {
        let times = |t: &ToolCall| [t.start_unix_nano, merge::tool_end(t)];
        if new.success == Some(false) {
            self.tool_failures += 1;
        }
        match old {
            None => self.tools += 1,
            Some(old) => {
                if old.success == Some(false) {
                    self.tool_failures = self.tool_failures.saturating_sub(1);
                }
                if let Some((lo, hi)) = self.tool_span
                    && times(&old) != times(&new)
                    && times(&old).into_iter().flatten().any(|t| t == lo || t == hi)
                {
                    return None;
                }
                self.listed_tools.retain(|(listed, _)| listed != id);
            }
        }
        widen(&mut self.tool_span, times(&new));
        insert_listed(&mut self.listed_tools, (id.to_owned(), new), |(id, t)| {
            (t.start_unix_nano.unwrap_or(u64::MAX), id.clone())
        });
        Some(())
    }

    fn add_event(&mut self, s: &Stored, event: &Event) {
        self.events += 1;
        if let Some(error) = &event.error {
            self.event_errors += 1;
            let f = &s.fragment;
            let key = (f.id.clone(), f.report_id.clone(), f.trace_key.clone());
            insert_listed(&mut self.listed_event_errors, (key, error.clone()), |(key, _)| key.clone());
        }
        widen(&mut self.event_span, [Some(event.time_unix_nano)]);
    }
}

/// The prompt merged from every prompt fragment among `stored`.
fn merged_prompt<'a>(stored: impl Iterator<Item = &'a Stored>) -> Prompt {
    let mut reports: Vec<&Stored> = stored.filter(|s| matches!(s.fragment.body, Body::Prompt(_))).collect();
    reports.sort_by(|a, b| merge::order(&a.fragment).cmp(&merge::order(&b.fragment)));
    let (mut prompt, mut response_time) = (Prompt::default(), 0);
    for s in reports {
        if let Body::Prompt(p) = &s.fragment.body {
            merge::merge_prompt(&mut prompt, &mut response_time, p);
        }
    }
    prompt
}

/// One model call merged from its reports (in merge order).
fn merged_call<'a>(reports: impl Iterator<Item = &'a Stored>) -> Option<(ModelCall, Vec<Channel>)> {
    let mut merged: Option<(ModelCall, Vec<Channel>)> = None;
    for s in reports {
        if let Body::ModelCall(c) = &s.fragment.body {
            merge::merge_call(merged.get_or_insert_with(|| (c.clone(), Vec::new())), c);
        }
    }
    merged
}

/// One tool call merged from its reports (in merge order).
fn merged_tool<'a>(reports: impl Iterator<Item = &'a Stored>) -> ToolCall {
    let mut merged = ToolCall::default();
    for s in reports {
        if let Body::ToolCall(t) = &s.fragment.body {
            merge::merge_tool(&mut merged, t);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;
    use crate::trace::assemble::assemble;
    use crate::trace::model::{Attribution, Fragment, Usage};
    use crate::trace::prices::Prices;

    /// A small deterministic generator: one seed, one fragment.
    struct Draw(u64);

    impl Draw {
        fn next(&mut self, below: u64) -> u64 {
            // splitmix64
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % below
        }
        fn maybe(&mut self, below: u64) -> Option<u64> {
            (self.next(3) > 0).then(|| self.next(below))
        }
        fn name(&mut self, prefix: &str, below: u64) -> Option<String> {
            self.maybe(below).map(|n| format!("{prefix}{n}"))
        }
        fn text(&mut self, prefix: &str) -> Option<String> {
            self.maybe(4).map(
                |n| {
                    if n == 0 { format!("[{prefix} not captured: off]") } else { format!("{prefix} {n}") }
                },
            )
        }
    }

    /// A fragment of one trace (two keys), and the batch it comes in.
    fn fragment(seed: u64) -> (u64, Stored) {
        let mut d = Draw(seed);
        let kind = d.next(4);
        let body = match kind {
            0 => Body::Prompt(Prompt {
                text: d.text("prompt"),
                response: d.text("response"),
                start_unix_nano: d.maybe(50),
                end_unix_nano: d.maybe(50).map(|t| t + 50),
            }),
            1 => Body::ModelCall(ModelCall {
                channel: if d.next(2) == 0 { Channel::Log } else { Channel::Span },
                model: [None, Some("gpt-4.1".to_owned()), Some("unpriced-model".to_owned())][d.next(3) as usize]
                    .clone(),
                usage: d.maybe(100).map(|n| Usage {
                    input: n,
                    output: n / 2,
                    cache_read: n / 3,
                    cache_creation: 1,
                    reasoning: 0,
                }),
                cost_usd: d.maybe(100).map(|n| n as f64 / 7.0),
                start_unix_nano: d.maybe(100),
                end_unix_nano: d.maybe(100).map(|t| t + 100),
                duration_ms: d.maybe(5),
                error: d.name("error ", 2),
            }),
            2 => Body::ToolCall(ToolCall {
                name: d.name("tool", 3),
                args: d.text("args"),
                result: d.text("result"),
                duration_ms: d.maybe(3).map(|n| n * 1_000),
                success: d.maybe(2).map(|n| n == 1),
                decision: d.maybe(3).map(|n| format!("accept (source{n})")),
                start_unix_nano: d.maybe(1_000).map(|n| n * 1_000_000),
            }),
            _ => Body::Event(Event {
                name: format!("event{}", d.next(3)),
                time_unix_nano: d.next(100_000_000),
                attributes_json: "{\"a\":1}".into(),
                error: d.name("failure ", 3),
            }),
        };
        let fragment = Fragment {
            trace_key: format!("k{}", d.next(2)),
            also_known_as: Vec::new(),
            id: format!("i{}", d.next(if kind == 3 { 12 } else { 5 })),
            report_id: format!("r{}", d.next(3)),
            attribution: Attribution {
                session_id: d.name("s", 2),
                user_id: d.name("u", 3),
                device_id: d.name("d", 2),
                repository: d.name("repo", 2),
                branch: d.name("b", 2),
                team: d.name("t", 2),
            },
            body,
        };
        (d.next(6), Stored { agent: format!("agent{}", d.next(2)), fragment })
    }

    /// What the observations table holds after writing these timelines (as the engines do).
    fn store(table: &mut HashMap<(String, String), String>, timeline: &Timeline) {
        let replaced: Option<&str> = match timeline {
            Timeline::Whole(_) => None,
            Timeline::Changed { calls: true, .. } => Some("llm_call"),
            Timeline::Changed { calls: false, .. } => Some(""),
        };
        table.retain(|(kind, _), _| replaced.is_some_and(|r| r != kind));
        for row in timeline.rows() {
            table.insert((row.kind.to_owned(), row.id.clone()), row.body.clone());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Any split of a trace's fragments into writes, in any order, ends as one merge of them
        /// all: the trace, its timeline as stored and the state itself.
        #[test]
        fn a_trace_updated_write_by_write_equals_one_merge_of_everything(
            seeds in proptest::collection::vec(any::<u64>(), 1..60),
            order in any::<u64>(),
        ) {
            let with = Assembly { fallback_user: Some("fallback".into()), prices: Prices::load(None).expect("prices") };
            let mut batches: BTreeMap<u64, Vec<Stored>> = BTreeMap::new();
            let mut seen = BTreeSet::new();
            for seed in seeds {
                let (batch, s) = fragment(seed);
                // One stored row per report (a report sent again replaces it: a whole merge).
                if seen.insert(merge::order(&s.fragment).0.to_owned() + &order_of(&s).1 + &order_of(&s).2 + &order_of(&s).3) {
                    batches.entry((batch.wrapping_mul(order)) % 7919).or_default().push(s);
                }
            }
            let mut all: Vec<(i64, Stored)> = Vec::new();
            let mut state: Option<TraceState> = None;
            let mut table = HashMap::new();
            let mut whole_table = HashMap::new();
            for (n, added) in batches.into_values().enumerate() {
                let batch_id = n as i64 + 1;
                all.extend(added.iter().map(|s| (batch_id, s.clone())));
                let stored: Vec<Stored> = all.iter().map(|(_, s)| s.clone()).collect();
                let full = assemble("p", "t", stored.clone(), &with).expect("a trace");
                let record = match state.take() {
                    None => full.clone(),
                    Some(state) => {
                        let (touched, _) = Addition::touched(&added);
                        let entities = all
                            .iter()
                            .filter(|(_, s)| touched.contains(&(s.fragment.body.kind(), s.fragment.id.clone())))
                            .map(|(batch_id, s)| Entity { batch_id: *batch_id, stored: s.clone() })
                            .collect();
                        let prompts = stored.iter().filter(|s| matches!(s.fragment.body, Body::Prompt(_))).cloned().collect();
                        let addition = Addition { added: &added, batches: &[batch_id], entities, prompts };
                        state.apply(&addition, "p", "t", &with).unwrap_or_else(|| full.clone())
                    }
                };
                store(&mut table, &record.timeline);
                store(&mut whole_table, &full.timeline);
                prop_assert_eq!(&record.summary, &full.summary);
                prop_assert_eq!(&record.models, &full.models);
                prop_assert_eq!((record.tool_calls, record.tool_failures), (full.tool_calls, full.tool_failures));
                prop_assert_eq!((record.start_ns, record.end_ns), (full.start_ns, full.end_ns));
                prop_assert_eq!(&table, &whole_table);
                let next = TraceState::from_json(&record.state).expect("the state reads back");
                prop_assert_eq!(&next, &TraceState::of(&stored));
                state = Some(next);
            }
        }
    }
}
