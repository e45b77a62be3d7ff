//! The end-to-end harness: a real host (the `antenna` library's `start`) on an ephemeral
//! port, a real SQLite file in a temporary directory, real HTTP through reqwest, and the
//! captures in `fixtures/` replayed byte for byte.

use std::path::{Path, PathBuf};

use antenna::{Config, RunningServer};
use base64::Engine as _;
use serde_json::Value;

pub const PUBLIC_KEY: &str = "pk-local";
pub const SECRET_KEY: &str = "sk-local";

/// A running host and a client for it.
pub struct TestHost {
    pub server: RunningServer,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl TestHost {
    /// A host with the fixtures' bootstrap keys (`pk-local:sk-local`).
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A host whose config `adjust` may change first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        Self::start_in(tempfile::tempdir().expect("temporary directory"), |config, _| adjust(config)).await
    }

    /// A host that also serves OTLP/gRPC on an ephemeral port (`server.grpc_addr`).
    pub async fn with_grpc() -> Self {
        Self::start_with(|c| c.grpc_listen = Some("127.0.0.1:0".parse().expect("address"))).await
    }

    /// A host with its files in `dir`; `adjust` gets the config and the directory.
    pub async fn start_in(dir: tempfile::TempDir, adjust: impl FnOnce(&mut Config, &Path)) -> Self {
        let mut config = Config::local(format!("sqlite://{}", dir.path().join("antenna.db").display()));
        config.listen = "127.0.0.1:0".parse().expect("address");
        config.bootstrap_keys = Some((PUBLIC_KEY.into(), SECRET_KEY.into()));
        // Compiled plugin code shared by every test host of a run (keyed by content and engine,
        // so it is never stale): each host does not recompile the built-in parsers.
        config.cache_dir = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-compiled-plugins"));
        adjust(&mut config, dir.path());
        let server = antenna::start(config).await.expect("host starts");
        let base = format!("http://{}", server.addr);
        let host = TestHost { server, base, client: reqwest::Client::new(), dir };
        host.wait_ready().await;
        host
    }

    async fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("host never became ready");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// POST a body with the default keys.
    pub async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.post_as(Some((PUBLIC_KEY, SECRET_KEY)), path, content_type, body).await
    }

    pub async fn post_as(
        &self,
        keys: Option<(&str, &str)>,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).header("content-type", content_type).body(body);
        if let Some((pk, sk)) = keys {
            request = request.header("authorization", basic(pk, sk));
        }
        request.send().await.expect("request sent")
    }

    /// GET JSON with the default keys, asserting 200.
    pub async fn get_json(&self, path: &str) -> Value {
        self.get_json_as((PUBLIC_KEY, SECRET_KEY), path).await
    }

    pub async fn get_json_as(&self, keys: (&str, &str), path: &str) -> Value {
        let response =
            self.client.get(self.url(path)).header("authorization", basic(keys.0, keys.1)).send().await.expect("GET");
        let status = response.status();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Post every request of a capture in its original order; each must get a 200.
    pub async fn replay(&self, capture: &Capture) {
        for request in &capture.requests {
            let response = self.post(&request.path, &request.content_type, request.body.clone()).await;
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            assert_eq!(status, 200, "{} {}: {text}", request.file, request.path);
        }
    }

    /// All traces of the default project.
    pub async fn traces(&self) -> Vec<Value> {
        let page = self.get_json("/api/public/traces?limit=500").await;
        page["data"].as_array().cloned().unwrap_or_default()
    }
}

/// `Basic base64(pk:sk)`.
pub fn basic(public: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{public}:{secret}")))
}

/// One captured request.
#[derive(Clone, Debug)]
pub struct CapturedRequest {
    pub file: String,
    pub path: String,
    pub signal: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// A folder of captured requests (`NNNN-<signal>.bin|.json` + `.meta.json`), in order.
#[derive(Clone, Debug)]
pub struct Capture {
    pub requests: Vec<CapturedRequest>,
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("fixtures")
}

impl Capture {
    /// Load `fixtures/<relative>`.
    pub fn load(relative: &str) -> Self {
        let dir = fixtures_dir().join(relative);
        let mut metas: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
            .collect();
        metas.sort();
        let requests = metas
            .iter()
            .map(|meta_path| {
                let meta: Value = serde_json::from_slice(&std::fs::read(meta_path).expect("meta")).expect("meta JSON");
                let file = meta["body_file"].as_str().expect("body_file").to_owned();
                CapturedRequest {
                    body: std::fs::read(dir.join(&file)).expect("body"),
                    path: meta["path"].as_str().expect("path").to_owned(),
                    signal: meta["signal"].as_str().expect("signal").to_owned(),
                    content_type: meta["content_type"].as_str().expect("content_type").to_owned(),
                    file,
                }
            })
            .collect();
        Capture { requests }
    }

    /// Only the requests of these signals, in order.
    pub fn only(&self, signals: &[&str]) -> Capture {
        Capture { requests: self.requests.iter().filter(|r| signals.contains(&r.signal.as_str())).cloned().collect() }
    }

    /// The same requests in reverse order.
    pub fn reversed(&self) -> Capture {
        Capture { requests: self.requests.iter().rev().cloned().collect() }
    }

    /// Rewrite each JSON body (the JSON captures only).
    pub fn map_json(&self, f: impl Fn(&mut Value)) -> Capture {
        Capture {
            requests: self
                .requests
                .iter()
                .map(|r| {
                    let mut value: Value = serde_json::from_slice(&r.body).expect("a JSON capture");
                    f(&mut value);
                    CapturedRequest { body: serde_json::to_vec(&value).expect("JSON"), ..r.clone() }
                })
                .collect(),
        }
    }
}

impl Capture {
    /// Set the resource `service.name` of every request, whatever its encoding: the
    /// "stale OTEL_SERVICE_NAME" case.
    pub fn with_service_name(&self, name: &str) -> Capture {
        self.with_resource_attribute("service.name", name)
    }

    /// Set a resource attribute on every resource of every request, whatever its encoding.
    pub fn with_resource_attribute(&self, key: &str, name: &str) -> Capture {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
        use opentelemetry_proto::tonic::resource::v1::Resource;
        use prost::Message;

        fn rename(resource: &mut Option<Resource>, key: &str, name: &str) {
            let resource = resource.get_or_insert_with(Resource::default);
            resource.attributes.retain(|kv| kv.key != key);
            resource.attributes.push(KeyValue {
                key: key.into(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue(name.into())) }),
                ..Default::default()
            });
        }
        let requests = self
            .requests
            .iter()
            .map(|r| {
                let body = if r.content_type.contains("json") {
                    let mut value: Value = serde_json::from_slice(&r.body).expect("a JSON capture");
                    for signal in ["resourceSpans", "resourceLogs", "resourceMetrics"] {
                        for resource in value[signal].as_array_mut().into_iter().flatten() {
                            let attrs = resource["resource"]["attributes"].as_array_mut().expect("attributes");
                            attrs.retain(|a| a["key"] != key);
                            attrs.push(serde_json::json!({"key": key, "value": {"stringValue": name}}));
                        }
                    }
                    serde_json::to_vec(&value).expect("JSON")
                } else {
                    match r.signal.as_str() {
                        "traces" => {
                            let mut m = ExportTraceServiceRequest::decode(&r.body[..]).expect("protobuf");
                            m.resource_spans.iter_mut().for_each(|x| rename(&mut x.resource, key, name));
                            m.encode_to_vec()
                        }
                        "logs" => {
                            let mut m = ExportLogsServiceRequest::decode(&r.body[..]).expect("protobuf");
                            m.resource_logs.iter_mut().for_each(|x| rename(&mut x.resource, key, name));
                            m.encode_to_vec()
                        }
                        _ => {
                            let mut m = ExportMetricsServiceRequest::decode(&r.body[..]).expect("protobuf");
                            m.resource_metrics.iter_mut().for_each(|x| rename(&mut x.resource, key, name));
                            m.encode_to_vec()
                        }
                    }
                };
                CapturedRequest { body, ..r.clone() }
            })
            .collect();
        Capture { requests }
    }
}

/// The traces of a project whose agent is `agent`.
pub fn of_agent<'a>(traces: &'a [Value], agent: &str) -> Vec<&'a Value> {
    traces.iter().filter(|t| t["agent"] == agent).collect()
}

/// Paths of the test plugins built from `tests/plugins/` (see build.rs).
pub mod components {
    include!(concat!(env!("OUT_DIR"), "/components.rs"));
}

/// The admin token of test hosts started with [`TestHost::with_plugins_dir`].
pub const ADMIN_TOKEN: &str = "admin-test-token";

impl TestHost {
    /// A host watching a fresh plugins directory (`host.dir/plugins`), with the admin API on
    /// and a compiled-code cache in `host.dir/cache`.
    pub async fn with_plugins_dir() -> Self {
        Self::start_in(tempfile::tempdir().expect("temporary directory"), |config, dir| {
            let plugins = dir.join("plugins");
            std::fs::create_dir_all(&plugins).expect("plugins dir");
            config.plugins_dir = Some(plugins);
            config.cache_dir = Some(dir.join("cache"));
            config.admin_token = Some(ADMIN_TOKEN.into());
        })
        .await
    }

    pub fn plugins_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Put a component into the plugins directory atomically (write aside, then rename), as
    /// the docs tell operators to.
    pub fn install_plugin(&self, component: &str, file_name: &str) {
        let tmp = self.dir.path().join(format!("{file_name}.partial"));
        std::fs::copy(component, &tmp).expect("copy component");
        std::fs::rename(&tmp, self.plugins_dir().join(file_name)).expect("rename into the plugins dir");
    }

    /// An admin API request with the test admin token: (status, JSON body or null).
    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path)).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `GET /api/admin/plugins`.
    pub async fn admin_plugins(&self) -> Value {
        let response =
            self.client.get(self.url("/api/admin/plugins")).bearer_auth(ADMIN_TOKEN).send().await.expect("GET plugins");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }

    /// The active plugin named `name`, if any.
    pub async fn active_plugin(&self, name: &str) -> Option<Value> {
        let plugins = self.admin_plugins().await;
        plugins["data"].as_array()?.iter().find(|p| p["name"] == name && p["active"] == true).cloned()
    }

    /// Wait (up to 30 s) until `check` holds for the admin plugin list.
    pub async fn wait_for_plugins(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..300 {
            let plugins = self.admin_plugins().await;
            if check(&plugins) {
                return plugins;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for: {what}; plugins: {:#}", self.admin_plugins().await);
    }

    /// `POST /api/admin/replay` with `filter`.
    pub async fn replay_batches(&self, filter: Value) -> Value {
        let response = self
            .client
            .post(self.url("/api/admin/replay"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&filter)
            .send()
            .await
            .expect("POST replay");
        assert_eq!(response.status(), 200);
        response.json().await.expect("JSON")
    }
}

// ---- PostgreSQL ------------------------------------------------------------------------------

/// The PostgreSQL server the tests use (CI sets it), e.g.
/// `postgres://postgres@127.0.0.1:5432/test`. Each test makes its own database on that server
/// (through the server's `postgres` database) and drops it at the end; the database named in
/// the URL need not exist.
pub const POSTGRES_URL_VAR: &str = "ANTENNA_TEST_POSTGRES_URL";

/// A fresh PostgreSQL database for one test, dropped (with its connections) when this is
/// dropped. Declare it before the hosts that use it, so they are dropped first.
pub struct PgDatabase {
    pub url: String,
}

impl PgDatabase {
    /// A new database with a unique name. Fails the test when `ANTENNA_TEST_POSTGRES_URL` is
    /// unset: a PostgreSQL test that skips itself silently would hide a broken engine.
    pub async fn create() -> Self {
        let server = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_URL_VAR} is not set: the PostgreSQL storage tests need a server. Run e.g. \
                 `{POSTGRES_URL_VAR}=postgres://postgres@127.0.0.1:5432/test cargo test -p antenna-e2e` \
                 (trust auth or a password in the URL; the tests create and drop their own databases)"
            )
        });
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "antenna_test_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let url = with_database(&server, &name);
        antenna::storage::PostgresStorage::create_database(&url)
            .await
            .unwrap_or_else(|e| panic!("creating database {name} on {server}: {e}"));
        PgDatabase { url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let url = self.url.clone();
        // Drop cannot await, and the test's runtime may be stopping: a runtime of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(antenna::storage::PostgresStorage::drop_database(&url))
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.url);
        }
    }
}

/// `url` with its database name replaced by `name` (query parameters kept).
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// A storage engine of the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Sqlite, Engine::Postgres];
}

/// A host on one engine, with the database it owns (PostgreSQL: dropped after the host).
pub struct EngineHost {
    pub host: TestHost,
    pub engine: Engine,
    /// Declared after `host`: fields drop in order, so the host goes first.
    pub database: Option<PgDatabase>,
}

impl EngineHost {
    /// The database this host uses, as a URL.
    pub fn database_url(&self) -> String {
        match &self.database {
            Some(database) => database.url.clone(),
            None => format!("sqlite://{}", self.host.dir.path().join("antenna.db").display()),
        }
    }
}

impl std::ops::Deref for EngineHost {
    type Target = TestHost;
    fn deref(&self) -> &TestHost {
        &self.host
    }
}

impl TestHost {
    /// A host on the database at `database_url` (SQLite or PostgreSQL); `adjust` may change
    /// the config further.
    pub async fn start_on(database_url: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        let url = database_url.to_owned();
        Self::start_in(tempfile::tempdir().expect("temporary directory"), move |config, _| {
            config.database_url = url;
            adjust(config);
        })
        .await
    }

    /// A host on `engine`: SQLite in its temporary directory, PostgreSQL on a fresh database.
    pub async fn on_engine(engine: Engine, adjust: impl FnOnce(&mut Config)) -> EngineHost {
        match engine {
            Engine::Sqlite => EngineHost { host: TestHost::start_with(adjust).await, engine, database: None },
            Engine::Postgres => {
                let database = PgDatabase::create().await;
                let host = TestHost::start_on(&database.url, adjust).await;
                EngineHost { host, engine, database: Some(database) }
            }
        }
    }
}

/// A private CA and a certificate it signed for `localhost` and 127.0.0.1 (rcgen), as a
/// company's internal webhook receiver or database server would have.
pub struct TestCa {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub leaf_der: Vec<u8>,
    pub leaf_key_pem: String,
    pub leaf_key_der: Vec<u8>,
}

impl TestCa {
    pub fn new() -> Self {
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Antenna test CA");
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("certificate");
        TestCa {
            ca_pem: ca.pem(),
            leaf_pem: leaf.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_key_pem: leaf_key.serialize_pem(),
            leaf_key_der: leaf_key.serialize_der(),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
