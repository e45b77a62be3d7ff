//! Usage and outcomes, grouped: one SQL text for both engines, built here over sqlx's
//! `QueryBuilder` (which numbers placeholders per engine). What differs between the engines —
//! a day from Unix nanoseconds, a JSON attribute — comes from [`Dialect`] (storage/queries.rs).

use serde::{Deserialize, Serialize};
use sqlx::{Database, Encode, QueryBuilder, Type};

use super::TraceFilter;
pub use super::queries::Dialect;

/// What `GET /api/public/usage` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UsageGroup {
    User,
    Agent,
    Model,
    Repository,
    Team,
    Device,
    Day,
}

/// What `GET /api/public/outcomes` groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeGroup {
    User,
    Agent,
    Repository,
    Team,
    Day,
}

/// One group of `GET /api/public/usage`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    /// The group's value (`null`: traces without one).
    pub key: Option<String>,
    pub prompts: i64,
    pub sessions: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
    /// The sum of the known costs.
    pub cost_usd: Option<f64>,
    /// Prompts with tokens but no cost (a model the price table lacks): `cost_usd` leaves them out.
    pub unpriced_prompts: i64,
    pub tool_calls: i64,
    pub tool_failures: i64,
}

/// One group of `GET /api/public/outcomes`, as the agents report them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeRow {
    pub key: Option<String>,
    pub lines_added: f64,
    pub lines_removed: f64,
    pub commits: f64,
    pub pull_requests: f64,
    pub edits_accepted: f64,
    pub edits_rejected: f64,
    /// `edits_accepted / (accepted + rejected)`; `null` without decisions.
    pub acceptance_rate: Option<f64>,
    pub active_seconds: f64,
}

/// Which rows a query reads as `t`: traces, or their per-model shares (which repeat the
/// traces' filter columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    Traces,
    ModelShares,
}

/// ` AND ...` for every filter set in `filter`, on traces aliased `t`. The model filter keeps
/// traces that used the model.
pub fn push_trace_filters<'a, DB: Database>(q: &mut QueryBuilder<'a, DB>, filter: &TraceFilter)
where
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    push_filters(q, filter, Rows::Traces);
}

/// ` AND ...` for every filter set in `filter`, on `rows` aliased `t`.
fn push_filters<'a, DB: Database>(q: &mut QueryBuilder<'a, DB>, filter: &TraceFilter, rows: Rows)
where
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let eq = [
        ("t.session_id", &filter.session_id),
        ("t.user_id", &filter.user_id),
        ("t.device_id", &filter.device_id),
        ("t.agent", &filter.agent),
        ("t.repository", &filter.repository),
        ("t.branch", &filter.branch),
        ("t.team", &filter.team),
    ];
    for (column, value) in eq {
        if let Some(value) = value {
            q.push(format!(" AND {column} = ")).push_bind(value.clone());
        }
    }
    match (&filter.model, rows) {
        (Some(model), Rows::Traces) => {
            q.push(" AND EXISTS (SELECT 1 FROM trace_models fm WHERE fm.project_id = t.project_id AND fm.trace_id = t.id AND fm.model = ")
                .push_bind(model.clone())
                .push(")");
        }
        (Some(model), Rows::ModelShares) => {
            q.push(" AND t.model = ").push_bind(model.clone());
        }
        (None, _) => {}
    }
    if let Some(from) = filter.from_ns {
        q.push(" AND t.start_ns >= ").push_bind(from);
    }
    if let Some(to) = filter.to_ns {
        q.push(" AND t.start_ns < ").push_bind(to);
    }
}

/// The usage query: per group, prompts, sessions, tokens, cost and tool counts over the
/// traces the filter selects, ordered by key (no key last), paged by `limit`/`offset`. Grouped
/// by model, tokens and cost are each model's share, so they add up to the traces' totals; a
/// prompt that used two models counts in both groups.
pub fn usage_query<'a, DB: Database>(
    dialect: Dialect,
    project_id: &str,
    group: UsageGroup,
    filter: &TraceFilter,
) -> QueryBuilder<'a, DB>
where
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    // By model, the per-model shares (which repeat the traces' filter columns) are the rows.
    // A trace is one row of traces (COUNT(*) needs no sort), one or more of the shares.
    let (rows, table, prompts) = match group {
        UsageGroup::Model => (Rows::ModelShares, "trace_models", "COUNT(DISTINCT t.trace_id)"),
        _ => (Rows::Traces, "traces", "COUNT(*)"),
    };
    let key = match group {
        UsageGroup::Model => "NULLIF(t.model, '')".to_owned(),
        UsageGroup::User => "t.user_id".to_owned(),
        UsageGroup::Agent => "t.agent".to_owned(),
        UsageGroup::Repository => "t.repository".to_owned(),
        UsageGroup::Team => "t.team".to_owned(),
        UsageGroup::Device => "t.device_id".to_owned(),
        UsageGroup::Day => dialect.day("t.start_ns"),
    };
    let sum = |column: &str| format!("{} AS {column}", dialect.sum_int(&format!("t.{column}")));
    let mut q = QueryBuilder::new(format!(
        "SELECT {key} AS key, {prompts} AS prompts, COUNT(DISTINCT t.session_id) AS sessions, \
         {}, {}, {}, {}, {}, SUM(t.cost_usd) AS cost_usd, \
         CAST(SUM(CASE WHEN t.cost_usd IS NULL AND (t.input_tokens > 0 OR t.output_tokens > 0 OR \
           t.cache_read_tokens > 0 OR t.cache_creation_tokens > 0 OR t.reasoning_tokens > 0) \
           THEN 1 ELSE 0 END) AS BIGINT) AS unpriced_prompts, \
         {}, {} FROM {table} t",
        sum("input_tokens"),
        sum("output_tokens"),
        sum("cache_read_tokens"),
        sum("cache_creation_tokens"),
        sum("reasoning_tokens"),
        sum("tool_calls"),
        sum("tool_failures"),
    ));
    q.push(" WHERE t.project_id = ").push_bind(project_id.to_owned());
    push_filters(&mut q, filter, rows);
    q.push(format!(" GROUP BY {key} ORDER BY ({key}) IS NULL, {key} LIMIT "))
        .push_bind(filter.limit)
        .push(" OFFSET ")
        .push_bind(filter.offset);
    q
}

/// How an outcome is read from an agent's metric. `cumulative`: the agent exports running
/// totals (Gemini CLI, Copilot CLI: the Node SDK's default), so a series counts its latest
/// value; otherwise deltas (Claude Code's default), summed.
struct OutcomeMetric {
    name: &'static str,
    field: &'static str,
    /// Only points whose attribute has this value (`None`: every point).
    only: Option<(&'static str, &'static str)>,
    cumulative: bool,
}

/// Which agent metric feeds which outcome. One place, so adding an agent's metric is one line.
const OUTCOME_METRICS: &[OutcomeMetric] = &[
    OutcomeMetric {
        name: "claude_code.lines_of_code.count",
        field: "lines_added",
        only: Some(("type", "added")),
        cumulative: false,
    },
    OutcomeMetric {
        name: "claude_code.lines_of_code.count",
        field: "lines_removed",
        only: Some(("type", "removed")),
        cumulative: false,
    },
    OutcomeMetric { name: "claude_code.commit.count", field: "commits", only: None, cumulative: false },
    OutcomeMetric { name: "claude_code.pull_request.count", field: "pull_requests", only: None, cumulative: false },
    OutcomeMetric {
        name: "claude_code.code_edit_tool.decision",
        field: "edits_accepted",
        only: Some(("decision", "accept")),
        cumulative: false,
    },
    OutcomeMetric {
        name: "claude_code.code_edit_tool.decision",
        field: "edits_rejected",
        only: Some(("decision", "reject")),
        cumulative: false,
    },
    OutcomeMetric { name: "claude_code.active_time.total", field: "active_seconds", only: None, cumulative: false },
    OutcomeMetric {
        name: "gemini_cli.lines.changed",
        field: "lines_added",
        only: Some(("type", "added")),
        cumulative: true,
    },
    OutcomeMetric {
        name: "gemini_cli.lines.changed",
        field: "lines_removed",
        only: Some(("type", "removed")),
        cumulative: true,
    },
    OutcomeMetric { name: "github.copilot.code.lines_added", field: "lines_added", only: None, cumulative: true },
];

/// The outcome columns, in [`OutcomeRow`] order.
pub const OUTCOME_FIELDS: [&str; 7] =
    ["lines_added", "lines_removed", "commits", "pull_requests", "edits_accepted", "edits_rejected", "active_seconds"];

/// The outcomes query over usage metrics (aliased `u`): each series (session, metric, point
/// attributes) gives its sum (deltas) or its latest value (cumulative), then groups add up.
/// Filters: `from`/`to` on the point's time, `agent`, `user_id`, `repository`, `team`.
pub fn outcomes_query<'a, DB: Database>(
    dialect: Dialect,
    project_id: &str,
    group: OutcomeGroup,
    filter: &TraceFilter,
) -> QueryBuilder<'a, DB>
where
    String: Encode<'a, DB> + Type<DB>,
    i64: Encode<'a, DB> + Type<DB>,
{
    let key = match group {
        OutcomeGroup::User => "u.user_id".to_owned(),
        OutcomeGroup::Agent => "u.agent".to_owned(),
        OutcomeGroup::Repository => "u.repository".to_owned(),
        OutcomeGroup::Team => "u.team".to_owned(),
        OutcomeGroup::Day => dialect.day("u.time_ns"),
    };
    // Which field a point feeds (NULL: none), and whether its series is cumulative.
    let mut field = String::from("CASE");
    let mut cumulative = String::from("CASE");
    for m in OUTCOME_METRICS {
        let when = match m.only {
            Some((attribute, value)) => {
                format!("u.name = '{}' AND {} = '{value}'", m.name, dialect.attribute("u.attributes", attribute))
            }
            None => format!("u.name = '{}'", m.name),
        };
        field.push_str(&format!(" WHEN {when} THEN '{}'", m.field));
        cumulative.push_str(&format!(" WHEN {when} THEN {}", i32::from(m.cumulative)));
    }
    field.push_str(" END");
    cumulative.push_str(" END");
    let totals: Vec<String> = OUTCOME_FIELDS
        .iter()
        .map(|f| {
            format!("CAST(COALESCE(SUM(CASE WHEN s.field = '{f}' THEN s.value END), 0) AS {}) AS {f}", dialect.real())
        })
        .collect();
    let mut q = QueryBuilder::new(format!(
        "SELECT s.key AS key, {} FROM (
           SELECT {key} AS key, {field} AS field,
                  CASE WHEN MAX({cumulative}) = 1 THEN MAX(u.value) ELSE SUM(u.value) END AS value
           FROM usage_metrics u WHERE u.project_id = ",
        totals.join(", ")
    ));
    q.push_bind(project_id.to_owned());
    let names: Vec<&str> = OUTCOME_METRICS.iter().map(|m| m.name).collect();
    q.push(format!(" AND u.name IN ('{}')", names.join("', '")));
    let eq = [
        ("u.agent", &filter.agent),
        ("u.user_id", &filter.user_id),
        ("u.repository", &filter.repository),
        ("u.team", &filter.team),
        ("u.session_id", &filter.session_id),
    ];
    for (column, value) in eq {
        if let Some(value) = value {
            q.push(format!(" AND {column} = ")).push_bind(value.clone());
        }
    }
    if let Some(from) = filter.from_ns {
        q.push(" AND u.time_ns >= ").push_bind(from);
    }
    if let Some(to) = filter.to_ns {
        q.push(" AND u.time_ns < ").push_bind(to);
    }
    q.push(format!(
        " GROUP BY {key}, u.session_id, u.name, u.attributes, {field}) s
         WHERE s.field IS NOT NULL GROUP BY s.key ORDER BY (s.key) IS NULL, s.key LIMIT "
    ))
    .push_bind(filter.limit)
    .push(" OFFSET ")
    .push_bind(filter.offset);
    q
}

/// An [`OutcomeRow`] from its query's columns.
pub fn outcome_row(key: Option<String>, values: [f64; 7]) -> OutcomeRow {
    let [lines_added, lines_removed, commits, pull_requests, edits_accepted, edits_rejected, active_seconds] = values;
    let decisions = edits_accepted + edits_rejected;
    OutcomeRow {
        key,
        lines_added,
        lines_removed,
        commits,
        pull_requests,
        edits_accepted,
        edits_rejected,
        acceptance_rate: (decisions > 0.0).then(|| edits_accepted / decisions),
        active_seconds,
    }
}

/// The count columns of the usage query, in [`usage_row`] order.
pub const USAGE_COUNTS: [&str; 10] = [
    "prompts",
    "sessions",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "unpriced_prompts",
    "tool_calls",
    "tool_failures",
];

/// A [`UsageRow`] from its query's columns.
pub fn usage_row(key: Option<String>, counts: [i64; 10], cost_usd: Option<f64>) -> UsageRow {
    let [
        prompts,
        sessions,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_creation_tokens,
        reasoning_tokens,
        unpriced_prompts,
        tool_calls,
        tool_failures,
    ] = counts;
    UsageRow {
        key,
        prompts,
        sessions,
        input_tokens,
        output_tokens,
        cache_read_tokens,
        cache_creation_tokens,
        reasoning_tokens,
        cost_usd: cost_usd.map(|c| (c * 1e9).round() / 1e9),
        unpriced_prompts,
        tool_calls,
        tool_failures,
    }
}

/// Columns decoded one by one, as one result.
pub fn decoded<T: Copy + Default, const N: usize>(
    columns: [std::result::Result<T, sqlx::Error>; N],
) -> std::result::Result<[T; N], sqlx::Error> {
    let mut out = [T::default(); N];
    for (slot, column) in out.iter_mut().zip(columns) {
        *slot = column?;
    }
    Ok(out)
}
