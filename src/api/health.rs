//! `/health` (status healthy|degraded|unhealthy with per-component detail) and
//! `/ready` (can this instance take new work). Anonymous callers, once keys are
//! configured, get only `public_view` of `/health`: status words, nothing about
//! tenants or the deployment (URLs, addresses, ids, error text).

use actix_web::{web, HttpResponse};
use serde_json::json;

use utoipa_actix_web::service_config::ServiceConfig;

use super::openapi::{AnyObject, Doc};
use crate::actors::persist::PersistHealth;
use crate::actors::registry::Stats;
use crate::auth::Caller;
use crate::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(Doc::new().to::<__path_health, _, _>(health))
        .service(Doc::new().to::<__path_ready, _, _>(ready));
}

/// Health of every component; 503 when one is unhealthy. No key needed.
///
/// Top level, as the plan's `/health`: `status`, `redis` (`healthy` when it answers,
/// `unavailable` when it does not, `disabled` without `redis.url`),
/// `active_workflows` and `redis_keys` (keys under this instance's prefix; 0
/// without Redis); the detail is under `components`. Without a read key (once
/// keys are configured) only `status`, `redis` and each component's `status`.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses(
        (status = 200, description = "healthy or degraded", body = AnyObject),
        (status = 503, description = "unhealthy", body = AnyObject),
    ))]
async fn health(state: web::Data<AppState>, caller: Caller) -> HttpResponse {
    let registry = state.registry.send(Stats).await;
    let ping = state.store.ping().await;
    let p = &state.primary;
    let store_status = match (&ping, p.is_failing()) {
        (Err(_), _) => "unhealthy",
        (Ok(_), true) => "degraded",
        (Ok(_), false) if p.queue_len() * 2 > p.max_queue => "degraded",
        _ => "healthy",
    };
    let store = json!({
        "status": store_status,
        "kind": state.store.kind(),
        "latency_ms": ping.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
        "error": ping.as_ref().err().map(|e| e.to_string()).or_else(|| p.last_error().filter(|_| p.is_failing())),
        "writer_restarts": p.restarts(),
    });
    let mut store = store;
    add_queue_fields(&mut store, p);
    if let Some(pools) = state.store.pools() {
        store["pools"] = pools;
    }
    let (registry_json, active) = match &registry {
        Ok(s) => (
            json!({"status": "healthy", "active": s.active, "running": s.running,
            "retained": s.retained, "max_active": s.max_active, "sse_clients": s.sse_clients,
            "shutting_down": s.shutting_down}),
            s.active,
        ),
        Err(e) => (json!({"status": "unhealthy", "error": e.to_string()}), 0),
    };
    // One entry per component, each with its own "status"; the overall status is
    // the worst of them. Optional components (redis, ...) add themselves here.
    let mut components = serde_json::Map::new();
    components.insert("registry".into(), registry_json);
    components.insert("store".into(), store);
    // The plan's top-level `redis` and `redis_keys` (its old `/health` shape):
    // reachable or not, and the keys under this instance's prefix.
    let (mut redis, mut redis_keys) = ("disabled", 0);
    if let Some(link) = &state.redis {
        let c = redis_component(link).await;
        (redis, redis_keys) = match c["keys"].as_u64() {
            Some(n) => ("healthy", n),
            None => ("unavailable", 0),
        };
        components.insert("redis".into(), c);
    }
    // Archival is optional too: a failing pass deletes nothing and is retried.
    let a = &state.archive;
    components.insert(
        "archive".into(),
        a.health.component(&a.url, state.config.archive.enabled),
    );
    if let Some(c) = &state.cluster {
        components.insert("cluster".into(), cluster_component(c).await);
    }
    if !state.tools.is_empty() {
        components.insert("tools".into(), tools_component(&state.tools));
    }
    let status = worst(components.values());
    let body = json!({
        "status": status,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs_f64(),
        "redis": redis,
        "active_workflows": active,
        "redis_keys": redis_keys,
        "components": components,
    });
    let body = if caller.can_read() {
        body
    } else {
        public_view(&body)
    };
    if status == "unhealthy" {
        HttpResponse::ServiceUnavailable().json(body)
    } else {
        HttpResponse::Ok().json(body)
    }
}

/// What anyone may see: a whitelist (`status`, `redis`, `components.*.status`), so
/// whatever is added to the full answer later stays hidden unless listed here.
fn public_view(full: &serde_json::Value) -> serde_json::Value {
    let word = |v: &serde_json::Value| v.as_str().map(|s| json!(s));
    let mut out = serde_json::Map::new();
    for key in ["status", "redis"] {
        if let Some(v) = full.get(key).and_then(word) {
            out.insert(key.into(), v);
        }
    }
    let components: serde_json::Map<String, serde_json::Value> = full["components"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, c)| {
            let status = c.get("status").and_then(word).unwrap_or(json!("unknown"));
            (name.clone(), json!({ "status": status }))
        })
        .collect();
    out.insert("components".into(), components.into());
    out.into()
}

/// Redis is optional: when it fails the service keeps answering, so its worst
/// status is "degraded" (writes wait in the persister's queue).
async fn redis_component(link: &crate::actors::persist::RedisLink) -> serde_json::Value {
    let probe = link.probe().await;
    let h = &link.health;
    let status = match (&probe, h.is_failing()) {
        (Err(_), _) | (_, true) => "degraded",
        _ if h.queue_len() * 2 > h.max_queue => "degraded",
        _ => "healthy",
    };
    let p = probe.as_ref().ok();
    let mut body = json!({
        "status": status,
        "url": link.url,
        "key_prefix": link.keys.prefix,
        "latency_ms": p.map(|p| p.latency.as_secs_f64() * 1000.0),
        "keys": p.map(|p| p.keys),
        "used_memory_bytes": p.and_then(|p| p.used_memory),
        "error": probe.as_ref().err().map(ToString::to_string).or_else(|| h.last_error().filter(|_| h.is_failing())),
        "persister_restarts": h.restarts(),
        "ttl_seconds": link.ttl.as_secs(),
        "compression": format!("{:?}", link.codec.compression).to_lowercase(),
        "compression_ratio": link.compression_ratio(),
    });
    add_queue_fields(&mut body, h);
    body
}

/// Several instances: this one, its leases and the members. Degraded while its
/// passes fail (leases are not renewed, so others will take its workflows).
async fn cluster_component(c: &crate::ClusterHandle) -> serde_json::Value {
    let members = c.cluster.members().await;
    let pass = c.health.lock().map(|h| h.clone()).unwrap_or_default();
    let status = match (&members, &pass.last_error) {
        (Err(_), _) | (_, Some(_)) => "degraded",
        _ => "healthy",
    };
    json!({
        "status": status,
        "instance_id": c.cluster.id,
        "lease_ttl_seconds": c.cluster.ttl.as_secs_f64(),
        "leases_held": c.cluster.holds(),
        "streams_following": c.cluster.watchers.len(),
        "last_pass_seconds_ago": pass.last_ok.map(|t| t.elapsed().as_secs_f64()),
        "error": members.as_ref().err().map(|e| e.to_string()).or(pass.last_error),
        "members": members.unwrap_or_default(),
    })
}

/// MCP tool servers: degraded (never unhealthy: agents go on without the tools)
/// while one is not connected, naming it.
fn tools_component(hub: &crate::tools::ToolHub) -> serde_json::Value {
    let servers = hub.health();
    let down: Vec<String> = servers
        .iter()
        .filter_map(|s| s.problem.as_ref().map(|p| format!("{}: {p}", s.name)))
        .collect();
    let detail: serde_json::Map<String, serde_json::Value> = servers
        .iter()
        .map(|s| {
            let status = if s.problem.is_some() { "down" } else { "up" };
            (
                s.name.clone(),
                json!({"status": status, "tools": s.tools, "error": s.problem}),
            )
        })
        .collect();
    json!({
        "status": if down.is_empty() { "healthy" } else { "degraded" },
        "error": (!down.is_empty()).then(|| format!("tool servers unavailable: {}", down.join("; "))),
        "servers": detail,
    })
}

/// What every persister reports about its queue and writes.
fn add_queue_fields(component: &mut serde_json::Value, h: &PersistHealth) {
    let (batches, changes) = h.written();
    if let serde_json::Value::Object(m) = component {
        m.insert("queue_depth".into(), json!(h.queue_len()));
        m.insert("max_queue".into(), json!(h.max_queue));
        m.insert("committed_seq".into(), json!(h.committed()));
        m.insert("batches_written".into(), json!(batches));
        m.insert("changes_written".into(), json!(changes));
        m.insert("write_failures".into(), json!(h.failures()));
    }
}

/// Can this instance take new work? No key needed.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "`{ready: true}`", body = AnyObject),
        (status = 503, description = "`{ready: false, reason}`", body = AnyObject),
    ))]
async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.registry.send(Stats).await {
        Ok(s)
            if !s.shutting_down
                && !state.primary.is_full()
                && !state.mirror.as_ref().is_some_and(|m| m.is_full()) =>
        {
            HttpResponse::Ok().json(json!({"ready": true}))
        }
        Ok(s) => HttpResponse::ServiceUnavailable().json(json!({"ready": false,
            "reason": if s.shutting_down { "shutting_down" } else { "store_queue_full" }})),
        Err(e) => HttpResponse::ServiceUnavailable()
            .json(json!({"ready": false, "reason": e.to_string()})),
    }
}

/// The worst component status: unhealthy > degraded > healthy.
fn worst<'a>(components: impl Iterator<Item = &'a serde_json::Value>) -> &'static str {
    let rank = |s: &str| match s {
        "unhealthy" => 2,
        "degraded" => 1,
        _ => 0,
    };
    let max = components
        .map(|c| rank(c["status"].as_str().unwrap_or("unhealthy")))
        .max()
        .unwrap_or(0);
    ["healthy", "degraded", "unhealthy"][max]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_view_keeps_status_words_only() {
        let full = json!({
            "status": "degraded", "redis": "unavailable", "version": "1",
            "active_workflows": 3, "redis_keys": 10, "something_new": "x",
            "components": {
                "archive": {"status": "healthy", "url": "s3://secret-bucket/p"},
                "cluster": {"status": "degraded", "members": [{"address": "10.0.0.7"}],
                    "error": "connection refused by 10.0.0.7"},
                "store": {"status": {"not": "a word"}},
            }
        });
        let v = public_view(&full);
        assert_eq!(
            v,
            json!({"status": "degraded", "redis": "unavailable", "components": {
                "archive": {"status": "healthy"}, "cluster": {"status": "degraded"},
                "store": {"status": "unknown"}}})
        );
    }
}
