//! The composition root, the one module that knows every part: start-up (database, bootstrap
//! keys, plugins, recovery of pending batches), the HTTP routes and the gRPC services,
//! `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::api::Api;
use crate::app::AppState;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::ingest::{Ingest, conn};
use crate::metrics::{Metrics, PluginLabels};
use crate::pipeline::Pipeline;
use crate::plugins::{Registry, builtin, watcher};
use crate::sandbox::Runtime;
use crate::{admin, api, auth, ingest, storage};

/// A host serving on `addr` until `shutdown` is called or it is dropped.
pub struct RunningServer {
    /// OTLP/HTTP and the API.
    pub addr: SocketAddr,
    /// OTLP/gRPC, when enabled.
    pub grpc_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Stop accepting, finish requests in flight, and wait.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.task.await.context("server task")?
    }

    /// Wait until the server stops.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task")?
    }
}

/// Start the host: open the database, ensure the bootstrap project, load the plugins, recover
/// batches stored but not normalized before a crash, and listen.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let started = Instant::now();
    let metrics = Arc::new(Metrics::default());
    let storage = storage::connect(&config.database_url, config.fallback_user.clone(), metrics.storage.clone())
        .await
        .with_context(|| format!("opening {}", config.database_url))?;
    if let Some((public, secret)) = &config.bootstrap_keys {
        auth::ensure_project(&*storage, "default", public, secret).await.context("creating the bootstrap project")?;
        tracing::info!(public_key = %public, "bootstrap project ready");
    }

    let runtime = Runtime::new(config.limits.clone()).context("starting the plugin runtime")?;
    let registry = Arc::new(Registry::new(runtime, config.cache_dir.clone()));
    registry.set_allowlist(config.plugins_allowlist.clone())?;
    builtin::load_all(&registry).await?;

    // When the plugins change, batches that no plugin claimed get another chance.
    let plugins_changed = Arc::new(tokio::sync::Notify::new());
    let watcher = match &config.plugins_dir {
        Some(dir) => {
            let registry = registry.clone();
            let dir = dir.clone();
            let notify = plugins_changed.clone();
            let watcher =
                tokio::task::spawn_blocking(move || watcher::watch_dir(registry, dir, move || notify.notify_one()))
                    .await
                    .context("watching the plugins directory")??;
            Some(Arc::new(watcher))
        }
        None => None,
    };

    let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let authenticator = Arc::new(Authenticator::new(storage.clone(), metrics.clone(), &config)?);
    let pipeline = Pipeline::new(storage.clone(), registry.clone(), config.limits.clone(), metrics.clone());
    let ingest = Arc::new(Ingest::new(authenticator.clone(), pipeline.clone(), config.limits.clone(), metrics.clone()));
    let state = AppState {
        api: Api { storage: storage.clone(), authenticator },
        storage,
        registry,
        pipeline,
        ingest,
        metrics,
        config: Arc::new(config),
        ready: Arc::new(AtomicBool::new(false)),
        _watcher: watcher,
    };

    // Recover what a crash left stored but not normalized, then report ready.
    let recovery = state.pipeline.clone();
    let ready = state.ready.clone();
    tokio::spawn(async move {
        recovery.recover_pending().await;
        ready.store(true, Ordering::SeqCst);
        // Pending work done: from now on, retry unclaimed batches whenever plugins change.
        loop {
            plugins_changed.notified().await;
            if let Err(e) = recovery.reprocess_unclaimed().await {
                tracing::error!(error = %e, "could not list unclaimed batches");
            }
        }
    });

    let (shutdown, stopping) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // One cap on open connections for both ports.
    let connections = conn::connection_slots(&state.config.limits);
    let grpc = match state.config.grpc_listen {
        Some(grpc_listen) => {
            let grpc_listener =
                TcpListener::bind(grpc_listen).await.with_context(|| format!("binding {grpc_listen} (OTLP/gRPC)"))?;
            let grpc_addr = grpc_listener.local_addr()?;
            let service = ingest::grpc::Collector::new(state.ingest.clone()).service();
            let limits = &state.config.limits;
            let incoming = conn::grpc_incoming(grpc_listener, connections.clone(), limits);
            let server = tonic::transport::Server::builder()
                .max_concurrent_streams(limits.max_concurrent_streams)
                .concurrency_limit_per_connection(limits.max_concurrent_streams as usize)
                .http2_max_pending_accept_reset_streams(Some(limits.max_pending_reset_streams))
                .http2_keepalive_interval(Some(conn::KEEPALIVE_INTERVAL))
                .http2_keepalive_timeout(Some(conn::KEEPALIVE_TIMEOUT));
            let stop = stopped(stopping.clone());
            let task = tokio::spawn(server.serve_with_incoming_shutdown(service, incoming, stop));
            Some((grpc_addr, task))
        }
        None => None,
    };
    let grpc_addr = grpc.as_ref().map(|(a, _)| *a);
    let http =
        conn::serve_http(listener, router(state.clone()), connections, state.config.limits.clone(), stopped(stopping));
    let http = tokio::spawn(http);
    let task = tokio::spawn(async move {
        http.await.context("OTLP/HTTP server task")?;
        if let Some((_, grpc)) = grpc {
            grpc.await.context("OTLP/gRPC server task")?.context("OTLP/gRPC server")?;
        }
        Ok(())
    });
    tracing::info!(%addr, grpc = ?grpc_addr, ms = started.elapsed().as_millis() as u64, "antenna listening");
    Ok(RunningServer { addr, grpc_addr, state, shutdown, task })
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/{signal}", post(ingest::http::export))
        .route("/api/public/otel/v1/{signal}", post(ingest::http::export))
        .merge(api::router())
        .merge(admin::router())
        .merge(crate::ui::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "not found" }))) })
        .with_state(state)
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    if !state.ready.load(Ordering::SeqCst) || state.registry.snapshot().is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting");
    }
    match state.storage.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// `GET /metrics`: the host's metrics in the OpenMetrics text format. With a metrics token
/// configured, only for `Authorization: Bearer <token>` (compared in constant time; 401 else).
async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(token) = &state.config.metrics_token {
        let presented = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        let presented = crate::ids::sha256_hex(presented.as_bytes());
        let expected = crate::ids::sha256_hex(token.expose().as_bytes());
        if !bool::from(subtle::ConstantTimeEq::ct_eq(presented.as_bytes(), expected.as_bytes())) {
            return (
                StatusCode::UNAUTHORIZED,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                "/metrics needs Authorization: Bearer <ANTENNA_METRICS_TOKEN>\n",
            )
                .into_response();
        }
    }
    let m = &state.metrics;
    let (in_flight, queued) = state.ingest.load();
    m.in_flight.set(i64::try_from(in_flight).unwrap_or(i64::MAX));
    m.queued.set(i64::try_from(queued).unwrap_or(i64::MAX));
    for plugin in state.registry.status() {
        let labels = PluginLabels::new(&plugin.name, &plugin.version);
        m.plugin_put_aside.get_or_create(&labels).set(i64::from(plugin.put_aside));
    }
    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.render())
        .into_response()
}
