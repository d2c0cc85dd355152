//! The steps `crate::start` (in `lib.rs`) sequences: opening the primary store
//! (and joining the cluster on PostgreSQL), restoring state, starting the
//! persisters, the registry with its dispatcher and evictor, and the actors beside
//! it. A start-up step fails with a `StartError`, one line naming the setting to fix.

pub mod neighbours;
pub mod persisters;
pub mod primary;
pub mod registry;
pub mod restore;

pub use neighbours::ClusterHandle;
pub use primary::open_store;
pub(crate) use primary::store_key;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);
