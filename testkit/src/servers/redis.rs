//! A Redis server of a test's or the bench's own (`redis-server` from
//! PATH), so the chaos scenario can stop and start it. Append-only file
//! on: a stop and a start is a restart, not a wipe. With TLS, it speaks
//! only TLS (no plaintext port) and asks clients for no certificate.

use std::path::PathBuf;
use std::time::Duration;

use super::SetupError;
use super::peer::{Peer, find_program};

/// A running (or stopped) redis-server.
pub struct RedisServer {
    peer: Peer,
    tls: bool,
}

impl RedisServer {
    /// Starts one in `dir` on a free port of 127.0.0.1, and waits until it
    /// answers PING.
    pub async fn start(dir: PathBuf) -> Result<Self, SetupError> {
        Self::start_with(dir, None).await
    }

    /// [`RedisServer::start`], serving TLS only when `tls` is given (ready
    /// once its port accepts connections).
    pub async fn start_with(
        dir: PathBuf,
        tls: Option<super::ServerTls>,
    ) -> Result<Self, SetupError> {
        let program = find_program("redis-server")
            .ok_or_else(|| SetupError("the chaos scenario needs redis-server on PATH".into()))?;
        let data = dir.as_os_str().to_owned();
        let encrypted = tls.is_some();
        let peer = Peer::new("redis-server", program, dir, move |addr| {
            let port: Vec<std::ffi::OsString> = match &tls {
                None => vec!["--port".into(), addr.port().to_string().into()],
                Some(tls) => vec![
                    "--port".into(),
                    "0".into(),
                    "--tls-port".into(),
                    addr.port().to_string().into(),
                    "--tls-cert-file".into(),
                    tls.cert.clone().into(),
                    "--tls-key-file".into(),
                    tls.key.clone().into(),
                    "--tls-ca-cert-file".into(),
                    tls.ca.clone().into(),
                    "--tls-auth-clients".into(),
                    "no".into(),
                ],
            };
            let mut args: Vec<std::ffi::OsString> = vec!["--bind".into(), "127.0.0.1".into()];
            args.extend(port);
            args.extend::<[std::ffi::OsString; 6]>([
                "--save".into(),
                "".into(),
                "--appendonly".into(),
                "yes".into(),
                "--dir".into(),
                data.clone(),
            ]);
            (args, Vec::new())
        })?;
        let mut server = Self {
            peer,
            tls: encrypted,
        };
        server.resume().await?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://localhost:PORT` with TLS.
    pub fn url(&self) -> String {
        if self.tls {
            format!("rediss://localhost:{}", self.peer.addr().port())
        } else {
            format!("redis://{}", self.peer.addr())
        }
    }

    /// Stops it (SIGKILL: the append-only file keeps what was written up
    /// to the last second).
    pub async fn stop(&mut self) {
        self.peer.kill().await;
    }

    /// Starts it again on the same port and data, and waits until it
    /// answers PING.
    pub async fn resume(&mut self) -> Result<(), SetupError> {
        if self.tls {
            self.peer.start(super::peer::accepts).await
        } else {
            self.peer.start(answers_ping).await
        }
    }

    /// `connected_clients` from `INFO clients` (this probe's own
    /// connection included), or `None` if it does not answer.
    pub async fn connected_clients(&self) -> Option<i64> {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let mut stream = tokio::net::TcpStream::connect(self.peer.addr())
            .await
            .ok()?;
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
}

async fn answers_ping(addr: std::net::SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
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
