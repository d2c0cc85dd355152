//! The actors and how they are wired: the registry emits `Publish` to every
//! subscriber (primary store writer, Redis mirror when configured, evictor, metrics).

pub mod cluster;
pub mod evictor;
pub mod metrics;
pub mod persist;
pub mod registry;

use std::sync::Arc;

use actix::prelude::*;

use crate::domain::StateChange;

/// State changes in emission order, fanned out by the registry to every subscriber.
/// The registry sends what one pass over its mailbox produced as one message:
/// a message per change cost a cross-thread wake-up each, which profiling showed
/// as the registry thread's largest cost.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Publish(pub Arc<[Arc<StateChange>]>);
