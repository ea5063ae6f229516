//! The ceiling: an empty unary RPC on plain tonic (no auth, no metrics, no
//! logs), served by this binary in a process of its own like a service,
//! so GetProduct can be read as a fraction of what the transport allows.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::{Request, Response, Status};

use crate::BenchError;

/// The generated ceiling service.
pub mod pb {
    #![allow(unreachable_pub, missing_docs, clippy::all)]
    tonic::include_proto!("oms.bench.v1");
}

struct Empty;

#[tonic::async_trait]
impl pb::ceiling_server::Ceiling for Empty {
    async fn ping(&self, _: Request<()>) -> Result<Response<()>, Status> {
        Ok(Response::new(()))
    }
}

/// Serves the ceiling on `addr` until killed, printing the bound address
/// on stdout first (the bench reads it).
pub async fn serve(addr: SocketAddr) -> Result<(), BenchError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| BenchError::Setup(format!("ceiling: cannot bind {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| BenchError::Setup(format!("ceiling: {e}")))?;
    println!("{bound}");
    // The same transport settings as oms_runtime::server gives the services.
    tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(pb::ceiling_server::CeilingServer::new(Empty))
        .serve_with_incoming(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        )
        .await
        .map_err(|e| BenchError::Setup(format!("ceiling: {e}")))
}

/// A helper server of this bench (the ceiling, the forwarder) running as
/// a child process, so its CPU is its own and not the load's.
pub struct HelperProcess {
    child: tokio::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl HelperProcess {
    /// Starts `oms-bench <args>` (this same executable), which prints the
    /// address it bound on its first line.
    pub async fn start(what: &str, args: &[&str]) -> Result<Self, BenchError> {
        let exe = std::env::current_exe()
            .map_err(|e| BenchError::Setup(format!("cannot find this executable: {e}")))?;
        let mut child = tokio::process::Command::new(exe)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::Setup(format!("cannot start the {what}: {e}")))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Setup(format!("the {what} has no stdout")))?;
        let mut first = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            BufReader::new(stdout).read_line(&mut first),
        )
        .await
        .map_err(|_| BenchError::Setup(format!("the {what} did not start within 10 s")))?
        .map_err(|e| BenchError::Setup(format!("{what}: {e}")))?;
        let addr = first.trim().parse().map_err(|_| {
            BenchError::Setup(format!("the {what} printed {first:?}, not its address"))
        })?;
        Ok(Self { child, addr })
    }

    /// Starts `oms-bench ceiling-server`.
    pub async fn ceiling() -> Result<Self, BenchError> {
        Self::start(
            "ceiling server",
            &["ceiling-server", "--addr", "127.0.0.1:0"],
        )
        .await
    }

    /// The process ID, for CPU and RSS readings.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}
