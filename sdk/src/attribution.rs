//! The attribution rules, in one place for every parser:
//!
//! - the user is the resource `user.id`, else `enduser.id`, else `user.account_id`;
//! - otherwise the agent's own login on the record: `user.email`, then `user.account_id`;
//! - otherwise a pseudonymous user id (`enduser.pseudo.id`, a salted hash Copilot sends): the
//!   record's, then the resource's;
//! - a resource-level `user.email` is never the user: shell profiles and MDM push stale ones,
//!   so a trace with nothing else gets the host's fallback user (`OTEL_CLI_AGENT_FALLBACK_USER`);
//! - a record-level `user.id` is not used (Claude Code puts an installation hash there);
//! - the device is the resource `host.id`;
//! - the host applies `OTEL_CLI_AGENT_FALLBACK_USER` to traces that end with no user.

use crate::{Attribution, Attrs};

/// Who and where: from the resource attributes and one record's attributes. The session is
/// the record's `session.id` or `gen_ai.conversation.id`, else the resource's `session.id`.
///
/// An agent that names the user on one record of a batch only (Copilot's `invoke_agent`
/// span) can add that attribute to the resource attributes it passes here.
pub fn attribution(resource: &Attrs<'_>, record: &Attrs<'_>) -> Attribution {
    attribution_with(resource, record, &AttributionOverrides::NONE)
}

/// An agent's own twists on the [`attribution`] rules: where it puts its session and its
/// login, or that its records name no user. The default changes nothing.
///
/// ```
/// use antenna_sdk::{AttrValue, Attrs, AttributionOverrides, KeyValue, attribution_with};
///
/// // Codex names the session `conversation.id` (on some spans `thread_id`).
/// const CODEX: AttributionOverrides =
///     AttributionOverrides { fallback_session: &["conversation.id", "thread_id"], ..AttributionOverrides::NONE };
/// let record = [KeyValue { key: "conversation.id".into(), value: AttrValue::Text("c-1".into()) }];
/// let who = attribution_with(&Attrs::new(&[]), &Attrs::new(&record), &CODEX);
/// assert_eq!(who.session_id.as_deref(), Some("c-1"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AttributionOverrides<'a> {
    /// Record keys naming the session, ahead of the standard ones (Cursor's `conversation_id`).
    pub session: &'a [&'a str],
    /// Record keys naming the session when neither the record nor the resource has a standard
    /// one (Codex's `conversation.id`).
    pub fallback_session: &'a [&'a str],
    /// The session when nothing else names one (a session found on another record).
    pub default_session: Option<&'a str>,
    /// Record keys naming the agent's own login, after the standard `user.email` and
    /// `user.account_id` and before a pseudonymous id (Cursor's `user_email`).
    pub login: &'a [&'a str],
    /// Only the resource names the user: the records' logins and pseudonymous ids are not
    /// used (Gemini CLI's records carry no login of the user's own).
    pub resource_user_only: bool,
}

impl AttributionOverrides<'_> {
    /// No override: [`attribution`]'s rules as they are (usable in a `const`).
    pub const NONE: AttributionOverrides<'static> = AttributionOverrides {
        session: &[],
        fallback_session: &[],
        default_session: None,
        login: &[],
        resource_user_only: false,
    };
}

/// [`attribution`] with an agent's [`AttributionOverrides`].
pub fn attribution_with(resource: &Attrs<'_>, record: &Attrs<'_>, overrides: &AttributionOverrides<'_>) -> Attribution {
    let record_user = || {
        record
            .first_str(&["user.email", "user.account_id"])
            .or_else(|| record.first_str(overrides.login))
            .or_else(|| record.str("enduser.pseudo.id"))
    };
    let user = resource
        .first_str(&["user.id", "enduser.id", "user.account_id"])
        .or_else(|| if overrides.resource_user_only { None } else { record_user() })
        .or_else(|| resource.str("enduser.pseudo.id"));
    let session = record
        .first_str(overrides.session)
        .or_else(|| record.first_str(&["session.id", "gen_ai.conversation.id"]))
        .or_else(|| resource.str("session.id"))
        .or_else(|| record.first_str(overrides.fallback_session))
        .or(overrides.default_session);
    Attribution {
        session_id: session.map(str::to_owned),
        user_id: user.map(str::to_owned),
        device_id: resource.str("host.id").map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AttrValue, KeyValue};

    fn kvs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
        pairs.iter().map(|(k, v)| KeyValue { key: (*k).into(), value: AttrValue::Text((*v).into()) }).collect()
    }

    #[test]
    fn resource_user_id_wins_over_record_login_and_hash() {
        let resource = kvs(&[("user.id", "dev@example.com"), ("host.id", "device-1")]);
        let record = kvs(&[("user.id", "82da2b"), ("user.email", "login@example.com"), ("session.id", "s1")]);
        let a = attribution(&Attrs::new(&resource), &Attrs::new(&record));
        assert_eq!(a.user_id.as_deref(), Some("dev@example.com"));
        assert_eq!(a.device_id.as_deref(), Some("device-1"));
        assert_eq!(a.session_id.as_deref(), Some("s1"));
    }

    #[test]
    fn resource_email_never_overrides_the_agent_login() {
        let resource = kvs(&[("user.email", "someone@else.com")]);
        let record = kvs(&[("user.id", "82da2b"), ("user.email", "login@example.com")]);
        let a = attribution(&Attrs::new(&resource), &Attrs::new(&record));
        assert_eq!(a.user_id.as_deref(), Some("login@example.com"));
    }

    #[test]
    fn the_pseudonymous_id_comes_after_the_login_and_a_resource_email_is_never_the_user() {
        let resource = kvs(&[("user.email", "someone@else.com")]);
        let record = kvs(&[("enduser.pseudo.id", "5f1d3c")]);
        let a = attribution(&Attrs::new(&resource), &Attrs::new(&record));
        assert_eq!(a.user_id.as_deref(), Some("5f1d3c"));
        let login = kvs(&[("enduser.pseudo.id", "5f1d3c"), ("user.email", "login@example.com")]);
        let a = attribution(&Attrs::new(&resource), &Attrs::new(&login));
        assert_eq!(a.user_id.as_deref(), Some("login@example.com"));
        let named = kvs(&[("user.id", "dev@example.com"), ("enduser.pseudo.id", "5f1d3c")]);
        let a = attribution(&Attrs::new(&named), &Attrs::new(&record));
        assert_eq!(a.user_id.as_deref(), Some("dev@example.com"));
    }

    #[test]
    fn overrides_add_sessions_and_logins_or_keep_to_the_resource() {
        let resource = kvs(&[("user.email", "someone@else.com"), ("session.id", "res-session")]);
        let record = kvs(&[("user_email", "login@example.com"), ("conversation_id", "conv-1"), ("thread_id", "t")]);
        let (resource, record) = (Attrs::new(&resource), Attrs::new(&record));
        let cursor =
            AttributionOverrides { session: &["conversation_id"], login: &["user_email"], ..Default::default() };
        let a = attribution_with(&resource, &record, &cursor);
        assert_eq!((a.user_id.as_deref(), a.session_id.as_deref()), (Some("login@example.com"), Some("conv-1")));
        let plain = attribution(&resource, &record);
        assert_eq!((plain.user_id.as_deref(), plain.session_id.as_deref()), (None, Some("res-session")));
        let fallback = AttributionOverrides { fallback_session: &["thread_id"], ..Default::default() };
        assert_eq!(attribution_with(&resource, &record, &fallback).session_id.as_deref(), Some("res-session"));
        let bare = Attrs::new(&[]);
        assert_eq!(attribution_with(&bare, &record, &fallback).session_id.as_deref(), Some("t"));
        let default = AttributionOverrides { default_session: Some("d"), ..Default::default() };
        assert_eq!(attribution_with(&bare, &bare, &default).session_id.as_deref(), Some("d"));
        let login = kvs(&[("user.email", "login@example.com"), ("enduser.pseudo.id", "5f1d3c")]);
        let only = AttributionOverrides { resource_user_only: true, ..Default::default() };
        assert_eq!(attribution_with(&resource, &Attrs::new(&login), &only).user_id, None);
        assert_eq!(attribution_with(&bare, &Attrs::new(&login), &only).user_id, None);
    }

    #[test]
    fn installation_hash_is_not_a_user() {
        let record = kvs(&[("user.id", "82da2b")]);
        let a = attribution(&Attrs::new(&[]), &Attrs::new(&record));
        assert_eq!(a.user_id, None);
    }
}
