//! What a model call costs when the agent sends no cost: the price table built in as data
//! (`host/data/prices.toml`, taken from litellm's public table; see its header) with an
//! operator's `ANTENNA_PRICES` file over it. Both have the same format:
//!
//! ```toml
//! [[model]]
//! match = "gemini-3.8-*"   # exact model name, or a prefix ending in *
//! input = 0.30             # USD per million tokens
//! output = 2.50
//! cache_read = 0.03        # missing: priced as input
//! cache_write = 0.0        # missing: priced as input
//! reasoning = 2.50         # missing: priced as output
//! ```

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;

use super::merge::Trace;
use super::model::Usage;

/// The built-in table, compiled in.
const BUILTIN: &str = include_str!("../../data/prices.toml");

#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("price file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("price file {0}: {1}")]
    Parse(String, toml::de::Error),
    #[error("price file {0}: entry {1:?}: {2}")]
    Invalid(String, String, &'static str),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    model: Vec<Price>,
}

/// One model's prices, USD per million tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    #[serde(rename = "match")]
    pub pattern: String,
    pub input: f64,
    pub output: f64,
    pub cache_read: Option<f64>,
    pub cache_write: Option<f64>,
    pub reasoning: Option<f64>,
}

impl Price {
    fn check(&self, file: &str) -> Result<(), PriceError> {
        let invalid = |why| Err(PriceError::Invalid(file.to_owned(), self.pattern.clone(), why));
        let stem = self.pattern.strip_suffix('*').unwrap_or(&self.pattern);
        if stem.is_empty() || stem.contains('*') {
            return invalid("`match` is an exact name or a non-empty prefix ending in *");
        }
        let figures = [Some(self.input), Some(self.output), self.cache_read, self.cache_write, self.reasoning];
        if figures.into_iter().flatten().any(|p| !p.is_finite() || p < 0.0) {
            return invalid("prices are finite numbers of USD per million tokens, never negative");
        }
        Ok(())
    }

    /// The cost of `usage` at these prices, in USD.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let per_token = |tokens: u64, price: f64| tokens as f64 * price / 1e6;
        per_token(usage.input, self.input)
            + per_token(usage.output, self.output)
            + per_token(usage.cache_read, self.cache_read.unwrap_or(self.input))
            + per_token(usage.cache_creation, self.cache_write.unwrap_or(self.input))
            + per_token(usage.reasoning, self.reasoning.unwrap_or(self.output))
    }
}

/// The price table: exact names, and prefixes tried longest first.
#[derive(Debug, Default)]
pub struct Prices {
    exact: HashMap<String, Price>,
    prefixes: Vec<(String, Price)>,
    /// Models already reported as unpriced, so the log names each once.
    unpriced: Mutex<BTreeSet<String>>,
}

impl Prices {
    /// The built-in table, with the entries of `overrides` (an `ANTENNA_PRICES` file) over it.
    pub fn load(overrides: Option<&Path>) -> Result<Self, PriceError> {
        let mut prices = Prices::default();
        prices.add("built-in prices.toml", BUILTIN)?;
        if let Some(path) = overrides {
            let text = std::fs::read_to_string(path).map_err(|e| PriceError::Read(path.to_owned(), e))?;
            prices.add(&path.display().to_string(), &text)?;
        }
        Ok(prices)
    }

    /// Add (or replace) the entries of one file.
    fn add(&mut self, file: &str, text: &str) -> Result<(), PriceError> {
        let parsed: PriceFile = toml::from_str(text).map_err(|e| PriceError::Parse(file.to_owned(), e))?;
        for price in parsed.model {
            price.check(file)?;
            let key = price.pattern.to_ascii_lowercase();
            match key.strip_suffix('*') {
                Some(prefix) => {
                    self.prefixes.retain(|(p, _)| p != prefix);
                    self.prefixes.push((prefix.to_owned(), price));
                }
                None => {
                    self.exact.insert(key, price);
                }
            }
        }
        self.prefixes.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Ok(())
    }

    /// The prices of `model`: an exact entry, else the longest matching prefix. Names are
    /// compared in lower case without a provider path (`models/`, `anthropic/`) or a variant
    /// suffix in brackets (Claude Code's `claude-opus-4-8[1m]`).
    pub fn find(&self, model: &str) -> Option<&Price> {
        let name = model.trim().to_ascii_lowercase();
        let name = name.rsplit('/').next().unwrap_or(&name);
        let name = match name.find('[') {
            Some(at) if name.ends_with(']') => &name[..at],
            _ => name,
        };
        self.exact
            .get(name)
            .or_else(|| self.prefixes.iter().find(|(prefix, _)| name.starts_with(prefix.as_str())).map(|(_, p)| p))
    }

    /// What `usage` on `model` costs, or `None` (logged once per model) when the table has no
    /// price for it, so an operator can add one with `ANTENNA_PRICES`.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        let price = self.find(model);
        if price.is_none()
            && let Ok(mut unpriced) = self.unpriced.lock()
            && unpriced.len() < 1000
            && unpriced.insert(model.to_owned())
        {
            tracing::warn!(model, "no price for this model: its traces have cost_usd null; add it with ANTENNA_PRICES");
        }
        price.map(|p| p.cost(usage))
    }
}

/// One model's share of a trace: what `GET /api/public/usage?group_by=model` adds up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelShare {
    /// `None` for calls that named no model.
    pub model: Option<String>,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
}

/// Money rounded to a billionth of a dollar, so sums of floats compare.
fn round(usd: f64) -> f64 {
    (usd * 1e9).round() / 1e9
}

/// Put a cost on each model call of `trace` and on the trace. A call keeps the agent's own
/// cost (`agent`); a call without one is priced from the table over its normalized tokens
/// (`price-table`). If any call with tokens can be priced neither way (unknown model), the
/// trace's `cost_usd` and `cost_source` are null rather than an undercount. A trace mixing both
/// sources says `price-table`: part of its cost is the table's. Returns each model's share.
pub fn price(trace: &mut Trace, prices: &Prices) -> Vec<ModelShare> {
    let mut shares: Vec<ModelShare> = Vec::new();
    let (mut total, mut unknown, mut by_table, mut by_agent) = (0.0, false, false, false);
    for call in trace.observations.iter_mut().filter(|o| o.kind == "llm_call") {
        let usage = call.usage.unwrap_or_default();
        if call.cost_usd.is_none() && usage != Usage::default() {
            call.cost_usd = call.model.as_deref().and_then(|m| prices.cost(m, &usage)).map(round);
            call.cost_source = call.cost_usd.map(|_| "price-table");
        }
        match (call.cost_usd, call.cost_source) {
            (Some(cost), source) => {
                total += cost;
                by_table |= source == Some("price-table");
                by_agent |= source == Some("agent");
            }
            (None, _) => unknown |= usage != Usage::default(),
        }
        let at = match shares.iter().position(|s| s.model == call.model) {
            Some(at) => at,
            None => {
                shares.push(ModelShare { model: call.model.clone(), cost_usd: Some(0.0), ..Default::default() });
                shares.len() - 1
            }
        };
        let share = &mut shares[at];
        share.usage.add(&usage);
        share.cost_usd = match (share.cost_usd, call.cost_usd) {
            (Some(sum), Some(cost)) => Some(round(sum + cost)),
            (_, None) if usage == Usage::default() => share.cost_usd,
            _ => None,
        };
    }
    (trace.cost_usd, trace.cost_source) = match (unknown, by_table, by_agent) {
        (true, _, _) => (None, None),
        (false, true, _) => (Some(round(total)), Some("price-table")),
        (false, false, true) => (Some(round(total)), Some("agent")),
        (false, false, false) => (None, None),
    };
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, cache_read: u64, cache_creation: u64, reasoning: u64) -> Usage {
        Usage { input, output, cache_read, cache_creation, reasoning }
    }

    #[test]
    fn the_built_in_table_prices_the_models_of_the_captures() {
        let prices = Prices::load(None).expect("the built-in table parses");
        for model in ["claude-opus-4-8[1m]", "gpt-5.5", "gemini-3.8-flash", "gpt-4.1", "models/gemini-3.8-flash"] {
            assert!(prices.find(model).is_some(), "{model} has a price");
        }
        assert!(prices.find("no-such-model").is_none());
    }

    #[test]
    fn exact_beats_prefix_longest_prefix_wins_and_overrides_replace() {
        let mut prices = Prices::default();
        let file = r#"
            [[model]]
            match = "m-*"
            input = 1.0
            output = 2.0
            [[model]]
            match = "m-large-*"
            input = 10.0
            output = 20.0
            [[model]]
            match = "m-large-1"
            input = 100.0
            output = 200.0
            cache_read = 1.0
        "#;
        prices.add("test", file).expect("valid");
        assert_eq!(prices.find("m-small").map(|p| p.input), Some(1.0));
        assert_eq!(prices.find("m-large-2").map(|p| p.input), Some(10.0));
        assert_eq!(prices.find("M-LARGE-1").map(|p| p.input), Some(100.0));
        prices.add("override", "[[model]]\nmatch = \"m-*\"\ninput = 3.0\noutput = 4.0\n").expect("valid");
        assert_eq!(prices.find("m-small").map(|p| p.input), Some(3.0));
        // A million of each: 100 input + 200 output + 1 cache read + 100 cache write (as
        // input) + 200 reasoning (as output).
        let cost = prices.cost("m-large-1", &usage(1_000_000, 1_000_000, 1_000_000, 1_000_000, 1_000_000));
        assert_eq!(cost, Some(601.0));
        assert_eq!(prices.cost("other", &usage(1, 1, 1, 1, 1)), None);
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_named() {
        let mut prices = Prices::default();
        for (file, why) in [
            ("[[model]]\nmatch = \"a*b\"\ninput = 1.0\noutput = 1.0\n", "prefix"),
            ("[[model]]\nmatch = \"*\"\ninput = 1.0\noutput = 1.0\n", "prefix"),
            ("[[model]]\nmatch = \"a\"\ninput = -1.0\noutput = 1.0\n", "negative"),
            ("[[model]]\nmatch = \"a\"\ninput = 1.0\n", "missing field"),
            ("[[model]]\nmatch = \"a\"\ninput = 1.0\noutput = 1.0\ncahce_read = 1.0\n", "unknown field"),
        ] {
            let error = prices.add("f.toml", file).expect_err(why).to_string();
            assert!(error.contains("f.toml"), "{error}");
            assert!(error.contains(why), "{why}: {error}");
        }
    }
}
