//! Walking a batch: most parsers handle each span, log record and metric point on its own,
//! scope by scope. Implement the methods of [`Visitor`] you need and let [`visit`] walk.

use crate::{Attrs, Fragment, Fragments, LogRecord, MetricPoint, ResourceBatch, ScopeRecords, Span};

/// What a parser does with each record of a batch. Every method does nothing by default, so
/// a parser implements only the signals its agent sends. Each gets the resource attributes
/// (for [`attribution`](crate::attribution)), the scope the record came in (its name, and its
/// other records, e.g. a span's siblings), the record, and the output.
#[allow(unused_variables)]
pub trait Visitor {
    /// One span.
    fn span(&mut self, resource: &Attrs<'_>, scope: &ScopeRecords, span: &Span, out: &mut Fragments) {}
    /// One log record.
    fn log(&mut self, resource: &Attrs<'_>, scope: &ScopeRecords, log: &LogRecord, out: &mut Fragments) {}
    /// One metric data point.
    fn metric(&mut self, resource: &Attrs<'_>, scope: &ScopeRecords, point: &MetricPoint, out: &mut Fragments) {}
}

/// Walk `batch` scope by scope (in each: its spans, then its log records, then its metric
/// points, in order), calling `visitor` with the batch's resource attributes, and return the
/// fragments (through [`Fragments::into_vec`], so every id fits the host's limit).
///
/// ```
/// use antenna_sdk::*;
///
/// struct Prompts;
/// impl Visitor for Prompts {
///     fn log(&mut self, resource: &Attrs<'_>, _: &ScopeRecords, log: &LogRecord, out: &mut Fragments) {
///         let record = Attrs::new(&log.attributes);
///         let Some(prompt_id) = record.str("prompt.id") else { return };
///         let prompt = Prompt { text: record.string("prompt"), response: None,
///             start_unix_nano: Some(log.time()), end_unix_nano: None };
///         out.push(format!("prompt-{prompt_id}"), "prompt", "0", attribution(resource, &record),
///             FragmentBody::Prompt(prompt));
///     }
/// }
///
/// let batch = ResourceBatch { signal: Signal::Logs, resource_attributes: Vec::new(), scopes: Vec::new() };
/// assert!(visit(&batch, &mut Prompts).is_empty());
/// ```
pub fn visit<V: Visitor + ?Sized>(batch: &ResourceBatch, visitor: &mut V) -> Vec<Fragment> {
    visit_with_resource(batch, &Attrs::new(&batch.resource_attributes), visitor)
}

/// [`visit`], with other resource attributes than the batch's own: an agent that names the
/// user on one record only can add it to them first (see Copilot's parser).
pub fn visit_with_resource<V: Visitor + ?Sized>(
    batch: &ResourceBatch,
    resource: &Attrs<'_>,
    visitor: &mut V,
) -> Vec<Fragment> {
    let mut out = Fragments::default();
    for scope in &batch.scopes {
        for span in &scope.spans {
            visitor.span(resource, scope, span, &mut out);
        }
        for log in &scope.logs {
            visitor.log(resource, scope, log, &mut out);
        }
        for point in &scope.metrics {
            visitor.metric(resource, scope, point, &mut out);
        }
    }
    out.into_vec()
}
