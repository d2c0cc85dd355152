//! The LISTEN side of the cluster: one dedicated connection (not pooled: a
//! pooled one would be recycled) that listens on the cluster's channels and
//! passes what it hears on. Event notices wake the local event streams of
//! workflows running on other instances (`Watchers`), which then read the new
//! events from the store; cancel, claim and webhook notices go to the
//! `ClusterActor`. On a lost connection it reconnects, and wakes every stream,
//! since notices may have been missed meanwhile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures::future::poll_fn;
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, NoTls};

use super::{CANCEL_CHANNEL, CLAIM_CHANNEL, EVENTS_CHANNEL, WEBHOOKS_CHANNEL};

/// Notices queued between the connection and their dispatch at most; beyond,
/// they are dropped and every stream is woken instead (it re-reads the store).
const MAX_QUEUED: usize = 10_000;

/// What another instance asked of this one.
#[derive(Message, Debug, Clone, PartialEq)]
#[rtype(result = "()")]
pub enum Notice {
    /// Cancel this workflow, if it runs here.
    Cancel(String),
    /// An instance handed its leases over: claim now.
    Claim,
    /// Webhook subscriptions changed; with an id: that one was removed.
    Webhooks(Option<String>),
    /// The LISTEN connection was (re)established: notices may have been missed.
    Reconnected,
}

type WatchMap = HashMap<String, watch::Sender<u64>>;

/// Local event streams waiting for a workflow that runs elsewhere.
#[derive(Default, Clone)]
pub struct Watchers {
    map: Arc<Mutex<WatchMap>>,
}

/// A stream's subscription; dropping it unsubscribes.
pub struct Watch {
    pub rx: watch::Receiver<u64>,
    id: String,
    map: Arc<Mutex<WatchMap>>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // This receiver still counts until it is dropped after this.
        if m.get(&self.id).is_some_and(|tx| tx.receiver_count() <= 1) {
            m.remove(&self.id);
        }
    }
}

impl Watchers {
    fn lock(&self) -> std::sync::MutexGuard<'_, WatchMap> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to `id`'s event notices. (The number of streams is capped by
    /// `limits.max_sse_streams`, so this map is too.)
    pub fn watch(&self, id: &str) -> Watch {
        let mut m = self.lock();
        let rx = match m.get(id) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = watch::channel(0);
                m.insert(id.to_string(), tx);
                rx
            }
        };
        Watch {
            rx,
            id: id.to_string(),
            map: Arc::clone(&self.map),
        }
    }

    pub fn wake(&self, id: &str) {
        if let Some(tx) = self.lock().get(id) {
            tx.send_modify(|n| *n += 1);
        }
    }

    pub fn wake_all(&self) {
        for tx in self.lock().values() {
            tx.send_modify(|n| *n += 1);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Listens until the process ends, reconnecting after a second on any failure.
pub async fn run(pg: tokio_postgres::Config, watchers: Watchers, to: Recipient<Notice>) {
    let mut logged_down = false;
    loop {
        match listen_once(&pg, &watchers, &to).await {
            Ok(()) => logged_down = false,
            Err(e) if !logged_down => {
                tracing::warn!(error = %e, "cluster LISTEN connection lost; reconnecting");
                logged_down = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(
    pg: &tokio_postgres::Config,
    watchers: &Watchers,
    to: &Recipient<Notice>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut conn) = pg.connect(NoTls).await?;
    let (tx, mut rx) = mpsc::channel::<(String, String)>(MAX_QUEUED);
    let overflow = watchers.clone();
    // The connection is driven here: it delivers notices and carries the LISTENs.
    let driver = actix_rt::spawn(async move {
        while let Some(msg) = poll_fn(|cx| conn.poll_message(cx)).await {
            match msg {
                Ok(AsyncMessage::Notification(n)) => {
                    let item = (n.channel().to_string(), n.payload().to_string());
                    if tx.try_send(item).is_err() {
                        overflow.wake_all();
                    }
                }
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!(
            "LISTEN {EVENTS_CHANNEL}; LISTEN {CANCEL_CHANNEL}; LISTEN {CLAIM_CHANNEL}; LISTEN {WEBHOOKS_CHANNEL};"
        ))
        .await?;
    watchers.wake_all();
    to.do_send(Notice::Reconnected);
    while let Some((channel, payload)) = rx.recv().await {
        match channel.as_str() {
            EVENTS_CHANNEL => watchers.wake(&payload),
            CANCEL_CHANNEL => to.do_send(Notice::Cancel(payload)),
            CLAIM_CHANNEL => to.do_send(Notice::Claim),
            WEBHOOKS_CHANNEL => {
                let removed = Some(payload).filter(|p| !p.is_empty());
                to.do_send(Notice::Webhooks(removed))
            }
            _ => {}
        }
    }
    drop(client);
    match driver.await {
        Ok(res) => res,
        Err(_) => Ok(()),
    }
}
