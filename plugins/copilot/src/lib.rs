//! Copilot's telemetry as per-prompt traces. (Skeleton: claims only, normalizes nothing yet.)

use antenna_sdk::{Claims, Fragment, Parser, PluginInfo, ResourceBatch};

/// The Copilot parser.
pub struct Copilot;

impl Parser for Copilot {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "copilot".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            agent: "copilot".into(),
            claims: Claims {
                scope_names: vec!["github.copilot".into()],
                event_names: vec![
                    "invoke_agent".into(),
                    "chat *".into(),
                    "execute_tool *".into(),
                ],
                service_names: vec!["github-copilot".into(), "copilot-chat".into()],
            },
        }
    }

    fn normalize(_batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        Ok(Vec::new())
    }
}

antenna_sdk::export_parser!(Copilot);
