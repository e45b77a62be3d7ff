//! # antenna-sdk
//!
//! Write a parser that turns one coding agent's OpenTelemetry into Antenna's normalized,
//! per-prompt trace fragments. Implement [`Parser`], export it with [`export_parser!`], and
//! build the crate with `cargo build --release --target wasm32-wasip2`. The [`guide`]
//! (PLUGINS.md at the root of the repository) walks through it from nothing to a loaded plugin;
//! `plugins/genai` is the worked example.
//!
//! The generated component bindings stay private to this crate: authors see the plain types
//! re-exported here and helpers for what every parser does:
//!
//! - attribute lookup with typed getters: [`Attrs`];
//! - the attribution rules as one call: [`attribution`], with an agent's twists:
//!   [`attribution_with`] and [`AttributionOverrides`];
//! - walking a batch record by record: [`Visitor`] and [`visit`];
//! - stable, bounded ids: [`stable_id`], [`bounded_id`], [`otel_key`], [`session_key`];
//! - token conventions: [`Usage::anthropic`], [`Usage::openai`], [`Usage::inclusive`],
//!   [`Usage::gemini`], and the GenAI semantic conventions in [`genai`];
//! - span and log helpers: [`Span::duration_ms`], [`Span::failure`], [`LogRecord::time`],
//!   [`LogRecord::name`], ...;
//! - content placeholders: [`not_captured`], [`not_exported`];
//! - building the output: [`Fragments`];
//! - JSON: [`serde_json`], re-exported (agents put message content into attributes as JSON);
//! - native tests on real captures: the `testing` module (feature `testing`; document it with
//!   `cargo doc -p antenna-sdk --features testing`).
//!
//! The same parser code runs natively under `cargo test`: call `MyParser::normalize(&batch)`
//! on a [`ResourceBatch`] directly, or load a capture with `testing::Capture`.
//!
//! ```
//! use antenna_sdk::*;
//!
//! struct Echo;
//! impl Parser for Echo {
//!     fn describe() -> PluginInfo {
//!         PluginInfo::new("echo", "echo", env!("CARGO_PKG_VERSION"), Claims::new(&["echo"], &[], &[]))
//!     }
//!     fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
//!         let resource = Attrs::new(&batch.resource_attributes);
//!         let mut out = Fragments::default();
//!         for log in batch.scopes.iter().flat_map(|s| &s.logs) {
//!             let record = Attrs::new(&log.attributes);
//!             let Some(prompt_id) = record.str("prompt.id") else { continue };
//!             out.push(
//!                 format!("prompt-{}", bounded_id(prompt_id)),
//!                 "prompt",
//!                 "0",
//!                 attribution(&resource, &record),
//!                 FragmentBody::Prompt(Prompt { text: record.string("prompt"), response: None,
//!                     start_unix_nano: Some(log.time()), end_unix_nano: None }),
//!             );
//!         }
//!         Ok(out.into_vec())
//!     }
//! }
//! // In the plugin crate: antenna_sdk::export_parser!(Echo);
//! assert_eq!(Echo::describe().name, "echo");
//! ```

#![warn(missing_docs)]

/// The plugin author's guide (PLUGINS.md at the root of the repository): from nothing to a
/// loaded plugin, the contract, claims and versions, testing, limits. Its Rust examples are
/// compiled as doctests.
#[doc = include_str!("../../PLUGINS.md")]
pub mod guide {}

mod attribution;
mod attrs;
mod convert;
mod fragments;
pub mod genai;
mod ids;
mod records;
#[cfg(all(feature = "testing", not(target_arch = "wasm32")))]
pub mod testing;
mod usage;
mod visit;

/// The generated component bindings (wit-bindgen's canonical-ABI glue is `unsafe`).
#[doc(hidden)]
#[allow(unsafe_code, missing_docs)]
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
pub use attribution::{AttributionOverrides, attribution, attribution_with};
pub use attrs::Attrs;
pub use fragments::{Fragments, not_captured, not_exported};
pub use ids::{MAX_ID_LEN, bounded_id, otel_key, session_key, stable_id};
/// JSON, for the message content agents put into attributes: the same `serde_json` the SDK
/// uses, so a parser crate needs no dependency of its own.
pub use serde_json;
pub use visit::{Visitor, visit, visit_with_resource};

impl PluginInfo {
    /// Describe a plugin: its unique `name`, the `agent` written on its traces, its own
    /// `version` (usually `env!("CARGO_PKG_VERSION")`) and what it claims.
    pub fn new(name: &str, agent: &str, version: &str, claims: Claims) -> Self {
        PluginInfo { name: name.into(), version: version.into(), agent: agent.into(), claims }
    }
}

impl Claims {
    /// What a plugin claims, so the host routes a resource batch to it. Each entry is a name or,
    /// ending in `*`, a prefix. The host scores a batch per plugin by its strongest match: an
    /// instrumentation scope name 3, an event or span name 2, `service.name` 1; the best score
    /// wins, a tie goes to the plugin earlier in precedence order.
    ///
    /// ```
    /// let claims = antenna_sdk::Claims::new(&["gemini-cli"], &["gemini_cli.*"], &["gemini-cli"]);
    /// assert_eq!(claims.event_names, ["gemini_cli.*"]);
    /// ```
    pub fn new(scope_names: &[&str], event_names: &[&str], service_names: &[&str]) -> Self {
        let owned = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
        Claims { scope_names: owned(scope_names), event_names: owned(event_names), service_names: owned(service_names) }
    }
}

/// The WIT package version this SDK builds components against (defined once, in `antenna-wit`).
pub use antenna_wit::WIT_VERSION;

/// A parser for one agent's telemetry.
pub trait Parser {
    /// Name, version, agent and claims (scope, event and service names).
    fn describe() -> PluginInfo;
    /// Turn one resource's records into fragments. Return `Err` only when the batch cannot be
    /// understood at all; skip single records you do not recognise.
    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String>;
}

/// Export a [`Parser`] as the component's `describe` and `normalize` functions. Call it once,
/// at the crate root of the plugin crate. It exports only in the `wasm32` build; natively the
/// parser stays a plain type that tests call directly.
///
/// ```
/// use antenna_sdk::*;
///
/// pub struct Silent;
/// impl Parser for Silent {
///     fn describe() -> PluginInfo {
///         PluginInfo::new("silent", "silent", "0.1.0", Claims::new(&["silent.agent"], &[], &[]))
///     }
///     fn normalize(_batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
///         Ok(Vec::new())
///     }
/// }
///
/// antenna_sdk::export_parser!(Silent);
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
