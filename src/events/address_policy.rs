//! The SSRF guard for webhook URLs: only `https` (unless `webhooks.allow_http`), no
//! credentials in the URL, and no destination that is not globally routable —
//! unless the host is listed in `webhooks.allow_hosts`. Checked at registration,
//! and again for every connection the dispatcher opens: its HTTP client resolves
//! names through `Guard::resolve`, so a name that re-resolves to a private address
//! is refused at connect time. Lookups time out after `webhooks.dns_timeout`.
//! Every refusal of a destination, whatever the reason (an address of a refused
//! kind, a name that does not resolve, a lookup that timed out), is the one
//! message `REFUSED`: a caller must not learn what an internal name resolves to,
//! or whether it exists. The reason is logged at debug for the operator.
//!
//! "Globally routable" is the `ip_network` crate's `is_global` (the IANA special-
//! purpose registries, as std's unstable `is_global`). On top of it we refuse what
//! IANA calls global but that can still reach an internal host: every prefix that
//! embeds an IPv4 address (NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4
//! `2002::/16`, Teredo `2001::/32`, IPv4-compatible `::a.b.c.d`; IPv4-mapped
//! addresses are judged by their IPv4 address), all of `192.0.0.0/24`, and multicast.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ip_network::{Ipv4Network, Ipv6Network};
use reqwest::Url;

use crate::config::WebhooksConfig;

/// Resolves a host name to its addresses (tokio's resolver; tests inject others).
pub type Lookup = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>
        + Send
        + Sync,
>;

#[derive(Clone)]
pub struct Guard {
    allow_http: bool,
    allow_hosts: Arc<[String]>,
    dns_timeout: Duration,
    lookup: Lookup,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("allow_http", &self.allow_http)
            .field("allow_hosts", &self.allow_hosts)
            .field("dns_timeout", &self.dns_timeout)
            .finish()
    }
}

/// The one answer to every refused destination (see the module header).
pub const REFUSED: &str = "refused: a webhook destination must be a host that resolves, \
within webhooks.dns_timeout, to public addresses only (webhooks.allow_hosts lists exceptions)";

/// A refusal by the guard, recognisable inside an HTTP client's error chain.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Why a webhook URL is not accepted: its syntax, scheme or credentials, or a
/// destination the guard refuses.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BadUrl {
    #[error("'{raw}' is not a valid URL: {reason}")]
    Invalid {
        raw: String,
        reason: url::ParseError,
    },
    #[error("webhook URLs must be HTTPS (webhooks.allow_http is off)")]
    NotHttps,
    #[error("unsupported URL scheme '{0}'; use https")]
    Scheme(String),
    #[error("webhook URLs must not carry credentials; sign with the secret instead")]
    Credentials,
    #[error("webhook URL has no host")]
    NoHost,
    #[error(transparent)]
    Refused(#[from] Refused),
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let net = Ipv4Network::from(ip);
    if net.is_loopback() {
        Some("loopback")
    } else if net.is_private() {
        Some("private")
    } else if net.is_link_local() {
        // Includes 169.254.169.254, the cloud metadata service.
        Some("link-local / cloud metadata")
    } else if net.is_shared_address_space() {
        Some("shared (CGNAT)")
    } else if net.is_multicast() {
        Some("multicast")
    } else if net.is_broadcast() {
        Some("broadcast")
    } else if net.is_ietf_protocol_assignments() {
        // is_global allows 192.0.0.9 and .10; nothing of ours lives there.
        Some("IETF protocol assignment")
    } else if !net.is_global() {
        Some("reserved or special-purpose")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let s = ip.segments();
    let net = Ipv6Network::from(ip);
    if net.is_loopback() {
        Some("loopback")
    } else if net.is_unspecified() {
        Some("unspecified")
    } else if s[..6] == [0; 6] {
        Some("IPv4-compatible")
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1] {
        Some("NAT64")
    } else if s[0] == 0x2002 {
        Some("6to4")
    } else if s[..2] == [0x2001, 0] {
        Some("Teredo")
    } else if net.is_multicast() {
        Some("multicast")
    } else if net.is_unique_local() {
        // fc00::/7, includes fd00:ec2::254 (AWS metadata over IPv6).
        Some("unique-local")
    } else if net.is_unicast_link_local() {
        Some("link-local")
    } else if net.is_unicast_site_local() {
        Some("site-local")
    } else if !net.is_global() {
        Some("reserved or special-purpose")
    } else {
        None
    }
}

/// Why an address may not be a webhook destination, or None when it may.
pub fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    })
}

fn bare(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

impl Guard {
    pub fn new(cfg: &WebhooksConfig) -> Guard {
        Guard {
            allow_http: cfg.allow_http,
            allow_hosts: cfg.allow_hosts.iter().map(|h| bare(h)).collect(),
            dns_timeout: cfg.dns_timeout,
            lookup: system_lookup(),
        }
    }

    /// The same guard with another resolver (tests).
    pub fn with_lookup(mut self, lookup: Lookup) -> Guard {
        self.lookup = lookup;
        self
    }

    /// Syntax, scheme, credentials, and an IP-literal host (no DNS).
    pub fn parse(&self, raw: &str) -> Result<Url, BadUrl> {
        let url = Url::parse(raw.trim()).map_err(|reason| BadUrl::Invalid {
            raw: raw.to_string(),
            reason,
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err(BadUrl::NotHttps),
            s => return Err(BadUrl::Scheme(s.to_string())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BadUrl::Credentials);
        }
        let host = url.host_str().ok_or(BadUrl::NoHost)?;
        if let Ok(ip) = bare(host).parse::<IpAddr>() {
            if let Some(kind) = forbidden(ip).filter(|_| !self.allowed_host(host)) {
                tracing::debug!(
                    kind,
                    "webhook destination refused: an address of a refused kind"
                );
                return Err(Refused(REFUSED.into()).into());
            }
        }
        Ok(url)
    }

    fn allowed_host(&self, host: &str) -> bool {
        let h = bare(host);
        self.allow_hosts.contains(&h)
    }

    /// Resolves a host name (bounded by `webhooks.dns_timeout`) and checks every
    /// address it resolves to. Every failure is `REFUSED`.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, Refused> {
        let name = bare(host);
        let refused = |why: &str| {
            tracing::debug!(reason = why, "webhook destination refused");
            Refused(REFUSED.into())
        };
        let addrs = match tokio::time::timeout(self.dns_timeout, (self.lookup)(name.clone())).await
        {
            Err(_) => return Err(refused("no answer within webhooks.dns_timeout")),
            Ok(Err(_)) => return Err(refused("the name does not resolve")),
            Ok(Ok(a)) if a.is_empty() => return Err(refused("the name resolves to no address")),
            Ok(Ok(a)) => a,
        };
        if !self.allowed_host(&name) {
            if let Some(kind) = addrs.iter().find_map(|a| forbidden(*a)) {
                return Err(refused(kind));
            }
        }
        Ok(addrs)
    }

    /// Parses and checks a URL, resolving its host when it is a name.
    pub async fn check(&self, raw: &str) -> Result<Url, BadUrl> {
        let url = self.parse(raw)?;
        let host = url.host_str().unwrap_or_default();
        if bare(host).parse::<IpAddr>().is_err() {
            self.resolve(host).await?;
        }
        Ok(url)
    }
}

/// The dispatcher's HTTP client resolves every name through the guard, so each
/// new connection goes only to addresses that were checked.
impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (guard, host) = (self.clone(), name.as_str().to_string());
        Box::pin(async move {
            let addrs = Guard::resolve(&guard, &host).await?;
            let out: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(http: bool, hosts: &[&str]) -> Guard {
        Guard::new(&WebhooksConfig {
            allow_http: http,
            allow_hosts: hosts.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
    }

    #[test]
    fn every_non_global_range_is_refused() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local / cloud metadata"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.127.255.254", "shared (CGNAT)"),
            ("0.0.0.0", "reserved or special-purpose"),
            ("198.18.0.1", "reserved or special-purpose"),
            ("198.19.255.255", "reserved or special-purpose"),
            ("240.0.0.1", "reserved or special-purpose"),
            ("255.255.255.255", "broadcast"),
            ("192.0.0.1", "IETF protocol assignment"),
            ("192.0.0.9", "IETF protocol assignment"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("::8.8.8.8", "IPv4-compatible"),
            ("64:ff9b::a00:1", "NAT64"),
            ("64:ff9b::808:808", "NAT64"),
            ("64:ff9b:1::1", "NAT64"),
            ("2002:7f00:1::1", "6to4"),
            ("2001:0:4136:e378::1", "Teredo"),
            ("fd00:ec2::254", "unique-local"),
            ("fc00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("ff0e::1", "multicast"),
            ("2001:db8::1", "reserved or special-purpose"),
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert_eq!(forbidden(parsed), Some(kind), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(forbidden(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn default_refuses_internal_destinations() {
        let g = guard(false, &[]);
        for url in [
            "https://127.0.0.1/hook",
            "https://10.0.0.1/hook",
            "https://172.16.5.4/hook",
            "https://192.168.1.1/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[fd00:ec2::254]/hook",
            "https://[fe80::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://[64:ff9b::7f00:1]/hook",
            "https://[2002:a00:1::1]/hook",
            "https://[::a00:1]/hook",
            "https://[fec0::1]/hook",
            "https://100.64.0.1/hook",
            "https://198.18.0.1/hook",
            "https://240.0.0.1/hook",
            "https://192.0.0.8/hook",
            "https://224.0.0.1/hook",
            "https://255.255.255.255/hook",
            "https://0.0.0.0/hook",
            "https://localhost/hook",
        ] {
            let err = g.check(url).await.unwrap_err().to_string();
            assert!(err.starts_with("refused"), "{url}: {err}");
        }
        assert!(g
            .check("http://example.com/x")
            .await
            .unwrap_err()
            .to_string()
            .contains("HTTPS"));
        assert!(g.check("ftp://example.com/x").await.is_err());
        assert!(g.check("https://user:pw@8.8.8.8/x").await.is_err());
        assert!(g.check("not a url").await.is_err());
    }

    #[tokio::test]
    async fn a_refused_name_never_reveals_its_address() {
        let lookup: Lookup =
            Arc::new(|_| Box::pin(async { Ok(vec!["10.20.30.40".parse().unwrap()]) }));
        let g = guard(false, &[]).with_lookup(lookup);
        let err = g
            .check("https://intranet.example/hook")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, REFUSED);
        let err = g
            .check("https://localhost/hook")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, REFUSED);
        // A name that does not exist and a refused literal: the same answer.
        let missing: Lookup =
            Arc::new(|_| Box::pin(async { Err(std::io::Error::other("no such host")) }));
        let g = guard(false, &[]).with_lookup(missing);
        assert_eq!(
            g.check("https://nope.internal/hook")
                .await
                .unwrap_err()
                .to_string(),
            REFUSED
        );
        assert_eq!(
            g.check("https://10.0.0.1/hook")
                .await
                .unwrap_err()
                .to_string(),
            REFUSED
        );
    }

    #[tokio::test]
    async fn a_lookup_that_never_answers_times_out() {
        let lookup: Lookup = Arc::new(|_| Box::pin(std::future::pending()));
        let mut g = guard(false, &[]).with_lookup(lookup);
        g.dns_timeout = Duration::from_millis(50);
        let err = g
            .check("https://slow.example/hook")
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, REFUSED);
    }

    #[tokio::test]
    async fn public_addresses_pass_and_allow_hosts_open_the_guard() {
        let g = guard(false, &[]);
        let ok = g.check("https://8.8.8.8:8443/x").await.unwrap();
        assert_eq!(ok.port(), Some(8443));
        let g = guard(true, &["127.0.0.1", "localhost"]);
        assert!(g.check("http://127.0.0.1:9/x").await.is_ok());
        assert!(g.check("http://localhost:9/x").await.is_ok());
        assert!(
            g.check("http://10.0.0.1/x").await.is_err(),
            "only the listed hosts"
        );
    }
}
