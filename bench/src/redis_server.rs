//! A Redis server of the bench's own (`redis-server` from PATH) in a
//! scratch directory, so the chaos scenario can stop and start it without
//! touching a Redis anybody else uses. Append-only file on: a stop and a
//! start is a restart, not a wipe.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::BenchError;

/// A running (or stopped) redis-server.
pub struct RedisServer {
    addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one in `dir` on a free port of 127.0.0.1, and waits until it
    /// answers PING.
    pub async fn start(dir: PathBuf) -> Result<Self, BenchError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", dir.display())))?;
        // redis-server cannot report a port it picked: take a free one
        // from the kernel and hand it over (the bench's only such probe).
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| BenchError::Setup(format!("no free port for Redis: {e}")))?;
        let mut server = Self {
            addr,
            dir,
            child: None,
        };
        server.resume().await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Stops it (SIGKILL: its clients see it vanish; the append-only file
    /// keeps what was written up to the last second).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Starts it again on the same port and data, and waits until it
    /// answers PING (at most 20 s).
    pub async fn resume(&mut self) -> Result<(), BenchError> {
        let log = std::fs::File::create(self.dir.join("redis.log"))
            .map_err(|e| BenchError::Setup(format!("cannot create Redis's log: {e}")))?;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            .args(["--save", "", "--appendonly", "yes", "--dir"])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                BenchError::Setup(format!(
                    "cannot start redis-server (the chaos scenario needs it on PATH): {e}"
                ))
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.answers_ping().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!(
                    "redis-server on {} did not answer PING within 20 s",
                    self.addr
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `connected_clients` from `INFO clients` (this probe's own
    /// connection included), or `None` if it does not answer.
    pub async fn connected_clients(&self) -> Option<i64> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
        stream.write_all(b"INFO clients\r\n").await.ok()?;
        let mut reply = vec![0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut reply))
            .await
            .ok()?
            .ok()?;
        let text = String::from_utf8_lossy(reply.get(..read)?).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
    }

    async fn answers_ping(&self) -> bool {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let Ok(mut stream) = tokio::net::TcpStream::connect(self.addr).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut reply)).await,
            Ok(Ok(_))
        ) && &reply == b"+PONG\r\n"
    }
}
