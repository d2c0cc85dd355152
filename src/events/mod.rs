//! Fan-out of workflow events to live listeners: SSE clients (`bus`, capped by
//! `streams`) and webhook deliveries (`webhooks`), and the address policy webhook
//! URLs must pass.

pub mod address_policy;
pub mod bus;
pub mod streams;
pub mod webhooks;

pub use bus::EventBus;
