//! The actors and how they are wired: the registry emits `Publish` to every
//! subscriber (primary store writer, evictor, metrics; Redis later).

pub mod evictor;
pub mod metrics;
pub mod persist;
pub mod registry;

use std::sync::Arc;

use actix::prelude::*;

use crate::domain::StateChange;

/// One state change, fanned out by the registry to every subscriber.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Publish(pub Arc<StateChange>);
