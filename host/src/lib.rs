//! Antenna: an ingest host for AI coding-agent telemetry.
//!
//! The modules follow the path of a batch, dependencies pointing one way:
//! [`ingest`] (OTLP/HTTP and gRPC, [`auth`], admission, limits) -> [`otlp`] (decode) ->
//! [`storage`] (the raw batch, durably) -> [`pipeline`] (detect the agent among the
//! [`plugins`], run its parser in the [`sandbox`], validate) -> [`trace`] (merge fragments into
//! per-prompt traces) -> [`api`] (query) and [`admin`] (operators). [`server`] is the
//! composition root that wires them, over the shared [`app`] state; [`cli`] is the command line.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod budgets;
pub mod cli;
pub mod config;
pub mod ids;
pub mod ingest;
pub mod metrics;
pub mod otlp;
pub mod pipeline;
pub mod plugins;
pub mod sandbox;
pub mod server;
pub mod storage;
pub mod trace;
pub mod ui;

pub use config::{Config, Limits};
pub use plugins::builtin;
pub use server::{RunningServer, start};
