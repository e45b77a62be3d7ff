//! Typed lookup over OTLP attribute lists. Agents disagree on value types (numbers arrive as
//! `intValue`, `doubleValue` or strings; booleans as `boolValue` or "true"), so every getter
//! accepts each form that means the same thing.

use antenna_wit::hex;

use crate::{AttrValue, KeyValue};

/// A borrowed attribute list with typed getters.
#[derive(Clone, Copy)]
pub struct Attrs<'a>(&'a [KeyValue]);

impl<'a> Attrs<'a> {
    /// Wrap an attribute list.
    pub fn new(attributes: &'a [KeyValue]) -> Self {
        Attrs(attributes)
    }

    /// The raw value of `key` (the last one wins if a key repeats, as in OTLP).
    pub fn get(&self, key: &str) -> Option<&'a AttrValue> {
        self.0.iter().rev().find(|kv| kv.key == key).map(|kv| &kv.value)
    }

    /// A non-empty string value (numbers and booleans are not converted to text).
    pub fn str(&self, key: &str) -> Option<&'a str> {
        match self.get(key)? {
            AttrValue::Text(s) if !s.is_empty() => Some(s),
            AttrValue::Json(s) => Some(s),
            _ => None,
        }
    }

    /// The value as owned text; numbers and booleans are rendered.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).and_then(render)
    }

    /// An integer from `intValue`, a whole `doubleValue`, or a numeric string.
    pub fn int(&self, key: &str) -> Option<i64> {
        match self.get(key)? {
            AttrValue::Integer(i) => Some(*i),
            AttrValue::Double(d) if d.fract() == 0.0 && d.is_finite() => Some(*d as i64),
            AttrValue::Text(s) => {
                let s = s.trim();
                s.parse::<i64>()
                    .ok()
                    .or_else(|| s.parse::<f64>().ok().filter(|d| d.fract() == 0.0 && d.is_finite()).map(|d| d as i64))
            }
            _ => None,
        }
    }

    /// A non-negative integer (token counts, durations); negative values are treated as absent.
    pub fn uint(&self, key: &str) -> Option<u64> {
        self.int(key).and_then(|i| u64::try_from(i).ok())
    }

    /// A floating-point number from `doubleValue`, `intValue` or a numeric string.
    pub fn float(&self, key: &str) -> Option<f64> {
        let value = match self.get(key)? {
            AttrValue::Double(d) => *d,
            AttrValue::Integer(i) => *i as f64,
            AttrValue::Text(s) => s.trim().parse::<f64>().ok()?,
            _ => return None,
        };
        value.is_finite().then_some(value)
    }

    /// A boolean from `boolValue` or the strings "true"/"false" (any case).
    pub fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            AttrValue::Boolean(b) => Some(*b),
            AttrValue::Text(s) if s.eq_ignore_ascii_case("true") => Some(true),
            AttrValue::Text(s) if s.eq_ignore_ascii_case("false") => Some(false),
            AttrValue::Integer(i) => Some(*i != 0),
            _ => None,
        }
    }

    /// A value holding JSON (a JSON string, or an OTLP array / kvlist), parsed; `None` when it
    /// is absent or not JSON. Nesting deeper than 128 levels is refused, not recursed into.
    pub fn json(&self, key: &str) -> Option<serde_json::Value> {
        serde_json::from_str(self.str(key)?).ok()
    }

    /// The first key of `keys` that has a string value.
    pub fn first_str(&self, keys: &[&str]) -> Option<&'a str> {
        keys.iter().find_map(|k| self.str(k))
    }

    /// All attributes as one JSON object, skipping the keys in `except`.
    pub fn to_json(&self, except: &[&str]) -> String {
        let mut map = serde_json::Map::new();
        for kv in self.0.iter().filter(|kv| !except.contains(&kv.key.as_str())) {
            map.insert(kv.key.clone(), to_json_value(&kv.value));
        }
        serde_json::Value::Object(map).to_string()
    }

    /// The underlying list.
    pub fn as_slice(&self) -> &'a [KeyValue] {
        self.0
    }
}

/// Render a value as text: strings as they are, numbers and booleans printed, JSON kept.
pub(crate) fn render(value: &AttrValue) -> Option<String> {
    match value {
        AttrValue::Text(s) | AttrValue::Json(s) => Some(s.clone()),
        AttrValue::Integer(i) => Some(i.to_string()),
        AttrValue::Double(d) => Some(d.to_string()),
        AttrValue::Boolean(b) => Some(b.to_string()),
        AttrValue::Bytes(_) | AttrValue::Empty => None,
    }
}

fn to_json_value(value: &AttrValue) -> serde_json::Value {
    use serde_json::Value;
    match value {
        AttrValue::Text(s) => Value::String(s.clone()),
        AttrValue::Boolean(b) => Value::Bool(*b),
        AttrValue::Integer(i) => Value::from(*i),
        AttrValue::Double(d) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
        AttrValue::Bytes(b) => Value::String(hex(b)),
        AttrValue::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())),
        AttrValue::Empty => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: AttrValue) -> KeyValue {
        KeyValue { key: key.into(), value }
    }

    #[test]
    fn numbers_arrive_in_every_form() {
        let list = vec![
            kv("a", AttrValue::Text("1234".into())),
            kv("b", AttrValue::Integer(56)),
            kv("c", AttrValue::Double(0.5)),
            kv("d", AttrValue::Text("true".into())),
            kv("e", AttrValue::Integer(-3)),
        ];
        let attrs = Attrs::new(&list);
        assert_eq!(attrs.uint("a"), Some(1234));
        assert_eq!(attrs.uint("b"), Some(56));
        assert_eq!(attrs.float("c"), Some(0.5));
        assert_eq!(attrs.int("c"), None);
        assert_eq!(attrs.bool("d"), Some(true));
        assert_eq!(attrs.uint("e"), None, "negative counts are not counts");
        assert_eq!(attrs.string("b").as_deref(), Some("56"));
        assert_eq!(attrs.str("missing"), None);
    }
}
