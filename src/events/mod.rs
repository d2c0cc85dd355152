//! Fan-out of workflow events to live listeners (SSE now; webhooks later).

pub mod bus;

pub use bus::EventBus;
