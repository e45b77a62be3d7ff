//! The optional secret scrubber: with `ANTENNA_SCRUB_SECRETS` on, a credential a developer
//! pasted into a prompt never reaches the stored trace; off (the default), the text is kept.

use antenna_e2e::{Capture, CapturedRequest, TestHost};

const PROMPT: &str = "List the files in the current directory using the shell, then summarize.";
const KEY: &str = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789";

/// The Copilot capture with a key pasted into the user's prompt.
fn capture_with_a_key() -> Capture {
    let capture = Capture::load("copilot-cli/json-content-on");
    let requests = capture
        .requests
        .iter()
        .map(|r| {
            let text = String::from_utf8(r.body.clone()).expect("a JSON capture");
            let body = text.replace(PROMPT, &format!("{PROMPT} My key is {KEY}")).into_bytes();
            CapturedRequest { body, ..r.clone() }
        })
        .collect();
    Capture { requests }
}

#[tokio::test]
async fn a_pasted_key_is_scrubbed_before_storage_when_asked() {
    let host = TestHost::start_with(|c| c.limits.scrub_secrets = true).await;
    host.replay(&capture_with_a_key()).await;
    let traces = host.traces().await;
    assert_eq!(traces.len(), 1);
    let id = traces[0]["id"].as_str().expect("id");
    let detail = host.get_json(&format!("/api/public/traces/{id}")).await.to_string();
    assert!(!detail.contains(KEY), "the key is gone from the trace: {detail}");
    assert_eq!(traces[0]["prompt"], format!("{PROMPT} My key is [REDACTED:anthropic-key]"));

    // Off by default: the same input keeps its text.
    let plain = TestHost::start().await;
    plain.replay(&capture_with_a_key()).await;
    assert_eq!(plain.traces().await[0]["prompt"], format!("{PROMPT} My key is {KEY}"));
}
