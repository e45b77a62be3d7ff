//! Gemini's telemetry as per-prompt traces. (Skeleton: claims only, normalizes nothing yet.)

use antenna_sdk::{Claims, Fragment, Parser, PluginInfo, ResourceBatch};

/// The Gemini parser.
pub struct Gemini;

impl Parser for Gemini {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "gemini".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            agent: "gemini".into(),
            claims: Claims {
                scope_names: vec!["gemini-cli".into()],
                event_names: vec!["gemini_cli.*".into()],
                service_names: vec!["gemini-cli".into()],
            },
        }
    }

    fn normalize(_batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        Ok(Vec::new())
    }
}

antenna_sdk::export_parser!(Gemini);
