//! The attribution rules, in one place for every parser:
//!
//! - the user is the resource `user.id`, else `enduser.id`, else `user.account_id`;
//! - otherwise the agent's own login on the record: `user.email`, then `user.account_id`;
//! - otherwise a pseudonymous user id (`enduser.pseudo.id`, a salted hash Copilot sends): the
//!   record's, then the resource's;
//! - a resource-level `user.email` never overrides the agent's login; it is the last resort;
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
    let user = resource
        .first_str(&["user.id", "enduser.id", "user.account_id"])
        .or_else(|| record.first_str(&["user.email", "user.account_id", "enduser.pseudo.id"]))
        .or_else(|| resource.first_str(&["enduser.pseudo.id", "user.email"]));
    Attribution {
        session_id: record
            .first_str(&["session.id", "gen_ai.conversation.id"])
            .or_else(|| resource.str("session.id"))
            .map(str::to_owned),
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
    fn the_pseudonymous_id_comes_after_the_login_and_before_the_resource_email() {
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
    fn installation_hash_is_not_a_user() {
        let record = kvs(&[("user.id", "82da2b")]);
        let a = attribution(&Attrs::new(&[]), &Attrs::new(&record));
        assert_eq!(a.user_id, None);
    }
}
