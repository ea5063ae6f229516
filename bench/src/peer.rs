//! A server process of the bench's own (Redis, MariaDB, the Kafka broker)
//! in a scratch directory on a port of 127.0.0.1, which the chaos scenario
//! can kill and start again on the same port and data without touching a
//! server anybody else uses.

use std::ffi::OsString;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::BenchError;

/// How long a peer may take to answer after it is started.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a stopped peer may take to exit before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// One peer process: how to start it, and the running child if any.
pub struct Peer {
    name: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Peer {
    /// A peer `name` that runs `program` in `dir` (created) on a free
    /// port of 127.0.0.1; not started yet. The arguments and environment
    /// come later, when they can name the port.
    pub fn new(name: &'static str, program: PathBuf, dir: PathBuf) -> Result<Self, BenchError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", dir.display())))?;
        // These servers cannot report a port they picked: take a free one
        // from the kernel and hand it over (a small race, fine for a bench).
        // It runs in `dir`: a relative path given by the user is from here.
        let program = std::path::absolute(&program).unwrap_or(program);
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| BenchError::Setup(format!("no free port for {name}: {e}")))?;
        Ok(Self {
            name,
            program,
            args: Vec::new(),
            env: Vec::new(),
            addr,
            dir,
            child: None,
            starts: 0,
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its scratch directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What it is started with, every time.
    pub fn command(&mut self, args: Vec<OsString>, env: Vec<(String, String)>) {
        self.args = args;
        self.env = env;
    }

    /// Starts it (its output in `<name>.<n>.log` in its directory), and
    /// waits, polling, until `ready` says it answers.
    pub async fn start<F, Fut>(&mut self, ready: F) -> Result<(), BenchError>
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = bool>,
    {
        self.starts += 1;
        let log_path = self.dir.join(format!("{}.{}.log", self.name, self.starts));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| BenchError::Setup(format!("cannot create {}: {e}", log_path.display())))?;
        let stderr = log
            .try_clone()
            .map_err(|e| BenchError::Setup(format!("{}: {e}", log_path.display())))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                BenchError::Setup(format!(
                    "cannot start {} ({}): {e}",
                    self.name,
                    self.program.display()
                ))
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if ready(self.addr).await {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(BenchError::Setup(format!(
                    "{} exited with {status} while starting; see {}",
                    self.name,
                    log_path.display()
                )));
            }
            if Instant::now() > deadline {
                return Err(BenchError::Setup(format!(
                    "{} on {} did not answer within {READY_WITHIN:?}; see {}",
                    self.name,
                    self.addr,
                    log_path.display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops it (SIGTERM), and kills it if it has not exited within
    /// [`STOP_WITHIN`].
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = signal("-TERM", pid);
            }
            if tokio::time::timeout(STOP_WITHIN, child.wait())
                .await
                .is_err()
            {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }

    /// Kills it (SIGKILL: its clients see it vanish, as in a crash).
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
}

/// Whether something accepts TCP connections at `addr`.
pub async fn accepts(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// `name` on PATH or in the usual system directories (mariadbd lives in
/// /usr/sbin, which a user's PATH may lack).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Sends `which` (e.g. `-STOP`) to `pid` with kill(1): the bench holds no
/// unsafe code for libc's kill(2).
pub fn signal(which: &str, pid: u32) -> Result<(), BenchError> {
    let status = std::process::Command::new("kill")
        .arg(which)
        .arg(pid.to_string())
        .status()
        .map_err(|e| BenchError::Setup(format!("kill {which} {pid}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(BenchError::Setup(format!("kill {which} {pid}: {status}")))
    }
}
