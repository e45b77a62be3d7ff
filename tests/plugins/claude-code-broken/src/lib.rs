//! "claude-code" 0.1.1 with a bug: it rejects every batch. Dropped into the plugins directory it
//! replaces the built-in parser, and every Claude Code batch fails (and is kept for replay).

use antenna_sdk::{Fragment, Parser, PluginInfo, ResourceBatch};

pub struct Broken;

impl Parser for Broken {
    fn describe() -> PluginInfo {
        let mut info = antenna_sdk::PluginInfo {
            name: "claude-code".into(),
            version: "0.1.1".into(),
            agent: "claude-code".into(),
            claims: antenna_sdk::Claims {
                scope_names: vec!["com.anthropic.claude_code*".into()],
                event_names: vec!["claude_code.*".into()],
                service_names: vec!["claude-code".into()],
            },
        };
        info.version = "0.1.1".into();
        info
    }

    fn normalize(_batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        Err("simulated parser bug: cannot read this batch".into())
    }
}

antenna_sdk::export_parser!(Broken);
