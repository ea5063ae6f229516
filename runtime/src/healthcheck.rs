//! The `healthcheck` subcommand of every binary: asks the server running
//! beside it (same container, same configuration) whether it serves, and
//! exits 0 or 1. Container health checks need no extra tool in the image.

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
    let addr = match listen_addr(&Env::process()) {
        Ok(addr) => reachable(addr),
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
        tokio::time::timeout(PROBE_TIMEOUT, check(addr, probe))
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

/// Asks the server at `addr`.
pub async fn check(addr: SocketAddr, probe: Probe) -> Result<(), String> {
    match probe {
        Probe::Grpc => check_grpc(addr).await,
        Probe::Http(path) => check_http(addr, path).await,
    }
}

async fn check_grpc(addr: SocketAddr) -> Result<(), String> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
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

async fn check_http(addr: SocketAddr, path: &str) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .await
        .map_err(|e| e.to_string())?;
    let reply = String::from_utf8_lossy(&reply);
    let status_line = reply.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        let body = reply.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        Err(format!("GET {path}: {status_line} {}", body.trim()))
    }
}
