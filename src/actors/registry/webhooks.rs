//! Webhook subscriptions (add, remove, list) and delivery records from the
//! dispatcher.

use std::sync::Arc;

use actix::prelude::*;

use super::WorkflowRegistry;
use crate::domain::{ChangeKind, Subscription};
use crate::events::webhooks::RecordDelivery;

/// Registers a subscription; returns it with the change seq to acknowledge.
#[derive(Message)]
#[rtype(result = "(Arc<Subscription>, u64)")]
pub struct AddWebhook(pub Subscription);

impl Handler<AddWebhook> for WorkflowRegistry {
    type Result = MessageResult<AddWebhook>;

    fn handle(&mut self, AddWebhook(s): AddWebhook, _: &mut Context<Self>) -> Self::Result {
        let s = Arc::new(s);
        let seq = self.out.emit(ChangeKind::Webhook(Arc::clone(&s)));
        self.out.webhooks.insert(Arc::clone(&s));
        MessageResult((s, seq))
    }
}

/// Removes a subscription by id, or a workflow's subscriptions to a URL.
#[derive(Message)]
#[rtype(result = "Option<(Vec<Arc<Subscription>>, u64)>")]
pub enum RemoveWebhook {
    Id(String),
    WorkflowUrl { workflow_id: String, url: String },
}

impl Handler<RemoveWebhook> for WorkflowRegistry {
    type Result = Option<(Vec<Arc<Subscription>>, u64)>;

    fn handle(&mut self, msg: RemoveWebhook, _: &mut Context<Self>) -> Self::Result {
        let ids: Vec<String> = match msg {
            RemoveWebhook::Id(id) => vec![id],
            RemoveWebhook::WorkflowUrl { workflow_id, url } => {
                self.out.webhooks.of_workflow_to(&workflow_id, &url)
            }
        };
        let mut removed = Vec::new();
        let mut seq = 0;
        for id in ids {
            if let Some(s) = self.out.webhooks.remove(&id) {
                seq = self.out.emit(ChangeKind::WebhookRemoved(id));
                removed.push(s);
            }
        }
        (!removed.is_empty()).then_some((removed, seq))
    }
}

#[derive(Message)]
#[rtype(result = "Vec<Arc<Subscription>>")]
pub struct ListWebhooks;

impl Handler<ListWebhooks> for WorkflowRegistry {
    type Result = MessageResult<ListWebhooks>;

    fn handle(&mut self, _: ListWebhooks, _: &mut Context<Self>) -> Self::Result {
        let mut all: Vec<Arc<Subscription>> = self.out.webhooks.all().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        MessageResult(all)
    }
}

impl Handler<RecordDelivery> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, RecordDelivery(d): RecordDelivery, _: &mut Context<Self>) {
        self.out.emit(ChangeKind::Delivery(Arc::new(d)));
    }
}
