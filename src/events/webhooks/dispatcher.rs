//! The `WebhookDispatcher` actor: a bounded queue of deliveries waiting to be sent
//! (not yet due, or due and waiting for capacity), at most `max_concurrent` attempts
//! in flight overall and `max_per_host` to one host. Waiting deliveries are kept in
//! arrival order (a retry keeps its place); past `webhooks.max_pending` one is
//! recorded as failed with the reason, never dropped without a record: the oldest
//! of the key (the workflow's owner) most over its share (`auth.max_share`), else
//! of the key holding the most, so one tenant's flood costs that tenant alone.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use backon::{BackoffBuilder, ExponentialBuilder};

use super::client::{self, AttemptError, Request};
use super::{Deliver, RecordDelivery, SetRecorder, WebhookStats};
use crate::auth::Shares;
use crate::clock::now;
use crate::config::WebhooksConfig;
use crate::domain::{Attempt, Delivery, DeliveryStatus};
use crate::events::address_policy::Guard;

/// A retry waits at most this long, however many retries are configured.
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);

struct Waiting {
    delivery: Delivery,
    secret: Option<String>,
    host: String,
    /// The timer that makes it due, while it is not.
    timer: Option<SpawnHandle>,
}

pub struct WebhookDispatcher {
    guard: Guard,
    client: Result<reqwest::Client, AttemptError>,
    cfg: WebhooksConfig,
    recorder: Option<Recipient<RecordDelivery>>,
    stats: Arc<WebhookStats>,
    /// Deliveries not in flight, by arrival order.
    waiting: BTreeMap<u64, Waiting>,
    /// The keys of `waiting` per owning key (None: no key); only keys with one.
    by_owner: HashMap<Option<String>, BTreeSet<u64>>,
    shares: Shares,
    /// The keys of `waiting` whose time has come, oldest first.
    due: BTreeSet<u64>,
    next_order: u64,
    in_flight: usize,
    /// Attempts in flight per host. A host leaves when it has none, so this holds
    /// at most `max_concurrent` entries.
    per_host: HashMap<String, usize>,
}

impl WebhookDispatcher {
    pub fn new(cfg: WebhooksConfig, stats: Arc<WebhookStats>, shares: Shares) -> WebhookDispatcher {
        let guard = Guard::new(&cfg);
        WebhookDispatcher {
            by_owner: HashMap::new(),
            shares,
            client: client::build(&guard, &cfg),
            guard,
            cfg,
            recorder: None,
            stats,
            waiting: BTreeMap::new(),
            due: BTreeSet::new(),
            next_order: 0,
            in_flight: 0,
            per_host: HashMap::new(),
        }
    }

    /// The wait before retry number `retry` (0 = the first retry): doubling from
    /// `webhooks.retry_backoff`, plus up to 100% jitter so that many failed
    /// deliveries do not retry in lockstep.
    fn backoff(&self, retry: u32) -> Duration {
        ExponentialBuilder::new()
            .with_min_delay(self.cfg.retry_backoff)
            .with_max_delay(MAX_BACKOFF)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
            .nth(retry as usize)
            .unwrap_or(MAX_BACKOFF)
    }

    fn record(&self, d: Delivery) {
        tracing::debug!(delivery = %d.id, status = d.status.as_str(), tries = d.attempts.len(), "webhook delivery");
        if let Some(r) = &self.recorder {
            r.do_send(RecordDelivery(d));
        }
    }

    fn set_waiting_gauge(&self) {
        let n = self.waiting.len() as u64;
        self.stats.waiting.store(n, Ordering::Relaxed);
    }

    /// Queues a delivery under `order` until `next_attempt_at`, then sends it when
    /// there is capacity.
    fn enqueue(
        &mut self,
        order: u64,
        d: Delivery,
        secret: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        let host = reqwest::Url::parse(&d.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .unwrap_or_default();
        let delay = d
            .next_attempt_at
            .and_then(|t| (t - now()).to_std().ok())
            .unwrap_or(Duration::ZERO);
        let timer = if delay.is_zero() {
            self.due.insert(order);
            None
        } else {
            Some(ctx.run_later(delay, move |act, ctx| {
                if let Some(w) = act.waiting.get_mut(&order) {
                    w.timer = None;
                    act.due.insert(order);
                    act.pump(ctx);
                }
            }))
        };
        self.put(
            order,
            Waiting {
                delivery: d,
                secret,
                host,
                timer,
            },
        );
        while self.waiting.len() > self.cfg.max_pending {
            let Some(victim) = self.victim() else {
                break;
            };
            let Some(w) = self.take(victim) else {
                break;
            };
            self.due.remove(&victim);
            if let Some(t) = w.timer {
                ctx.cancel_future(t);
            }
            self.give_up(w.delivery);
        }
        self.set_waiting_gauge();
        self.pump(ctx);
    }

    fn put(&mut self, order: u64, w: Waiting) {
        let owner = w.delivery.owner.clone();
        self.by_owner.entry(owner).or_default().insert(order);
        self.waiting.insert(order, w);
    }

    fn take(&mut self, order: u64) -> Option<Waiting> {
        let w = self.waiting.remove(&order)?;
        if let Some(orders) = self.by_owner.get_mut(&w.delivery.owner) {
            orders.remove(&order);
            if orders.is_empty() {
                self.by_owner.remove(&w.delivery.owner);
            }
        }
        Some(w)
    }

    /// The waiting delivery to give up when too many wait: the oldest of the key
    /// most over its share of `webhooks.max_pending`, else of the key holding the
    /// most (with one key or none, simply the oldest).
    fn victim(&self) -> Option<u64> {
        let cap = self.cfg.max_pending;
        if let Some((_, key, orders)) = self
            .by_owner
            .iter()
            .filter_map(|(k, o)| {
                let limit = self.shares.limit(k.as_deref(), cap);
                (o.len() > limit).then(|| (o.len() - limit, k, o))
            })
            .max_by_key(|(excess, _, o)| (*excess, Reverse(o.first().copied())))
        {
            self.shares.refused(key.as_deref(), "pending_deliveries");
            return orders.first().copied();
        }
        self.by_owner
            .values()
            .max_by_key(|o| (o.len(), Reverse(o.first().copied())))
            .and_then(|o| o.first().copied())
    }

    /// Records a delivery that overflowed the queue as failed, with the reason.
    fn give_up(&mut self, mut d: Delivery) {
        let failed_before = d.attempts.iter().any(|a| a.error.is_some());
        d.attempts.push(Attempt {
            at: now(),
            status_code: None,
            error: Some(format!(
                "not sent: more than webhooks.max_pending ({}) deliveries were waiting; the oldest of the key holding the most beyond its share (auth.max_share) was given up",
                self.cfg.max_pending
            )),
            duration_ms: 0,
        });
        d.status = DeliveryStatus::Failed;
        d.completed_at = Some(now());
        d.next_attempt_at = None;
        let s = &self.stats;
        s.failed.fetch_add(1, Ordering::Relaxed);
        s.overflowed.fetch_add(1, Ordering::Relaxed);
        s.pending.fetch_sub(1, Ordering::Relaxed);
        if failed_before {
            s.retrying.fetch_sub(1, Ordering::Relaxed);
        }
        tracing::warn!(delivery = %d.id, workflow_id = %d.workflow_id, max_pending = self.cfg.max_pending,
            "webhook delivery given up unsent: too many deliveries waiting");
        self.record(d);
    }

    /// Starts due deliveries, oldest first, while there is capacity overall and
    /// for their host.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        let mut start = Vec::new();
        for &order in &self.due {
            if self.in_flight + start.len() >= self.cfg.max_concurrent {
                break;
            }
            let Some(w) = self.waiting.get(&order) else {
                continue;
            };
            let busy = self.per_host.entry(w.host.clone()).or_insert(0);
            if *busy < self.cfg.max_per_host {
                *busy += 1;
                start.push(order);
            }
        }
        for order in start {
            self.due.remove(&order);
            if let Some(w) = self.take(order) {
                self.in_flight += 1;
                self.attempt(order, w, ctx);
            }
        }
        self.set_waiting_gauge();
    }

    fn attempt(&mut self, order: u64, w: Waiting, ctx: &mut Context<Self>) {
        let client = self.client.clone();
        let guard = self.guard.clone();
        let timeout = self.cfg.attempt_timeout;
        let (url, payload, task, id, event) = (
            w.delivery.url.clone(),
            w.delivery.payload.clone(),
            w.delivery.workflow_id.clone(),
            w.delivery.id.clone(),
            w.delivery.event.as_str(),
        );
        let secret = w.secret.clone();
        let fut = async move {
            let at = now();
            let started = Instant::now();
            let outcome = match (secret, client) {
                (None, _) => Err(AttemptError::NoSecret),
                (_, Err(e)) => Err(e),
                (Some(secret), Ok(client)) => {
                    let req = Request {
                        url: &url,
                        payload: &payload,
                        secret: &secret,
                        event,
                        task: &task,
                        delivery_id: &id,
                    };
                    client::send(&client, &guard, req, timeout).await
                }
            };
            let (status_code, error) = match outcome {
                Ok(code) if (200..300).contains(&code) => (Some(code), None),
                Ok(code) => (Some(code), Some(format!("receiver answered HTTP {code}"))),
                Err(e) => (None, Some(e.to_string())),
            };
            Attempt {
                at,
                status_code,
                error,
                duration_ms: started.elapsed().as_millis() as u64,
            }
        };
        ctx.spawn(
            fut.into_actor(self)
                .map(move |attempt, act, ctx| act.finished(order, w, attempt, ctx)),
        );
    }

    fn finished(&mut self, order: u64, w: Waiting, attempt: Attempt, ctx: &mut Context<Self>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(n) = self.per_host.get_mut(&w.host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_host.remove(&w.host);
            }
        }
        let Waiting {
            delivery: mut d,
            secret,
            ..
        } = w;
        let s = Arc::clone(&self.stats);
        s.attempts.fetch_add(1, Ordering::Relaxed);
        let ok = attempt.error.is_none();
        let first_failure = !ok && d.attempts.iter().all(|a| a.error.is_none());
        d.attempts.push(attempt);
        let tries = d.attempts.len() as u32;
        if ok || secret.is_none() || tries > self.cfg.max_retries {
            d.status = if ok {
                DeliveryStatus::Delivered
            } else {
                DeliveryStatus::Failed
            };
            d.completed_at = Some(now());
            d.next_attempt_at = None;
            let counter = if ok { &s.delivered } else { &s.failed };
            counter.fetch_add(1, Ordering::Relaxed);
            s.pending.fetch_sub(1, Ordering::Relaxed);
            if tries > 1 {
                s.retrying.fetch_sub(1, Ordering::Relaxed);
            }
            self.record(d);
        } else {
            if first_failure {
                s.retrying.fetch_add(1, Ordering::Relaxed);
            }
            let wait = self.backoff(tries - 1);
            d.next_attempt_at = chrono::Duration::from_std(wait).ok().map(|w| now() + w);
            self.record(d.clone());
            self.enqueue(order, d, secret, ctx);
        }
        self.pump(ctx);
    }
}

impl Actor for WebhookDispatcher {
    type Context = Context<Self>;
}

impl Handler<SetRecorder> for WebhookDispatcher {
    type Result = ();

    fn handle(&mut self, msg: SetRecorder, _: &mut Context<Self>) {
        self.recorder = Some(msg.0);
    }
}

impl Handler<Deliver> for WebhookDispatcher {
    type Result = ();

    fn handle(&mut self, msg: Deliver, ctx: &mut Context<Self>) {
        self.stats.pending.fetch_add(1, Ordering::Relaxed);
        if msg.delivery.attempts.iter().any(|a| a.error.is_some()) {
            self.stats.retrying.fetch_add(1, Ordering::Relaxed);
        }
        let order = self.next_order;
        self.next_order += 1;
        self.enqueue(order, msg.delivery, msg.secret, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_at_most_full_jitter() {
        let cfg = WebhooksConfig {
            retry_backoff: Duration::from_millis(100),
            ..Default::default()
        };
        let d = WebhookDispatcher::new(cfg, Arc::default(), Shares::new(&Default::default()));
        for (retry, base) in [(0, 100), (1, 200), (2, 400)] {
            let w = d.backoff(retry);
            let base = Duration::from_millis(base);
            assert!(w >= base && w <= base * 2, "{retry}: {w:?}");
        }
        assert!(d.backoff(10_000) <= MAX_BACKOFF * 2);
    }
}
