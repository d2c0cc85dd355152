//! The SSRF guard for webhook URLs: only `https` (unless `webhooks.allow_http`), and
//! no destination that resolves to loopback, private, link-local, unique-local,
//! shared (CGNAT), unspecified, multicast or cloud-metadata addresses — unless the
//! host is listed in `webhooks.allow_hosts`. Checked at registration and again at
//! every delivery, and the delivery connects to the address that was checked, so a
//! name that re-resolves to a private address is refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::Url;

use crate::config::WebhooksConfig;

#[derive(Debug, Clone)]
pub struct Guard {
    allow_http: bool,
    allow_hosts: Vec<String>,
}

/// A URL that passed the guard, with the address to connect to.
#[derive(Debug, Clone)]
pub struct Checked {
    pub url: Url,
    pub host: String,
    pub addr: SocketAddr,
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if o[0] == 169 && o[1] == 254 {
        // Includes 169.254.169.254, the cloud metadata service.
        Some("link-local / cloud metadata")
    } else if o[0] == 100 && (64..128).contains(&o[1]) {
        Some("shared (CGNAT)")
    } else if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || o[0] == 0 {
        Some("unspecified / broadcast / multicast")
    } else {
        None
    }
}

fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("unspecified / multicast")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                // fc00::/7, includes fd00:ec2::254 (AWS metadata over IPv6).
                Some("unique-local")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0) {
                Some("unspecified")
            } else {
                None
            }
        }
    }
}

impl Guard {
    pub fn new(cfg: &WebhooksConfig) -> Guard {
        Guard {
            allow_http: cfg.allow_http,
            allow_hosts: cfg
                .allow_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
        }
    }

    /// Syntax and scheme only (no DNS).
    pub fn parse(&self, raw: &str) -> Result<Url, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("'{raw}' is not a valid URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => return Err("webhook URLs must be HTTPS (webhooks.allow_http is off)".into()),
            s => return Err(format!("unsupported URL scheme '{s}'; use https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "webhook URLs must not carry credentials; sign with the secret instead".into(),
            );
        }
        if url.host_str().is_none() {
            return Err("webhook URL has no host".into());
        }
        Ok(url)
    }

    fn allowed_host(&self, host: &str) -> bool {
        let h = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        self.allow_hosts
            .iter()
            .any(|a| a.trim_start_matches('[').trim_end_matches(']') == h)
    }

    /// Parses, resolves and checks every address the host resolves to.
    pub async fn check(&self, raw: &str) -> Result<Checked, String> {
        let url = self.parse(raw)?;
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(443);
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare.as_str(), port))
                .await
                .map_err(|e| format!("cannot resolve '{host}': {e}"))?
                .collect(),
        };
        let first = *addrs
            .first()
            .ok_or_else(|| format!("'{host}' resolves to no address"))?;
        if !self.allowed_host(&host) {
            for a in &addrs {
                if let Some(kind) = forbidden(a.ip()) {
                    return Err(format!(
                        "refused: '{host}' resolves to {} ({kind}); add it to webhooks.allow_hosts to allow",
                        a.ip()
                    ));
                }
            }
        }
        Ok(Checked {
            url,
            host: bare,
            addr: first,
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
            "https://100.64.0.1/hook",
            "https://0.0.0.0/hook",
            "https://localhost/hook",
        ] {
            let err = g.check(url).await.unwrap_err();
            assert!(err.starts_with("refused"), "{url}: {err}");
        }
        assert!(g
            .check("http://example.com/x")
            .await
            .unwrap_err()
            .contains("HTTPS"));
        assert!(g.check("ftp://example.com/x").await.is_err());
        assert!(g.check("https://user:pw@8.8.8.8/x").await.is_err());
        assert!(g.check("not a url").await.is_err());
    }

    #[tokio::test]
    async fn public_addresses_pass_and_allow_hosts_open_the_guard() {
        let g = guard(false, &[]);
        let ok = g.check("https://8.8.8.8:8443/x").await.unwrap();
        assert_eq!(ok.addr, "8.8.8.8:8443".parse().unwrap());
        let g = guard(true, &["127.0.0.1", "localhost"]);
        assert!(g.check("http://127.0.0.1:9/x").await.is_ok());
        assert!(g.check("http://localhost:9/x").await.is_ok());
        assert!(
            g.check("http://10.0.0.1/x").await.is_err(),
            "only the listed hosts"
        );
    }
}
