//! How the gateway holds its connections: at most so many at once (more
//! are closed on arrival, the open ones keep working), HTTP/1 headers
//! within a time limit, idle connections closed, a request body that stops
//! arriving ended, and a connection whose client stops reading the answer
//! closed. HTTP/1.1 and HTTP/2 (prior knowledge or upgrade-free h2c) on one
//! port, as before; over TLS when the gateway has a certificate, where
//! ALPN picks between them, and a handshake that fails or does not finish
//! within the header time limit is refused, logged and counted.
//!
//! Why our own accept loop: `axum::serve` sets no timer, so hyper enforced
//! no header timeout, and it has no connection cap or idle rule; 13,000
//! idle connections and 40,000 stalled HTTP/2 streams were all kept.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use oms_runtime::refusals::Refusals;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// What one gateway listener lets its clients hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections open at once (`GATEWAY_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// How long an HTTP/1 client may take to send a request's headers
    /// (`GATEWAY_HEADER_READ_TIMEOUT`).
    pub header_read: Duration,
    /// How long a connection may stay open with nothing in flight
    /// (`GATEWAY_IDLE_TIMEOUT`).
    pub idle: Duration,
    /// How long a request body may go without a byte arriving, and an
    /// answer without being read, before the request or the connection
    /// is ended (`GATEWAY_STALL_TIMEOUT`).
    pub stall: Duration,
    /// HTTP/2 streams one connection may have open.
    pub max_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 4_096,
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(75),
            stall: Duration::from_secs(30),
            max_streams: 100,
        }
    }
}

/// Bytes of an answer HTTP/2 buffers per stream ahead of the client's
/// window: hyper's default (400 KiB) let a shut window pin whole answers.
const SEND_BUFFER: usize = 16 * 1024;

/// How long open connections may take to finish after shutdown starts.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` within `limits` until `shutdown` resolves,
/// then lets open requests finish (at most [`DRAIN`]).
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<oms_runtime::tls::Tls>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let refusals = Arc::new(Refusals::new(
        "gateway",
        &[
            "connections",
            "stalled",
            "body_timeout",
            oms_runtime::tls::accept::REFUSAL,
        ],
    ));
    let places = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .max_headers(100);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams)
        .max_send_buf_size(SEND_BUFFER)
        .max_header_list_size(
            u32::try_from(oms_runtime::server::MAX_FORWARDED_HEADERS * 2).unwrap_or(u32::MAX),
        )
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: the listener is fine.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    continue;
                }
            },
        };
        let Ok(place) = Arc::clone(&places).try_acquire_owned() else {
            refusals.refuse(
                "connections",
                format_args!(
                    "{} connections open; closed one from {peer}",
                    limits.max_connections
                ),
            );
            drop(tcp);
            continue;
        };
        // Nagle off: an answer in two segments would wait for the client's
        // delayed ACK (tens of milliseconds).
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            activity: Arc::new(Activity::new()),
            limits,
            refusals: Arc::clone(&refusals),
            peer,
        };
        let (builder, app, stopping) = (Arc::clone(&builder), app.clone(), stopping.clone());
        let server_config = tls.as_ref().and_then(oms_runtime::tls::Tls::server_config);
        tokio::spawn(async move {
            let _place = place;
            let Some(config) = server_config else {
                connection.run(&builder, tcp, app, stopping).await;
                return;
            };
            let peer = peer.to_string();
            let shaken = oms_runtime::tls::accept::handshake(
                tcp,
                config,
                limits.header_read,
                &peer,
                &connection.refusals,
            );
            if let Some(tls) = shaken.await {
                connection.run(&builder, tls, app, stopping).await;
            }
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    // Every connection holds a place until it ends.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(DRAIN + Duration::from_secs(1), places.acquire_many(all));
    if drained.await.is_err() {
        tracing::warn!(
            service = "gateway",
            "connections still open after {DRAIN:?}; exiting anyway"
        );
    }
}

/// What is happening on one connection, shared by its requests.
#[derive(Debug)]
struct Activity {
    started: Instant,
    /// Requests whose answer is not finished (or dropped).
    in_flight: AtomicUsize,
    /// Of those, the ones whose answer has started.
    answering: AtomicUsize,
    /// When a byte last moved either way, in ms since `started`.
    last_progress_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            answering: AtomicUsize::new(0),
            last_progress_ms: AtomicU64::new(0),
        }
    }

    fn progress(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_progress_ms.store(now, Ordering::Relaxed);
    }

    fn since_progress(&self) -> Duration {
        let last = Duration::from_millis(self.last_progress_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

/// One request in flight, until its answer ends or is dropped.
#[derive(Debug)]
struct InFlight {
    activity: Arc<Activity>,
    answering: bool,
}

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.progress();
        Self {
            activity: Arc::clone(activity),
            answering: false,
        }
    }

    /// The answer has started: the stall clock runs from here, so an
    /// answer made late (a body that timed out, a slow backend) is not
    /// judged unread for time the client spent waiting on us.
    fn answering(mut self) -> Self {
        self.answering = true;
        self.activity.answering.fetch_add(1, Ordering::Relaxed);
        self.activity.progress();
        self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.activity.in_flight.fetch_sub(1, Ordering::Relaxed);
        if self.answering {
            self.activity.answering.fetch_sub(1, Ordering::Relaxed);
        }
        self.activity.progress();
    }
}

/// One accepted connection.
struct Connection {
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    refusals: Arc<Refusals>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(
        self,
        builder: &auto::Builder<TokioExecutor>,
        tcp: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        app: Router,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) {
        let service = {
            let (activity, peer, stall) =
                (Arc::clone(&self.activity), self.peer, self.limits.stall);
            let refusals = Arc::clone(&self.refusals);
            hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let in_flight = InFlight::start(&activity);
                let mut request = request.map(|body| {
                    axum::body::Body::new(TimedBody {
                        inner: body,
                        activity: Arc::clone(&activity),
                        stall,
                        timer: None,
                        refusals: Arc::clone(&refusals),
                        peer,
                    })
                });
                request.extensions_mut().insert(ConnectInfo(peer));
                let mut app = app.clone();
                async move {
                    let response = tower_service::Service::call(&mut app, request).await?;
                    let in_flight = in_flight.answering();
                    Ok::<_, Infallible>(response.map(|body| Answer {
                        inner: body,
                        _in_flight: in_flight,
                    }))
                }
            })
        };
        let io = TokioIo::new(crate::parse_errors::JsonParseErrors::new(tcp));
        let connection = builder.serve_connection(io, service);
        let mut connection = std::pin::pin!(connection);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut closing: Option<Instant> = None;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                changed = stopping.changed(), if closing.is_none() => {
                    if changed.is_err() || *stopping.borrow() {
                        connection.as_mut().graceful_shutdown();
                        closing = Some(Instant::now());
                    }
                }
                _ = tick.tick() => {
                    if let Some(since) = closing {
                        if since.elapsed() > DRAIN {
                            return;
                        }
                        continue;
                    }
                    let activity = &self.activity;
                    let quiet = activity.since_progress();
                    if activity.answering.load(Ordering::Relaxed) > 0 && quiet > self.limits.stall {
                        self.refusals.refuse(
                            "stalled",
                            format_args!("{} has not read its answer for {quiet:?}; closed", self.peer),
                        );
                        return;
                    }
                    if activity.in_flight.load(Ordering::Relaxed) == 0 && quiet > self.limits.idle {
                        connection.as_mut().graceful_shutdown();
                        closing = Some(Instant::now());
                    }
                }
            }
        }
    }
}

/// A request body that fails when its next bytes do not arrive within
/// the stall time (the answer is 408), and counts arrivals as progress.
struct TimedBody {
    inner: hyper::body::Incoming,
    activity: Arc<Activity>,
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    refusals: Arc<Refusals>,
    peer: SocketAddr,
}

/// A request body stopped arriving for longer than the stall time.
#[derive(Debug, thiserror::Error)]
#[error("no request body bytes arrived for {0:?}")]
pub(crate) struct BodyTimeout(pub(crate) Duration);

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                this.activity.progress();
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let stall = this.stall;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.refusals.refuse(
                        "body_timeout",
                        format_args!("{} sent no body bytes for {stall:?}", this.peer),
                    );
                    return Poll::Ready(Some(Err(Box::new(BodyTimeout(stall)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer on its way: progress each time the client takes a frame, and
/// its request in flight until it ends.
struct Answer {
    inner: axum::body::Body,
    _in_flight: InFlight,
}

impl Body for Answer {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if polled.is_ready() {
            self._in_flight.activity.progress();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
