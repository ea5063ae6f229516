//! Dialling one address of a peer over TLS: TCP to the address, then a
//! handshake that verifies the server's certificate for the name the
//! channel dialled (a headless Service's name, not the pod's address)
//! and presents this process's certificate when the server asks.

use std::net::SocketAddr;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::Tls;

/// Connects to one address, verifying `name`; tonic's endpoint takes it
/// as its connector (and bounds it by its connect timeout).
#[derive(Clone)]
pub struct Connector {
    addr: SocketAddr,
    name: ServerName<'static>,
    tls: Tls,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.addr)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a name cannot be verified.
#[derive(Debug, thiserror::Error)]
#[error("{name:?} cannot be checked against a certificate: {reason}")]
pub struct BadName {
    /// The host dialled.
    pub name: String,
    /// What rustls said.
    pub reason: String,
}

/// What a server's certificate must be for when `host` (a DNS name or an
/// IP) is dialled.
pub fn server_name(host: &str) -> Result<ServerName<'static>, BadName> {
    ServerName::try_from(host.to_owned()).map_err(|e| BadName {
        name: host.to_owned(),
        reason: e.to_string(),
    })
}

impl Connector {
    /// Dials `addr`, a resolved address of the peer whose certificate must
    /// be for `name`.
    pub fn new(addr: SocketAddr, name: ServerName<'static>, tls: Tls) -> Self {
        Self { addr, name, tls }
    }
}

impl tower_service::Service<http::Uri> for Connector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: http::Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            // Read at every connection: a renewed certificate or CA is used
            // by the next connection made.
            let config = this.tls.client_config().ok_or_else(|| {
                std::io::Error::other("TLS is off for this process's client channels")
            })?;
            let tcp = TcpStream::connect(this.addr).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(this.name, tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}
