//! Every gRPC client channel of the mesh, built in one place: a peer
//! `host:port` is resolved to all of its addresses (A and AAAA) and again
//! every `OMS_RESOLVE_INTERVAL`, and calls spread over one HTTP/2
//! connection per address, so every replica behind a headless Service (or
//! a Consul name) takes its share instead of the one a single connection
//! would pin.
//!
//! Spreading is tonic's balanced channel: tower's power-of-two-choices
//! balancer over the addresses it holds. Tonic reports every endpoint's
//! load as equal, so each call goes to one of two random endpoints: on
//! replicas of equal size that spreads evenly, and it needs no state per
//! call. A lazy endpoint whose connection fails still looks ready to the
//! balancer (its calls fail), so each round also tries a TCP connection
//! to every address: one that refuses (a replica stopping, an address
//! family it does not listen on) leaves the set until it accepts again.
//! When none accepts, all stay, so calls fail fast rather than wait.
//!
//! A name that stops resolving (or resolves to nothing) keeps its last
//! addresses and is logged at WARN once; an IP literal is one endpoint
//! and is never resolved.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use oms_config::{PeerAddr, ResolveConfig};
use tokio::sync::mpsc::Sender;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};

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
    /// The name server could not be set up.
    #[error("cannot ask the name server {server}: {reason}")]
    Resolver {
        /// `OMS_DNS_SERVER`.
        server: SocketAddr,
        /// What went wrong.
        reason: String,
    },
}

/// A channel to `peer`, connecting lazily. A name is followed by a task
/// of its own (resolving it now and every `resolve.interval`) that stops
/// when the last clone of the channel is dropped; so this needs a Tokio
/// runtime.
pub fn balanced(
    peer: &PeerAddr,
    resolve: ResolveConfig,
    options: ChannelOptions,
) -> Result<Channel, ChannelError> {
    let origin: tonic::transport::Uri =
        peer.uri()
            .parse()
            .map_err(|e: http::uri::InvalidUri| ChannelError::Uri {
                peer: peer.to_string(),
                reason: e.to_string(),
            })?;
    if let Ok(ip) = peer.host().parse::<IpAddr>() {
        return Ok(endpoint(SocketAddr::new(ip, peer.port()), &origin, options)?.connect_lazy());
    }
    let lookup = Lookup::new(resolve.dns_server)?;
    let (channel, changes) = Channel::balance_channel::<SocketAddr>(64);
    tokio::spawn(follow(
        Followed {
            host: peer.host().to_owned(),
            port: peer.port(),
            origin,
            options,
        },
        lookup,
        resolve.interval,
        changes,
    ));
    Ok(channel)
}

/// One address's endpoint. The origin stays the peer's name, so the
/// HTTP/2 `:authority` (and later TLS) name the service, not the address.
fn endpoint(
    addr: SocketAddr,
    origin: &tonic::transport::Uri,
    options: ChannelOptions,
) -> Result<Endpoint, ChannelError> {
    let mut endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| ChannelError::Uri {
            peer: addr.to_string(),
            reason: e.to_string(),
        })?
        .origin(origin.clone())
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true);
    if let Some(timeout) = options.call_timeout {
        endpoint = endpoint.timeout(timeout);
    }
    Ok(endpoint)
}

/// What a followed name connects to.
struct Followed {
    host: String,
    port: u16,
    origin: tonic::transport::Uri,
    options: ChannelOptions,
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

/// Resolves `followed` now and every `interval`, telling the balancer of
/// each address that came or went, until the channel is dropped.
async fn follow(
    followed: Followed,
    lookup: Lookup,
    interval: Duration,
    changes: Sender<Change<SocketAddr, Endpoint>>,
) {
    let peer = format!("{}:{}", followed.host, followed.port);
    let mut current: BTreeSet<SocketAddr> = BTreeSet::new();
    let mut failing = false;
    loop {
        match lookup.addresses(&followed.host, followed.port).await {
            Ok(resolved) if !resolved.is_empty() => {
                let found = answering(resolved, followed.options.connect_timeout).await;
                if failing {
                    tracing::info!(
                        peer,
                        addresses = found.len(),
                        "the peer's name resolves again"
                    );
                    failing = false;
                }
                if found != current {
                    if apply(&followed, &current, &found, &changes).await.is_err() {
                        return;
                    }
                    tracing::info!(peer, addresses = ?found, "the peer's addresses changed");
                    current = found;
                }
            }
            outcome => {
                metrics::counter!("oms_peer_resolve_failures_total", "peer" => peer.clone())
                    .increment(1);
                if !failing {
                    let why = outcome.err().unwrap_or_else(|| "no addresses".to_owned());
                    tracing::warn!(
                        peer,
                        error = %why,
                        kept = current.len(),
                        "cannot resolve the peer's name; keeping its last addresses"
                    );
                    failing = true;
                }
            }
        }
        tokio::select! {
            () = changes.closed() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The addresses of `resolved` that accept a TCP connection within
/// `timeout`, tried at once; all of them when none does.
async fn answering(resolved: BTreeSet<SocketAddr>, timeout: Duration) -> BTreeSet<SocketAddr> {
    let tries = resolved.iter().map(|addr| async move {
        let accepted = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
            .await
            .is_ok_and(|connected| connected.is_ok());
        accepted.then_some(*addr)
    });
    let accepting: BTreeSet<SocketAddr> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .flatten()
        .collect();
    if accepting.is_empty() {
        resolved
    } else {
        accepting
    }
}

/// Sends the balancer what changed from `current` to `found`; an error
/// means the channel is gone.
async fn apply(
    followed: &Followed,
    current: &BTreeSet<SocketAddr>,
    found: &BTreeSet<SocketAddr>,
    changes: &Sender<Change<SocketAddr, Endpoint>>,
) -> Result<(), ()> {
    for gone in current.difference(found) {
        changes.send(Change::Remove(*gone)).await.map_err(drop)?;
    }
    for new in found.difference(current) {
        // An address makes a URI; were it ever not to, it is skipped.
        if let Ok(endpoint) = endpoint(*new, &followed.origin, followed.options) {
            changes
                .send(Change::Insert(*new, endpoint))
                .await
                .map_err(drop)?;
        }
    }
    Ok(())
}
