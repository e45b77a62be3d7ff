//! Building the normalized output.

use crate::ids::{bounded_id, session_key, stable_id, within_limit};
use crate::{Attribution, Attrs, Event, Fragment, FragmentBody, MetricPoint, ModelCall, Prompt, ToolCall, UsageMetric};

/// Collects the fragments of one batch.
///
/// [`Fragments::into_vec`] keeps every key and id within the host's limit
/// ([`MAX_ID_LEN`](crate::MAX_ID_LEN)): one over-long id would fail the whole batch.
#[derive(Default)]
pub struct Fragments(Vec<Fragment>);

impl Fragments {
    /// Add a fragment of trace `trace_key`, about thing `id`, reported as `report_id`; the
    /// returned fragment can take `also_known_as` keys.
    pub fn push(
        &mut self,
        trace_key: impl Into<String>,
        id: impl Into<String>,
        report_id: impl Into<String>,
        attribution: Attribution,
        body: FragmentBody,
    ) -> &mut Fragment {
        self.0.push(Fragment {
            trace_key: trace_key.into(),
            also_known_as: Vec::new(),
            id: id.into(),
            report_id: report_id.into(),
            attribution,
            body,
        });
        let last = self.0.len() - 1;
        &mut self.0[last]
    }

    /// Add a metric point as a usage metric of its session (trace `session-<session id>`,
    /// kept per session, never added into a prompt's totals). The point's attributes, less
    /// the keys in `except`, become `attributes_json`; its time and a digest of those
    /// attributes name the report, so the report id stays short however long they are.
    pub fn usage_metric(&mut self, point: &MetricPoint, attribution: Attribution, except: &[&str]) -> &mut Fragment {
        let metric = UsageMetric {
            name: point.name.clone(),
            unit: point.unit.clone(),
            value: point.value,
            time_unix_nano: point.time_unix_nano,
            attributes_json: Attrs::new(&point.attributes).to_json(except),
        };
        let report = format!("{}-{}", point.time_unix_nano, stable_id(&[&metric.attributes_json]));
        let id = bounded_id(&point.name).into_owned();
        self.push(session_key(&attribution), id, report, attribution, FragmentBody::UsageMetric(metric))
    }

    /// How many fragments so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fragments, in the order they were added, with any key or id longer than the host
    /// accepts shortened (see [`bounded_id`]).
    pub fn into_vec(mut self) -> Vec<Fragment> {
        for f in &mut self.0 {
            for id in [&mut f.trace_key, &mut f.id, &mut f.report_id].into_iter().chain(&mut f.also_known_as) {
                within_limit(id);
            }
        }
        self.0
    }
}

/// Typed views of a fragment's body, for tests and for parsers that post-process their output.
impl Fragment {
    /// The body, if it is a prompt.
    pub fn prompt(&self) -> Option<&Prompt> {
        match &self.body {
            FragmentBody::Prompt(p) => Some(p),
            _ => None,
        }
    }

    /// The body, if it is a model call.
    pub fn model_call(&self) -> Option<&ModelCall> {
        match &self.body {
            FragmentBody::ModelCall(c) => Some(c),
            _ => None,
        }
    }

    /// The body, if it is a tool call.
    pub fn tool_call(&self) -> Option<&ToolCall> {
        match &self.body {
            FragmentBody::ToolCall(t) => Some(t),
            _ => None,
        }
    }

    /// The body, if it is a timeline event.
    pub fn event(&self) -> Option<&Event> {
        match &self.body {
            FragmentBody::Event(e) => Some(e),
            _ => None,
        }
    }

    /// The body, if it is a usage metric.
    pub fn usage_metric(&self) -> Option<&UsageMetric> {
        match &self.body {
            FragmentBody::UsageMetric(m) => Some(m),
            _ => None,
        }
    }
}

/// The placeholder for a text field the operator chose not to capture:
/// `[prompt not captured: OTEL_LOG_USER_PROMPTS is off]`.
pub fn not_captured(field: &str, flag: &str) -> String {
    format!("[{field} not captured: {flag} is off]")
}

/// The placeholder for a text field the agent never exports:
/// `[response not exported by Codex]`.
pub fn not_exported(field: &str, agent: &str) -> String {
    format!("[{field} not exported by {agent}]")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttrValue, KeyValue, MetricKind};

    #[test]
    fn usage_metrics_have_short_report_ids_and_every_id_fits() {
        let point = MetricPoint {
            name: "gen_ai.client.token.usage".into(),
            unit: "{token}".into(),
            kind: MetricKind::Sum,
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            attributes: vec![KeyValue { key: "reason".into(), value: AttrValue::Text("r".repeat(2000)) }],
            value: 3.0,
            count: 1,
        };
        let who = Attribution { session_id: Some("s1".into()), user_id: None, device_id: None };
        let mut out = Fragments::default();
        out.usage_metric(&point, who.clone(), &[]);
        out.push(
            "k".repeat(600),
            "i",
            "r",
            who,
            FragmentBody::UsageMetric(UsageMetric {
                name: "x".into(),
                unit: String::new(),
                value: 0.0,
                time_unix_nano: 0,
                attributes_json: "{}".into(),
            }),
        )
        .also_known_as
        .push("a".repeat(600));
        let fragments = out.into_vec();
        assert_eq!(fragments[0].trace_key, "session-s1");
        assert_eq!(fragments[0].id, "gen_ai.client.token.usage");
        assert!(fragments[0].report_id.len() < 40);
        assert!(fragments[0].usage_metric().is_some_and(|m| m.attributes_json.len() > 2000));
        assert!(fragments[1].trace_key.len() <= crate::MAX_ID_LEN && fragments[1].also_known_as[0].len() <= 512);
    }
}
