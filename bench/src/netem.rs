//! A slow network without root: a TCP relay on 127.0.0.1 between two
//! processes that holds every chunk for a set delay in each direction
//! before passing it on, keeping the stream's order and its pipelining (a
//! chunk's delay starts when it was read, not when the one before it left).
//! With no delay it only relays. Kernel-level shaping (`tc qdisc netem`)
//! needs root and a network namespace, which CI runners lack.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::BenchError;

/// Chunks in flight per direction before the reader waits.
const IN_FLIGHT: usize = 1024;

/// A link whose one-way delay can be changed while it runs.
#[derive(Debug, Clone, Default)]
pub struct Link {
    delay_ms: Arc<AtomicU64>,
}

impl Link {
    /// Every chunk from now on waits `delay` in each direction.
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::Relaxed))
    }

    /// Listens on a port of 127.0.0.1 and relays each connection to
    /// `upstream` (which may be down for a while: the connection is then
    /// refused by closing it, as a dead peer's would be).
    pub async fn serve(&self, upstream: SocketAddr) -> Result<SocketAddr, BenchError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| BenchError::Setup(format!("slow link: cannot listen: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| BenchError::Setup(format!("slow link: {e}")))?;
        let link = self.clone();
        tokio::spawn(async move {
            while let Ok((downstream, _)) = listener.accept().await {
                let link = link.clone();
                tokio::spawn(async move {
                    if let Ok(upstream) = TcpStream::connect(upstream).await {
                        link.relay(downstream, upstream).await;
                    }
                });
            }
        });
        Ok(addr)
    }

    async fn relay(&self, a: TcpStream, b: TcpStream) {
        let _ = a.set_nodelay(true);
        let _ = b.set_nodelay(true);
        let (a_read, a_write) = a.into_split();
        let (b_read, b_write) = b.into_split();
        tokio::join!(
            self.clone().one_way(a_read, b_write),
            self.clone().one_way(b_read, a_write),
        );
    }

    /// Reads chunks from `from`, and writes each to `to` once its delay
    /// has passed; ends when either side closes.
    async fn one_way(
        self,
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
    ) {
        let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
        let reader = async move {
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let read = match from.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                let chunk = buffer.get(..read).map(<[u8]>::to_vec).unwrap_or_default();
                if tx
                    .send((Instant::now() + self.delay(), chunk))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        };
        let writer = async move {
            while let Some((due, chunk)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if to.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            let _ = to.shutdown().await;
        };
        tokio::join!(reader, writer);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// An echo server behind the link: what goes in comes back whole and
    /// in order, at once without a delay and no sooner than twice the
    /// delay with one.
    #[tokio::test]
    async fn relays_in_order_and_holds_each_way_for_the_delay() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let link = Link::default();
        let addr = link.serve(echo_addr).await.unwrap();

        let round_trip = |payload: Vec<u8>| async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            let began = std::time::Instant::now();
            stream.write_all(&payload).await.unwrap();
            let mut back = vec![0u8; payload.len()];
            stream.read_exact(&mut back).await.unwrap();
            (back, began.elapsed())
        };
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (back, _) = round_trip(payload.clone()).await;
        assert_eq!(back, payload);

        link.set_delay(Duration::from_millis(150));
        let (back, took) = round_trip(b"ping".to_vec()).await;
        assert_eq!(back, b"ping");
        assert!(took >= Duration::from_millis(300), "{took:?}");
    }
}
