//! Sockets and signals of the HTTP server: binding `server.bind` before anything
//! else starts, TCP_NODELAY on accepted connections, waiting for SIGTERM/SIGINT.

use crate::startup::StartError;

/// Binds `server.bind` (every address it resolves to, as actix-web would). Done
/// before anything else starts: a second instance on a busy port must not open the
/// store or resume workflows.
pub fn listen(bind: &str) -> Result<Vec<std::net::TcpListener>, StartError> {
    use std::net::ToSocketAddrs;
    let fail = |e: std::io::Error| StartError(format!("server.bind '{bind}': cannot listen: {e}"));
    let mut listeners = Vec::new();
    let mut last = None;
    for addr in bind.to_socket_addrs().map_err(fail)? {
        match bind_one(addr) {
            Ok(l) => listeners.push(l),
            Err(e) => last = Some(e),
        }
    }
    match (listeners.is_empty(), last) {
        (true, Some(e)) => Err(fail(e)),
        (true, None) => Err(fail(std::io::ErrorKind::AddrNotAvailable.into())),
        _ => Ok(listeners),
    }
}

/// One listener the way actix-web makes it (address reuse, a backlog of 2048).
pub(crate) fn bind_one(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(2048)?;
    Ok(socket.into())
}

/// Small writes leave at once: an SSE event or a response written in two parts
/// otherwise waits for the client's delayed ACK (40 ms on Linux), which the
/// benchmarks showed on every event stream.
pub(crate) fn no_delay(conn: &dyn std::any::Any, _: &mut actix_web::dev::Extensions) {
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    }
}

pub(crate) async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}
