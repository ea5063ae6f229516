//! The connections a gRPC listener holds: at most a set number at once.
//! Past the cap a new connection is accepted and closed at once (so it
//! does not wait in the kernel's backlog), logged at WARN (at most once a
//! second) and counted; the connections already open keep working.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::refusals::Refusals;

/// An accepted connection holding one of the listener's places until it
/// closes.
#[derive(Debug)]
pub struct CappedStream {
    inner: TcpStream,
    _place: OwnedSemaphorePermit,
}

/// Waits for the client's first byte: `false` when it closed without
/// sending one (a TCP probe: a balancer's, the kubelet's, our own
/// channels' resolve rounds), which is no failed handshake.
pub async fn sends_anything(tcp: &TcpStream) -> bool {
    let mut first = [0_u8; 1];
    !matches!(tcp.peek(&mut first).await, Ok(0))
}

/// A connection whose first byte can be waited for without reading it.
pub trait FirstByte {
    /// [`sends_anything`] of its TCP connection.
    fn sends_anything(&self) -> impl std::future::Future<Output = bool> + Send;
}

impl FirstByte for TcpStream {
    fn sends_anything(&self) -> impl std::future::Future<Output = bool> + Send {
        sends_anything(self)
    }
}

impl FirstByte for CappedStream {
    fn sends_anything(&self) -> impl std::future::Future<Output = bool> + Send {
        sends_anything(&self.inner)
    }
}

impl Connected for CappedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connections `listener` accepts, at most `max` open at once, with
/// `TCP_NODELAY` set (without it a response written in two segments
/// waited for a delayed ACK: ~40 ms on every ListOrders page).
pub fn accept_capped(
    listener: TcpListener,
    max: usize,
    refusals: Arc<Refusals>,
) -> impl Stream<Item = io::Result<CappedStream>> + Send + 'static {
    let places = Arc::new(Semaphore::new(max));
    futures_util::stream::unfold(
        (listener, places, refusals),
        move |(listener, places, refusals)| async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    // Out of file descriptors and the like: the listener
                    // itself is fine; tonic logs and goes on, as we do.
                    Err(e) => return Some((Err(e), (listener, places, refusals))),
                };
                let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
                    refusals.refuse(
                        "connections",
                        format_args!("{max} connections open; closed one from {peer}"),
                    );
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let capped = CappedStream {
                    inner: stream,
                    _place: place,
                };
                return Some((Ok(capped), (listener, places, refusals)));
            }
        },
    )
}
