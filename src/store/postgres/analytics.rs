//! Analytics in SQL over the whole history in PostgreSQL, on the analytics pool
//! (whose statements carry `postgres.statement_timeout`). `$1..$4` are always the
//! window: since, until, pattern, owner (for a non-admin key).

use chrono::{Duration, Utc};
use deadpool_postgres::Object;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::store::analytics::{AnalyticsQuery, CostStats, PerformanceStats, WorkflowStats};
use crate::store::StoreError;

const WINDOW: &str = "($1::timestamptz IS NULL OR w.created_at >= $1)
  AND ($2::timestamptz IS NULL OR w.created_at < $2)
  AND ($3::text IS NULL OR w.pattern = $3)
  AND ($4::text IS NULL OR w.owner = $4)";

use super::backend;

async fn rows(
    c: &Object,
    q: &AnalyticsQuery,
    sql: &str,
    extra: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let sql = sql.replace("{window}", WINDOW);
    let pattern = q.pattern_str();
    let mut args: Vec<&(dyn ToSql + Sync)> = vec![&q.since, &q.until, &pattern, &q.owner];
    args.extend_from_slice(extra);
    let stmt = c.prepare_cached(&sql).await.map_err(backend)?;
    c.query(&stmt, &args).await.map_err(backend)
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, StoreError> {
    r.try_get(i).map_err(backend)
}

pub async fn workflows(c: &Object, q: &AnalyticsQuery) -> Result<WorkflowStats, StoreError> {
    let grouped = rows(
        c,
        q,
        "SELECT w.pattern, w.status, COUNT(*) FROM workflows w WHERE {window} GROUP BY 1, 2",
        &[],
    )
    .await?;
    let day_ago = Utc::now() - Duration::hours(24);
    let recent = rows(
        c,
        q,
        "SELECT COUNT(*) FROM workflows w WHERE {window} AND w.completed_at >= $5",
        &[&day_ago],
    )
    .await?;
    let grouped = grouped
        .iter()
        .map(|r| Ok((get(r, 0)?, get(r, 1)?, get::<i64>(r, 2)? as u64)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    let recent = match recent.first() {
        Some(r) => get::<i64>(r, 0)? as u64,
        None => 0,
    };
    Ok(WorkflowStats::from_rows(grouped, recent))
}

pub async fn costs(c: &Object, q: &AnalyticsQuery) -> Result<CostStats, StoreError> {
    let patterns = rows(
        c,
        q,
        &q.narrow(
            "SELECT w.pattern, COUNT(*), SUM(w.total_cost_usd), COALESCE(SUM(w.execution_time), 0),
           COALESCE(SUM((w.record->'tokens'->>'total')::bigint), 0)::bigint
         FROM workflows w WHERE {window}{finished} GROUP BY 1",
        ),
        &[],
    )
    .await?
    .iter()
    .map(|r| {
        Ok((
            get(r, 0)?,
            get::<i64>(r, 1)? as u64,
            get(r, 2)?,
            get(r, 3)?,
            get::<i64>(r, 4)? as u64,
        ))
    })
    .collect::<Result<Vec<_>, StoreError>>()?;
    let models = rows(
        c,
        q,
        &q.narrow(
            "SELECT m.model, SUM(m.calls)::bigint, COALESCE(SUM(m.cost), 0)
         FROM workflows w JOIN model_costs m ON m.workflow_id = w.id
         WHERE {window}{finished} GROUP BY 1 ORDER BY 1",
        ),
        &[],
    )
    .await?
    .iter()
    .map(|r| Ok((get(r, 0)?, get::<i64>(r, 1)? as u64, get(r, 2)?)))
    .collect::<Result<Vec<_>, StoreError>>()?;
    let days = rows(
        c,
        q,
        &q.narrow(
            "SELECT to_char(w.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, COUNT(*), SUM(w.total_cost_usd)
         FROM workflows w WHERE {window}{finished} GROUP BY 1 ORDER BY 1",
        ),
        &[],
    )
    .await?
    .iter()
    .map(|r| Ok((get(r, 0)?, get::<i64>(r, 1)? as u64, get(r, 2)?)))
    .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(CostStats::from_rows(patterns, models, days))
}

pub async fn performance(c: &Object, q: &AnalyticsQuery) -> Result<PerformanceStats, StoreError> {
    let r = rows(
        c,
        q,
        "SELECT COUNT(w.execution_time), AVG(w.execution_time), MIN(w.execution_time), MAX(w.execution_time),
           percentile_disc(0.50) WITHIN GROUP (ORDER BY w.execution_time),
           percentile_disc(0.95) WITHIN GROUP (ORDER BY w.execution_time),
           percentile_disc(0.99) WITHIN GROUP (ORDER BY w.execution_time),
           COUNT(*) FILTER (WHERE w.status = 'completed'),
           COUNT(*) FILTER (WHERE w.status = 'failed'),
           COUNT(*) FILTER (WHERE w.status = 'cancelled')
         FROM workflows w WHERE {window} AND w.status IN ('completed', 'failed', 'cancelled')",
        &[],
    )
    .await?;
    let r = r
        .first()
        .ok_or_else(|| StoreError::Backend("aggregate returned no row".into()))?;
    let stats = PerformanceStats {
        workflow_count: get::<i64>(r, 0)? as u64,
        avg_execution_time: get(r, 1)?,
        min_execution_time: get(r, 2)?,
        max_execution_time: get(r, 3)?,
        p50_execution_time: get(r, 4)?,
        p95_execution_time: get(r, 5)?,
        p99_execution_time: get(r, 6)?,
        ..Default::default()
    };
    Ok(stats.with_outcomes(
        get::<i64>(r, 7)? as u64,
        get::<i64>(r, 8)? as u64,
        get::<i64>(r, 9)? as u64,
    ))
}
