//! The command line: `serve`, `project create`, `plugins list`, `replay`, `normalize`,
//! `plugin new` ([`scaffold`]); `normalize` is in [`normalize`].

pub mod normalize;
pub mod scaffold;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "antenna", version, about = "Ingest host for AI coding-agent telemetry")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive OTLP, normalize it with the plugins, serve the query API.
    Serve(Box<ServeArgs>),
    /// Manage projects and their keys.
    #[command(subcommand)]
    Project(ProjectCommand),
    /// Inspect the plugins of a running host.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Re-normalize stored batches through the plugins a running host has loaded now.
    Replay(ReplayArgs),
    /// Print what a plugin makes of a capture (a file or a folder), as JSON; no server needed.
    Normalize {
        /// The plugin component (*.wasm).
        #[arg(long)]
        plugin: PathBuf,
        /// A request body (`*-traces.bin`, `*-logs.json`, ...) or a folder of them.
        #[arg(long)]
        input: PathBuf,
    },
    /// Write plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Args)]
struct DatabaseArgs {
    /// sqlite://PATH (created when missing).
    #[arg(long, env = "ANTENNA_DATABASE_URL", default_value = "sqlite://antenna-data/antenna.db")]
    database_url: String,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on for OTLP/HTTP and the API.
    #[arg(long, env = "ANTENNA_LISTEN", default_value = "127.0.0.1:4318")]
    listen: SocketAddr,
    /// Address for OTLP/gRPC; `off` disables it.
    #[arg(long, env = "ANTENNA_GRPC_LISTEN", default_value = "127.0.0.1:4317")]
    grpc_listen: String,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Directory of extra and replacement plugins (*.wasm), watched for changes.
    #[arg(long, env = "ANTENNA_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Compiled plugin code, reused across restarts.
    #[arg(long, env = "ANTENNA_CACHE_DIR", default_value = "antenna-data/compiled")]
    cache_dir: PathBuf,
    /// Bootstrap public key: a project with this key pair exists after start.
    #[arg(long, env = "ANTENNA_PUBLIC_KEY", requires = "bootstrap_secret")]
    public_key: Option<String>,
    /// Bootstrap secret key (stored only as a hash). Prefer the environment or
    /// --secret-key-file: a flag's value is visible to every user in `ps`.
    #[arg(
        long,
        env = "ANTENNA_SECRET_KEY",
        requires = "public_key",
        group = "bootstrap_secret",
        hide_env_values = true
    )]
    secret_key: Option<String>,
    /// A file holding the bootstrap secret key (one line).
    #[arg(long, env = "ANTENNA_SECRET_KEY_FILE", requires = "public_key", group = "bootstrap_secret")]
    secret_key_file: Option<PathBuf>,
    /// User for traces that carry no user at all.
    #[arg(long, env = "OTEL_CLI_AGENT_FALLBACK_USER")]
    fallback_user: Option<String>,
    /// Replace credentials (API keys, tokens, private keys) in prompts, responses and tool
    /// output before they are stored.
    /// (`1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`.)
    #[arg(long, env = "ANTENNA_SCRUB_SECRETS", num_args = 0..=1, default_missing_value = "true",
          default_value = "false", value_parser = clap::builder::BoolishValueParser::new())]
    scrub_secrets: bool,
    /// Bearer token for the admin API (/api/admin/...), at least 16 characters; without it the
    /// admin API is off. Prefer the environment or --admin-token-file.
    #[arg(long, env = "ANTENNA_ADMIN_TOKEN", group = "admin_secret", hide_env_values = true)]
    admin_token: Option<String>,
    /// A file holding the admin token (one line).
    #[arg(long, env = "ANTENNA_ADMIN_TOKEN_FILE", group = "admin_secret")]
    admin_token_file: Option<PathBuf>,
    /// Proxies whose X-Forwarded-For names the client (comma-separated addresses or CIDRs);
    /// from any other peer the header is ignored.
    #[arg(long, env = "ANTENNA_TRUSTED_PROXIES")]
    trusted_proxies: Option<String>,
    /// File of SHA-256 hex digests, one a line (`sha256sum` output works): only listed
    /// components load from the plugins directory.
    #[arg(long, env = "ANTENNA_PLUGINS_ALLOWLIST")]
    plugins_allowlist: Option<PathBuf>,
    /// Bearer token /metrics requires; without it /metrics is open.
    #[arg(long, env = "ANTENNA_METRICS_TOKEN", group = "metrics_secret", hide_env_values = true)]
    metrics_token: Option<String>,
    /// A file holding the /metrics token (one line).
    #[arg(long, env = "ANTENNA_METRICS_TOKEN_FILE", group = "metrics_secret")]
    metrics_token_file: Option<PathBuf>,
    /// The hosts budget webhooks may post to (comma-separated names); without it any host.
    #[arg(long, env = "ANTENNA_WEBHOOK_HOSTS")]
    webhook_hosts: Option<String>,
    /// PEM file of CA certificates budget webhooks' TLS may chain to besides the public roots
    /// (a company's own CA).
    #[arg(long, env = "ANTENNA_WEBHOOK_CA_FILE")]
    webhook_ca_file: Option<PathBuf>,
    /// TOML file of model prices ([[model]] match/input/output/cache_read/cache_write/reasoning,
    /// USD per million tokens) over the built-in table.
    #[arg(long, env = "ANTENNA_PRICES")]
    prices: Option<PathBuf>,
    /// How long compiling a component from the plugins directory may take, in milliseconds.
    #[arg(long, env = "ANTENNA_PLUGIN_COMPILE_TIMEOUT_MS", default_value_t = 60_000)]
    plugin_compile_timeout_ms: u64,
    /// Memory (address space) the plugin compiler process may use, in MiB.
    #[arg(long, env = "ANTENNA_PLUGIN_COMPILE_MEMORY_MB", default_value_t = 4096)]
    plugin_compile_memory_mb: u64,
}

#[derive(Args)]
struct AdminArgs {
    /// The running host.
    #[arg(long, env = "ANTENNA_URL", default_value = "http://127.0.0.1:4318")]
    url: String,
    #[arg(long, env = "ANTENNA_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: String,
}

#[derive(Subcommand)]
enum ProjectCommand {
    /// Create a project and print its key pair (the secret is shown only this once).
    Create {
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Every plugin: name, version, WIT version, source, claims, batches, failures, last error.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a plugin crate: an example parser, a fixture and its test, a README.
    New {
        /// The plugin's name: its crate, the scope it claims, its agent.
        name: String,
        /// Where to create the crate (default: ./NAME). Inside this repository's plugins/ it
        /// becomes a workspace member; elsewhere a standalone crate.
        #[arg(long)]
        path: Option<PathBuf>,
        /// The antenna-sdk crate a standalone plugin depends on (default: the sdk/ of the
        /// checkout this binary was built from).
        #[arg(long)]
        sdk_path: Option<PathBuf>,
    },
    /// Internal: compile the component on stdin for `antenna serve` (bounded child process).
    #[command(name = "compile-untrusted", hide = true)]
    CompileUntrusted,
}

#[derive(Args)]
struct ReplayArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Only this agent's batches.
    #[arg(long)]
    agent: Option<String>,
    /// Only this project's batches.
    #[arg(long)]
    project: Option<String>,
    /// Batches received at or after this RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Batches received before this RFC 3339 time.
    #[arg(long)]
    to: Option<String>,
    /// Only batches that failed or that no plugin claimed.
    #[arg(long)]
    failed_only: bool,
}

/// Structured logs on stderr: `RUST_LOG` filters; `ANTENNA_LOG_FORMAT=json` writes one JSON
/// object a line for log shippers; colours only when stderr is a terminal.
fn init_logs() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn,wasmtime=warn".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("ANTENNA_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().init(),
        Ok("text") | Err(_) => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        Ok(other) => bail!("ANTENNA_LOG_FORMAT={other:?}: use text or json"),
    }
    Ok(())
}

/// Parse the command line and run it.
pub async fn run() -> anyhow::Result<()> {
    init_logs()?;
    match Cli::parse().command {
        Command::Serve(args) => serve(*args).await,
        Command::Project(ProjectCommand::Create { name, database }) => {
            let storage = crate::storage::connect(&database.database_url, Default::default(), Default::default())
                .await
                .with_context(|| format!("opening {}", crate::config::redact_url_password(&database.database_url)))?;
            let (id, public, secret) = crate::auth::create_project(&*storage, &name).await?;
            println!("project {name} created ({id})");
            println!("public key: {public}");
            println!("secret key: {secret}   (shown once; only its hash is stored)");
            println!("agents send: Authorization: Basic <base64 of {public}:{secret}>");
            Ok(())
        }
        Command::Plugins(PluginsCommand::List { admin }) => {
            let response = admin_request(&admin, reqwest::Method::GET, "/api/admin/plugins", None).await?;
            println!("{}", serde_json::to_string_pretty(&response)?);
            Ok(())
        }
        Command::Replay(args) => {
            let body = serde_json::json!({
                "agent": args.agent, "project_id": args.project, "from": args.from, "to": args.to,
                "failed_only": args.failed_only,
            });
            let response = admin_request(&args.admin, reqwest::Method::POST, "/api/admin/replay", Some(body)).await?;
            println!("{}", serde_json::to_string_pretty(&response)?);
            Ok(())
        }
        Command::Normalize { plugin, input } => {
            let output = tokio::task::spawn_blocking(move || normalize::normalize(&plugin, &input)).await??;
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
        Command::Plugin(PluginCommand::CompileUntrusted) => crate::sandbox::compile::compile_untrusted_child(),
        Command::Plugin(PluginCommand::New { name, path, sdk_path }) => {
            let created = scaffold::new_plugin(&scaffold::Options { name, path, sdk_path })?;
            let dir = created.dir.display();
            match &created.layout {
                scaffold::Layout::Member { root } => {
                    println!("created {dir}, a member of the workspace at {}", root.display())
                }
                scaffold::Layout::Standalone { sdk } => {
                    println!("created {dir}, a standalone crate using the SDK at {}", sdk.display())
                }
            }
            println!("next:");
            println!("  cd {dir}");
            println!("  cargo test");
            println!("  cargo build --release --target wasm32-wasip2");
            println!("  cp {} \"$ANTENNA_PLUGINS_DIR/\"", created.component);
            Ok(())
        }
    }
}

async fn admin_request(
    admin: &AdminArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let url = format!("{}{path}", admin.url.trim_end_matches('/'));
    let mut request = reqwest::Client::new().request(method, &url).bearer_auth(&admin.admin_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| format!("calling {url}"))?;
    let status = response.status();
    let value: serde_json::Value = response.json().await.with_context(|| format!("reading the answer of {url}"))?;
    if !status.is_success() {
        bail!("{url}: {status}: {}", value["error"].as_str().unwrap_or("no reason given"));
    }
    Ok(value)
}

/// A secret setting from its value (environment or flag) or its file. A value given as a flag
/// is taken with a warning: every user of the machine sees it in `ps`. A file others may read
/// is taken with a warning too.
fn secret(
    value: Option<String>,
    file: Option<PathBuf>,
    flag: &str,
    env: &str,
) -> anyhow::Result<Option<crate::config::Secret>> {
    if let Some(file) = file {
        use std::os::unix::fs::PermissionsExt;
        let text =
            std::fs::read_to_string(&file).with_context(|| format!("{env}_FILE ({flag}-file) {}", file.display()))?;
        if std::fs::metadata(&file).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            tracing::warn!(file = %file.display(), "{flag}-file can be read by other users: chmod 600 it");
        }
        return Ok(Some(crate::config::Secret::from(text.trim_end_matches(['\r', '\n']).to_owned())));
    }
    let on_command_line = std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    if value.is_some() && on_command_line {
        tracing::warn!("{flag} on the command line is visible to every user in `ps`: set {env} or use {flag}-file");
    }
    Ok(value.map(crate::config::Secret::from))
}

/// The settings of `serve`, checked ([`crate::Config::check`]) before anything is opened.
fn serve_config(args: ServeArgs) -> anyhow::Result<crate::Config> {
    let mut config = crate::Config::local(args.database.database_url);
    config.listen = args.listen;
    config.grpc_listen = match args.grpc_listen.as_str() {
        "off" | "" => None,
        address => Some(address.parse().with_context(|| format!("ANTENNA_GRPC_LISTEN {address:?}"))?),
    };
    config.plugins_dir = args.plugins_dir;
    config.cache_dir = Some(args.cache_dir);
    config.admin_token = secret(args.admin_token, args.admin_token_file, "--admin-token", "ANTENNA_ADMIN_TOKEN")?;
    config.fallback_user = args.fallback_user;
    config.limits.scrub_secrets = args.scrub_secrets;
    let secret_key = secret(args.secret_key, args.secret_key_file, "--secret-key", "ANTENNA_SECRET_KEY")?;
    config.bootstrap_keys = args.public_key.zip(secret_key);
    if let Some(list) = args.trusted_proxies {
        config.trusted_proxies = crate::auth::parse_trusted_proxies(&list)
            .map_err(|e| anyhow::anyhow!("ANTENNA_TRUSTED_PROXIES (--trusted-proxies): {e}"))?;
    }
    config.plugins_allowlist = args.plugins_allowlist;
    config.metrics_token =
        secret(args.metrics_token, args.metrics_token_file, "--metrics-token", "ANTENNA_METRICS_TOKEN")?;
    config.prices = args.prices;
    config.webhook_hosts = args
        .webhook_hosts
        .iter()
        .flat_map(|list| list.split(','))
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if let Some(path) = &args.webhook_ca_file {
        let pem = std::fs::read(path)
            .with_context(|| format!("ANTENNA_WEBHOOK_CA_FILE (--webhook-ca-file): cannot read {}", path.display()))?;
        config.webhook_roots = reqwest::Certificate::from_pem_bundle(&pem).with_context(|| {
            format!("ANTENNA_WEBHOOK_CA_FILE (--webhook-ca-file): {} is not PEM certificates", path.display())
        })?;
        if config.webhook_roots.is_empty() {
            anyhow::bail!("ANTENNA_WEBHOOK_CA_FILE (--webhook-ca-file): {} holds no certificate", path.display());
        }
    }
    config.plugin_compiler = Some(std::env::current_exe().context("finding the antenna binary (it compiles plugins)")?);
    config.limits.compile_timeout_ms = args.plugin_compile_timeout_ms;
    config.limits.compile_memory_bytes = args.plugin_compile_memory_mb.saturating_mul(1 << 20);
    config.check()?;
    Ok(config)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = serve_config(args)?;
    if config.bootstrap_keys.is_none() {
        tracing::info!(
            "no bootstrap keys: set ANTENNA_PUBLIC_KEY and ANTENNA_SECRET_KEY, or run `antenna project create NAME`"
        );
    }
    let server = crate::start(config).await?;
    let addr = server.addr;
    tracing::info!("OTLP endpoint: http://{addr}/api/public/otel (or http://{addr}/v1/...)");
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    tracing::info!("shutting down");
    server.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(args: &[&str]) -> ServeArgs {
        let argv = ["antenna", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv).expect("arguments").command {
            Command::Serve(args) => *args,
            _ => unreachable!("serve"),
        }
    }

    #[test]
    fn serve_refuses_weak_secrets_and_reads_trusted_proxies() {
        let error = |args: &[&str]| serve_config(serve_args(args)).expect_err("refused").to_string();
        assert!(error(&["--admin-token", ""]).contains("empty"));
        assert!(error(&["--admin-token", "short-token"]).contains("at least 16"));
        let exposed = ["--listen", "0.0.0.0:4318", "--public-key", "pk-local", "--secret-key", "sk-local"];
        assert!(error(&exposed).contains("at least 32"));
        assert!(error(&["--trusted-proxies", "10.0.0.0/8,proxy"]).contains("ANTENNA_TRUSTED_PROXIES"));

        let local = serve_args(&["--public-key", "pk-local", "--secret-key", "sk-local", "--grpc-listen", "off"]);
        assert!(serve_config(local).is_ok(), "a short key on loopback is fine");
        let config = serve_config(serve_args(&[
            "--admin-token",
            "0123456789abcdef",
            "--trusted-proxies",
            "10.0.0.0/8, 192.168.1.7",
        ]))
        .expect("accepted");
        assert_eq!(config.trusted_proxies.len(), 2);
        assert!(!format!("{config:?}").contains("0123456789abcdef"), "Debug redacts the token");
    }

    #[test]
    fn booleans_take_the_usual_spellings_and_secrets_come_from_files() {
        for (value, expected) in
            [("1", true), ("yes", true), ("on", true), ("true", true), ("0", false), ("off", false)]
        {
            assert_eq!(serve_args(&["--scrub-secrets", value]).scrub_secrets, expected, "{value}");
        }
        assert!(serve_args(&["--scrub-secrets"]).scrub_secrets);
        assert!(!serve_args(&[]).scrub_secrets);
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = dir.path().join("token");
        std::fs::write(&file, "0123456789abcdef-from-file\n").expect("write");
        let path = file.to_str().expect("a path");
        let config =
            serve_config(serve_args(&["--admin-token-file", path, "--public-key", "pk", "--secret-key-file", path]))
                .expect("accepted");
        assert_eq!(config.admin_token.as_deref(), Some("0123456789abcdef-from-file"));
        assert_eq!(config.bootstrap_keys.as_ref().map(|(_, s)| s.expose()), Some("0123456789abcdef-from-file"));
        assert!(Cli::try_parse_from(["antenna", "serve", "--admin-token", "x", "--admin-token-file", path]).is_err());
        let missing = serve_config(serve_args(&["--metrics-token-file", "/nonexistent/token"])).expect_err("refused");
        assert!(format!("{missing:#}").contains("ANTENNA_METRICS_TOKEN_FILE"), "{missing:#}");
    }
}
