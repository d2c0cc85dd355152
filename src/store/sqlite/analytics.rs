//! Analytics in SQL over the whole history in SQLite: the same figures as the
//! PostgreSQL queries. `?1..?4` are always the window (since, until in µs;
//! pattern; owner, for a non-admin key). Percentiles are nearest-rank, read with ORDER BY … LIMIT 1 OFFSET.

use chrono::{Duration, Utc};
use rusqlite::{Connection, Params, Row, ToSql};

use crate::store::analytics::{
    nearest_rank, AnalyticsQuery, CostStats, PerformanceStats, WorkflowStats, PERCENTILES,
};
use crate::store::StoreError;

const WINDOW: &str = "(?1 IS NULL OR w.created_at_us >= ?1)
  AND (?2 IS NULL OR w.created_at_us < ?2)
  AND (?3 IS NULL OR w.pattern = ?3)
  AND (?4 IS NULL OR w.owner = ?4)";

const FINISHED: &str = "w.status IN ('completed', 'failed', 'cancelled')";

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The window parameters followed by `extra`.
fn window_args<'a>(bounds: &'a Bounds<'a>, extra: &'a [&'a dyn ToSql]) -> Vec<&'a dyn ToSql> {
    let mut args: Vec<&dyn ToSql> = vec![&bounds.0, &bounds.1, &bounds.2, &bounds.3];
    args.extend_from_slice(extra);
    args
}

type Bounds<'a> = (
    Option<i64>,
    Option<i64>,
    Option<&'static str>,
    Option<&'a str>,
);

fn bounds(q: &AnalyticsQuery) -> Bounds<'_> {
    (
        q.since.map(|t| t.timestamp_micros()),
        q.until.map(|t| t.timestamp_micros()),
        q.pattern_str(),
        q.owner.as_deref(),
    )
}

fn all<T, P: Params>(
    c: &Connection,
    sql: &str,
    args: P,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>, StoreError> {
    let sql = sql.replace("{window}", WINDOW);
    let mut stmt = c.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt.query_map(args, f).map_err(backend)?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(backend)
}

fn one<T, P: Params>(
    c: &Connection,
    sql: &str,
    args: P,
    f: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<T, StoreError> {
    all(c, sql, args, f)?
        .into_iter()
        .next()
        .ok_or_else(|| backend("aggregate returned no row"))
}

pub fn workflows(c: &Connection, q: &AnalyticsQuery) -> Result<WorkflowStats, StoreError> {
    let b = bounds(q);
    let grouped = all(
        c,
        "SELECT w.pattern, w.status, COUNT(*) FROM workflows w WHERE {window} GROUP BY 1, 2",
        window_args(&b, &[]).as_slice(),
        |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64)),
    )?;
    let day_ago = (Utc::now() - Duration::hours(24)).timestamp_micros();
    let recent = one(
        c,
        "SELECT COUNT(*) FROM workflows w WHERE {window} AND w.completed_at_us >= ?5",
        window_args(&b, &[&day_ago]).as_slice(),
        |r| r.get::<_, i64>(0),
    )?;
    Ok(WorkflowStats::from_rows(grouped, recent as u64))
}

pub fn costs(c: &Connection, q: &AnalyticsQuery) -> Result<CostStats, StoreError> {
    let b = bounds(q);
    let args = window_args(&b, &[]);
    let patterns = all(
        c,
        &q.narrow(
            "SELECT w.pattern, COUNT(*), TOTAL(w.total_cost_usd), TOTAL(w.execution_time),
           COALESCE(SUM(json_extract(w.record, '$.tokens.total')), 0)
         FROM workflows w WHERE {window}{finished} GROUP BY 1",
        ),
        args.as_slice(),
        |r| {
            Ok((
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, i64>(4)? as u64,
            ))
        },
    )?;
    let models = all(
        c,
        &q.narrow(
            "SELECT m.model, SUM(m.calls), TOTAL(m.cost)
         FROM workflows w JOIN model_costs m ON m.workflow_id = w.id WHERE {window}{finished} GROUP BY 1 ORDER BY 1",
        ),
        args.as_slice(),
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)),
    )?;
    let days = all(
        c,
        &q.narrow(
            "SELECT strftime('%Y-%m-%d', w.created_at_us / 1000000, 'unixepoch'), COUNT(*), TOTAL(w.total_cost_usd)
         FROM workflows w WHERE {window}{finished} GROUP BY 1 ORDER BY 1",
        ),
        args.as_slice(),
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)),
    )?;
    Ok(CostStats::from_rows(patterns, models, days))
}

pub fn performance(c: &Connection, q: &AnalyticsQuery) -> Result<PerformanceStats, StoreError> {
    let b = bounds(q);
    let args = window_args(&b, &[]);
    let sql = format!(
        "SELECT COUNT(w.execution_time), AVG(w.execution_time), MIN(w.execution_time), MAX(w.execution_time),
           SUM(w.status = 'completed'), SUM(w.status = 'failed'), SUM(w.status = 'cancelled')
         FROM workflows w WHERE {{window}} AND {FINISHED}"
    );
    #[allow(clippy::type_complexity)]
    let (n, avg, min, max, completed, failed, cancelled): (
        i64,
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    ) = one(c, &sql, args.as_slice(), |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        ))
    })?;
    let n = n as u64;
    let nth = format!(
        "SELECT w.execution_time FROM workflows w
         WHERE {{window}} AND {FINISHED} AND w.execution_time IS NOT NULL
         ORDER BY w.execution_time LIMIT 1 OFFSET ?5"
    );
    let mut pct = [None; 3];
    if n > 0 {
        for (slot, p) in pct.iter_mut().zip(PERCENTILES) {
            let offset = (nearest_rank(p, n) - 1) as i64;
            *slot = Some(one(c, &nth, window_args(&b, &[&offset]).as_slice(), |r| {
                r.get::<_, f64>(0)
            })?);
        }
    }
    let stats = PerformanceStats {
        workflow_count: n,
        avg_execution_time: avg,
        min_execution_time: min,
        max_execution_time: max,
        p50_execution_time: pct[0],
        p95_execution_time: pct[1],
        p99_execution_time: pct[2],
        ..Default::default()
    };
    let count = |v: Option<i64>| v.unwrap_or(0) as u64;
    Ok(stats.with_outcomes(count(completed), count(failed), count(cancelled)))
}
