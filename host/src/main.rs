//! The `antenna` binary: `serve`, and `project create`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "antenna",
    version,
    about = "Ingest host for AI coding-agent telemetry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive OTLP, normalize it with the plugins, serve the query API.
    Serve(ServeArgs),
    /// Manage projects and their keys.
    #[command(subcommand)]
    Project(ProjectCommand),
}

#[derive(Args)]
struct DatabaseArgs {
    /// sqlite://PATH (created when missing).
    #[arg(
        long,
        env = "ANTENNA_DATABASE_URL",
        default_value = "sqlite://antenna-data/antenna.db"
    )]
    database_url: String,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on for OTLP/HTTP and the API.
    #[arg(long, env = "ANTENNA_LISTEN", default_value = "127.0.0.1:4318")]
    listen: SocketAddr,
    #[command(flatten)]
    database: DatabaseArgs,
    /// Directory of extra and replacement plugins (*.wasm).
    #[arg(long, env = "ANTENNA_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Bootstrap public key: a project with this key pair exists after start.
    #[arg(long, env = "ANTENNA_PUBLIC_KEY", requires = "secret_key")]
    public_key: Option<String>,
    /// Bootstrap secret key (stored only as a hash).
    #[arg(
        long,
        env = "ANTENNA_SECRET_KEY",
        requires = "public_key",
        hide_env_values = true
    )]
    secret_key: Option<String>,
    /// User for traces that carry no user at all.
    #[arg(long, env = "OTEL_CLI_AGENT_FALLBACK_USER")]
    fallback_user: Option<String>,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,wasmtime=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Project(ProjectCommand::Create { name, database }) => {
            let store = antenna::store::Store::connect(&database.database_url)
                .await
                .with_context(|| format!("opening {}", database.database_url))?;
            let (id, public, secret) = store.create_project(&name).await?;
            println!("project {name} created ({id})");
            println!("public key: {public}");
            println!("secret key: {secret}   (shown once; only its hash is stored)");
            println!("agents send: Authorization: Basic <base64 of {public}:{secret}>");
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = antenna::Config::local(args.database.database_url);
    config.listen = args.listen;
    config.plugins_dir = args.plugins_dir;
    config.fallback_user = args.fallback_user;
    config.bootstrap_keys = args.public_key.zip(args.secret_key);
    if config.bootstrap_keys.is_none() {
        tracing::info!(
            "no bootstrap keys: set ANTENNA_PUBLIC_KEY and ANTENNA_SECRET_KEY, or run `antenna project create NAME`"
        );
    }
    let server = antenna::start(config).await?;
    let addr = server.addr;
    tracing::info!("OTLP endpoint: http://{addr}/api/public/otel (or http://{addr}/v1/...)");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("shutting down");
    server.shutdown().await
}
