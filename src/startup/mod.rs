//! Start-up steps that the crate root sequences (`crate::start`, in `lib.rs`): opening the
//! primary store (and joining the cluster on PostgreSQL). A start-up step fails
//! with a `StartError`, one line naming the setting to fix.

pub mod primary;

pub use primary::open_store;
pub(crate) use primary::store_key;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);
