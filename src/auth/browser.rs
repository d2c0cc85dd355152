//! What a web page elsewhere can make a browser do to this server, refused before
//! any key is looked at:
//!
//! - **DNS rebinding** (`server.allowed_hosts`): a page on `attacker.example`
//!   whose name re-resolves to this server's address sends `Host:
//!   attacker.example`. Every request whose `Host` is not on the list gets 421
//!   `host_not_allowed`, on every route. Without keys the list defaults to the
//!   bind address and the loopback names; with keys, to any host (a rebound page
//!   has no key). Loopback names and the bind address are always on it: only a
//!   local client, or a page served from that very address, sends them.
//! - **Cross-origin state changes**: a request other than GET/HEAD/OPTIONS that
//!   carries an `Origin` which is neither the request's own host nor in
//!   `server.cors_allowed_origins` gets 403 `origin_not_allowed`, whatever its
//!   body (a bodiless cross-site `POST …/cancel` needs no JSON). `/mcp` also
//!   accepts the origins of `mcp.allowed_origins`, which rmcp checks again.
//!   Requests without `Origin` (curl, SDKs) pass.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, Method};
use actix_web::middleware::Next;
use actix_web::{web, Error};

use super::middleware::reject;
use crate::config::Config;
use crate::error::ApiError;
use crate::AppState;

/// Names always on the host list.
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The `Host` values this server answers.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    any: bool,
    /// (lowercase name without brackets, port or None = any port)
    allowed: Vec<(String, Option<u16>)>,
}

/// `name`, `name:port`, `[v6]`, `[v6]:port` or a bare IPv6 address, lowercased,
/// without brackets or a trailing dot. None when the port is not a number.
fn split_host(raw: &str) -> Option<(String, Option<u16>)> {
    let raw = raw.trim();
    let (name, port) = if let Some(rest) = raw.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        match after.strip_prefix(':') {
            Some(p) => (name, Some(p)),
            None if after.is_empty() => (name, None),
            None => return None,
        }
    } else if raw.matches(':').count() == 1 {
        let (name, p) = raw.split_once(':')?;
        (name, Some(p))
    } else {
        (raw, None)
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    (!name.is_empty()).then_some((name, port))
}

impl HostPolicy {
    /// `server.allowed_hosts` plus the deprecated `mcp.allowed_hosts`; `"*"` = any.
    pub fn new(cfg: &Config) -> HostPolicy {
        let listed: Vec<&String> = cfg
            .server
            .allowed_hosts
            .iter()
            .chain(&cfg.mcp.allowed_hosts)
            .collect();
        let any =
            listed.iter().any(|h| h.trim() == "*") || (listed.is_empty() && cfg.auth.enabled());
        let bind = cfg.server.bind.rsplit_once(':').map_or("", |(h, _)| h);
        let allowed = listed
            .iter()
            .map(|h| h.as_str())
            .chain(LOOPBACK)
            .chain([bind])
            .filter_map(split_host)
            .collect();
        HostPolicy { any, allowed }
    }

    /// Whether a request with this `Host` (None: the request has none) is answered.
    pub fn allows(&self, host: Option<&str>) -> bool {
        if self.any {
            return true;
        }
        let Some((name, port)) = host.and_then(split_host) else {
            return false;
        };
        self.allowed
            .iter()
            .any(|(n, p)| *n == name && (p.is_none() || *p == port))
    }
}

/// The origin is the request's own host. A `Host` without a port is compared
/// with the origin scheme's default port; the scheme itself is not compared
/// (behind a TLS-terminating proxy the page is https, the server sees HTTP).
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return false,
    };
    match (split_host(rest), host.and_then(split_host)) {
        (Some((on, op)), Some((hn, hp))) => {
            on == hn && op.unwrap_or(default) == hp.unwrap_or(default)
        }
        _ => false,
    }
}

/// `scheme`, name and port (the scheme's default when not written) of an origin
/// or an `mcp.allowed_origins` entry; port None for a `:*` entry.
fn origin_parts(origin: &str) -> Option<(String, String, Option<u16>)> {
    let (scheme, rest) = origin.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    if let Some(name) = rest.strip_suffix(":*") {
        let (name, _) = split_host(name)?;
        return Some((scheme, name, None));
    }
    let (name, port) = split_host(rest)?;
    Some((scheme, name, Some(port.unwrap_or(default))))
}

/// `mcp.allowed_origins` entries: `scheme://host[:port]`, `:*` = any port.
fn matches_pattern(origin: &str, pattern: &str) -> bool {
    match (origin_parts(origin), origin_parts(pattern)) {
        (Some((os, on, op)), Some((ps, pn, pp))) => {
            os == ps && on == pn && op.is_some() && (pp.is_none() || pp == op)
        }
        _ => false,
    }
}

fn origin_allowed(cfg: &Config, path: &str, origin: &str, host: Option<&str>) -> bool {
    same_origin(origin, host)
        || cfg
            .server
            .cors_allowed_origins
            .iter()
            .any(|o| o.eq_ignore_ascii_case(origin))
        || ((path == "/mcp" || path.starts_with("/mcp/"))
            && cfg
                .mcp
                .allowed_origins
                .iter()
                .any(|p| matches_pattern(origin, p)))
}

/// The request's host: the `Host` header, else the URI's authority (HTTP/2).
fn host_of(req: &ServiceRequest) -> Option<String> {
    req.headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
}

/// Shown in an error: bounded, printable.
fn shown(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(100).collect()
}

/// The middleware (outside `authenticate`): Host first, then Origin.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::Internal("application state missing".into()).into());
    };
    let host = host_of(&req);
    let path = req.path().to_string();
    if !state.hosts.allows(host.as_deref()) {
        let shown = host.as_deref().map_or_else(|| "(none)".to_string(), shown);
        return Err(reject(&path, ApiError::HostNotAllowed(shown)));
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            if !origin_allowed(&state.config, &path, origin, host.as_deref()) {
                return Err(reject(&path, ApiError::OriginNotAllowed(shown(origin))));
            }
        }
    }
    next.call(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(bind: &str, listed: &[&str], keys: bool) -> HostPolicy {
        let mut cfg = Config::default();
        cfg.server.bind = bind.into();
        cfg.server.allowed_hosts = listed.iter().map(|s| s.to_string()).collect();
        if keys {
            cfg.auth.keys.push(crate::config::test_key("k"));
        }
        HostPolicy::new(&cfg)
    }

    #[test]
    fn keyless_default_is_loopback_and_the_bind_address() {
        let p = policy("127.0.0.1:5060", &[], false);
        for ok in [
            "127.0.0.1:5060",
            "localhost:1",
            "LOCALHOST.",
            "[::1]:5060",
            "::1",
            "127.0.0.1",
        ] {
            assert!(p.allows(Some(ok)), "{ok}");
        }
        for bad in [
            "attacker.example:5060",
            "attacker.example",
            "127.0.0.1.nip.io:5060",
            "localhost:x",
            "",
        ] {
            assert!(!p.allows(Some(bad)), "{bad}");
        }
        assert!(!p.allows(None));
        assert!(policy("10.1.2.3:80", &[], false).allows(Some("10.1.2.3")));
    }

    #[test]
    fn keys_open_every_host_unless_a_list_is_set() {
        assert!(policy("0.0.0.0:5060", &[], true).allows(Some("anything.example")));
        let p = policy("0.0.0.0:5060", &["orchestrator.example.com"], true);
        assert!(p.allows(Some("orchestrator.example.com")));
        assert!(p.allows(Some("Orchestrator.Example.com:443")));
        assert!(
            p.allows(Some("127.0.0.1:5060")),
            "the container healthcheck"
        );
        assert!(!p.allows(Some("attacker.example")));
        let p = policy("127.0.0.1:5060", &["a.example:8443"], false);
        assert!(p.allows(Some("a.example:8443")) && !p.allows(Some("a.example:80")));
        assert!(policy("127.0.0.1:1", &["*"], false).allows(Some("x.example")));
    }

    #[test]
    fn origins_compare_with_the_requests_own_host() {
        assert!(same_origin("http://127.0.0.1:5060", Some("127.0.0.1:5060")));
        assert!(same_origin(
            "https://orch.example.com",
            Some("orch.example.com")
        ));
        assert!(same_origin(
            "http://orch.example.com",
            Some("orch.example.com:80")
        ));
        assert!(same_origin("http://[::1]:5060", Some("[::1]:5060")));
        assert!(!same_origin("http://evil.example", Some("127.0.0.1:5060")));
        assert!(!same_origin(
            "http://127.0.0.1:5061",
            Some("127.0.0.1:5060")
        ));
        assert!(!same_origin("null", Some("127.0.0.1:5060")));
        assert!(!same_origin("http://127.0.0.1:5060", None));
    }

    #[test]
    fn mcp_origin_patterns_take_any_port() {
        assert!(matches_pattern(
            "http://localhost:6274",
            "http://localhost:*"
        ));
        assert!(matches_pattern("http://localhost", "http://localhost:*"));
        assert!(!matches_pattern(
            "http://localhost.evil:1",
            "http://localhost:*"
        ));
        assert!(!matches_pattern(
            "http://localhostx:1",
            "http://localhost:*"
        ));
        assert!(matches_pattern(
            "https://app.example",
            "https://app.example"
        ));
    }
}
