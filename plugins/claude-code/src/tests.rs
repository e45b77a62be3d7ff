use antenna_sdk::testing::{Capture, model_calls};

use super::*;

/// Both real captures (Claude Code 2.1.197): three model calls, each reported as an
/// `api_request` event and an `llm_request` span, and every id within the host's limit
/// (usage metrics used to embed their attributes in the report id).
#[test]
fn the_real_captures_fit_the_hosts_limits() {
    for run in ["protobuf-content-on", "json-content-off"] {
        let dir = format!("{}/../../fixtures/claude-code/{run}", env!("CARGO_MANIFEST_DIR"));
        let fragments = Capture::load(&dir).and_then(|c| c.normalize::<ClaudeCode>()).expect(run);
        let calls = model_calls(&fragments);
        for channel in [Channel::Log, Channel::Span] {
            assert_eq!(calls.iter().filter(|(_, c)| c.channel == channel).count(), 3, "{run} {channel:?}");
        }
        let metrics: Vec<&Fragment> = fragments.iter().filter(|f| f.usage_metric().is_some()).collect();
        assert!(!metrics.is_empty(), "{run}");
        assert!(metrics.iter().all(|f| f.report_id.len() < 40 && f.trace_key.starts_with("session-")), "{run}");
    }
}
