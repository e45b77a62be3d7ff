//! Antenna: an ingest host for AI coding-agent telemetry.
//!
//! The modules follow the flow of a batch: [`ingest`] (HTTP, auth, limits) -> [`otlp`]
//! (decode) -> [`store`] (raw batch, durably) -> [`pipeline`] (detect, run the plugin in the
//! [`runtime`] sandbox, validate) -> [`merge`] (fragments into traces) -> [`api`] (query).

pub mod admin;
pub mod admission;
pub mod api;
pub mod auth;
pub mod config;
pub mod dryrun;
pub mod grpc;
pub mod ingest;
pub mod merge;
pub mod model;
pub mod otlp;
pub mod pipeline;
pub mod plugins;
pub mod runtime;
pub mod scaffold;
pub mod server;
pub mod store;

/// The parsers built from `plugins/` and embedded in the binary.
pub mod builtin {
    include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));
}

pub use config::{Config, Limits};
pub use server::{RunningServer, start};
