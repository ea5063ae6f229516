//! A gRPC listener's connections over TLS: each accepted connection shakes
//! hands in a task of its own (a slow or silent client holds up no other),
//! within [`HANDSHAKE_TIMEOUT`]; one that fails (no client certificate
//! where one is required, plaintext, TLS 1.1, a certificate of another CA)
//! is closed, logged at WARN and counted as a refusal of the listener. A
//! connection closed before its first byte is a TCP probe, not a client,
//! and is let go quietly.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::connections::{CappedStream, FirstByte};
use crate::refusals::Refusals;

use super::Tls;

/// The most a client may take to finish its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The refusal limit a failed handshake counts under.
pub const REFUSAL: &str = "tls_handshake";

/// A connection a gRPC listener serves: plaintext, or TLS over it.
#[derive(Debug)]
pub enum ServedConnection {
    /// Plaintext (no `OMS_TLS_CERT`).
    Plain(CappedStream),
    /// TLS, its handshake done.
    Tls(Box<tokio_rustls::server::TlsStream<CappedStream>>),
}

impl ServedConnection {
    fn tcp(&self) -> &CappedStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl Connected for ServedConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.tcp().connect_info()
    }
}

impl AsyncRead for ServedConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ServedConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            Self::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The server side of a TLS handshake on `tcp` with `config` (the
/// certificate of this moment: a renewed one serves every connection from
/// then on), within `timeout`. A connection closed before its first byte
/// (a TCP probe) is let go quietly; a handshake that fails or does not
/// finish in time is refused: logged at WARN and counted under
/// [`REFUSAL`].
pub async fn handshake<S>(
    tcp: S,
    config: Arc<rustls::ServerConfig>,
    timeout: Duration,
    peer: &str,
    refusals: &Refusals,
) -> Option<tokio_rustls::server::TlsStream<S>>
where
    S: FirstByte + AsyncRead + AsyncWrite + Unpin,
{
    let shaken = async {
        if !tcp.sends_anything().await {
            return None;
        }
        Some(tokio_rustls::TlsAcceptor::from(config).accept(tcp).await)
    };
    match tokio::time::timeout(timeout, shaken).await {
        Ok(None) => None,
        Ok(Some(Ok(tls))) => Some(tls),
        Ok(Some(Err(e))) => {
            refusals.refuse(
                REFUSAL,
                format_args!("TLS handshake with {peer} failed: {e}"),
            );
            None
        }
        Err(_) => {
            refusals.refuse(
                REFUSAL,
                format_args!("no TLS handshake from {peer} within {timeout:?}"),
            );
            None
        }
    }
}

/// The connections of `accepted` as the listener serves them: as they
/// are without `tls`, else each after its handshake with the certificate
/// `tls` holds at that moment.
pub fn serve_over(
    accepted: impl Stream<Item = io::Result<CappedStream>> + Send + 'static,
    tls: Option<Tls>,
    refusals: Arc<Refusals>,
) -> Pin<Box<dyn Stream<Item = io::Result<ServedConnection>> + Send>> {
    let Some(tls) = tls.filter(|tls| tls.server_config().is_some()) else {
        return Box::pin(accepted.map(|tcp| tcp.map(ServedConnection::Plain)));
    };
    // Handshakes finish in any order; the server takes them as they do.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<ServedConnection>(64);
    tokio::spawn(async move {
        let mut accepted = std::pin::pin!(accepted);
        loop {
            let next = tokio::select! {
                () = done_tx.closed() => return,
                next = accepted.next() => next,
            };
            let tcp = match next {
                None => return,
                Some(Ok(tcp)) => tcp,
                // The listener itself is fine (out of descriptors and the
                // like); as tonic does, go on.
                Some(Err(e)) => {
                    tracing::warn!(service = tls.service(), error = %e, "cannot accept a connection");
                    continue;
                }
            };
            let Some(config) = tls.server_config() else {
                continue;
            };
            let (done_tx, refusals) = (done_tx.clone(), Arc::clone(&refusals));
            tokio::spawn(async move {
                let peer = tcp.connect_info().remote_addr();
                let peer = peer.map_or_else(|| "an unknown address".to_owned(), |p| p.to_string());
                if let Some(tls) = handshake(tcp, config, HANDSHAKE_TIMEOUT, &peer, &refusals).await
                {
                    let _ = done_tx.send(ServedConnection::Tls(Box::new(tls))).await;
                }
            });
        }
    });
    Box::pin(futures_util::stream::poll_fn(move |cx| {
        done_rx.poll_recv(cx).map(|done| done.map(Ok))
    }))
}
