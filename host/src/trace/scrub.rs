//! The optional secret scrubber (`ANTENNA_SCRUB_SECRETS=1`): before anything is stored, text a
//! plugin returned (prompts, responses, tool arguments and results, errors, event and metric
//! attributes) is searched for credentials and each is replaced by `[REDACTED:<kind>]`. The raw
//! OTLP body is kept as it came (replay needs it); traces, the API and the UI show scrubbed text.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::model::{Body, Fragment};

/// (kind, pattern), after gitleaks' rules for the common providers. A pattern's `keep` group,
/// when it has one, stays before the replacement (a header or variable name, a URL's user) and
/// its `tail` group after it.
const PATTERNS: &[(&str, &str)] = &[
    // A key whose END line was clipped away is scrubbed to the end of the text.
    ("private-key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)"),
    ("anthropic-key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openai-key", r"\bsk-(?:proj-)?[A-Za-z0-9_\-]{20,}"),
    ("aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    (
        "aws-secret-key",
        r#"(?i)(?P<keep>(?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?)[A-Za-z0-9/+=]{40}\b"#,
    ),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("gitlab-token", r"\bgl(?:pat|dt|ptt|rt)-[A-Za-z0-9_\-]{20,}"),
    ("stripe-key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}"),
    ("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}"),
    ("slack-token", r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    ("slack-webhook", r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]+"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_\-]{35}"),
    ("jwt", r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),
    // The password of a URL (`postgres://user:PASSWORD@host`, `https://user:TOKEN@host`).
    ("url-password", r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\x22]+:)[^\s@/'\x22]+(?P<tail>@)"),
    // An Authorization value, also inside a JSON string (escaped quotes).
    (
        "credential",
        r#"(?i)(?P<keep>authorization(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?\s*(?:bearer|basic|token)\s+)[A-Za-z0-9._~+/=\-]{8,}"#,
    ),
];

static SCRUBBERS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        // The patterns are constants, checked by the unit tests below.
        .filter_map(|(kind, pattern)| Regex::new(pattern).ok().map(|re| (*kind, re)))
        .collect()
});

/// `text` with every credential replaced.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (kind, re) in SCRUBBERS.iter() {
        if re.is_match(&out) {
            let replaced = re
                .replace_all(&out, |caps: &regex::Captures<'_>| {
                    let keep = caps.name("keep").map_or("", |m| m.as_str());
                    let tail = caps.name("tail").map_or("", |m| m.as_str());
                    format!("{keep}[REDACTED:{kind}]{tail}")
                })
                .into_owned();
            out = Cow::Owned(replaced);
        }
    }
    out
}

fn scrub_in_place(slot: &mut String) {
    if let Cow::Owned(clean) = scrub(slot) {
        *slot = clean;
    }
}

fn scrub_option(slot: &mut Option<String>) {
    if let Some(text) = slot {
        scrub_in_place(text);
    }
}

/// Scrub every text field of a fragment.
pub fn scrub_fragment(fragment: &mut Fragment) {
    match &mut fragment.body {
        Body::Prompt(p) => {
            scrub_option(&mut p.text);
            scrub_option(&mut p.response);
        }
        Body::ModelCall(c) => scrub_option(&mut c.error),
        Body::ToolCall(t) => {
            scrub_option(&mut t.args);
            scrub_option(&mut t.result);
        }
        Body::Event(e) => {
            scrub_in_place(&mut e.attributes_json);
            scrub_option(&mut e.error);
        }
        Body::UsageMetric(m) => scrub_in_place(&mut m.attributes_json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(SCRUBBERS.len(), PATTERNS.len());
    }

    #[test]
    fn credentials_are_replaced_and_the_rest_kept() {
        let cases = [
            ("export ANTHROPIC_API_KEY=sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123", "anthropic-key"),
            ("key: sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX1234", "openai-key"),
            ("aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "aws-access-key"),
            ("token ghp_0123456789abcdefghijklmnopqrstuvwxyzAB", "github-token"),
            ("SLACK=xoxb-1234567890-abcdefghij", "slack-token"),
            ("AIzaSyA-1234567890abcdefghijklmnopqrstu", "google-api-key"),
            ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
            ("curl -H 'Authorization: Bearer abcdef0123456789'", "credential"),
        ];
        for (text, kind) in cases {
            let clean = scrub(text);
            assert!(clean.contains(&format!("[REDACTED:{kind}]")), "{text} -> {clean}");
            assert!(!clean.contains("0123456789abcdef") || kind != "credential", "{clean}");
        }
        assert_eq!(
            scrub("curl -H 'Authorization: Bearer abcdef0123456789'"),
            "curl -H 'Authorization: Bearer [REDACTED:credential]'"
        );
        let more = [
            ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "aws-secret-key"),
            ("{\\\"AWS_SECRET_ACCESS_KEY\\\": \\\"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\\\"}", "aws-secret-key"),
            ("DATABASE_URL=postgres://app:s3cr3t-pass@db.internal:5432/prod", "url-password"),
            ("GITLAB_TOKEN=glpat-abcdefghij0123456789", "gitlab-token"),
            ("git clone https://oauth2:glpat-abcdefghij0123456789@gitlab.com/x/y", "url-password"),
            ("STRIPE=sk_live_0123456789abcdefghijklmn", "stripe-key"),
            ("//registry.npmjs.org/:_authToken=npm_0123456789abcdefghijklmnopqrstuvwxyz", "npm-token"),
            ("HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz012345", "huggingface-token"),
            ("post to https://hooks.slack.com/services/T000/B000/XXXXXXXX", "slack-webhook"),
            ("{\\\"headers\\\":{\\\"Authorization\\\":\\\"Bearer abcdef0123456789\\\"}}", "credential"),
            ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7clipped", "private-key"),
        ];
        for (text, kind) in more {
            let clean = scrub(text);
            assert!(clean.contains(&format!("[REDACTED:{kind}]")), "{text} -> {clean}");
        }
        for secret in [
            "wJalrXUtnFEMI",
            "s3cr3t-pass",
            "glpat-abc",
            "sk_live_0",
            "npm_0",
            "hf_abc",
            "XXXXXXXX",
            "abcdef0123456789",
            "MIIEpAIB",
        ] {
            for (text, _) in more {
                assert!(!scrub(text).contains(secret), "{text} -> {}", scrub(text));
            }
        }
        assert_eq!(
            scrub("DATABASE_URL=postgres://app:s3cr3t-pass@db.internal:5432/prod"),
            "DATABASE_URL=postgres://app:[REDACTED:url-password]@db.internal:5432/prod"
        );
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\\nb3BlbnNzaC1rZXktdjEAAAAA\\n-----END OPENSSH PRIVATE KEY-----";
        assert_eq!(scrub(&format!("{{\"file\":\"{key}\"}}")), "{\"file\":\"[REDACTED:private-key]\"}");
    }

    #[test]
    fn ordinary_text_is_untouched_and_not_copied() {
        for text in ["ls -la", "[prompt not captured: OTEL_LOG_USER_PROMPTS is off]", "sk-short", "{\"a\":1}"] {
            assert!(matches!(scrub(text), Cow::Borrowed(_)), "{text}");
        }
    }
}
