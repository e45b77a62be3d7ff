//! Ids and trace keys: stable across runs, builds and re-sends (so re-posting a batch changes
//! nothing), and short enough for the host, which fails the whole batch when one id, key or
//! report id is empty or longer than [`MAX_ID_LEN`] bytes.

use std::borrow::Cow;

use crate::Attribution;

/// The longest trace key, also-known-as key, id or report id the host accepts, in bytes.
pub const MAX_ID_LEN: usize = 512;

/// Text up to this many bytes goes into an id as it is; [`bounded_id`] shortens longer text.
const KEEP_WHOLE: usize = 200;
/// How much of a shortened text stays readable in front of its digest.
const KEEP_PREFIX: usize = 64;

/// A short, stable digest of `parts`: 16 lowercase hex digits (64-bit FNV-1a, each part
/// followed by a NUL byte so that `["ab", "c"]` and `["a", "bc"]` differ).
///
/// Use it for ids of things that carry no id of their own (derive it from what identifies
/// them), and for report ids that would otherwise embed long text. It is the same on every
/// platform and in every build, so a re-sent record gets the same id. It is not a
/// cryptographic hash: do not use it where an adversary choosing the input matters.
///
/// ```
/// let id = antenna_sdk::stable_id(&["run_shell_command", r#"{"command":"ls"}"#]);
/// assert_eq!(id.len(), 16);
/// assert_eq!(id, antenna_sdk::stable_id(&["run_shell_command", r#"{"command":"ls"}"#]));
/// assert_ne!(antenna_sdk::stable_id(&["ab", "c"]), antenna_sdk::stable_id(&["a", "bc"]));
/// ```
pub fn stable_id(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0)) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// Text from a record, fit to go inside an id: kept as it is up to 200 bytes, else its first
/// 64 bytes, `~` and the [`stable_id`] of the whole text (81 bytes at most).
///
/// ```
/// use antenna_sdk::bounded_id;
/// assert_eq!(bounded_id("call_f3714c5b509f4157addc"), "call_f3714c5b509f4157addc");
/// let long = "p".repeat(10_000);
/// assert!(bounded_id(&long).len() <= 81);
/// assert_eq!(bounded_id(&long), bounded_id(&long));
/// ```
pub fn bounded_id(text: &str) -> Cow<'_, str> {
    if text.len() <= KEEP_WHOLE {
        return Cow::Borrowed(text);
    }
    let cut = text.floor_char_boundary(KEEP_PREFIX);
    Cow::Owned(format!("{}~{}", &text[..cut], stable_id(&[text])))
}

/// The trace key for an OpenTelemetry trace id: `otel-<trace id>`, or `None` when the record
/// carries no trace id.
pub fn otel_key(trace_id: &str) -> Option<String> {
    (!trace_id.is_empty()).then(|| format!("otel-{}", bounded_id(trace_id)))
}

/// The trace key of what belongs to a session and to no prompt (usage metrics):
/// `session-<session id>`, or `session-unknown`.
pub fn session_key(who: &Attribution) -> String {
    format!("session-{}", bounded_id(who.session_id.as_deref().unwrap_or("unknown")))
}

/// An id within the host's limit: ids up to [`MAX_ID_LEN`] stay as they are (a report id's
/// ordering prefix included), longer ones are shortened like [`bounded_id`].
pub(crate) fn within_limit(id: &mut String) {
    if id.len() > MAX_ID_LEN {
        *id = bounded_id(id).into_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_fnv1a_with_separators() {
        // FNV-1a of the single byte 0 (the separator after an empty part).
        assert_eq!(stable_id(&[""]), "af63bd4c8601b7df");
        assert_eq!(stable_id(&[]), "cbf29ce484222325");
        assert_ne!(stable_id(&["a", ""]), stable_id(&["a"]));
    }

    #[test]
    fn long_text_is_shortened_on_a_char_boundary() {
        let text = "é".repeat(200);
        let id = bounded_id(&text);
        assert!(id.len() <= KEEP_PREFIX + 1 + 16, "{id}");
        assert!(id.starts_with("éé"));
        assert_ne!(bounded_id(&format!("{text}x")), id, "the digest covers the whole text");
    }

    #[test]
    fn keys() {
        assert_eq!(otel_key(""), None);
        assert_eq!(otel_key("6b06").as_deref(), Some("otel-6b06"));
        let who = Attribution { session_id: None, user_id: None, device_id: None };
        assert_eq!(session_key(&who), "session-unknown");
        let mut id = "r".repeat(600);
        within_limit(&mut id);
        assert!(id.len() <= MAX_ID_LEN);
    }
}
