//! A well-formed parser built against `antenna:normalizer@0.9.0`, a WIT version the host does
//! not support: refused before it is compiled.

wit_bindgen::generate!({ path: "wit", world: "normalizer", generate_all });

use antenna::normalizer::types::Claims;

struct WrongWit;

impl Guest for WrongWit {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "wrong-wit".into(),
            version: "1.0.0".into(),
            agent: "wrong-wit".into(),
            claims: Claims { scope_names: vec!["wrong-wit".into()], event_names: vec![], service_names: vec![] },
        }
    }

    fn normalize(_batch: ResourceBatch) -> Result<Vec<Fragment>, String> {
        Ok(Vec::new())
    }
}

export!(WrongWit);
