//! A component that uses the right WIT version but exports only `describe`: refused at load
//! time because it lacks the `normalize` export.

wit_bindgen::generate!({ path: "wit", world: "normalizer", generate_all });

use antenna::normalizer::types::Claims;

struct NoNormalize;

impl Guest for NoNormalize {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "no-normalize".into(),
            version: "1.0.0".into(),
            agent: "no-normalize".into(),
            claims: Claims { scope_names: vec!["no-normalize".into()], event_names: vec![], service_names: vec![] },
        }
    }
}

export!(NoNormalize);
