//! Traces: the host's model of plugin output ([`model`]), the pure merge of fragments into one
//! per-prompt trace ([`merge`]), its assembly into what storage keeps ([`assemble`]), and the
//! public JSON view ([`view`]). Nothing here does I/O.

pub mod assemble;
pub mod merge;
pub mod model;
pub mod scrub;
pub mod view;

pub use assemble::{TraceRecord, assemble, in_memory};
pub use merge::{KeyGroups, Stored, Trace, merge};
pub use model::{Body, Fragment};
