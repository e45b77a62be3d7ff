//! Cursor's telemetry as per-prompt traces. (Skeleton: claims only, normalizes nothing yet.)

use antenna_sdk::{Claims, Fragment, Parser, PluginInfo, ResourceBatch};

/// The Cursor parser.
pub struct Cursor;

impl Parser for Cursor {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "cursor".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            agent: "cursor".into(),
            claims: Claims {
                scope_names: vec!["antenna.cursor-hook".into()],
                event_names: vec!["cursor.*".into()],
                service_names: vec!["cursor".into()],
            },
        }
    }

    fn normalize(_batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        Ok(Vec::new())
    }
}

antenna_sdk::export_parser!(Cursor);
