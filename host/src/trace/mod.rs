//! Traces: the host's model of plugin output ([`model`]), the pure merge of fragments into one
//! per-prompt trace ([`merge`]), its assembly into what storage keeps ([`assemble`]) and its
//! update from what a write adds ([`incremental`]), and the
//! public JSON view ([`view`]); what model calls cost ([`prices`]). Nothing here does I/O but
//! reading the operator's price file at start-up.

pub mod assemble;
pub mod incremental;
pub mod merge;
pub mod model;
pub mod prices;
pub mod scrub;
pub mod view;

pub use assemble::{
    Assembly, ObservationRow, Timeline, TimelineChanges, TraceRecord, assemble, in_memory, timeline_changes,
};
pub use incremental::{Addition, Entity, TraceState};
pub use merge::{KeyGroups, Stored, Trace, merge};
pub use model::{Body, Fragment};
