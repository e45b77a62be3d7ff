//! `antenna:normalizer@0.1.0` (wit/since_v0.1.0, frozen): its bindings, and its plugin output
//! converted into the host's model. The conversion is plain; bounds are checked afterwards
//! (`pipeline::validate`), the same for every version.

use crate::sandbox as host;
use crate::trace::model;

wasmtime::component::bindgen!({
    path: "../wit/since_v0.1.0",
    world: "antenna:normalizer/normalizer@0.1.0",
});

pub use self::antenna::normalizer::types;
use types as wit;

/// The package version these bindings were generated from (frozen with wit/since_v0.1.0).
pub const VERSION: &str = "0.1.0";

// The host's input records as this version's: the same field-by-field conversion the SDK's
// native test harness uses.
antenna_wit::impl_from_plain!(types);

impl From<wit::PluginInfo> for host::PluginInfo {
    fn from(info: wit::PluginInfo) -> Self {
        host::PluginInfo {
            name: info.name,
            version: info.version,
            agent: info.agent,
            claims: host::Claims {
                scope_names: info.claims.scope_names,
                event_names: info.claims.event_names,
                service_names: info.claims.service_names,
            },
        }
    }
}

impl From<wit::Fragment> for model::Fragment {
    fn from(f: wit::Fragment) -> Self {
        let body = match f.body {
            wit::FragmentBody::Prompt(p) => model::Body::Prompt(model::Prompt {
                text: p.text,
                response: p.response,
                start_unix_nano: p.start_unix_nano,
                end_unix_nano: p.end_unix_nano,
            }),
            wit::FragmentBody::ModelCall(c) => model::Body::ModelCall(model::ModelCall {
                channel: match c.channel {
                    wit::Channel::Log => model::Channel::Log,
                    wit::Channel::Span => model::Channel::Span,
                },
                model: c.model,
                usage: c.usage.map(|u| model::Usage {
                    input: u.input,
                    output: u.output,
                    cache_read: u.cache_read,
                    cache_creation: u.cache_creation,
                    reasoning: u.reasoning,
                }),
                cost_usd: c.cost_usd,
                start_unix_nano: c.start_unix_nano,
                end_unix_nano: c.end_unix_nano,
                duration_ms: c.duration_ms,
                error: c.error,
            }),
            wit::FragmentBody::ToolCall(t) => model::Body::ToolCall(model::ToolCall {
                name: t.name,
                args: t.args,
                result: t.result,
                duration_ms: t.duration_ms,
                success: t.success,
                decision: t.decision,
                start_unix_nano: t.start_unix_nano,
            }),
            wit::FragmentBody::Event(e) => model::Body::Event(model::Event {
                name: e.name,
                time_unix_nano: e.time_unix_nano,
                attributes_json: e.attributes_json,
                error: e.error,
            }),
            wit::FragmentBody::UsageMetric(m) => model::Body::UsageMetric(model::UsageMetric {
                name: m.name,
                unit: m.unit,
                value: m.value,
                time_unix_nano: m.time_unix_nano,
                attributes_json: m.attributes_json,
            }),
        };
        model::Fragment {
            trace_key: f.trace_key,
            also_known_as: f.also_known_as,
            id: f.id,
            report_id: f.report_id,
            attribution: model::Attribution {
                session_id: f.attribution.session_id,
                user_id: f.attribution.user_id,
                device_id: f.attribution.device_id,
                ..Default::default()
            },
            body,
        }
    }
}
