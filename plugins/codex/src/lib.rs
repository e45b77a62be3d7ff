//! Codex's telemetry as per-prompt traces. (Skeleton: claims only, normalizes nothing yet.)

use antenna_sdk::{Claims, Fragment, Parser, PluginInfo, ResourceBatch};

/// The Codex parser.
pub struct Codex;

impl Parser for Codex {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "codex".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            agent: "codex".into(),
            claims: Claims {
                scope_names: vec!["codex_otel*".into(), "codex".into(), "codex_exec".into()],
                event_names: vec!["codex.*".into()],
                service_names: vec!["codex*".into()],
            },
        }
    }

    fn normalize(_batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        Ok(Vec::new())
    }
}

antenna_sdk::export_parser!(Codex);
