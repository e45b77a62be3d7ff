//! # antenna-sdk
//!
//! Write a parser that turns one coding agent's OpenTelemetry into Antenna's normalized,
//! per-prompt trace fragments. Implement [`Parser`], export it with [`export_parser!`], and
//! build the crate with `cargo build --release --target wasm32-wasip2`.
//!
//! The generated component bindings stay private to this crate: authors only see the plain
//! types re-exported here and the helpers for what every parser does (attribute lookup,
//! attribution, token conventions, content placeholders, fragment building).
//!
//! The same parser code runs natively under `cargo test`: call `MyParser::normalize(&batch)`
//! on a [`ResourceBatch`] directly.
//!
//! ```
//! use antenna_sdk::*;
//!
//! struct Echo;
//! impl Parser for Echo {
//!     fn describe() -> PluginInfo {
//!         PluginInfo {
//!             name: "echo".into(),
//!             version: "0.1.0".into(),
//!             agent: "echo".into(),
//!             claims: Claims { scope_names: vec!["echo".into()], event_names: vec![], service_names: vec![] },
//!         }
//!     }
//!     fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
//!         let resource = Attrs::new(&batch.resource_attributes);
//!         let mut out = Fragments::default();
//!         for log in batch.scopes.iter().flat_map(|s| &s.logs) {
//!             let record = Attrs::new(&log.attributes);
//!             let Some(prompt_id) = record.str("prompt.id") else { continue };
//!             out.push(
//!                 format!("prompt-{prompt_id}"),
//!                 "prompt",
//!                 "0",
//!                 attribution(&resource, &record),
//!                 FragmentBody::Prompt(Prompt { text: record.string("prompt"), response: None,
//!                     start_unix_nano: Some(log.time_unix_nano), end_unix_nano: None }),
//!             );
//!         }
//!         Ok(out.into_vec())
//!     }
//! }
//! // In the plugin crate: antenna_sdk::export_parser!(Echo);
//! assert_eq!(Echo::describe().name, "echo");
//! ```

mod attribution;
mod attrs;
mod fragments;

#[doc(hidden)]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit/since_v0.1.0",
        world: "antenna:normalizer/normalizer@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_normalizer",
        default_bindings_module: "antenna_sdk::__bindings",
        generate_all,
    });
}

pub use __bindings::antenna::normalizer::types::{
    AttrValue, Attribution, Channel, Claims, Event, Fragment, FragmentBody, KeyValue, LogRecord, MetricKind,
    MetricPoint, ModelCall, PluginInfo, Prompt, ResourceBatch, Scope, ScopeRecords, Signal, Span, SpanEvent,
    StatusCode, ToolCall, Usage, UsageMetric,
};
pub use attribution::attribution;
pub use attrs::Attrs;
pub use fragments::{Fragments, not_captured, not_exported};

/// The WIT package version this SDK builds components against.
pub const WIT_VERSION: &str = "0.1.0";

/// A parser for one agent's telemetry.
pub trait Parser {
    /// Name, version, agent and claims (scope, event and service names).
    fn describe() -> PluginInfo;
    /// Turn one resource's records into fragments. Return `Err` only when the batch cannot be
    /// understood at all; skip single records you do not recognise.
    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String>;
}

/// Export a [`Parser`] as the component's `describe` and `normalize` functions.
///
/// ```ignore
/// struct ClaudeCode;
/// impl antenna_sdk::Parser for ClaudeCode { /* ... */ }
/// antenna_sdk::export_parser!(ClaudeCode);
/// ```
#[macro_export]
macro_rules! export_parser {
    ($parser:ty) => {
        #[doc(hidden)]
        pub struct __AntennaComponent;
        impl $crate::__bindings::Guest for __AntennaComponent {
            fn describe() -> $crate::PluginInfo {
                <$parser as $crate::Parser>::describe()
            }
            fn normalize(
                batch: $crate::ResourceBatch,
            ) -> ::core::result::Result<::std::vec::Vec<$crate::Fragment>, ::std::string::String>
            {
                <$parser as $crate::Parser>::normalize(&batch)
            }
        }
        // Component exports exist only in the Wasm build; natively the parser is a plain crate.
        #[cfg(target_arch = "wasm32")]
        $crate::__bindings::__export_normalizer!(__AntennaComponent with_types_in $crate::__bindings);
    };
}

impl Usage {
    /// Anthropic's convention: `input` excludes the cache reads and writes.
    pub fn anthropic(input: u64, output: u64, cache_read: u64, cache_creation: u64) -> Self {
        Usage { input, output, cache_read, cache_creation, reasoning: 0 }
    }

    /// OpenAI's convention: `input` includes the cached tokens and `output` includes reasoning.
    pub fn openai(input: u64, cached: u64, output: u64, reasoning: u64) -> Self {
        Usage {
            input: input.saturating_sub(cached),
            output: output.saturating_sub(reasoning),
            cache_read: cached,
            cache_creation: 0,
            reasoning,
        }
    }

    /// Gemini's convention: `input` includes the cached tokens; thoughts are reported apart.
    pub fn gemini(input: u64, cached: u64, output: u64, thoughts: u64) -> Self {
        Usage {
            input: input.saturating_sub(cached),
            output,
            cache_read: cached,
            cache_creation: 0,
            reasoning: thoughts,
        }
    }

    /// Every token counted once.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_creation + self.reasoning
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_conventions_count_every_token_once() {
        let openai = Usage::openai(1234, 200, 56, 10);
        assert_eq!((openai.input, openai.cache_read, openai.output, openai.reasoning), (1034, 200, 46, 10));
        assert_eq!(openai.total(), 1234 + 56);
        let gemini = Usage::gemini(1234, 200, 56, 10);
        assert_eq!(gemini.total(), 1234 + 56 + 10);
        let anthropic = Usage::anthropic(1234, 56, 200, 100);
        assert_eq!(anthropic.total(), 1590);
    }
}
