//! Analytics over the whole stored history, shared by both stores: the query
//! (time window on `created_at`, pattern), the figures each endpoint returns, and
//! how grouped SQL rows become those figures. The stores aggregate in SQL (counts,
//! sums, min/max, percentiles); this module only arranges the grouped rows.
//!
//! Definitions (README "Analytics"): a workflow is in the window when
//! `since <= created_at < until`. Costs count every workflow in the window (cost
//! so far for unfinished ones), or only finished ones when `finished_only` is set
//! (the old `/analytics/costs`, as the plan defines it). Performance counts finished workflows (completed,
//! failed, cancelled) that have an execution time; percentiles are nearest-rank
//! (the value at rank ceil(p·n), as PostgreSQL's `percentile_disc`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Pattern, Status};

#[derive(Debug, Clone, Default)]
pub struct AnalyticsQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub pattern: Option<Pattern>,
    /// Only this owner's workflows (a non-admin key); None = every owner's.
    pub owner: Option<String>,
    /// Costs over finished workflows only (completed, failed, cancelled).
    pub finished_only: bool,
}

/// SQL (both stores) narrowing a window to finished workflows of alias `w`.
pub const AND_FINISHED: &str = " AND w.status IN ('completed', 'failed', 'cancelled')";

impl AnalyticsQuery {
    pub fn pattern_str(&self) -> Option<&'static str> {
        self.pattern.map(|p| p.as_str())
    }

    /// `sql` with `{finished}` replaced by `AND_FINISHED` when `finished_only`.
    pub fn narrow(&self, sql: &str) -> String {
        sql.replace(
            "{finished}",
            if self.finished_only { AND_FINISHED } else { "" },
        )
    }
}

/// Workflows by status. `active` = pending + running + interrupted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StatusCounts {
    pub total: u64,
    pub active: u64,
    pub pending: u64,
    pub running: u64,
    pub interrupted: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl StatusCounts {
    /// `status` as the stores' queries return it; compared as a `Status`.
    fn add(&mut self, status: &str, n: u64) {
        self.total += n;
        match Status::parse(status) {
            Some(Status::Pending) => self.pending += n,
            Some(Status::Running) => self.running += n,
            Some(Status::Interrupted) => self.interrupted += n,
            Some(Status::Completed) => self.completed += n,
            Some(Status::Failed) => self.failed += n,
            Some(Status::Cancelled) => self.cancelled += n,
            None => {}
        }
        self.active = self.pending + self.running + self.interrupted;
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WorkflowStats {
    #[serde(flatten)]
    pub counts: StatusCounts,
    /// Every known pattern appears, with zeros when it has no workflows.
    pub by_pattern: BTreeMap<String, StatusCounts>,
    /// Workflows in the window that finished in the last 24 hours.
    pub recent_24h: u64,
}

impl WorkflowStats {
    /// From `(pattern, status, count)` rows.
    pub fn from_rows(rows: impl IntoIterator<Item = (String, String, u64)>, recent: u64) -> Self {
        let mut s = WorkflowStats {
            recent_24h: recent,
            ..Default::default()
        };
        for p in [Pattern::Research, Pattern::Search] {
            s.by_pattern
                .insert(p.as_str().into(), StatusCounts::default());
        }
        for (pattern, status, n) in rows {
            s.counts.add(&status, n);
            s.by_pattern.entry(pattern).or_default().add(&status, n);
        }
        s
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostGroup {
    pub workflow_count: u64,
    pub total_cost_usd: f64,
    pub average_cost_usd: f64,
}

impl CostGroup {
    fn new(workflow_count: u64, total_cost_usd: f64) -> Self {
        CostGroup {
            workflow_count,
            total_cost_usd,
            average_cost_usd: if workflow_count == 0 {
                0.0
            } else {
                total_cost_usd / workflow_count as f64
            },
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModelCost {
    /// Agent and synthesis calls that used the model.
    pub calls: u64,
    pub total_cost_usd: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DayCost {
    /// UTC day of `created_at`, `YYYY-MM-DD`.
    pub date: String,
    pub workflow_count: u64,
    pub total_cost_usd: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CostStats {
    pub workflow_count: u64,
    pub total_cost_usd: f64,
    pub average_cost_usd: f64,
    /// Sum of execution times of finished workflows, in hours.
    pub total_execution_hours: f64,
    /// LLM tokens (input and output) of the workflows counted.
    pub total_tokens: u64,
    pub by_pattern: BTreeMap<String, CostGroup>,
    /// From the stored results: each agent's and synthesis' model and cost.
    pub by_model: BTreeMap<String, ModelCost>,
    /// Oldest day first.
    pub by_day: Vec<DayCost>,
}

/// One row per pattern: (pattern, workflows, cost, execution seconds, tokens).
pub type PatternCostRow = (String, u64, f64, f64, u64);

impl CostStats {
    pub fn from_rows(
        patterns: Vec<PatternCostRow>,
        models: Vec<(String, u64, f64)>,
        days: Vec<(String, u64, f64)>,
    ) -> Self {
        let mut s = CostStats::default();
        for p in [Pattern::Research, Pattern::Search] {
            s.by_pattern.insert(p.as_str().into(), CostGroup::default());
        }
        let (mut n, mut cost, mut secs, mut tokens) = (0, 0.0, 0.0, 0);
        for (pattern, count, c, e, t) in patterns {
            n += count;
            cost += c;
            secs += e;
            tokens += t;
            s.by_pattern.insert(pattern, CostGroup::new(count, c));
        }
        let total = CostGroup::new(n, cost);
        s.workflow_count = total.workflow_count;
        s.total_cost_usd = total.total_cost_usd;
        s.average_cost_usd = total.average_cost_usd;
        s.total_execution_hours = secs / 3600.0;
        s.total_tokens = tokens;
        s.by_model = models
            .into_iter()
            .map(|(m, calls, c)| {
                (
                    m,
                    ModelCost {
                        calls,
                        total_cost_usd: c,
                    },
                )
            })
            .collect();
        s.by_day = days
            .into_iter()
            .map(|(date, workflow_count, total_cost_usd)| DayCost {
                date,
                workflow_count,
                total_cost_usd,
            })
            .collect();
        s
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PerformanceStats {
    /// Finished workflows with an execution time.
    pub workflow_count: u64,
    pub avg_execution_time: Option<f64>,
    pub min_execution_time: Option<f64>,
    pub max_execution_time: Option<f64>,
    pub p50_execution_time: Option<f64>,
    pub p95_execution_time: Option<f64>,
    pub p99_execution_time: Option<f64>,
    /// Percent of finished workflows that completed (0–100); None when none finished.
    pub success_rate: Option<f64>,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl PerformanceStats {
    /// Sets the success rate from the finished counts.
    pub fn with_outcomes(mut self, completed: u64, failed: u64, cancelled: u64) -> Self {
        let finished = completed + failed + cancelled;
        self.completed = completed;
        self.failed = failed;
        self.cancelled = cancelled;
        self.success_rate = (finished > 0).then(|| 100.0 * completed as f64 / finished as f64);
        self
    }
}

/// The percentiles reported, as fractions.
pub const PERCENTILES: [f64; 3] = [0.50, 0.95, 0.99];

/// Nearest rank (1-based) of fraction `p` among `n` sorted values; the same
/// arithmetic as PostgreSQL's `percentile_disc`.
pub fn nearest_rank(p: f64, n: u64) -> u64 {
    ((p * n as f64).ceil() as u64).clamp(1, n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_rows_group_by_status_and_pattern() {
        let s = WorkflowStats::from_rows(
            vec![
                ("research".into(), "completed".into(), 3),
                ("research".into(), "running".into(), 1),
                ("search".into(), "failed".into(), 2),
            ],
            1,
        );
        assert_eq!(s.counts.total, 6);
        assert_eq!(s.counts.active, 1);
        assert_eq!(s.counts.completed, 3);
        assert_eq!(s.counts.failed, 2);
        assert_eq!(s.by_pattern["research"].total, 4);
        assert_eq!(s.by_pattern["search"].failed, 2);
        assert_eq!(s.recent_24h, 1);
    }

    #[test]
    fn nearest_rank_matches_percentile_disc() {
        assert_eq!(nearest_rank(0.5, 10), 5);
        assert_eq!(nearest_rank(0.95, 10), 10);
        assert_eq!(nearest_rank(0.99, 10_000), 9_900);
        assert_eq!(nearest_rank(0.5, 1), 1);
        assert_eq!(nearest_rank(0.01, 3), 1);
    }

    #[test]
    fn success_rate_is_a_percentage_of_finished() {
        let p = PerformanceStats::default().with_outcomes(3, 1, 0);
        assert_eq!(p.success_rate, Some(75.0));
        assert_eq!(
            PerformanceStats::default()
                .with_outcomes(0, 0, 0)
                .success_rate,
            None
        );
    }
}
