//! Per-workflow fan-out of live events to SSE clients. Owned by the registry, so a
//! subscription and the backlog it is handed are taken atomically: no event falls
//! between them. A client whose buffer is full is dropped (it reconnects with
//! `Last-Event-ID` and loses nothing); it never slows the registry.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::domain::Event;

/// Events buffered per client before it counts as too slow.
pub const CLIENT_BUFFER: usize = 1024;

#[derive(Default)]
pub struct EventBus {
    listeners: HashMap<String, Vec<mpsc::Sender<Arc<Event>>>>,
}

impl EventBus {
    pub fn subscribe(&mut self, workflow_id: &str) -> mpsc::Receiver<Arc<Event>> {
        let (tx, rx) = mpsc::channel(CLIENT_BUFFER);
        self.listeners
            .entry(workflow_id.to_string())
            .or_default()
            .push(tx);
        rx
    }

    pub fn publish(&mut self, event: &Arc<Event>) {
        if let Some(txs) = self.listeners.get_mut(&event.workflow_id) {
            txs.retain(|tx| tx.try_send(Arc::clone(event)).is_ok());
            if txs.is_empty() {
                self.listeners.remove(&event.workflow_id);
            }
        }
    }

    /// Ends every stream of the workflow (after its terminal event, or when the
    /// process stops running it).
    pub fn close(&mut self, workflow_id: &str) {
        self.listeners.remove(workflow_id);
    }

    pub fn clients(&self) -> usize {
        self.listeners.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::EventType;

    fn ev(seq: u64) -> Arc<Event> {
        Arc::new(Event {
            workflow_id: "wf".into(),
            seq,
            kind: EventType::AgentProgress,
            timestamp: crate::clock::now(),
            data: serde_json::Value::Null.into(),
        })
    }

    #[test]
    fn slow_client_is_dropped_others_keep_receiving() {
        let mut bus = EventBus::default();
        let mut fast = bus.subscribe("wf");
        let _slow = bus.subscribe("wf");
        for seq in 1..=(CLIENT_BUFFER as u64 + 1) {
            bus.publish(&ev(seq));
            assert_eq!(fast.try_recv().map(|e| e.seq).ok(), Some(seq));
        }
        assert_eq!(bus.clients(), 1);
    }

    #[test]
    fn closing_ends_streams() {
        let mut bus = EventBus::default();
        let mut rx = bus.subscribe("wf");
        bus.close("wf");
        assert!(rx.try_recv().is_err());
        assert!(rx.is_closed() || rx.try_recv().is_err());
        assert_eq!(bus.clients(), 0);
    }
}
