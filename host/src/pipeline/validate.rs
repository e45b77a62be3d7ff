//! Plugin output is untrusted: bound it before anything stores it.

use crate::config::Limits;
use crate::trace::model::{Body, Fragment, clip};

/// Most also-known-as keys on one fragment.
pub const MAX_ALSO_KNOWN_AS: usize = 16;
/// Most tokens of one kind one model call may report: far above any real model (contexts are
/// a few million tokens), far below what would overflow a sum over millions of calls.
pub const MAX_TOKENS_PER_CALL: u64 = 1_000_000_000;
/// Longest model name kept (bytes); names are grouped by, priced and logged.
pub const MAX_MODEL_LEN: usize = 256;

/// Check counts and id lengths (an error fails the call), clip text, keep only finite,
/// non-negative numbers and JSON that is JSON, and scrub credentials when asked to.
pub fn validate(fragments: Vec<Fragment>, limits: &Limits) -> Result<Vec<Fragment>, String> {
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
    for mut f in fragments {
        // Before clipping: a secret cut in half by the clip would no longer match.
        if limits.scrub_secrets {
            crate::trace::scrub::scrub_fragment(&mut f);
        }
        if f.also_known_as.len() > MAX_ALSO_KNOWN_AS {
            return Err(format!("plugin returned more than {MAX_ALSO_KNOWN_AS} also-known-as keys on one fragment"));
        }
        let body = match f.body {
            Body::Prompt(mut p) => {
                p.text = text(p.text);
                p.response = text(p.response);
                Body::Prompt(p)
            }
            Body::ModelCall(mut c) => {
                if let Some(u) = &c.usage {
                    let most = [u.input, u.output, u.cache_read, u.cache_creation, u.reasoning].into_iter().max();
                    if let Some(tokens) = most.filter(|t| *t > MAX_TOKENS_PER_CALL) {
                        return Err(format!(
                            "plugin returned a model call of {tokens} tokens (at most {MAX_TOKENS_PER_CALL} of each kind)"
                        ));
                    }
                }
                c.model = c.model.map(|m| clip(m, MAX_MODEL_LEN));
                c.cost_usd = c.cost_usd.filter(|c| c.is_finite() && *c >= 0.0);
                c.error = text(c.error);
                Body::ModelCall(c)
            }
            Body::ToolCall(mut t) => {
                t.name = text(t.name);
                t.args = text(t.args);
                t.result = text(t.result);
                t.decision = text(t.decision);
                Body::ToolCall(t)
            }
            Body::Event(mut e) => {
                e.name = clip(e.name, limits.max_id_len);
                e.attributes_json = json_or_string(clip(e.attributes_json, limits.max_text_len));
                e.error = text(e.error);
                Body::Event(e)
            }
            Body::UsageMetric(mut m) => {
                m.name = clip(m.name, limits.max_id_len);
                m.unit = clip(m.unit, 64);
                m.value = if m.value.is_finite() { m.value } else { 0.0 };
                m.attributes_json = json_or_string(clip(m.attributes_json, limits.max_text_len));
                Body::UsageMetric(m)
            }
        };
        out.push(Fragment {
            trace_key: id("trace key", f.trace_key)?,
            also_known_as: f.also_known_as.into_iter().map(|k| id("trace key", k)).collect::<Result<_, _>>()?,
            id: id("fragment id", f.id)?,
            report_id: id("report id", f.report_id)?,
            attribution: crate::trace::model::Attribution {
                session_id: text(f.attribution.session_id),
                user_id: text(f.attribution.user_id),
                device_id: text(f.attribution.device_id),
                // Set by the host from the resource, never by a plugin.
                ..Default::default()
            },
            body,
        });
    }
    Ok(out)
}

/// A plugin's JSON text that is not JSON is kept as a JSON string instead.
fn json_or_string(text: String) -> String {
    if serde_json::from_str::<serde_json::Value>(&text).is_ok() {
        text
    } else {
        serde_json::Value::String(text).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::model::{Attribution, Event, ModelCall, Prompt, UsageMetric};

    fn fragment(body: Body) -> Fragment {
        Fragment {
            trace_key: "prompt-1".into(),
            also_known_as: Vec::new(),
            id: "1".into(),
            report_id: "r".into(),
            attribution: Attribution::default(),
            body,
        }
    }

    fn limits() -> Limits {
        Limits { max_fragments: 3, max_id_len: 8, max_text_len: 4, ..Limits::default() }
    }

    #[test]
    fn too_many_fragments_or_ids_out_of_bounds_fail_the_call() {
        let prompt = || fragment(Body::Prompt(Prompt::default()));
        assert!(validate(vec![prompt(); 4], &limits()).unwrap_err().contains("more than the limit of 3"));
        let mut long = prompt();
        long.trace_key = "x".repeat(9);
        assert!(validate(vec![long], &limits()).unwrap_err().contains("trace key of 9 bytes"));
        let mut empty = prompt();
        empty.report_id = String::new();
        assert!(validate(vec![empty], &limits()).is_err());
        let mut aliases = prompt();
        aliases.also_known_as = vec!["k".into(); MAX_ALSO_KNOWN_AS + 1];
        assert!(validate(vec![aliases], &limits()).is_err());
    }

    #[test]
    fn text_is_clipped_on_a_character_boundary_and_numbers_kept_sane() {
        let out = validate(
            vec![
                fragment(Body::Prompt(Prompt { text: Some("abcé".into()), ..Default::default() })),
                fragment(Body::ModelCall(ModelCall {
                    channel: crate::trace::model::Channel::Log,
                    model: None,
                    usage: None,
                    cost_usd: Some(f64::NAN),
                    start_unix_nano: None,
                    end_unix_nano: None,
                    duration_ms: None,
                    error: None,
                })),
                fragment(Body::UsageMetric(UsageMetric {
                    name: "m".into(),
                    unit: "u".into(),
                    value: f64::INFINITY,
                    time_unix_nano: 0,
                    attributes_json: "{}".into(),
                })),
            ],
            &limits(),
        )
        .expect("valid");
        let Body::Prompt(p) = &out[0].body else { panic!("a prompt") };
        assert_eq!(p.text.as_deref(), Some("abc"), "4 bytes would split é");
        let Body::ModelCall(c) = &out[1].body else { panic!("a model call") };
        assert_eq!(c.cost_usd, None);
        let Body::UsageMetric(m) = &out[2].body else { panic!("a metric") };
        assert_eq!(m.value, 0.0);
    }

    #[test]
    fn absurd_token_counts_fail_the_call_and_model_names_are_clipped() {
        use crate::trace::model::Usage;
        let call = |usage: Usage, model: &str| {
            fragment(Body::ModelCall(ModelCall {
                channel: crate::trace::model::Channel::Log,
                model: Some(model.into()),
                usage: Some(usage),
                cost_usd: None,
                start_unix_nano: None,
                end_unix_nano: None,
                duration_ms: None,
                error: None,
            }))
        };
        let huge = Usage { cache_read: u64::MAX >> 1, ..Usage::default() };
        let error = validate(vec![call(huge, "m")], &Limits::default()).expect_err("refused");
        assert!(error.contains("at most 1000000000"), "{error}");
        let real = Usage { input: 2_000_000, output: 64_000, ..Usage::default() };
        let out = validate(vec![call(real, &"m".repeat(10_000))], &Limits::default()).expect("valid");
        let Body::ModelCall(c) = &out[0].body else { panic!("a model call") };
        assert_eq!(c.model.as_ref().map(String::len), Some(MAX_MODEL_LEN));
    }

    #[test]
    fn attributes_that_are_not_json_become_a_json_string() {
        let out = validate(
            vec![fragment(Body::Event(Event {
                name: "e".into(),
                time_unix_nano: 0,
                attributes_json: "nope".into(),
                error: None,
            }))],
            &Limits::default(),
        )
        .expect("valid");
        let Body::Event(e) = &out[0].body else { panic!("an event") };
        assert_eq!(e.attributes_json, "\"nope\"");
    }
}
