//! The parser on Copilot CLI 1.0.102's real capture (fixtures/copilot-cli/json-content-on):
//! one prompt, two `chat gpt-4.1` calls (input 1234 incl. 200 cache read, output 56 each),
//! one `bash` tool call.

use antenna_sdk::testing::{self, Capture, model_calls, prompts, tool_calls};
use antenna_sdk::{Channel, Signal, StatusCode};

use super::*;

const CAPTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/copilot-cli/json-content-on");

/// The capture's resource batches of one signal, as the host hands them to the parser.
fn capture(signal: Signal) -> Vec<ResourceBatch> {
    let capture = Capture::load(CAPTURE).expect("the capture loads");
    capture.only(&[signal]).resource_batches().expect("the capture decodes")
}

/// The parser on every batch, its output checked against the host's limits.
fn run(batches: &[ResourceBatch]) -> Vec<Fragment> {
    testing::normalize::<Copilot>(batches).expect("normalizes within the host's limits")
}

fn text(value: &str) -> AttrValue {
    AttrValue::Text(value.into())
}

/// Every span attribute of every batch, mutably.
fn for_each_span(batches: &mut [ResourceBatch], mut f: impl FnMut(&mut Span)) {
    for span in batches.iter_mut().flat_map(|b| &mut b.scopes).flat_map(|s| &mut s.spans) {
        f(span);
    }
}

fn strip_content(batches: &mut [ResourceBatch]) {
    for_each_span(batches, |s| s.attributes.retain(|kv| !CONTENT_KEYS.contains(&kv.key.as_str())));
}

#[test]
fn claims_the_scope_and_the_genai_span_names() {
    let claims = Copilot::describe().claims;
    assert!(claims.scope_names.contains(&"github.copilot*".to_owned()));
    assert!(claims.event_names.contains(&"chat *".to_owned()));
    assert_eq!(Copilot::describe().agent, "copilot");
}

#[test]
fn the_capture_gives_one_prompt_two_calls_and_one_tool() {
    let fragments = run(&capture(Signal::Traces));
    assert!(
        fragments
            .iter()
            .filter(|f| !matches!(f.body, FragmentBody::UsageMetric(_)))
            .all(|f| f.trace_key == "otel-6b064063a932d08f630c1f649aabcbc2"),
        "one user message, one OTel trace"
    );

    let prompts = prompts(&fragments);
    assert_eq!(prompts.len(), 1);
    assert_eq!(
        prompts[0].1.text.as_deref(),
        Some("List the files in the current directory using the shell, then summarize.")
    );
    assert_eq!(
        prompts[0].1.response.as_deref(),
        Some("Done. The directory listing shows the files in the current working directory.")
    );

    let calls = model_calls(&fragments);
    assert_eq!(calls.len(), 2, "two chat spans; invoke_agent's sum is not a call");
    for (_, call) in &calls {
        assert_eq!(call.channel, Channel::Span);
        assert_eq!(call.model.as_deref(), Some("gpt-4.1"));
        assert_eq!(call.cost_usd, None, "github.copilot.cost is not dollars");
        let u = call.usage.expect("usage");
        assert_eq!(
            (u.input, u.cache_read, u.output, u.reasoning, u.cache_creation),
            (1034, 200, 56, 0, 0),
            "input_tokens includes the cache reads"
        );
    }

    let tools = tool_calls(&fragments);
    assert_eq!(tools.len(), 1);
    let (fragment, bash) = tools[0];
    assert_eq!(fragment.id, "call_f3714c5b509f4157addc");
    assert_eq!(bash.name.as_deref(), Some("bash"));
    assert_eq!(
        bash.args.as_deref(),
        Some(r#"{"command":"ls","description":"List files","mode":"sync","initial_wait":10}"#)
    );
    assert_eq!(bash.result.as_deref(), Some("README.md\nmain.py\n<shellId: 0 completed with exit code 0>"));
    assert_eq!(bash.success, Some(true));
    assert_eq!(bash.duration_ms, Some(64));

    let cost_events = fragments
        .iter()
        .filter(|f| matches!(&f.body, FragmentBody::Event(e) if e.name == "github.copilot.cost"))
        .count();
    assert_eq!(cost_events, 2, "the multiplier stays visible on the timeline");
    for f in &fragments {
        assert_eq!(f.attribution.user_id.as_deref(), Some("dev@example.com"));
        assert_eq!(f.attribution.device_id.as_deref(), Some("device-1234"));
        assert_eq!(f.attribution.session_id.as_deref(), Some("b73fe7d9-0115-42d7-a406-d026322ae8f5"));
    }
}

#[test]
fn content_off_gives_placeholders_and_the_same_tokens() {
    let mut batches = capture(Signal::Traces);
    strip_content(&mut batches);
    let fragments = run(&batches);
    let (_, prompt) = prompts(&fragments)[0];
    let flag = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";
    assert_eq!(prompt.text.as_deref(), Some(format!("[prompt not captured: {flag} is off]").as_str()));
    assert_eq!(prompt.response.as_deref(), Some(format!("[response not captured: {flag} is off]").as_str()));
    let (_, bash) = tool_calls(&fragments)[0];
    assert_eq!(bash.args.as_deref(), Some(format!("[args not captured: {flag} is off]").as_str()));
    assert_eq!(bash.result.as_deref(), Some(format!("[result not captured: {flag} is off]").as_str()));
    let input: u64 = model_calls(&fragments).iter().filter_map(|(_, c)| c.usage.map(|u| u.input)).sum();
    assert_eq!(input, 2 * 1034);
}

#[test]
fn the_pseudonymous_id_is_the_user_unless_the_resource_names_one() {
    let mut batches = capture(Signal::Traces);
    for_each_span(&mut batches, |s| {
        if s.name == "invoke_agent" {
            s.attributes.push(KeyValue { key: "enduser.pseudo.id".into(), value: text("a1b2c3") });
        }
    });
    let named = run(&batches);
    assert!(named.iter().all(|f| f.attribution.user_id.as_deref() == Some("dev@example.com")));

    for batch in &mut batches {
        batch.resource_attributes.retain(|kv| kv.key != "user.id");
        batch.resource_attributes.push(KeyValue { key: "user.email".into(), value: text("someone@else.com") });
    }
    let hashed = run(&batches);
    assert!(
        hashed.iter().all(|f| f.attribution.user_id.as_deref() == Some("a1b2c3")),
        "every span of the batch, not only invoke_agent; a resource email does not override"
    );
}

#[test]
fn metrics_are_usage_metrics_only() {
    let fragments = run(&capture(Signal::Metrics));
    assert!(!fragments.is_empty());
    assert!(fragments.iter().all(|f| f.usage_metric().is_some() && f.report_id.len() < 64));
}

#[test]
fn failures_are_errors() {
    let mut batches = capture(Signal::Traces);
    for_each_span(&mut batches, |s| {
        if s.name.starts_with("execute_tool") {
            s.attributes.retain(|kv| kv.key != "process.exit.code");
            s.attributes.push(KeyValue { key: "process.exit.code".into(), value: AttrValue::Integer(2) });
        }
        if s.span_id == "9a3e79e0d06b35dc" {
            s.status = StatusCode::Error;
            s.status_message = "upstream 500".into();
        }
    });
    let fragments = run(&batches);
    assert_eq!(tool_calls(&fragments)[0].1.success, Some(false));
    let errors: Vec<_> = model_calls(&fragments).iter().filter_map(|(_, c)| c.error.clone()).collect();
    assert_eq!(errors, vec!["upstream 500".to_owned()]);
}

#[test]
fn the_prompt_is_what_the_user_typed() {
    assert_eq!(strip_injected_context("<current_datetime>2026</current_datetime>\n\nList files."), "List files.");
    assert_eq!(strip_injected_context("<a_b>x</a_b> <c>y</c>Hi"), "Hi", "several blocks");
    assert_eq!(strip_injected_context("<b>bold</b> text"), "text");
    assert_eq!(strip_injected_context("<div class=x>keep</div>"), "<div class=x>keep</div>");
    assert_eq!(strip_injected_context("<open> no close"), "<open> no close");
    assert_eq!(strip_injected_context("<only>x</only>"), "<only>x</only>");
}

#[test]
fn hostile_input_never_panics() {
    let mut batches = capture(Signal::Traces);
    for_each_span(&mut batches, |s| {
        for kv in &mut s.attributes {
            kv.value = match kv.key.as_str() {
                "gen_ai.input.messages" => text("[{\"role\":\"user\",\"parts\":"),
                "gen_ai.output.messages" => text("{}"),
                "gen_ai.usage.input_tokens" => AttrValue::Integer(-5),
                "gen_ai.tool.call.id" => text(&"x".repeat(5000)),
                _ => kv.value.clone(),
            };
        }
    });
    let fragments = run(&batches);
    assert_eq!(prompts(&fragments)[0].1.text, None, "broken JSON is no text");
    assert!(fragments.iter().all(|f| f.id.len() <= 512));

    for_each_span(&mut batches, |s| s.trace_id.clear());
    assert!(run(&batches).is_empty(), "no trace id, no trace");
}
