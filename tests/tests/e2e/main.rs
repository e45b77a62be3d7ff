//! The end-to-end suite, one test binary (linking one binary instead of one per file is most of
//! what a test build costs): a real host on an ephemeral port, real HTTP/gRPC, real SQLite, the
//! real components. One module per concern.

mod agents;
mod at_rest;
mod attribution;
mod budgets;
mod claude_code;
mod codex;
mod connections;
mod copilot;
mod fuzz_regressions;
mod gemini;
mod genai;
mod grpc;
mod hardening;
mod hostile;
mod incremental;
mod ingest;
mod limits;
mod long_traces;
mod openapi;
mod paging;
mod plugins;
mod poison;
mod postgres_tls;
mod replicas;
mod scrub;
mod security;
mod storage;
mod trust;
mod ui;
mod usage;
