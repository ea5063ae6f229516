//! Opening listeners: a taken port names the variable that chose it, and
//! every listener says where it listens in one `oms::listen` line.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// Why a listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source} (set {var} to a free address)")]
pub struct BindError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The variable that chose it.
    pub var: String,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// Says where a listener of `service` listens (`kind`: `grpc`, `http` or
/// `metrics`), once bound, as one INFO event under the target
/// `oms::listen`: a process started on port 0 by a harness reports the
/// port it got, even with every other log filtered out
/// (`RUST_LOG=warn,oms::listen=info`). In JSON logs: `{"target":
/// "oms::listen","service":…,"kind":…,"addr":"127.0.0.1:41231",…}`.
pub fn announce(service: &str, kind: &str, addr: SocketAddr) {
    tracing::info!(target: "oms::listen", service, kind, %addr, "listening");
}

/// Binds `addr`, naming `var` in the error so the operator knows what to
/// change when the port is taken.
pub async fn bind(addr: SocketAddr, var: &str) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|source| BindError {
        addr,
        var: var.to_owned(),
        source,
    })
}

/// Binds `addr` if one is configured (optional listeners such as
/// `/metrics`).
pub async fn bind_optional(
    addr: Option<SocketAddr>,
    var: &str,
) -> Result<Option<TcpListener>, BindError> {
    match addr {
        Some(addr) => bind(addr, var).await.map(Some),
        None => Ok(None),
    }
}
