//! The WIT versions this host loads. One module per frozen `antenna:normalizer` version, each
//! with its bindings and the conversions between them and the host's model (the way Zed's
//! `wasm_host/wit/since_v*.rs` does). Adding a version is one new file and one arm in each
//! `match` below; [`latest`] is the version the host lowers OTLP into.

pub mod since_v0_1_0;

/// The plugin input, as the host lowers OTLP into it (`antenna-wit`); each version's module
/// converts it into its bindings.
pub use antenna_wit::{
    AttrValue, KeyValue, LogRecord, MetricKind, MetricPoint, ResourceBatch, Scope, ScopeRecords, Signal, Span,
    SpanEvent, StatusCode,
};
pub use since_v0_1_0 as latest;

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::{GuestState, PluginInfo, RuntimeError};
use crate::trace::model::Fragment;

/// The WIT package versions this host loads.
pub const SUPPORTED: &[&str] = &[since_v0_1_0::VERSION];

/// A component pre-linked against the bindings of its WIT version.
pub(crate) enum Normalizer {
    V0_1_0(since_v0_1_0::NormalizerPre<GuestState>),
}

impl Normalizer {
    pub(crate) fn new(version: &str, pre: InstancePre<GuestState>) -> Result<Self, RuntimeError> {
        let exports = |e: wasmtime::Error| RuntimeError::Exports(format!("{e:#}"));
        match version {
            since_v0_1_0::VERSION => Ok(Normalizer::V0_1_0(since_v0_1_0::NormalizerPre::new(pre).map_err(exports)?)),
            other => Err(RuntimeError::WitVersion { found: other.to_owned(), supported: SUPPORTED }),
        }
    }

    pub(crate) fn describe(&self, store: &mut Store<GuestState>) -> wasmtime::Result<PluginInfo> {
        match self {
            Normalizer::V0_1_0(pre) => Ok(pre.instantiate(&mut *store)?.call_describe(store)?.into()),
        }
    }

    pub(crate) fn normalize(
        &self,
        store: &mut Store<GuestState>,
        batch: ResourceBatch,
    ) -> wasmtime::Result<Result<Vec<Fragment>, String>> {
        match self {
            Normalizer::V0_1_0(pre) => {
                let batch = since_v0_1_0::types::ResourceBatch::from(batch);
                let output = pre.instantiate(&mut *store)?.call_normalize(store, &batch)?;
                Ok(output.map(|fragments| fragments.into_iter().map(Fragment::from).collect()))
            }
        }
    }
}

/// The `antenna:normalizer` version a component was built against, read from its imports
/// before anything is compiled, and checked against [`SUPPORTED`].
pub fn version_of(bytes: &[u8]) -> Result<String, RuntimeError> {
    const PREFIX: &str = "antenna:normalizer/types@";
    let mut found = None;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| RuntimeError::Compile(e.to_string()))?;
        if let wasmparser::Payload::ComponentImportSection(section) = payload {
            for import in section {
                let import = import.map_err(|e| RuntimeError::Compile(e.to_string()))?;
                if let Some(version) = import.name.name.strip_prefix(PREFIX) {
                    found = Some(version.to_owned());
                }
            }
        }
    }
    let version = found.ok_or_else(|| RuntimeError::Exports("it does not use the antenna:normalizer types".into()))?;
    if !SUPPORTED.contains(&version.as_str()) {
        return Err(RuntimeError::WitVersion { found: version, supported: SUPPORTED });
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_the_sdk_builds_against_is_loadable() {
        assert!(super::SUPPORTED.contains(&antenna_wit::WIT_VERSION));
    }
}
