//! The flow of one stored batch: decode -> split by resource -> detect the agent -> run its
//! plugin in the sandbox -> validate what it returned -> store fragments and recompute traces.

use crate::config::Limits;
use crate::model::{self, Attribution, Body, Fragment};
use crate::otlp::{self, Encoding, Signal, Signature};
use crate::plugins::{Registry, detect};
use crate::runtime::wit;
use crate::store::{Batch, Store};

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: &'static str,
    pub agents: Vec<String>,
    pub error: Option<String>,
}

/// Normalize a stored batch and record the outcome on it. Errors here are the batch's, not
/// the request's: the batch stays stored with its error for replay.
pub async fn process(
    store: &Store,
    registry: &Registry,
    limits: &Limits,
    fallback_user: Option<&str>,
    batch: &Batch,
) -> Outcome {
    let outcome = run(store, registry, limits, fallback_user, batch).await;
    if let Some(error) = &outcome.error {
        tracing::warn!(batch = batch.id, status = outcome.status, %error, "batch not fully normalized");
    }
    if let Err(e) = store.finish_batch(batch.id, outcome.status, &outcome.agents, outcome.error.as_deref()).await {
        tracing::error!(batch = batch.id, error = %e, "could not record the batch outcome");
    }
    outcome
}

async fn run(
    store: &Store,
    registry: &Registry,
    limits: &Limits,
    fallback_user: Option<&str>,
    batch: &Batch,
) -> Outcome {
    let failed = |agents, error: String| Outcome { status: "failed", agents, error: Some(error) };
    let (Some(signal), Some(encoding)) = (Signal::parse(&batch.signal), Encoding::from_content_type(&batch.encoding))
    else {
        return failed(Vec::new(), format!("unknown signal {:?} or encoding {:?}", batch.signal, batch.encoding));
    };
    let export = match otlp::decode(signal, encoding, &batch.body) {
        Ok(export) => export,
        Err(e) => return failed(Vec::new(), e.to_string()),
    };
    let resources = export.into_resource_batches();
    let plugins = registry.snapshot();
    let mut agents: Vec<String> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    let mut unclaimed = 0usize;
    let mut output: Vec<(String, Fragment)> = Vec::new();

    for resource in resources {
        if resource.scopes.iter().all(|s| s.spans.is_empty() && s.logs.is_empty() && s.metrics.is_empty()) {
            continue;
        }
        let signature = Signature::of(&resource);
        let Some(loaded) = detect(&plugins, &signature) else {
            unclaimed += 1;
            tracing::info!(
                batch = batch.id,
                service = signature.service_name.unwrap_or(""),
                scopes = ?signature.scope_names,
                "no plugin claims this resource; kept for replay"
            );
            if let Err(e) = store.count_unclaimed(&batch.project_id, &signature).await {
                tracing::error!(error = %e, "could not count an unclaimed resource");
            }
            continue;
        };
        let agent = loaded.plugin.info.agent.clone();
        if !agents.contains(&agent) {
            agents.push(agent.clone());
        }
        if loaded.is_put_aside() {
            errors
                .push(format!("plugin {} is put aside after repeated failures; batch kept for replay", loaded.label()));
            continue;
        }
        let worker = loaded.clone();
        let limits_for_call = limits.clone();
        let result = tokio::task::spawn_blocking(move || {
            worker
                .plugin
                .normalize(&resource)
                .map_err(|e| e.to_string())
                .and_then(|fragments| validate(fragments, &limits_for_call))
        })
        .await
        .unwrap_or_else(|e| Err(format!("plugin call panicked: {e}")));
        match result {
            Ok(fragments) => {
                loaded.record_success();
                output.extend(fragments.into_iter().map(|f| (agent.clone(), f)));
            }
            Err(error) => {
                let error = format!("{}: {error}", loaded.label());
                loaded.record_failure(&error);
                errors.push(error);
            }
        }
    }

    // Always applied, even when empty: a replay replaces what earlier versions produced.
    if let Err(e) = store.apply_fragments(&batch.project_id, batch.id, &output, fallback_user).await {
        errors.push(format!("storing fragments: {e}"));
    }
    if !errors.is_empty() {
        return failed(agents, errors.join("; "));
    }
    if unclaimed > 0 {
        let error = format!("{unclaimed} resource(s) claimed by no plugin");
        return Outcome { status: if agents.is_empty() { "unclaimed" } else { "done" }, agents, error: Some(error) };
    }
    Outcome { status: "done", agents, error: None }
}

/// Plugin output is untrusted: bound it, and convert it to the host's model.
pub fn validate(fragments: Vec<wit::Fragment>, limits: &Limits) -> Result<Vec<Fragment>, String> {
    if fragments.len() > limits.max_fragments {
        return Err(format!(
            "plugin returned {} fragments, more than the limit of {}",
            fragments.len(),
            limits.max_fragments
        ));
    }
    let id = |what: &str, value: String| -> Result<String, String> {
        if value.is_empty() || value.len() > limits.max_id_len {
            return Err(format!(
                "plugin returned a {what} of {} bytes (1..={} allowed)",
                value.len(),
                limits.max_id_len
            ));
        }
        Ok(value)
    };
    let text = |value: Option<String>| value.map(|v| clip(v, limits.max_text_len));
    let mut out = Vec::with_capacity(fragments.len());
    for f in fragments {
        if f.also_known_as.len() > 16 {
            return Err("plugin returned more than 16 also-known-as keys on one fragment".into());
        }
        let body = match f.body {
            wit::FragmentBody::Prompt(p) => Body::Prompt(model::Prompt {
                text: text(p.text),
                response: text(p.response),
                start_unix_nano: p.start_unix_nano,
                end_unix_nano: p.end_unix_nano,
            }),
            wit::FragmentBody::ModelCall(c) => Body::ModelCall(model::ModelCall {
                channel: match c.channel {
                    wit::Channel::Log => model::Channel::Log,
                    wit::Channel::Span => model::Channel::Span,
                },
                model: text(c.model),
                usage: c.usage.map(|u| model::Usage {
                    input: u.input,
                    output: u.output,
                    cache_read: u.cache_read,
                    cache_creation: u.cache_creation,
                    reasoning: u.reasoning,
                }),
                cost_usd: c.cost_usd.filter(|c| c.is_finite() && *c >= 0.0),
                start_unix_nano: c.start_unix_nano,
                end_unix_nano: c.end_unix_nano,
                duration_ms: c.duration_ms,
                error: text(c.error),
            }),
            wit::FragmentBody::ToolCall(t) => Body::ToolCall(model::ToolCall {
                name: text(t.name),
                args: text(t.args),
                result: text(t.result),
                duration_ms: t.duration_ms,
                success: t.success,
                decision: text(t.decision),
                start_unix_nano: t.start_unix_nano,
            }),
            wit::FragmentBody::Event(e) => Body::Event(model::Event {
                name: clip(e.name, limits.max_id_len),
                time_unix_nano: e.time_unix_nano,
                attributes_json: json_or_empty(clip(e.attributes_json, limits.max_text_len)),
                error: text(e.error),
            }),
            wit::FragmentBody::UsageMetric(m) => Body::UsageMetric(model::UsageMetric {
                name: clip(m.name, limits.max_id_len),
                unit: clip(m.unit, 64),
                value: if m.value.is_finite() { m.value } else { 0.0 },
                time_unix_nano: m.time_unix_nano,
                attributes_json: json_or_empty(clip(m.attributes_json, limits.max_text_len)),
            }),
        };
        out.push(Fragment {
            trace_key: id("trace key", f.trace_key)?,
            also_known_as: f.also_known_as.into_iter().map(|k| id("trace key", k)).collect::<Result<_, _>>()?,
            id: id("fragment id", f.id)?,
            report_id: id("report id", f.report_id)?,
            attribution: Attribution {
                session_id: text(f.attribution.session_id),
                user_id: text(f.attribution.user_id),
                device_id: text(f.attribution.device_id),
            },
            body,
        });
    }
    Ok(out)
}

fn clip(mut value: String, max: usize) -> String {
    if value.len() > max {
        let mut cut = max;
        while !value.is_char_boundary(cut) {
            cut -= 1;
        }
        value.truncate(cut);
    }
    value
}

/// A plugin's JSON text that is not JSON is kept as a JSON string instead.
fn json_or_empty(text: String) -> String {
    if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
        text
    } else {
        serde_json::Value::String(text).to_string()
    }
}
