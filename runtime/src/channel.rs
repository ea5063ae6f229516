//! Every gRPC client channel of the mesh, built in one place: a peer
//! `host:port` is resolved to all of its addresses (A and AAAA), again
//! every `OMS_RESOLVE_INTERVAL` and at once when a connection to one of
//! them fails, and calls spread over one HTTP/2 connection per address, so
//! every replica behind a headless Service (or a Consul name) takes its
//! share instead of the one a single connection would pin.
//!
//! Spreading is power of two choices on pending requests (as tower's p2c
//! balancer does, but counting our own calls: tonic's connections report
//! no load): each call looks at two random addresses and goes to the one
//! with fewer calls awaiting their answer. Round robin would spread equal
//! replicas as evenly, but keeps sending a slow or paused replica its
//! full share; counting pending calls steers away from it at once, and
//! needs no order shared between calls.
//!
//! An address whose connection is refused leaves the set until it accepts
//! again: each round tries a TCP connection to every address, and a call
//! whose connection fails marks its address at once. When none accepts,
//! all stay, so calls fail fast rather than wait. A read (a `Get`, `List`,
//! `Watch`, `Download` or health `Check` method) whose connection failed
//! never reached a server, so it is sent once more to another address;
//! writes are left to their callers (the saga retries its own, on request
//! IDs).
//!
//! A name that stops resolving (or resolves to nothing) keeps its last
//! addresses and is logged at WARN once; an IP literal is one endpoint
//! and is never resolved.
//!
//! Over TLS (a [`Dial`] with a client certificate config), every
//! connection verifies the server's certificate for the host dialled —
//! the Service's name, never the address it resolved to — and presents
//! the process's own.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http_body_util::BodyExt;
use oms_config::{PeerAddr, ResolveConfig};
use tokio::sync::Notify;
use tonic::body::Body;
use tonic::transport::{Channel, Endpoint};

/// An error of a call through a [`Balanced`] channel (tonic turns it into
/// a `Status`: a connection that failed is UNAVAILABLE).
pub type CallError = Box<dyn std::error::Error + Send + Sync>;

/// How each connection of a channel behaves.
#[derive(Debug, Clone, Copy)]
pub struct ChannelOptions {
    /// The most a connection attempt may take.
    pub connect_timeout: Duration,
    /// The most a call may take, when set.
    pub call_timeout: Option<Duration>,
}

impl Default for ChannelOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            call_timeout: None,
        }
    }
}

/// Why a channel could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The address makes no URI (the parsed `PeerAddr` rules this out).
    #[error("{peer} is not a URI: {reason}")]
    Uri {
        /// The peer.
        peer: String,
        /// What was wrong.
        reason: String,
    },
    /// TLS is on and the host makes no name a certificate can be for.
    #[error(transparent)]
    TlsName(#[from] crate::tls::connect::BadName),
    /// The name server could not be set up.
    #[error("cannot ask the name server {server}: {reason}")]
    Resolver {
        /// `OMS_DNS_SERVER`.
        server: SocketAddr,
        /// What went wrong.
        reason: String,
    },
}

/// How a process dials its peers: how names are resolved, and TLS (with
/// the process's certificate) when the mesh is encrypted.
#[derive(Debug, Clone, Default)]
pub struct Dial {
    /// How peers' names are resolved.
    pub resolve: ResolveConfig,
    /// TLS of every connection, when set (`OMS_TLS_CA`).
    pub tls: Option<crate::tls::Tls>,
}

impl Dial {
    /// How `service` dials as configured: TLS on when `tls` says, its
    /// certificate files loaded now and followed from then on (so this
    /// needs a Tokio runtime). The same [`Dial::tls`] is what the
    /// service's own listener serves.
    pub fn load(
        service: &'static str,
        resolve: ResolveConfig,
        tls: &oms_config::MeshTls,
    ) -> Result<Self, crate::tls::TlsError> {
        Ok(Self {
            resolve,
            tls: crate::tls::Tls::mesh(service, tls)?,
        })
    }
}

impl From<ResolveConfig> for Dial {
    /// Plaintext, resolving as `resolve` says.
    fn from(resolve: ResolveConfig) -> Self {
        Self { resolve, tls: None }
    }
}

/// A client channel over every address of one peer; cheap to clone (the
/// clones share the addresses and their connections). Generated clients
/// take it as their transport: `ProductServiceClient::new(balanced)`.
#[derive(Clone)]
pub struct Balanced {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Balanced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balanced")
            .field("peer", &self.shared.peer)
            .finish_non_exhaustive()
    }
}

/// A channel to `peer`, connecting lazily (over TLS when `dial.tls`
/// says, verifying `peer`'s host). A name is followed by a task of its own
/// (resolving it now, every `resolve.interval` and when a connection
/// fails) that stops once the last clone of the channel is dropped; so
/// this needs a Tokio runtime.
pub fn balanced(
    peer: &PeerAddr,
    dial: &Dial,
    options: ChannelOptions,
) -> Result<Balanced, ChannelError> {
    let resolve = dial.resolve;
    let tls = match dial.tls.clone().filter(|tls| tls.client_config().is_some()) {
        Some(tls) => Some((crate::tls::connect::server_name(peer.host())?, tls)),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let origin: tonic::transport::Uri =
        format!("{scheme}://{peer}")
            .parse()
            .map_err(|e: http::uri::InvalidUri| ChannelError::Uri {
                peer: peer.to_string(),
                reason: e.to_string(),
            })?;
    let shared = Arc::new(Shared {
        peer: peer.to_string(),
        origin,
        options,
        tls,
        members: RwLock::new(Arc::new(Vec::new())),
        changed: Notify::new(),
        wake: Arc::new(Notify::new()),
    });
    if let Ok(ip) = peer.host().parse::<IpAddr>() {
        let member = shared.member(SocketAddr::new(ip, peer.port()))?;
        shared.store(vec![Arc::new(member)]);
        return Ok(Balanced { shared });
    }
    let lookup = Lookup::new(resolve.dns_server)?;
    tokio::spawn(follow(
        Arc::downgrade(&shared),
        Arc::clone(&shared.wake),
        peer.host().to_owned(),
        peer.port(),
        lookup,
        resolve.interval,
    ));
    Ok(Balanced { shared })
}

impl tower_service::Service<http::Request<Body>> for Balanced {
    type Response = http::Response<Body>;
    type Error = CallError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Each call waits for its own address's connection.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        Box::pin(Arc::clone(&self.shared).send(request))
    }
}

/// What the clones of one channel share with each other and with the task
/// following the name.
struct Shared {
    /// `host:port`, for logs and metrics.
    peer: String,
    /// The HTTP/2 `:authority` names the service, not an address.
    origin: tonic::transport::Uri,
    options: ChannelOptions,
    /// TLS of every connection, when on, with the name dialled (what a
    /// server's certificate must be for).
    tls: Option<(rustls::pki_types::ServerName<'static>, crate::tls::Tls)>,
    /// The addresses calls go to; replaced whole when the set changes, so a
    /// call picks from one consistent set without holding the lock.
    members: RwLock<Arc<Vec<Arc<Member>>>>,
    /// Told when the set changes (calls made before the first answer wait
    /// for it).
    changed: Notify,
    /// Asks the following task for a round now.
    wake: Arc<Notify>,
}

/// One address of the peer, with its connection.
struct Member {
    addr: SocketAddr,
    channel: Channel,
    /// Calls sent here and not yet answered.
    pending: AtomicUsize,
    /// Its connection was refused; calls go elsewhere until it accepts.
    refused: AtomicBool,
}

impl Shared {
    fn member(&self, addr: SocketAddr) -> Result<Member, ChannelError> {
        let mut endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| ChannelError::Uri {
                peer: addr.to_string(),
                reason: e.to_string(),
            })?
            .origin(self.origin.clone())
            .connect_timeout(self.options.connect_timeout)
            .tcp_nodelay(true);
        if let Some(timeout) = self.options.call_timeout {
            endpoint = endpoint.timeout(timeout);
        }
        let channel = match &self.tls {
            None => endpoint.connect_lazy(),
            Some((name, tls)) => endpoint.connect_with_connector_lazy(
                crate::tls::connect::Connector::new(addr, name.clone(), tls.clone()),
            ),
        };
        Ok(Member {
            addr,
            channel,
            pending: AtomicUsize::new(0),
            refused: AtomicBool::new(false),
        })
    }

    fn members(&self) -> Arc<Vec<Arc<Member>>> {
        Arc::clone(
            &self
                .members
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Makes `members` the set calls pick from (waiters are told by the
    /// caller, once the set is ready to use).
    fn store(&self, members: Vec<Arc<Member>>) -> Arc<Vec<Arc<Member>>> {
        let members = Arc::new(members);
        *self
            .members
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::clone(&members);
        members
    }

    async fn send(
        self: Arc<Self>,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, CallError> {
        let first = self.first_pick().await?;
        // Only a read with another address to go to is kept for a second
        // try: the rest (every call to an IP literal) go out as they are.
        if !is_read(request.uri().path()) || self.members().len() < 2 {
            return self.send_to(&first, request).await;
        }
        // A read's body is one small message: kept, it can be sent again.
        let (parts, body) = request.into_parts();
        let body = body.collect().await?.to_bytes();
        let copy = |body: &bytes::Bytes| {
            http::Request::from_parts(
                parts.clone(),
                Body::new(http_body_util::Full::new(body.clone())),
            )
        };
        match self.send_to(&first, copy(&body)).await {
            Err(error) if never_reached_a_server(&*error) => {
                let Some(other) = pick(&self.members(), Some(first.addr)) else {
                    return Err(error);
                };
                metrics::counter!("oms_peer_retries_total", "peer" => self.peer.clone())
                    .increment(1);
                self.send_to(&other, copy(&body)).await
            }
            answered => answered,
        }
    }

    /// The address of a call; before the name's first answer, waits for
    /// it as long as a connection may take.
    async fn first_pick(&self) -> Result<Arc<Member>, CallError> {
        let changed = self.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if let Some(member) = pick(&self.members(), None) {
            return Ok(member);
        }
        let _ = tokio::time::timeout(self.options.connect_timeout, changed).await;
        pick(&self.members(), None).ok_or_else(|| {
            tonic::Status::unavailable(format!("no address of {} is known yet", self.peer)).into()
        })
    }

    async fn send_to(
        &self,
        member: &Member,
        request: http::Request<Body>,
    ) -> Result<http::Response<Body>, CallError> {
        let _pending = Pending::count(member);
        let mut channel = member.channel.clone();
        let answered = async {
            std::future::poll_fn(|cx| tower_service::Service::poll_ready(&mut channel, cx)).await?;
            tower_service::Service::call(&mut channel, request).await
        }
        .await;
        match answered {
            Ok(response) => Ok(response),
            Err(error) => {
                if never_reached_a_server(&error) {
                    if !member.refused.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            peer = %self.peer,
                            address = %member.addr,
                            error = %error,
                            "a connection to the peer failed; its other addresses take the calls"
                        );
                        self.wake.notify_one();
                    }
                } else {
                    // The connection broke under the call (a replica gone
                    // mid-call, or the call's own timeout): the round's
                    // probe tells which, at once.
                    self.wake.notify_one();
                }
                Err(error.into())
            }
        }
    }
}

/// Counts a call as pending on its address until it is answered.
struct Pending<'a>(&'a Member);

impl<'a> Pending<'a> {
    fn count(member: &'a Member) -> Self {
        member.pending.fetch_add(1, Ordering::Relaxed);
        Self(member)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Of two random addresses that accept connections (all, when none
/// does), the one with fewer pending calls; never `except`.
fn pick(members: &[Arc<Member>], except: Option<SocketAddr>) -> Option<Arc<Member>> {
    let others = || members.iter().filter(move |m| Some(m.addr) != except);
    let accepting: Vec<&Arc<Member>> = others()
        .filter(|m| !m.refused.load(Ordering::Relaxed))
        .collect();
    let pool = if accepting.is_empty() {
        others().collect()
    } else {
        accepting
    };
    let chosen = match pool.len() {
        0 => return None,
        1 => pool[0],
        n => {
            let a = fastrand::usize(..n);
            let mut b = fastrand::usize(..n - 1);
            if b >= a {
                b += 1;
            }
            let load = |m: &Member| m.pending.load(Ordering::Relaxed);
            if load(pool[b]) < load(pool[a]) {
                pool[b]
            } else {
                pool[a]
            }
        }
    };
    Some(Arc::clone(chosen))
}

/// Whether a gRPC method only reads (by the AIP names the contract uses),
/// so sending it twice is harmless.
fn is_read(path: &str) -> bool {
    let method = path.rsplit('/').next().unwrap_or_default();
    ["Get", "List", "Watch", "Download", "Check"]
        .iter()
        .any(|verb| method.starts_with(verb))
}

/// Whether a call failed while connecting, so no server saw it.
fn never_reached_a_server(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<tonic::ConnectError>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// Where names are looked up.
enum Lookup {
    /// The system's resolver (getaddrinfo: /etc/hosts, resolv.conf, …).
    System,
    /// One name server, asked directly over UDP (TCP when truncated).
    Server(Box<hickory_resolver::TokioResolver>),
}

impl Lookup {
    fn new(server: Option<SocketAddr>) -> Result<Self, ChannelError> {
        let Some(server) = server else {
            return Ok(Self::System);
        };
        let mut name_server = hickory_resolver::config::NameServerConfig::udp_and_tcp(server.ip());
        for connection in &mut name_server.connections {
            connection.port = server.port();
        }
        let config = hickory_resolver::config::ResolverConfig::from_name_servers(vec![name_server]);
        let mut builder = hickory_resolver::Resolver::builder_with_config(
            config,
            hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
        );
        let options = builder.options_mut();
        // Each round asks afresh: a cached answer would hide a change for
        // as long as its TTL.
        options.cache_size = 0;
        options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        options.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
        options.timeout = Duration::from_secs(2);
        options.attempts = 2;
        let resolver = builder.build().map_err(|e| ChannelError::Resolver {
            server,
            reason: e.to_string(),
        })?;
        Ok(Self::Server(Box::new(resolver)))
    }

    /// Every address of `host`, with `port`.
    async fn addresses(&self, host: &str, port: u16) -> Result<BTreeSet<SocketAddr>, String> {
        match self {
            Self::System => tokio::net::lookup_host((host, port))
                .await
                .map(Iterator::collect)
                .map_err(|e| e.to_string()),
            Self::Server(resolver) => resolver
                .lookup_ip(host)
                .await
                .map(|found| found.iter().map(|ip| SocketAddr::new(ip, port)).collect())
                .map_err(|e| e.to_string()),
        }
    }
}

/// Resolves `host` now, every `interval` and when woken, keeping the
/// channel's addresses in step, until the channel is dropped.
async fn follow(
    shared: Weak<Shared>,
    wake: Arc<Notify>,
    host: String,
    port: u16,
    lookup: Lookup,
    interval: Duration,
) {
    // A burst of failed connections asks for one round, not one each.
    const LEAST_GAP: Duration = Duration::from_millis(200);
    let mut failing = false;
    loop {
        let resolved = lookup.addresses(&host, port).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match resolved {
            Ok(resolved) if !resolved.is_empty() => {
                if failing {
                    tracing::info!(peer = %shared.peer, addresses = resolved.len(), "the peer's name resolves again");
                    failing = false;
                }
                shared.follow_round(resolved).await;
            }
            outcome => {
                metrics::counter!("oms_peer_resolve_failures_total", "peer" => shared.peer.clone())
                    .increment(1);
                if !failing {
                    let why = outcome.err().unwrap_or_else(|| "no addresses".to_owned());
                    tracing::warn!(
                        peer = %shared.peer,
                        error = %why,
                        kept = shared.members().len(),
                        "cannot resolve the peer's name; keeping its last addresses"
                    );
                    failing = true;
                }
            }
        }
        drop(shared);
        tokio::time::sleep(LEAST_GAP).await;
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(interval.saturating_sub(LEAST_GAP)) => {}
        }
    }
}

impl Shared {
    /// Makes the set `resolved`, and marks which of its addresses accept
    /// a TCP connection now (tried at once, each within the connect
    /// timeout).
    async fn follow_round(&self, resolved: BTreeSet<SocketAddr>) {
        let current = self.members();
        let known: BTreeSet<SocketAddr> = current.iter().map(|m| m.addr).collect();
        let members = if known == resolved {
            current
        } else {
            let mut next = Vec::with_capacity(resolved.len());
            for addr in &resolved {
                match current.iter().find(|m| m.addr == *addr) {
                    Some(kept) => next.push(Arc::clone(kept)),
                    // An address makes a URI; were it ever not to, it is skipped.
                    None => {
                        if let Ok(member) = self.member(*addr) {
                            next.push(Arc::new(member));
                        }
                    }
                }
            }
            tracing::info!(peer = %self.peer, addresses = ?resolved, "the peer's addresses changed");
            self.store(next)
        };
        let timeout = self.options.connect_timeout;
        let tries = members.iter().map(|member| async move {
            let accepts = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(member.addr))
                .await
                .is_ok_and(|connected| connected.is_ok());
            let was_refused = member.refused.swap(!accepts, Ordering::Relaxed);
            if was_refused && accepts {
                tracing::info!(peer = %self.peer, address = %member.addr, "an address of the peer accepts connections again");
            }
        });
        futures_util::future::join_all(tries).await;
        self.changed.notify_waiters();
    }
}
