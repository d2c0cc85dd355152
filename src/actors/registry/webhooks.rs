//! Webhook subscriptions (add within the caps, remove, list, close with their
//! workflow) and delivery records from the dispatcher.

use std::sync::Arc;

use actix::prelude::*;

use super::{Refusal, WorkflowRegistry};
use crate::domain::{ChangeKind, Delivery, DeliveryStatus, Subscription};
use crate::events::webhooks::{Deliver, RecordDelivery};

impl WorkflowRegistry {
    /// A workflow finished: its own subscriptions leave once their deliveries
    /// are final (now, for those with none pending).
    pub(super) fn close_webhooks(&mut self, workflow_id: &str) {
        for id in self.out.webhooks.close_workflow(workflow_id) {
            self.drop_webhook(id);
        }
    }

    fn drop_webhook(&mut self, id: String) {
        if self.out.webhooks.remove(&id).is_some() {
            self.out.emit(ChangeKind::WebhookRemoved(id));
        }
    }
}

/// Registers a subscription within the caps; returns it with the change seq to
/// acknowledge. A workflow that already finished takes none: it sends no more
/// events, and its subscription would never leave.
#[derive(Message)]
#[rtype(result = "Result<(Arc<Subscription>, u64), Refusal>")]
pub struct AddWebhook(pub Subscription);

impl Handler<AddWebhook> for WorkflowRegistry {
    type Result = Result<(Arc<Subscription>, u64), Refusal>;

    fn handle(&mut self, AddWebhook(s): AddWebhook, _: &mut Context<Self>) -> Self::Result {
        if let Some(w) = s.workflow_id.as_deref() {
            if !self.active.contains_key(w) {
                let status = self
                    .retained
                    .get(w)
                    .map_or_else(|| "finished".to_string(), |wf| wf.status.to_string());
                return Err(Refusal::AlreadyFinished {
                    id: w.to_string(),
                    status,
                });
            }
        }
        self.out
            .webhooks
            .admit(s.workflow_id.as_deref(), s.owner.as_deref())?;
        let s = Arc::new(s);
        let seq = self.out.emit(ChangeKind::Webhook(Arc::clone(&s)));
        self.out.webhooks.insert(Arc::clone(&s));
        Ok((s, seq))
    }
}

/// At start-up: deliveries still pending in the store go to the dispatcher (with
/// their subscription's secret), and subscriptions of workflows that finished
/// before the restart close.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ResumeDeliveries(pub Vec<Delivery>);

impl Handler<ResumeDeliveries> for WorkflowRegistry {
    type Result = ();

    fn handle(&mut self, ResumeDeliveries(pending): ResumeDeliveries, _: &mut Context<Self>) {
        for d in pending {
            self.out.webhooks.delivery_made(&d.subscription_id);
            let secret = self.out.webhooks.secret(&d.subscription_id);
            if let Some(dispatcher) = &self.out.dispatcher {
                dispatcher.do_send(Deliver {
                    delivery: d,
                    secret,
                });
            }
        }
        for w in self.out.webhooks.workflows() {
            if !self.active.contains_key(&w) {
                self.close_webhooks(&w);
            }
        }
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
        let (sub, last) = (
            d.subscription_id.clone(),
            d.status != DeliveryStatus::Pending,
        );
        self.out.emit(ChangeKind::Delivery(Arc::new(d)));
        if last && self.out.webhooks.delivery_final(&sub) {
            self.drop_webhook(sub);
        }
    }
}
