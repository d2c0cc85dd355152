//! Several instances: workflows claimed from instances that stopped renewing
//! their leases are adopted (rebuilt from the store and resumed, reusing their
//! committed steps); workflows another instance took over are disowned (their
//! runs stop here without writing: the store's fence refuses their changes).

use actix::prelude::*;

use super::WorkflowRegistry;
use crate::domain::machine::Input;
use crate::domain::Subscription;
use crate::store::StoredActive;

#[derive(Message)]
#[rtype(result = "()")]
pub struct Adopt {
    pub workflows: Vec<StoredActive>,
    /// Their webhook subscriptions.
    pub subscriptions: Vec<Subscription>,
}

impl Handler<Adopt> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, msg: Adopt, ctx: &mut Context<Self>) {
        self.out.webhooks.insert_missing(msg.subscriptions);
        for stored in msg.workflows {
            let id = stored.workflow.id.clone();
            // A copy left from before this instance lost the lease is stale.
            if let Some(old) = self.active.remove(&id) {
                if let Some(h) = old.abort {
                    h.abort();
                }
            }
            tracing::info!(workflow_id = %id, "claimed from an instance that stopped renewing its lease; resuming");
            self.restore(stored, ctx);
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Disown(pub Vec<String>);

impl Handler<Disown> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, Disown(ids): Disown, ctx: &mut Context<Self>) {
        for id in ids {
            if let Some(Ok(_)) = self.feed(&id, Input::Disowned, ctx) {
                tracing::warn!(workflow_id = %id, "lease lost to another instance; run stopped here without writing");
            }
        }
    }
}

/// The global webhook subscriptions as the store holds them now, and one that
/// another instance just removed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SyncGlobalWebhooks {
    pub subs: Vec<Subscription>,
    pub removed: Option<String>,
}

impl Handler<SyncGlobalWebhooks> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, msg: SyncGlobalWebhooks, _: &mut Context<Self>) {
        if let Some(id) = msg.removed {
            // Removed from the store already: forgotten here without a change.
            self.out.webhooks.remove(&id);
        }
        self.out.webhooks.sync_global(msg.subs);
    }
}
