//! Numbering and fan-out of changes: every `StateChange` gets the next
//! process-wide seq and goes to all subscribers, in order, batched per mailbox
//! pass. Events become webhook deliveries here (stored with the event). Both the
//! event, to SSE clients, and its deliveries, to the dispatcher, go out only once
//! the primary store has committed them: neither a client nor a webhook receiver
//! ever hears of an event that a crash could take back, so what it saw live is
//! what a replay from the store returns.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::prelude::*;
use serde_json::json;

use super::webhook_index::WebhookIndex;
use crate::actors::persist::PersistHealth;
use crate::actors::Publish;
use crate::clock::now;
use crate::domain::{ChangeKind, Delivery, DeliveryStatus, Event, StateChange};
use crate::events::webhooks::Deliver;
use crate::events::EventBus;

/// Kept apart from the maps so a handler can hold an entry and emit at once.
pub struct Outbox {
    pub seq: u64,
    pub subscribers: Vec<Recipient<Publish>>,
    pub primary: Arc<PersistHealth>,
    pub bus: EventBus,
    pub webhooks: WebhookIndex,
    pub dispatcher: Option<Recipient<Deliver>>,
    pub events_emitted: u64,
    /// Changes not yet sent to the subscribers, in order.
    pub pending: Vec<Arc<StateChange>>,
    /// Events not yet committed by the primary store, with their change seq, in
    /// order: each workflow's are a suffix of its log.
    pub uncommitted: VecDeque<(u64, Arc<Event>)>,
    /// Deliveries waiting for the commit of their change (which follows their
    /// event's), in order. Bounded like `uncommitted`: by the primary store's
    /// queue (`storage.max_queue`), past which creates are refused.
    pub undispatched: VecDeque<(u64, Deliver)>,
    /// The registry itself: a `FlushOutbox` queued behind the messages already in
    /// the mailbox sends everything they emit as one `Publish`.
    pub me: Option<Recipient<FlushOutbox>>,
    /// Several instances: the lease epoch this instance holds a workflow under.
    pub epochs: Option<EpochOf>,
}

/// Looks up the lease epoch a workflow is held under here (`Cluster::epoch_of`).
pub type EpochOf = Arc<dyn Fn(&str) -> Option<i64> + Send + Sync>;

impl Outbox {
    /// The epoch a change is made under: its workflow's lease epoch now.
    pub fn epoch_of(&self, kind: &ChangeKind) -> Option<i64> {
        let f = self.epochs.as_ref()?;
        f(kind.run_workflow()?)
    }

    pub fn emit(&mut self, kind: ChangeKind) -> u64 {
        self.seq += 1;
        let epoch = self.epoch_of(&kind);
        let change = Arc::new(StateChange {
            seq: self.seq,
            epoch,
            kind,
        });
        self.primary.set_emitted(self.seq);
        self.pending.push(change);
        if self.pending.len() == 1 {
            if let Some(me) = &self.me {
                me.do_send(FlushOutbox);
            }
        }
        self.seq
    }

    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let batch: Arc<[Arc<StateChange>]> = std::mem::take(&mut self.pending).into();
        for s in &self.subscribers {
            s.do_send(Publish(Arc::clone(&batch)));
        }
    }

    /// An event the core made: to the stores and webhooks now, to SSE clients
    /// once committed (`committed`). `owner`: the key owning the workflow.
    pub fn event(&mut self, ev: Arc<Event>, owner: Option<&str>) -> u64 {
        self.events_emitted += 1;
        let seq = self.emit(ChangeKind::Event(Arc::clone(&ev)));
        self.deliveries(&ev, owner);
        self.uncommitted.push_back((seq, ev));
        seq
    }

    /// The primary store committed every change up to `upto`: publish the events
    /// among them and dispatch their deliveries. A workflow's streams end after
    /// its terminal event.
    pub fn committed(&mut self, upto: u64) {
        while self
            .undispatched
            .front()
            .is_some_and(|(seq, _)| *seq <= upto)
        {
            let Some((_, d)) = self.undispatched.pop_front() else {
                break;
            };
            if let Some(dispatcher) = &self.dispatcher {
                dispatcher.do_send(d);
            }
        }
        while let Some((seq, _)) = self.uncommitted.front() {
            if *seq > upto {
                break;
            }
            let Some((_, ev)) = self.uncommitted.pop_front() else {
                break;
            };
            self.bus.publish(&ev);
            if ev.kind.is_terminal() {
                self.bus.close(&ev.workflow_id);
            }
        }
    }

    /// How many of a workflow's events are not committed yet (the tail of its log).
    pub fn uncommitted_of(&self, workflow_id: &str) -> usize {
        self.uncommitted
            .iter()
            .filter(|(_, e)| e.workflow_id == workflow_id)
            .count()
    }

    /// One delivery per matching webhook subscription, persisted with the event
    /// and dispatched once committed (`committed`). `owner`: the workflow's key.
    fn deliveries(&mut self, ev: &Event, owner: Option<&str>) {
        for s in self.webhooks.matching(ev) {
            let d = Delivery {
                id: format!("dl_{}", uuid::Uuid::now_v7().simple()),
                subscription_id: s.id.clone(),
                workflow_id: ev.workflow_id.clone(),
                url: s.url.clone(),
                event: ev.kind,
                event_seq: ev.seq,
                payload: json!({"event": ev.kind, "task_id": ev.workflow_id, "timestamp": ev.timestamp, "data": ev.data}),
                status: DeliveryStatus::Pending,
                attempts: Vec::new(),
                next_attempt_at: None,
                created_at: now(),
                completed_at: None,
                global: Some(s.workflow_id.is_none()),
                owner: owner.map(str::to_string),
            };
            let seq = self.emit(ChangeKind::Delivery(Arc::new(d.clone())));
            self.webhooks.delivery_made(&s.id);
            if self.dispatcher.is_some() {
                self.undispatched.push_back((
                    seq,
                    Deliver {
                        delivery: d,
                        secret: Some(s.secret.clone()),
                    },
                ));
            }
        }
    }
}

/// Sends the changes emitted so far to the subscribers (see `Outbox::me`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushOutbox;
