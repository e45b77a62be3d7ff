//! From stored fragments to what storage keeps of a trace: the merged trace with the server's
//! fallback user applied, its indexed columns and its public JSON. Every storage engine writes
//! the same [`TraceRecord`], so the public JSON is the same whatever the engine.

use super::incremental::TraceState;
use super::merge::{KeyGroups, Observation, Stored, Trace, merge};
use super::model::{Body, Fragment};
use super::prices::{ModelShare, Prices, price};
use super::view;

/// What turning fragments into a trace needs beside the fragments: the user of traces that
/// carry none (`OTEL_CLI_AGENT_FALLBACK_USER`) and the price table.
#[derive(Debug, Default)]
pub struct Assembly {
    pub fallback_user: Option<String>,
    pub prices: Prices,
}

/// One trace as storage writes it.
#[derive(Debug, Clone)]
pub struct TraceRecord {
    pub id: String,
    pub agent: String,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub repository: Option<String>,
    pub branch: Option<String>,
    pub team: Option<String>,
    pub start_ns: Option<i64>,
    pub end_ns: Option<i64>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
    pub cost_usd: Option<f64>,
    pub cost_source: Option<&'static str>,
    pub tool_calls: i64,
    /// Tool calls that reported `success: false`.
    pub tool_failures: i64,
    /// Tokens and cost per model.
    pub models: Vec<ModelShare>,
    /// The contract's trace object, without observations (JSON text).
    pub summary: String,
    /// What to write of the timeline.
    pub timeline: Timeline,
    /// What the next write updates the trace from ([`TraceState`], JSON text).
    pub state: String,
}

/// What a write stores of a trace's timeline.
#[derive(Debug, Clone)]
pub enum Timeline {
    /// The whole timeline, one row an entry: a stored entry not among them is deleted.
    Whole(Vec<ObservationRow>),
    /// The entries a batch changed; with `calls`, every model call is among them (the pairing
    /// of channels may have moved), so a stored model call that is not is deleted.
    Changed { rows: Vec<ObservationRow>, calls: bool },
}

impl Timeline {
    /// The rows to write, and the kind whose stored entries they replace whole (`None`: all
    /// kinds for `Whole`, no kind for `Changed` without calls).
    pub fn rows(&self) -> &[ObservationRow] {
        match self {
            Timeline::Whole(rows) | Timeline::Changed { rows, .. } => rows,
        }
    }
}

impl TraceRecord {
    /// The record of a merged and priced trace.
    pub(super) fn of(
        project_id: &str,
        trace_id: &str,
        trace: &Trace,
        models: Vec<ModelShare>,
        counts: view::Counts,
        timeline: Timeline,
        state: &TraceState,
    ) -> TraceRecord {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let count = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let u = &trace.usage;
        TraceRecord {
            id: trace_id.to_owned(),
            agent: trace.agent.clone(),
            session_id: trace.session_id.clone(),
            user_id: trace.user_id.clone(),
            device_id: trace.device_id.clone(),
            repository: trace.repository.clone(),
            branch: trace.branch.clone(),
            team: trace.team.clone(),
            start_ns: view::ns(trace.start_unix_nano),
            end_ns: view::ns(trace.end_unix_nano),
            input_tokens: int(u.input),
            output_tokens: int(u.output),
            cache_read_tokens: int(u.cache_read),
            cache_creation_tokens: int(u.cache_creation),
            reasoning_tokens: int(u.reasoning),
            cost_usd: trace.cost_usd,
            cost_source: trace.cost_source,
            tool_calls: count(counts.tool_calls),
            tool_failures: count(counts.tool_failures),
            models,
            summary: view::summary(project_id, trace_id, trace, counts).to_string(),
            timeline,
            state: state.to_json(),
        }
    }
}

/// Timeline rows of these entries.
pub(super) fn rows(observations: &[Observation]) -> Vec<ObservationRow> {
    observations
        .iter()
        .map(|o| ObservationRow {
            kind: o.kind,
            id: o.id.clone(),
            sort_ns: view::sort_ns(o),
            body: view::observation(o).to_string(),
        })
        .collect()
}

/// One entry of a trace's timeline as storage keeps it: a row of its own, so a batch that
/// adds one tool call writes one row, not the whole timeline again.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationRow {
    /// `llm_call`, `tool_call` or `event`.
    pub kind: &'static str,
    pub id: String,
    /// Its place in the timeline (see [`view::sort_ns`]).
    pub sort_ns: i64,
    /// Its public JSON (text).
    pub body: String,
}

impl ObservationRow {
    /// A digest of the entry, to tell one that changed from one already stored (the same in
    /// every process of one build; another build at worst rewrites an unchanged entry once).
    pub fn digest(&self) -> i64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::hash::DefaultHasher::new();
        self.body.hash(&mut hasher);
        i64::from_ne_bytes(hasher.finish().to_ne_bytes())
    }
}

/// A stored timeline: (kind, id) -> digest.
pub type StoredTimeline = std::collections::HashMap<(String, String), i64>;

/// What a write changes of a stored timeline.
pub struct TimelineChanges<'a> {
    /// New or changed entries (one per kind and id), with their digest.
    pub upserts: Vec<(&'a ObservationRow, i64)>,
    /// (kind, id) of entries stored but gone.
    pub deletes: Vec<(String, String)>,
}

/// Which stored entries of a trace's timeline `rows` change.
pub fn timeline_changes(rows: &[ObservationRow], mut stored: StoredTimeline) -> TimelineChanges<'_> {
    let mut upserts: std::collections::BTreeMap<(&str, &str), (&ObservationRow, i64)> = Default::default();
    for row in rows {
        let digest = row.digest();
        let unchanged = stored.remove(&(row.kind.to_owned(), row.id.clone())) == Some(digest);
        if !unchanged {
            upserts.insert((row.kind, row.id.as_str()), (row, digest));
        }
    }
    TimelineChanges { upserts: upserts.into_values().collect(), deletes: stored.into_keys().collect() }
}

/// Merge the fragments stored under one trace's keys; `None` when there are none (the trace
/// is then deleted). A trace that ends with no user gets the fallback user; calls without the
/// agent's cost are priced from the table. The record carries the state the next write starts
/// from.
pub fn assemble(project_id: &str, trace_id: &str, stored: Vec<Stored>, with: &Assembly) -> Option<TraceRecord> {
    if stored.is_empty() {
        return None;
    }
    let state = TraceState::of(&stored);
    let mut trace = merge(stored);
    if trace.user_id.is_none() {
        trace.user_id.clone_from(&with.fallback_user);
    }
    let models = price(&mut trace, &with.prices);
    let counts = view::Counts::of(&trace);
    let timeline = Timeline::Whole(rows(&trace.observations));
    Some(TraceRecord::of(project_id, trace_id, &trace, models, counts, timeline, &state))
}

/// Fragments of one run (no stored key map): keys named together form one trace whose id is
/// its smallest key, exactly as storage joins them. Used by `antenna normalize` and the fuzz
/// targets. Usage metrics make no trace.
pub fn in_memory(fragments: &[(String, Fragment)], prices: &Prices) -> Vec<(String, Trace)> {
    let traced: Vec<&(String, Fragment)> =
        fragments.iter().filter(|(_, f)| !matches!(f.body, Body::UsageMetric(_))).collect();
    let mut groups = KeyGroups::default();
    for (_, f) in &traced {
        groups.join(std::iter::once(&f.trace_key).chain(&f.also_known_as));
    }
    groups
        .into_groups()
        .into_iter()
        .filter_map(|keys| {
            let members: Vec<Stored> = traced
                .iter()
                .filter(|(_, f)| keys.binary_search(&f.trace_key).is_ok())
                .map(|(agent, f)| Stored { agent: agent.clone(), fragment: f.clone() })
                .collect();
            let id = keys.first()?.clone();
            let mut trace = merge(members);
            price(&mut trace, prices);
            Some((id, trace))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::{Attribution, Prompt};

    fn prompt(key: &str, aka: &[&str], user: Option<&str>) -> (String, Fragment) {
        (
            "codex".into(),
            Fragment {
                trace_key: key.into(),
                also_known_as: aka.iter().map(|k| k.to_string()).collect(),
                id: "p".into(),
                report_id: key.into(),
                attribution: Attribution { user_id: user.map(str::to_owned), ..Default::default() },
                body: Body::Prompt(Prompt { text: Some("hi".into()), ..Default::default() }),
            },
        )
    }

    #[test]
    fn keys_named_together_become_one_trace_named_by_the_smallest_key() {
        let fragments =
            vec![prompt("prompt-b", &["otel-1"], None), prompt("otel-1", &[], None), prompt("prompt-z", &[], None)];
        let traces = in_memory(&fragments, &Prices::default());
        let ids: Vec<&str> = traces.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, vec!["otel-1", "prompt-z"]);
    }

    #[test]
    fn the_fallback_user_applies_only_to_a_trace_with_no_user() {
        let stored = |user| {
            let (agent, fragment) = prompt("k", &[], user);
            vec![Stored { agent, fragment }]
        };
        let with = Assembly { fallback_user: Some("fallback".into()), prices: Prices::default() };
        let record = assemble("proj", "k", stored(None), &with).expect("a trace");
        assert_eq!(record.user_id.as_deref(), Some("fallback"));
        let summary: serde_json::Value = serde_json::from_str(&record.summary).expect("json");
        assert_eq!(summary["user_id"], "fallback");
        let record = assemble("proj", "k", stored(Some("dev")), &with).expect("a trace");
        assert_eq!(record.user_id.as_deref(), Some("dev"));
        assert!(assemble("proj", "k", Vec::new(), &with).is_none(), "no fragments, no trace");
    }
}
