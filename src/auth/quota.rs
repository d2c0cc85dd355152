//! The `Ledger`: each key's pending + running workflows and its spend since UTC
//! midnight, kept in memory and updated by the registry, synchronously, from
//! every workflow record it emits (so a create sees the previous create's
//! effect). Quota policy lives here; the registry asks `admit` before a create
//! and `over_daily_budget` after each step. Bounded: keys come from config, and
//! only active workflows are tracked.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use metrics::{counter, gauge};

use super::metrics::{KEY_ACTIVE, KEY_REJECTIONS, KEY_SPEND};
use super::Keyring;
use crate::domain::{FailureCode, Workflow};

/// Why a key may not create another workflow now (429 on the wire).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyLimit {
    /// It owns `limit` pending or running workflows (`auth.keys.max_active`).
    Active {
        key: String,
        active: usize,
        limit: usize,
        retry_after_secs: u64,
    },
    /// It spent its daily budget (`auth.keys.budget_usd_per_day`).
    Spend {
        key: String,
        spent: f64,
        limit: f64,
        retry_after_secs: u64,
    },
}

impl KeyLimit {
    /// The `reason` label of `auth_key_rejections_total`: the code of the API
    /// error the refusal becomes (`api::refusal` checks they agree). A key's
    /// daily spend has one code, whether it refuses a create or stops a run.
    pub fn reason(&self) -> &'static str {
        match self {
            KeyLimit::Active { .. } => "quota_exceeded",
            KeyLimit::Spend { .. } => FailureCode::SpendLimitReached.as_str(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Limits {
    max_active: Option<usize>,
    budget_usd_per_day: Option<f64>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    active: usize,
    spent_today: f64,
}

struct Tracked {
    owner: String,
    cost: f64,
    created_at: DateTime<Utc>,
}

struct Inner {
    day: NaiveDate,
    usage: HashMap<String, Usage>,
    /// Active workflows with an owner: the cost already counted.
    tracked: HashMap<String, Tracked>,
}

pub struct Ledger {
    limits: HashMap<String, Limits>,
    inner: Mutex<Inner>,
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// Seconds until the next UTC midnight, when daily spend starts again.
pub fn secs_to_midnight(now: DateTime<Utc>) -> u64 {
    let next = now.date_naive().succ_opt().map(midnight).unwrap_or(now);
    (next - now).num_seconds().max(1) as u64
}

impl Ledger {
    pub fn new(keys: &Keyring) -> Ledger {
        let limits = keys
            .keys()
            .iter()
            .map(|k| {
                (
                    k.name.to_string(),
                    Limits {
                        max_active: k.max_active,
                        budget_usd_per_day: k.budget_usd_per_day,
                    },
                )
            })
            .collect();
        Ledger {
            limits,
            inner: Mutex::new(Inner {
                day: Utc::now().date_naive(),
                usage: HashMap::new(),
                tracked: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The data stays consistent even if a holder panicked: take it anyway.
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let today = Utc::now().date_naive();
        if g.day != today {
            g.day = today;
            for u in g.usage.values_mut() {
                u.spent_today = 0.0;
            }
        }
        g
    }

    /// Start-up: what the store says each key spent today (workflows created
    /// since midnight, finished or not), and the restored active workflows,
    /// whose cost so far is already in that sum.
    pub fn seed(&self, spent_today: &[(String, f64)], active: &[&Workflow]) {
        let mut g = self.lock();
        for (owner, usd) in spent_today {
            g.usage.entry(owner.clone()).or_default().spent_today = *usd;
        }
        for wf in active {
            if let Some(owner) = &wf.owner {
                g.usage.entry(owner.clone()).or_default().active += 1;
                g.tracked.insert(
                    wf.id.clone(),
                    Tracked {
                        owner: owner.clone(),
                        cost: wf.total_cost_usd,
                        created_at: wf.created_at,
                    },
                );
            }
        }
    }

    /// The key's `max_active`, if it has one.
    pub fn max_active(&self, owner: &str) -> Option<usize> {
        self.limits.get(owner).and_then(|l| l.max_active)
    }

    /// Before a create: 429 when the key owns `max_active` unfinished workflows
    /// or reached its daily budget.
    pub fn admit(&self, owner: Option<&str>, retry_after_secs: u64) -> Result<(), KeyLimit> {
        let Some(owner) = owner else { return Ok(()) };
        let Some(limits) = self.limits.get(owner) else {
            return Ok(());
        };
        let g = self.lock();
        let u = g.usage.get(owner).copied().unwrap_or_default();
        if let Some(limit) = limits.max_active.filter(|l| u.active >= *l) {
            return Err(rejected(KeyLimit::Active {
                key: owner.to_string(),
                active: u.active,
                limit,
                retry_after_secs,
            }));
        }
        if let Some(budget) = limits.budget_usd_per_day.filter(|b| u.spent_today >= *b) {
            return Err(rejected(KeyLimit::Spend {
                key: owner.to_string(),
                spent: u.spent_today,
                limit: budget,
                retry_after_secs: secs_to_midnight(Utc::now()),
            }));
        }
        Ok(())
    }

    /// Every workflow record the registry emits passes here.
    pub fn observe(&self, wf: &Workflow) {
        let Some(owner) = &wf.owner else { return };
        let mut g = self.lock();
        let since = midnight(g.day);
        let inner = &mut *g;
        let t = match inner.tracked.get_mut(&wf.id) {
            Some(t) => t,
            None if wf.status.is_terminal() => return,
            None => {
                inner.usage.entry(owner.clone()).or_default().active += 1;
                inner.tracked.entry(wf.id.clone()).or_insert(Tracked {
                    owner: owner.clone(),
                    cost: 0.0,
                    created_at: wf.created_at,
                })
            }
        };
        let delta = wf.total_cost_usd - t.cost;
        t.cost = wf.total_cost_usd;
        let counts = t.created_at >= since;
        let owner = t.owner.clone();
        let u = inner.usage.entry(owner).or_default();
        if counts && delta.is_finite() {
            u.spent_today += delta;
        }
        if wf.status.is_terminal() {
            u.active = u.active.saturating_sub(1);
            inner.tracked.remove(&wf.id);
        }
    }

    /// Another instance runs this workflow now: it no longer counts here
    /// (its spend so far stays counted).
    pub fn untrack(&self, workflow_id: &str) {
        let mut g = self.lock();
        let inner = &mut *g;
        if let Some(t) = inner.tracked.remove(workflow_id) {
            if let Some(u) = inner.usage.get_mut(&t.owner) {
                u.active = u.active.saturating_sub(1);
            }
        }
    }

    /// Why a running workflow of `owner` must stop, if its key reached the
    /// daily budget.
    pub fn over_daily_budget(&self, owner: Option<&str>) -> Option<String> {
        let owner = owner?;
        let budget = self.limits.get(owner)?.budget_usd_per_day?;
        let spent = self.lock().usage.get(owner)?.spent_today;
        (spent >= budget).then(|| {
            format!(
                "key '{owner}' spent ${spent:.6} today, its daily budget (auth.keys.budget_usd_per_day) is ${budget}"
            )
        })
    }

    /// Refreshes the per-key gauges (at scrape time).
    pub fn refresh_metrics(&self) {
        let g = self.lock();
        for name in self.limits.keys() {
            let u = g.usage.get(name).copied().unwrap_or_default();
            gauge!(KEY_ACTIVE, "key" => name.clone()).set(u.active as f64);
            gauge!(KEY_SPEND, "key" => name.clone()).set(u.spent_today);
        }
    }
}

/// Counts a create refused by a key's quota.
fn rejected(limit: KeyLimit) -> KeyLimit {
    let key = match &limit {
        KeyLimit::Active { key, .. } | KeyLimit::Spend { key, .. } => key.clone(),
    };
    counter!(KEY_REJECTIONS, "key" => key, "reason" => limit.reason()).increment(1);
    limit
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthConfig, KeyConfig, Scope};
    use crate::domain::{Pattern, PatternConfig, Status};

    fn ledger() -> Ledger {
        let key = |name: &str, max_active, budget| KeyConfig {
            name: name.into(),
            sha256: super::super::sha256_hex(name),
            scopes: vec![Scope::Write],
            max_active,
            requests_per_second: None,
            burst: None,
            budget_usd_per_day: budget,
            max_share: None,
        };
        let cfg = AuthConfig {
            keys: vec![key("a", Some(2), Some(1.0)), key("b", None, None)],
            ..Default::default()
        };
        Ledger::new(&Keyring::new(&cfg))
    }

    fn wf(id: &str, owner: &str) -> Workflow {
        let mut w = Workflow::new(
            id.into(),
            Pattern::Research,
            "t".into(),
            "t".into(),
            PatternConfig::default_for(Pattern::Research),
            "simulated".into(),
            true,
        );
        w.owner = Some(owner.into());
        w.created_at = crate::clock::now();
        w
    }

    #[test]
    fn max_active_counts_unfinished_workflows_of_the_key() {
        let l = ledger();
        l.observe(&wf("1", "a"));
        assert!(l.admit(Some("a"), 5).is_ok());
        let mut two = wf("2", "a");
        l.observe(&two);
        l.observe(&two);
        assert!(matches!(
            l.admit(Some("a"), 5),
            Err(KeyLimit::Active {
                active: 2,
                limit: 2,
                ..
            })
        ));
        assert!(l.admit(Some("b"), 5).is_ok());
        assert!(l.admit(None, 5).is_ok());
        two.transition(Status::Cancelled, Utc::now()).unwrap();
        l.observe(&two);
        assert!(l.admit(Some("a"), 5).is_ok());
    }

    #[test]
    fn spend_accumulates_by_delta_and_stops_the_key_at_its_budget() {
        let l = ledger();
        let mut w = wf("1", "a");
        l.observe(&w);
        w.total_cost_usd = 0.6;
        l.observe(&w);
        l.observe(&w);
        assert!(l.over_daily_budget(Some("a")).is_none());
        w.total_cost_usd = 1.2;
        l.observe(&w);
        assert!(l.over_daily_budget(Some("a")).is_some());
        assert!(matches!(l.admit(Some("a"), 5), Err(KeyLimit::Spend { .. })));
        assert!(l.over_daily_budget(Some("b")).is_none());
    }

    #[test]
    fn seeded_spend_and_restored_workflows_are_not_counted_twice() {
        let l = ledger();
        let mut w = wf("1", "a");
        w.total_cost_usd = 0.5;
        l.seed(&[("a".into(), 0.75)], &[&w]);
        w.total_cost_usd = 0.625;
        l.observe(&w);
        assert!(l.over_daily_budget(Some("a")).is_none());
        w.total_cost_usd = 0.75;
        l.observe(&w);
        assert!(l.over_daily_budget(Some("a")).is_some());
    }

    #[test]
    fn seconds_to_midnight() {
        let t = "2026-01-01T23:59:30Z".parse().unwrap();
        assert_eq!(secs_to_midnight(t), 30);
    }
}
