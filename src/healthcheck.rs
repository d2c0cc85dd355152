//! `mcp-orchestrator healthcheck`: a tiny HTTP/1.1 client for the container's
//! HEALTHCHECK (the runtime image has no curl). It asks `GET /health` on the
//! configured listener and succeeds on 200 (healthy or degraded).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The address to probe for a `server.bind` value: a wildcard bind is reached
/// over loopback.
pub fn target(bind: &str) -> Result<SocketAddr, String> {
    let addr = bind
        .to_socket_addrs()
        .map_err(|e| format!("server.bind '{bind}': {e}"))?
        .next()
        .ok_or_else(|| format!("server.bind '{bind}' resolves to no address"))?;
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
pub fn check(addr: SocketAddr, timeout: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut resp = Vec::new();
    s.take(1 << 20)
        .read_to_end(&mut resp)
        .map_err(|e| format!("no answer from {addr}: {e}"))?;
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
        Err(format!("{addr} answered HTTP {code} (status {status})"))
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
