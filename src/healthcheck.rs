//! `mcp-orchestrator healthcheck`: a tiny HTTP/1.1 client for the container's
//! HEALTHCHECK (the runtime image has no curl). It asks `GET /health` on the
//! configured listener and succeeds on 200 (healthy or degraded).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why the probe failed; the healthcheck prints it and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("server.bind '{bind}': {source}")]
    Resolve { bind: String, source: io::Error },
    #[error("server.bind '{0}' resolves to no address")]
    NoAddress(String),
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: io::Error },
    #[error("{0}")]
    Socket(io::Error),
    #[error("cannot send to {addr}: {source}")]
    Send { addr: SocketAddr, source: io::Error },
    #[error("no answer from {addr}: {source}")]
    Read { addr: SocketAddr, source: io::Error },
    #[error("{addr} answered HTTP {code} (status {status})")]
    Unhealthy {
        addr: SocketAddr,
        code: String,
        status: String,
    },
}

/// The address to probe for a `server.bind` value: a wildcard bind is reached
/// over loopback.
pub fn target(bind: &str) -> Result<SocketAddr, ProbeError> {
    let addr = bind
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            bind: bind.to_string(),
            source,
        })?
        .next()
        .ok_or_else(|| ProbeError::NoAddress(bind.to_string()))?;
    Ok(match addr {
        SocketAddr::V4(a) if a.ip().is_unspecified() => {
            SocketAddr::from(([127, 0, 0, 1], a.port()))
        }
        SocketAddr::V6(a) if a.ip().is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
        }
        a => a,
    })
}

/// GETs `/health`; Ok with the reported status when it answered 200.
pub fn check(addr: SocketAddr, timeout: Duration) -> Result<String, ProbeError> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|source| ProbeError::Connect { addr, source })?;
    s.set_read_timeout(Some(timeout))
        .map_err(ProbeError::Socket)?;
    s.set_write_timeout(Some(timeout))
        .map_err(ProbeError::Socket)?;
    let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|source| ProbeError::Send { addr, source })?;
    let mut resp = Vec::new();
    s.take(1 << 20)
        .read_to_end(&mut resp)
        .map_err(|source| ProbeError::Read { addr, source })?;
    let text = String::from_utf8_lossy(&resp);
    let code = text
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("none");
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    let status = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["status"].as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    if code == "200" {
        Ok(status)
    } else {
        Err(ProbeError::Unhealthy {
            addr,
            code: code.to_string(),
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_binds_are_probed_on_loopback() {
        assert_eq!(
            target("0.0.0.0:5060").unwrap().to_string(),
            "127.0.0.1:5060"
        );
        assert_eq!(target("127.0.0.1:7").unwrap().to_string(), "127.0.0.1:7");
        assert!(target("nonsense").is_err());
    }
}
