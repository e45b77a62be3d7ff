//! The shared state of a running host: one value built by the server, from which each part
//! (ingest, query API, admin API) takes only what it needs through `FromRef`.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::extract::FromRef;

use crate::admin::Admin;
use crate::api::Api;
use crate::config::Config;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
use crate::plugins::Registry;
use crate::storage::Storage;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub storage: Arc<dyn Storage>,
    pub registry: Arc<Registry>,
    pub pipeline: Pipeline,
    pub ingest: Arc<Ingest>,
    pub api: Api,
    pub metrics: Arc<Metrics>,
    /// Set once batches left pending by a crash are normalized.
    pub ready: Arc<AtomicBool>,
    /// Keeps the plugins-directory watcher alive as long as the server.
    pub(crate) _watcher: Option<Arc<notify::RecommendedWatcher>>,
}

impl FromRef<AppState> for Api {
    fn from_ref(state: &AppState) -> Api {
        state.api.clone()
    }
}

impl FromRef<AppState> for Arc<Ingest> {
    fn from_ref(state: &AppState) -> Arc<Ingest> {
        state.ingest.clone()
    }
}

impl FromRef<AppState> for Admin {
    fn from_ref(state: &AppState) -> Admin {
        Admin {
            token: state.config.admin_token.as_deref().map(Arc::from),
            registry: state.registry.clone(),
            storage: state.storage.clone(),
            pipeline: state.pipeline.clone(),
            webhook_hosts: state.config.webhook_hosts.clone().into(),
        }
    }
}
