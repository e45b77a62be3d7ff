//! "claude-code" 0.2.0: the real Claude Code parser, with one visible change (the response is
//! prefixed with `[v2] `), so tests can tell which version normalized a batch.

use antenna_plugin_claude_code::ClaudeCode;
use antenna_sdk::{Fragment, FragmentBody, Parser, PluginInfo, ResourceBatch};

pub struct Next;

impl Parser for Next {
    fn describe() -> PluginInfo {
        PluginInfo { version: "0.2.0".into(), ..ClaudeCode::describe() }
    }

    fn normalize(batch: &ResourceBatch) -> Result<Vec<Fragment>, String> {
        let mut fragments = ClaudeCode::normalize(batch)?;
        for fragment in &mut fragments {
            if let FragmentBody::Prompt(prompt) = &mut fragment.body
                && let Some(response) = &mut prompt.response
            {
                response.insert_str(0, "[v2] ");
            }
        }
        Ok(fragments)
    }
}

antenna_sdk::export_parser!(Next);
