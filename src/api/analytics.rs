//! Analytics over the whole stored history (not the in-memory set):
//! `/v1/analytics/{workflows,costs,performance}` and the old server's
//! `/analytics/{workflows,costs,performance}` with the keys its clients read
//! (`active`, `completed`, `by_type`, `total_cost_usd`, `success_rate`, …).
//! Parameters: `since`, `until` (RFC 3339 or `YYYY-MM-DD`, UTC; the window is
//! `since <= created_at < until`) and `pattern`. The old paths answer as the
//! plan defines them: costs over finished workflows only, and every figure
//! rounded as the plan rounds it (`plan_rounding`); `/v1` keeps full precision.

use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{json, Value};

use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::openapi::{AnyObject, Doc};
use super::responses::AnalyticsErrors;
use crate::auth::Caller;
use crate::config::Scope;
use crate::domain::Pattern;
use crate::error::ApiError;
use crate::store::analytics::AnalyticsQuery;
use crate::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(Doc::new().to::<__path_workflows, _, _>(workflows))
        .service(Doc::new().to::<__path_costs, _, _>(costs))
        .service(Doc::new().to::<__path_performance, _, _>(performance))
        .service(Doc::new().to::<__path_compat_workflows, _, _>(compat_workflows))
        .service(Doc::new().to::<__path_compat_costs, _, _>(compat_costs))
        .service(Doc::new().to::<__path_compat_performance, _, _>(compat_performance));
}

fn parse_time(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let t = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| {
            ApiError::validation(
                field,
                format!("{field} must be an RFC 3339 timestamp (2026-01-31T12:00:00Z) or a date (2026-01-31), got '{raw}'"),
            )
        })?;
    // Both stores keep microseconds: compare at that precision everywhere.
    DateTime::from_timestamp_micros(t.timestamp_micros())
        .ok_or_else(|| ApiError::validation(field, format!("{field} '{raw}' is out of range")))
}

/// The query every analytics route takes, as the OpenAPI document states it
/// ([`parse_query`] reads it; each refusal names the parameter).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// Window start (RFC 3339 or YYYY-MM-DD, UTC), inclusive
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// Window end, exclusive; later than since
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Only this pattern
    pub pattern: Option<super::openapi::PatternName>,
}

/// Validates the query string; every error names the parameter.
pub fn parse_query(query: &str) -> Result<AnalyticsQuery, ApiError> {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|e| ApiError::validation("query", e.to_string()))?
        .into_inner();
    let mut q = AnalyticsQuery::default();
    for (key, value) in pairs {
        match key.as_str() {
            "since" => q.since = Some(parse_time("since", &value)?),
            "until" => q.until = Some(parse_time("until", &value)?),
            "pattern" => {
                q.pattern = Some(Pattern::parse(&value).ok_or_else(|| {
                    ApiError::validation(
                        "pattern",
                        format!("unknown pattern '{value}'; expected research or search"),
                    )
                })?)
            }
            other => {
                return Err(ApiError::validation(
                    other,
                    format!("unknown parameter '{other}'; expected since, until or pattern"),
                ))
            }
        }
    }
    if let (Some(s), Some(u)) = (q.since, q.until) {
        if s >= u {
            return Err(ApiError::validation(
                "until",
                format!("until ({u}) must be later than since ({s})"),
            ));
        }
    }
    Ok(q)
}

/// The echoed window, so a figure can be read next to what it covers.
fn window(q: &AnalyticsQuery) -> Value {
    json!({"since": q.since, "until": q.until, "pattern": q.pattern_str()})
}

/// Validates, then waits (bounded) until every change emitted so far is stored.
/// A non-admin key's figures cover its own workflows only.
async fn prepare(state: &AppState, req: &HttpRequest) -> Result<AnalyticsQuery, ApiError> {
    prepare_as(state, req, false).await
}

/// `prepare`, with costs over finished workflows only when `finished_only`.
async fn prepare_as(
    state: &AppState,
    req: &HttpRequest,
    finished_only: bool,
) -> Result<AnalyticsQuery, ApiError> {
    let caller = req
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or_else(|| ApiError::Unauthorized("no credentials were checked".into()))?;
    caller.require(Scope::Read)?;
    let mut q = parse_query(req.query_string())?;
    q.owner = caller.owner_filter();
    q.finished_only = finished_only;
    state.read_barrier().await;
    Ok(q)
}

fn with_window(mut body: Value, q: &AnalyticsQuery) -> HttpResponse {
    if let Some(o) = body.as_object_mut() {
        o.insert("window".into(), window(q));
    }
    HttpResponse::Ok().json(body)
}

/// The plan's rounding, at any depth: dollars to 4 places, hours, execution
/// times and the success rate (a percentage) to 2.
pub fn plan_rounding(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                let places = if k.ends_with("_usd") {
                    Some(4)
                } else if k == "total_execution_hours"
                    || k == "success_rate"
                    || k.ends_with("_execution_time")
                {
                    Some(2)
                } else {
                    None
                };
                match (places, x.as_f64()) {
                    (Some(p), Some(f)) => *x = json!(round(f, p)),
                    _ => plan_rounding(x),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(plan_rounding),
        _ => {}
    }
}

fn round(f: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (f * scale).round() / scale
}

fn to_value(v: impl serde::Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn workflows_value(state: &AppState, q: &AnalyticsQuery) -> Result<Value, ApiError> {
    to_value(state.store.analytics_workflows(q).await?)
}

/// Workflow counts by status and pattern (a non-admin key: its own).
#[utoipa::path(get, path = "/v1/analytics/workflows", tag = "analytics",
    params(Window),
    responses(
        (status = 200, description = "Counts, with the window", body = AnyObject),
        AnalyticsErrors,
    ))]
async fn workflows(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = prepare(&state, &req).await?;
    Ok(with_window(workflows_value(&state, &q).await?, &q))
}

/// Costs in total, by pattern, model and day (a non-admin key: its own).
///
/// Every workflow in the window counts (unfinished ones with their cost so far).
/// Figures at full precision: the old `/analytics/costs` rounds them as the plan
/// does and counts finished workflows only.
#[utoipa::path(get, path = "/v1/analytics/costs", tag = "analytics",
    params(Window),
    responses(
        (status = 200, description = "Costs, with the window", body = AnyObject),
        AnalyticsErrors,
    ))]
async fn costs(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let q = prepare(&state, &req).await?;
    Ok(with_window(
        to_value(state.store.analytics_costs(&q).await?)?,
        &q,
    ))
}

/// Execution-time distribution and success rate of finished workflows.
///
/// Figures at full precision: the old `/analytics/performance` rounds them as
/// the plan does.
#[utoipa::path(get, path = "/v1/analytics/performance", tag = "analytics",
    params(Window),
    responses(
        (status = 200, description = "Performance, with the window", body = AnyObject),
        AnalyticsErrors,
    ))]
async fn performance(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = prepare(&state, &req).await?;
    Ok(with_window(
        to_value(state.store.analytics_performance(&q).await?)?,
        &q,
    ))
}

/// The old shape adds `by_type` keyed by the old pattern names.
/// The old API's workflow counts (adds `by_type`).
#[utoipa::path(get, path = "/analytics/workflows", tag = "analytics",
    params(Window),
    responses(
        (status = 200, description = "Counts", body = AnyObject),
        AnalyticsErrors,
    ))]
async fn compat_workflows(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = prepare(&state, &req).await?;
    let mut body = workflows_value(&state, &q).await?;
    let total = |p: &str| body["by_pattern"][p]["total"].as_u64().unwrap_or(0);
    let by_type = json!({"beltalowda": total("research"), "swarm": total("search")});
    if let Some(o) = body.as_object_mut() {
        o.insert("by_type".into(), by_type);
    }
    Ok(with_window(body, &q))
}

/// The old API's costs, as the plan defines them.
///
/// Finished workflows only (a running one's cost so far is not counted);
/// dollars (`total_cost_usd`, `average_cost_usd`, …) rounded to 4 places,
/// `total_execution_hours` to 2.
#[utoipa::path(get, path = "/analytics/costs", tag = "analytics",
    params(Window),
    responses(
        (status = 200, description = "Costs", body = AnyObject),
        AnalyticsErrors,
    ))]
async fn compat_costs(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = prepare_as(&state, &req, true).await?;
    let mut body = to_value(state.store.analytics_costs(&q).await?)?;
    plan_rounding(&mut body);
    Ok(with_window(body, &q))
}

/// The old API's performance, as the plan defines it.
///
/// Over finished workflows; execution times rounded to 2 places, `success_rate`
/// (a percentage) to 2. As the old server: 404 `{"error": "No data"}` when
/// nothing has finished.
#[utoipa::path(get, path = "/analytics/performance", tag = "analytics",
    params(Window),
    responses(
        (status = 200, description = "Performance", body = AnyObject),
        (status = 404, description = "No data: nothing finished in the window", body = AnyObject),
        AnalyticsErrors,
    ))]
async fn compat_performance(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q = prepare(&state, &req).await?;
    let stats = state.store.analytics_performance(&q).await?;
    if stats.workflow_count == 0 {
        return Ok(HttpResponse::NotFound().json(json!({"error": "No data"})));
    }
    let mut body = to_value(stats)?;
    plan_rounding(&mut body);
    Ok(with_window(body, &q))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(query: &str) -> String {
        match parse_query(query) {
            Err(ApiError::Validation { field, .. }) => field,
            other => panic!("expected a validation error for {query}, got {other:?}"),
        }
    }

    #[test]
    fn bad_parameters_name_the_parameter() {
        assert_eq!(field("since=yesterday"), "since");
        assert_eq!(field("until=2026-13-01"), "until");
        assert_eq!(field("pattern=poetry"), "pattern");
        assert_eq!(field("since=2026-02-01&until=2026-01-01"), "until");
        assert_eq!(field("limit=5"), "limit");
    }

    #[test]
    fn plan_rounding_rounds_dollars_hours_times_and_rates_at_any_depth() {
        let mut v = json!({"total_cost_usd": 1.234_56, "average_cost_usd": 0.000_049,
            "total_execution_hours": 2.345_6, "success_rate": 66.666_666,
            "p95_execution_time": 1.005_1, "workflow_count": 3, "calls": 7,
            "by_model": {"m": {"calls": 2, "total_cost_usd": 0.123_46}},
            "by_day": [{"date": "2026-01-01", "total_cost_usd": 9.876_54}],
            "min_execution_time": null});
        plan_rounding(&mut v);
        assert_eq!(
            v,
            json!({"total_cost_usd": 1.2346, "average_cost_usd": 0.0,
            "total_execution_hours": 2.35, "success_rate": 66.67,
            "p95_execution_time": 1.01, "workflow_count": 3, "calls": 7,
            "by_model": {"m": {"calls": 2, "total_cost_usd": 0.1235}},
            "by_day": [{"date": "2026-01-01", "total_cost_usd": 9.8765}],
            "min_execution_time": null})
        );
    }

    #[test]
    fn dates_timestamps_and_aliases_parse() {
        let q = parse_query("since=2026-01-01&until=2026-01-02T00:00:00Z&pattern=swarm").unwrap();
        assert_eq!(q.since.unwrap().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(q.until.unwrap().to_rfc3339(), "2026-01-02T00:00:00+00:00");
        assert_eq!(q.pattern, Some(Pattern::Search));
        assert!(parse_query("").unwrap().since.is_none());
    }
}
