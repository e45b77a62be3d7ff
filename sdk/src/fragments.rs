//! Building the normalized output.

use crate::{Attribution, Fragment, FragmentBody};

/// Collects the fragments of one batch.
#[derive(Default)]
pub struct Fragments(Vec<Fragment>);

impl Fragments {
    /// Add a fragment of trace `trace_key`, about thing `id`, reported as `report_id`.
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

    /// How many fragments so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fragments, in the order they were added.
    pub fn into_vec(self) -> Vec<Fragment> {
        self.0
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
