//! The ClusterActor (several instances on one PostgreSQL): every third of the
//! lease TTL it renews this instance's heartbeat and leases, stops the runs
//! whose leases another instance took, claims expired leases (resuming those
//! workflows here) and orphaned webhook deliveries, and honours cancels asked on
//! other instances. `Notice`s from the LISTEN connection run the same pass at
//! once (a hand-over, a cancel) or resync the global webhook subscriptions
//! (each pass resyncs them too, should a notice be missed). Supervised: a
//! panic restarts it; a failing database only delays a pass (health shows it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use metrics::{counter, gauge};

use crate::actors::registry::{
    Adopt, Cancel, Disown, ResumeDeliveries, SyncGlobalWebhooks, WorkflowRegistry,
};
use crate::cluster::listener::Notice;
use crate::cluster::metrics as m;
use crate::cluster::Cluster;
use crate::store::postgres::PgStore;
use crate::store::StoreError;

/// How the last pass went, for `/health`.
#[derive(Debug, Default, Clone)]
pub struct PassHealth {
    pub last_ok: Option<Instant>,
    pub last_error: Option<String>,
}

pub struct ClusterActor {
    cluster: Arc<Cluster>,
    store: PgStore,
    registry: Addr<WorkflowRegistry>,
    health: Arc<std::sync::Mutex<PassHealth>>,
    busy: bool,
    /// Another pass was asked for while one ran.
    again: bool,
}

impl ClusterActor {
    pub fn new(
        cluster: Arc<Cluster>,
        store: PgStore,
        registry: Addr<WorkflowRegistry>,
        health: Arc<std::sync::Mutex<PassHealth>>,
    ) -> Self {
        ClusterActor {
            cluster,
            store,
            registry,
            health,
            busy: false,
            again: false,
        }
    }

    fn pass(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            self.again = true;
            return;
        }
        self.busy = true;
        let (cluster, store, registry) = (
            Arc::clone(&self.cluster),
            self.store.clone(),
            self.registry.clone(),
        );
        async move { run_pass(&cluster, &store, &registry).await }
            .into_actor(self)
            .map(|res, act, ctx| {
                act.busy = false;
                let mut h = act.health.lock().unwrap_or_else(|p| p.into_inner());
                match res {
                    Ok(()) => {
                        h.last_ok = Some(Instant::now());
                        h.last_error = None;
                    }
                    Err(e) => {
                        counter!(m::PASS_FAILURES).increment(1);
                        if h.last_error.is_none() {
                            tracing::error!(error = %e, "cluster pass failed; leases are not renewed until PostgreSQL answers");
                        }
                        h.last_error = Some(e.to_string());
                    }
                }
                drop(h);
                if std::mem::take(&mut act.again) {
                    act.pass(ctx);
                }
            })
            .spawn(ctx);
    }
}

/// Heartbeat, lost leases, claims, cancels: one round.
async fn run_pass(
    cluster: &Cluster,
    store: &PgStore,
    registry: &Addr<WorkflowRegistry>,
) -> Result<(), StoreError> {
    let beat = cluster.heartbeat().await?;
    if !beat.lost.is_empty() {
        counter!(m::LEASES_LOST).increment(beat.lost.len() as u64);
        registry.do_send(Disown(beat.lost));
    }
    // Claim until nothing is left to claim (a batch at a time).
    loop {
        let claimed = cluster.claim_expired().await?;
        if claimed.is_empty() {
            break;
        }
        let n = claimed.len();
        counter!(m::WORKFLOWS_CLAIMED).increment(n as u64);
        let loaded = async {
            let (workflows, gone) = store.load_active(&claimed).await?;
            if !gone.is_empty() {
                cluster.drop_leases(&gone).await?;
            }
            let ids: Vec<String> = workflows.iter().map(|a| a.workflow.id.clone()).collect();
            let subscriptions = match ids.is_empty() {
                true => Vec::new(),
                false => store.subscriptions(&ids, &[]).await?,
            };
            Ok::<_, StoreError>((workflows, subscriptions))
        }
        .await;
        let (workflows, subscriptions) = match loaded {
            Ok(l) => l,
            Err(e) => {
                // Not renewed, the claims expire and are made again (here or
                // elsewhere); held without a run they would be stuck.
                cluster.forget(&claimed);
                return Err(e);
            }
        };
        if !workflows.is_empty() {
            tracing::info!(
                count = workflows.len(),
                "claimed unfinished workflows of instances that stopped renewing their leases"
            );
            registry.do_send(Adopt {
                workflows,
                subscriptions,
            });
        }
        if n < cluster.claim_batch {
            break;
        }
    }
    loop {
        let deliveries = cluster.claim_deliveries().await?;
        if deliveries.is_empty() {
            break;
        }
        let n = deliveries.len();
        counter!(m::DELIVERIES_CLAIMED).increment(n as u64);
        let subs: Vec<String> = deliveries
            .iter()
            .map(|d| d.subscription_id.clone())
            .collect();
        let subscriptions = match store.subscriptions(&[], &subs).await {
            Ok(s) => s,
            Err(e) => {
                // Given back, or renewed here without ever being sent.
                let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
                cluster.unclaim_deliveries(&ids).await;
                return Err(e);
            }
        };
        tracing::info!(count = n, "claimed pending webhook deliveries");
        registry.do_send(Adopt {
            workflows: Vec::new(),
            subscriptions,
        });
        registry.do_send(ResumeDeliveries(deliveries));
        if n < cluster.claim_batch {
            break;
        }
    }
    for id in cluster.pending_cancels().await? {
        registry.do_send(Cancel(id));
    }
    // Global subscriptions arrive by NOTIFY; this catches one missed while the
    // LISTEN connection was down (or not yet up).
    registry.do_send(SyncGlobalWebhooks {
        subs: store.global_subscriptions().await?,
        removed: None,
    });
    gauge!(m::LEASES_HELD).set(cluster.holds() as f64);
    gauge!(m::STREAMS_FOLLOWING).set(cluster.watchers.len() as f64);
    Ok(())
}

impl Actor for ClusterActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.pass(ctx);
        let every = self.cluster.ttl / 3;
        ctx.run_interval(every.max(Duration::from_millis(100)), |act, ctx| {
            act.pass(ctx)
        });
    }
}

impl Supervised for ClusterActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.busy = false;
        tracing::warn!("cluster actor restarting");
    }
}

impl Handler<Notice> for ClusterActor {
    type Result = ();

    fn handle(&mut self, notice: Notice, ctx: &mut Context<Self>) {
        match notice {
            Notice::Cancel(id) => {
                if self.cluster.epoch_of(&id).is_some() {
                    self.registry.do_send(Cancel(id));
                }
            }
            Notice::Claim | Notice::Reconnected => self.pass(ctx),
            Notice::Webhooks(removed) => {
                let (store, registry) = (self.store.clone(), self.registry.clone());
                actix_rt::spawn(async move {
                    match store.global_subscriptions().await {
                        Ok(subs) => registry.do_send(SyncGlobalWebhooks { subs, removed }),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot reload webhook subscriptions")
                        }
                    }
                });
            }
        }
    }
}
