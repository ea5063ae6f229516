//! The `healthcheck` subcommand of every binary: asks the server running
//! beside it (same container, same configuration) whether it serves, and
//! exits 0 or 1. Container health checks need no extra tool in the image.
//! With TLS on (`OMS_TLS_*` for a gRPC server, `GATEWAY_TLS_*` for the
//! gateway) the probe speaks it too: to a gRPC server as any client of
//! the mesh does (its certificate must name `localhost`), to the gateway
//! trusting exactly the certificate the gateway's files hold.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use oms_config::{ConfigError, Env};

/// How long a probe may take before the server counts as unhealthy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What a probe asks.
#[derive(Debug, Clone, Copy)]
pub enum Probe {
    /// `grpc.health.v1.Health/Check` for the whole server must say SERVING.
    Grpc,
    /// `GET <path>` must answer 200.
    Http(&'static str),
}

/// Runs the probe against the address `listen_addr` reads from the
/// environment (the same variable the server listens on), printing one
/// line and returning the exit code.
pub fn run(
    name: &str,
    probe: Probe,
    listen_addr: impl FnOnce(&Env) -> Result<SocketAddr, ConfigError>,
) -> ExitCode {
    let env = Env::process();
    let configured = listen_addr(&env).and_then(|addr| {
        let tls = match probe {
            Probe::Grpc => ProbeTls::Mesh(oms_config::MeshTls::from_env(&env)?),
            Probe::Http(_) => ProbeTls::Public(oms_config::PublicTls::from_env(&env)?),
        };
        Ok((reachable(addr), tls))
    });
    let (addr, tls) = match configured {
        Ok(configured) => configured,
        Err(e) => {
            eprintln!("{name} healthcheck: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name} healthcheck: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let checked = runtime.block_on(async {
        tokio::time::timeout(PROBE_TIMEOUT, check_over(addr, probe, &tls))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")))
    });
    match checked {
        Ok(()) => {
            println!("{name} at {addr}: healthy");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("{name} at {addr}: unhealthy: {why}");
            ExitCode::FAILURE
        }
    }
}

/// A server listening on all interfaces is reached over loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// The TLS a probe speaks, as the server's own variables say.
enum ProbeTls {
    Mesh(oms_config::MeshTls),
    Public(Option<oms_config::PublicTls>),
}

/// Asks the server at `addr` (plaintext).
pub async fn check(addr: SocketAddr, probe: Probe) -> Result<(), String> {
    match probe {
        Probe::Grpc => check_grpc(addr, None).await,
        Probe::Http(path) => check_http(addr, path).await,
    }
}

async fn check_over(addr: SocketAddr, probe: Probe, tls: &ProbeTls) -> Result<(), String> {
    match (probe, tls) {
        (Probe::Grpc, ProbeTls::Mesh(mesh)) => {
            let tls = crate::tls::Tls::mesh("healthcheck", mesh).map_err(|e| e.to_string())?;
            check_grpc(addr, tls).await
        }
        (Probe::Http(path), ProbeTls::Public(Some(public))) => {
            check_https(addr, path, public).await
        }
        (probe, _) => check(addr, probe).await,
    }
}

async fn check_grpc(addr: SocketAddr, tls: Option<crate::tls::Tls>) -> Result<(), String> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let channel = match tls.filter(|tls| tls.client_config().is_some()) {
        None => tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("cannot connect: {e}"))?,
        Some(tls) => {
            let name = crate::tls::connect::server_name("localhost").map_err(|e| e.to_string())?;
            tonic::transport::Endpoint::from_static("https://localhost")
                .connect_with_connector(crate::tls::connect::Connector::new(addr, name, tls))
                .await
                .map_err(|e| format!("cannot connect over TLS: {e} ({})", source_of(&e)))?
        }
    };
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|e| format!("health check failed: {}", e.message()))?
        .into_inner()
        .status();
    match status {
        ServingStatus::Serving => Ok(()),
        other => Err(format!("status {}", other.as_str_name())),
    }
}

/// The innermost cause of an error (tonic's transport errors say only
/// "transport error" on top).
fn source_of(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

async fn check_http(addr: SocketAddr, path: &str) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    get(stream, addr, path).await
}

/// `GET path` over TLS, trusting only the certificate in the server's own
/// file: the probe talks to the process beside it, whatever CA signed it.
async fn check_https(
    addr: SocketAddr,
    path: &str,
    public: &oms_config::PublicTls,
) -> Result<(), String> {
    let pinned = crate::tls::pinned_client(&public.identity.cert).map_err(|e| e.to_string())?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let name = crate::tls::connect::server_name("localhost").map_err(|e| e.to_string())?;
    let stream = tokio_rustls::TlsConnector::from(pinned)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    get(stream, addr, path).await
}

async fn get(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    addr: SocketAddr,
    path: &str,
) -> Result<(), String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply).await {
        Ok(_) => {}
        // A TLS peer that closes without close_notify after answering.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !reply.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let reply = String::from_utf8_lossy(&reply);
    let status_line = reply.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        let body = reply.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        Err(format!("GET {path}: {status_line} {}", body.trim()))
    }
}
