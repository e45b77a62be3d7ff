//! The composition root, the one module that knows every part: start-up (database, bootstrap
//! keys, plugins, recovery of pending batches), the HTTP routes and the gRPC services,
//! `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;
use utoipa_axum::router::OpenApiRouter;

use crate::api::Api;
use crate::app::AppState;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::ingest::{Ingest, conn};
use crate::metrics::{Metrics, PluginLabels};
use crate::pipeline::Pipeline;
use crate::plugins::{PUT_ASIDE, Registry, builtin, watcher};
use crate::sandbox::Runtime;
use crate::sandbox::compile::Compiler;
use crate::storage::{Batch, BatchSelection, BatchStatus, BatchWrite, ReplayFilter, Storage};
use crate::trace::Assembly;
use crate::trace::prices::Prices;
use crate::{admin, api, auth, ingest, storage};

/// How often expired data is deleted (each project's retention, in days).
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

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
    let prices = Prices::load(config.prices.as_deref()).context("ANTENNA_PRICES (--prices)")?;
    let assembly = Arc::new(Assembly { fallback_user: config.fallback_user.clone(), prices });
    let storage = storage::connect(&config.database_url, assembly, metrics.storage.clone())
        .await
        .with_context(|| format!("opening {}", crate::config::redact_url_password(&config.database_url)))?;
    if let Some((public, secret)) = &config.bootstrap_keys {
        auth::ensure_project(&*storage, "default", public, secret).await.context("creating the bootstrap project")?;
        tracing::info!(public_key = %public, "bootstrap project ready");
    }

    let runtime = Runtime::new(config.limits.clone()).context("starting the plugin runtime")?;
    let registry = Arc::new(Registry::new(runtime, config.cache_dir.clone()));
    registry.set_allowlist(config.plugins_allowlist.clone())?;
    registry.set_compiler(config.plugin_compiler.clone().map(|program| Compiler {
        program,
        timeout: Duration::from_millis(config.limits.compile_timeout_ms),
        memory_bytes: config.limits.compile_memory_bytes,
    }));
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

    // Recover what a crash left stored but not normalized (each batch at most
    // MAX_RECOVERY_ATTEMPTS times across restarts, so a batch that crashes the host cannot keep
    // /readyz red), then report ready.
    let recovery = state.pipeline.clone();
    let ready = state.ready.clone();
    let (storage, registry) = (state.storage.clone(), state.registry.clone());
    let attempts = state.config.cache_dir.as_deref().map(|dir| attempts_file(dir, &state.config.database_url));
    let tick = Duration::from_millis((state.config.limits.breaker_cool_down_ms / 4).clamp(50, 1_000));
    tokio::spawn(async move {
        recover_pending(&recovery, &*storage, attempts.as_deref()).await;
        ready.store(true, Ordering::SeqCst);
        // Pending work done: from now on, retry unclaimed batches whenever plugins change, and
        // the batches an open circuit breaker turned away once it closes.
        let mut ticks = tokio::time::interval(tick);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retention = tokio::time::interval(RETENTION_INTERVAL);
        retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = retention.tick() => {
                    if let Err(e) = admin::enforce_retention(&*storage).await {
                        tracing::error!(error = %e, "retention pass failed; tried again in an hour");
                    }
                }
                () = plugins_changed.notified() => {
                    if let Err(e) = recovery.reprocess_unclaimed().await {
                        tracing::error!(error = %e, "could not list unclaimed batches");
                    }
                }
                _ = ticks.tick() => retry_put_aside(&recovery, &*storage, &registry).await,
            }
        }
    });

    let webhooks = crate::budgets::Webhooks {
        hosts: state.config.webhook_hosts.clone(),
        roots: state.config.webhook_roots.clone(),
        metrics: state.metrics.clone(),
    };
    tokio::spawn(crate::budgets::run(state.storage.clone(), state.config.budget_interval, webhooks));

    let (shutdown, stopping) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // Each port has its own connection budget (`ingest::conn`).
    let limits = &state.config.limits;
    let trusted_proxies = &state.config.trusted_proxies;
    let grpc = match state.config.grpc_listen {
        Some(grpc_listen) => {
            let grpc_listener =
                TcpListener::bind(grpc_listen).await.with_context(|| format!("binding {grpc_listen} (OTLP/gRPC)"))?;
            let grpc_addr = grpc_listener.local_addr()?;
            let gate = ingest::grpc::Gate::new(state.ingest.clone());
            let port = conn::Port::new(conn::Protocol::Grpc, limits, trusted_proxies, state.metrics.clone());
            let task = tokio::spawn(conn::serve(port, grpc_listener, move |_| gate.clone(), stopped(stopping.clone())));
            Some((grpc_addr, task))
        }
        None => None,
    };
    let grpc_addr = grpc.as_ref().map(|(a, _)| *a);
    let routes = router(state.clone());
    let port = conn::Port::new(conn::Protocol::Http, limits, trusted_proxies, state.metrics.clone());
    let http = tokio::spawn(conn::serve(port, listener, move |_| routes.clone(), stopped(stopping)));
    let task = tokio::spawn(async move {
        http.await.context("OTLP/HTTP server task")?;
        if let Some((_, grpc)) = grpc {
            grpc.await.context("OTLP/gRPC server task")?;
        }
        Ok(())
    });
    tracing::info!(%addr, grpc = ?grpc_addr, ms = started.elapsed().as_millis() as u64, "antenna listening");
    Ok(RunningServer { addr, grpc_addr, state, shutdown, task })
}

pub fn router(state: AppState) -> Router {
    let (documented, paths) = documented_routes().split_for_parts();
    Router::new()
        .merge(documented)
        .merge(crate::ui::router())
        .merge(api::openapi::router(&complete_document(paths)))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "not found" }))) })
        .layer(axum::middleware::map_response(private_answers))
        .with_state(state)
}

/// Every answer is taken for what its Content-Type says and, unless its route says otherwise
/// (the UI's files), never kept by a browser or proxy: API answers carry prompts and keys.
async fn private_answers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The routes of the ingest, query and admin APIs, each registered with its OpenAPI description.
fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(ingest::http::router()).merge(api::router()).merge(admin::router())
}

/// The UI's JSON routes (registered by `ui::router`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(crate::ui::sign_in, crate::ui::who_am_i, crate::ui::sign_out))]
struct UiRoutes;

fn complete_document(paths: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    api::openapi::document(paths.merge_from(UiRoutes::openapi()))
}

/// The OpenAPI document served at `/api/public/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    complete_document(documented_routes().into_openapi())
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
    m.decoded_bytes_in_flight.set(i64::try_from(state.ingest.admission.decoded_bytes()).unwrap_or(i64::MAX));
    for plugin in state.registry.status() {
        let labels = PluginLabels::new(&plugin.name, &plugin.version);
        m.plugin_put_aside.get_or_create(&labels).set(i64::from(plugin.put_aside));
    }
    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], m.render())
        .into_response()
}

/// Times start-up recovery runs one pending batch (across restarts) before quarantining it.
pub const MAX_RECOVERY_ATTEMPTS: u32 = 3;

/// Where recovery counts its attempts per batch of the database at `database_url`: a small file
/// in the cache directory, named by the database (test hosts share a cache directory).
pub fn attempts_file(cache_dir: &Path, database_url: &str) -> PathBuf {
    let digest = crate::ids::sha256_hex(database_url.as_bytes());
    cache_dir.join(format!("recovery-attempts-{}", &digest[..16]))
}

/// Recovery attempts per batch id, as last written (a missing or unreadable file is none).
fn read_attempts(file: &Path) -> std::collections::BTreeMap<i64, u32> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (id, count) = line.split_once(' ')?;
            Some((id.parse().ok()?, count.parse().ok()?))
        })
        .collect()
}

/// Write the counts durably (a temporary file, synced, then renamed over the old one), so an
/// attempt is on disk before the batch runs.
fn write_attempts(file: &Path, attempts: &std::collections::BTreeMap<i64, u32>) -> std::io::Result<()> {
    use std::io::Write;
    if attempts.is_empty() {
        return match std::fs::remove_file(file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let temporary = file.with_extension("tmp");
    let mut out = std::fs::File::create(&temporary)?;
    for (id, count) in attempts {
        writeln!(out, "{id} {count}")?;
    }
    out.sync_all()?;
    std::fs::rename(&temporary, file)
}

/// Normalize what a crash left stored but not normalized. Each batch's attempt is counted on
/// disk before it runs and forgotten once it has run: a batch found with
/// [`MAX_RECOVERY_ATTEMPTS`] attempts already made took the host down each time, and is
/// recorded as failed ("quarantined after N attempts", kept for a manual replay) instead of
/// run again. Without a cache directory there is nowhere to count, and every batch is run.
async fn recover_pending(pipeline: &Pipeline, storage: &dyn Storage, attempts_file: Option<&Path>) {
    // Which batches are pending, without their bodies; then their bodies a page at a time.
    let mut pending_ids = std::collections::BTreeSet::new();
    let mut after = 0;
    loop {
        match storage.batch_page(&BatchSelection::Pending, after, RECOVERY_PAGE, false).await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => {
                after = page.last().map_or(after, |b| b.id);
                pending_ids.extend(page.iter().map(|b| b.id));
            }
            Err(e) => {
                tracing::error!(error = %e, "could not list pending batches");
                return;
            }
        }
    }
    if pending_ids.is_empty() {
        return;
    }
    tracing::info!(count = pending_ids.len(), "normalizing batches stored before a restart");
    let mut attempts = attempts_file.map(read_attempts).unwrap_or_default();
    attempts.retain(|id, _| pending_ids.contains(id));
    let save = |attempts: &std::collections::BTreeMap<i64, u32>| {
        if let Some(file) = attempts_file
            && let Err(e) = write_attempts(file, attempts)
        {
            tracing::warn!(file = %file.display(), error = %e, "could not count a recovery attempt");
        }
    };
    let mut after = 0;
    loop {
        let page = match storage.batch_page(&BatchSelection::Pending, after, RECOVERY_PAGE, true).await {
            Ok(page) if page.is_empty() => break,
            Ok(page) => page,
            Err(e) => {
                tracing::error!(error = %e, "could not read pending batches");
                return;
            }
        };
        after = page.last().map_or(after, |b| b.id);
        for batch in &page {
            let made = attempts.get(&batch.id).copied().unwrap_or(0);
            if made >= MAX_RECOVERY_ATTEMPTS {
                quarantine(storage, batch, made).await;
            } else {
                attempts.insert(batch.id, made + 1);
                save(&attempts);
                pipeline.process(batch).await;
            }
            attempts.remove(&batch.id);
            save(&attempts);
        }
    }
}

/// Pending or turned-away batches read at a time, bodies included.
const RECOVERY_PAGE: i64 = 100;

/// Record a batch that stopped recovery `attempts` times as failed, without running it again.
async fn quarantine(storage: &dyn Storage, batch: &Batch, attempts: u32) {
    let error = format!("quarantined after {attempts} attempts");
    tracing::error!(batch = batch.id, project = %batch.project_id, %error, "a batch kept stopping the host during recovery");
    let write = BatchWrite {
        id: Some(batch.id),
        project_id: batch.project_id.clone(),
        signal: batch.signal.clone(),
        encoding: batch.encoding.clone(),
        body: Vec::new(),
        body_codec: "identity",
        body_sha256: String::new(),
        status: BatchStatus::Failed,
        agents: Vec::new(),
        error: Some(error),
        fragments: Vec::new(),
        unclaimed: Vec::new(),
        users: Vec::new(),
    };
    if let Err(e) = storage.commit(write).await {
        tracing::error!(batch = batch.id, error = %e, "could not record a quarantined batch");
    }
}

/// Re-normalize the batches an open circuit breaker turned away (their error starts with
/// [`PUT_ASIDE`]), per (plugin, project) whose cool-down has ended.
async fn retry_put_aside(pipeline: &Pipeline, storage: &dyn Storage, registry: &Registry) {
    for loaded in registry.snapshot().iter() {
        for project in loaded.retries_due() {
            let filter = ReplayFilter {
                project_id: Some(project.clone()),
                agent: Some(loaded.plugin.info.agent.clone()),
                failed_only: true,
                ..Default::default()
            };
            // A page at a time: only that page's bodies are held.
            let selection = BatchSelection::Replay(filter);
            let mut after = 0;
            let mut due: Vec<Batch> = Vec::new();
            loop {
                let page = match storage.batch_page(&selection, after, RECOVERY_PAGE, true).await {
                    Ok(page) if page.is_empty() => break,
                    Ok(page) => page,
                    Err(e) => {
                        tracing::error!(error = %e, %project, "could not list batches turned away by the circuit breaker");
                        break;
                    }
                };
                after = page.last().map_or(after, |b| b.id);
                let turned_away = page
                    .into_iter()
                    .filter(|b| b.status == "failed" && b.error.as_deref().is_some_and(|e| e.starts_with(PUT_ASIDE)));
                due.extend(turned_away);
                if due.len() >= RECOVERY_PAGE as usize {
                    pipeline.replay(&std::mem::take(&mut due)).await;
                }
            }
            if due.is_empty() {
                continue;
            }
            let report = pipeline.replay(&due).await;
            tracing::info!(plugin = %loaded.label(), %project, ?report, "retried batches turned away while the plugin was put aside");
        }
    }
}

#[cfg(test)]
#[path = "server_openapi_tests.rs"]
mod openapi_tests;
