//! Fan-out of workflow events to live listeners (SSE now; webhooks later).

pub mod bus;
pub mod guard;
pub mod webhooks;

pub use bus::EventBus;
