//! One actor per tool server, under `actix::Supervisor` like the persisters:
//! `started()` connects; when the connection ends (a stdio server exited, an HTTP
//! session broke) or cannot be made, the actor stops after a backoff and the
//! supervisor starts it again. The backoff lives in the struct, so it survives
//! the restart; `restarting()` marks the server down so no call is sent to a
//! dead peer.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::connect;
use super::ServerSlot;

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The address must be kept: a supervisor restarts its actor only while an
/// address of it is alive.
pub fn start(slot: Arc<ServerSlot>) -> Addr<ServerActor> {
    Supervisor::start(move |_| ServerActor {
        slot,
        backoff: MIN_BACKOFF,
    })
}

pub struct ServerActor {
    slot: Arc<ServerSlot>,
    /// Wait before the next attempt: doubles per failure, reset on success.
    backoff: Duration,
}

impl Actor for ServerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let slot = Arc::clone(&self.slot);
        let connect = async move { connect::open(&slot).await };
        ctx.spawn(connect.into_actor(self).map(|res, act, ctx| match res {
            Ok((service, tools)) => {
                act.backoff = MIN_BACKOFF;
                act.slot.set_up(service.peer().clone(), tools);
                // The service runs until its transport ends; then reconnect.
                let watch = async move { service.waiting().await };
                ctx.spawn(watch.into_actor(act).map(|quit, act, ctx| {
                    let reason = match quit {
                        Ok(q) => format!("connection ended ({q:?})"),
                        Err(e) => format!("connection task failed: {e}"),
                    };
                    tracing::warn!(server = %act.slot.name, %reason, "tool server down; reconnecting");
                    act.slot.set_down(reason);
                    act.retry_later(ctx);
                }));
            }
            Err(e) => {
                tracing::warn!(server = %act.slot.name, error = %e, retry_in_ms = act.backoff.as_millis() as u64, "tool server unavailable");
                act.slot.set_down(e.to_string());
                act.retry_later(ctx);
            }
        }));
    }
}

impl ServerActor {
    fn retry_later(&mut self, ctx: &mut Context<Self>) {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        ctx.run_later(wait, |_, ctx| ctx.stop());
    }
}

impl Supervised for ServerActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        if self.slot.peer().is_some() {
            self.slot.set_down("restarting".into());
        }
    }
}
