//! A server process of the bench's own (Redis, MariaDB, the Kafka broker)
//! in a scratch directory on a port of 127.0.0.1, which the chaos scenario
//! can kill and start again on the same port and data without touching a
//! server anybody else uses.
//!
//! These servers cannot report a port they picked themselves, so each is
//! given one the kernel chose, and is ready only when the peer's own
//! process holds it (its listening socket is among the process's open
//! files): a server elsewhere that took the port is never mistaken for it.
//! A first start that loses the port that way tries another.

use std::ffi::OsString;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use super::SetupError;

/// How long a peer may take to answer after it is started.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a stopped peer may take to exit before it is killed.
const STOP_WITHIN: Duration = Duration::from_secs(10);
/// Ports a first start tries before giving up.
const FIRST_START_PORTS: u32 = 5;

/// The arguments and environment of a peer listening at an address.
type CommandFor = Box<dyn Fn(SocketAddr) -> (Vec<OsString>, Vec<(String, String)>) + Send + Sync>;

/// One peer process: how to start it, and the running child if any.
pub struct Peer {
    name: &'static str,
    program: PathBuf,
    command: CommandFor,
    addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
    starts: u32,
}

impl Peer {
    /// A peer `name` that runs `program` in `dir` (created) on a port of
    /// 127.0.0.1, with the arguments and environment `command` gives for
    /// its address; not started yet.
    pub fn new(
        name: &'static str,
        program: PathBuf,
        dir: PathBuf,
        command: impl Fn(SocketAddr) -> (Vec<OsString>, Vec<(String, String)>) + Send + Sync + 'static,
    ) -> Result<Self, SetupError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| SetupError(format!("cannot create {}: {e}", dir.display())))?;
        // It runs in `dir`: a relative path given by the user is from here.
        let program = std::path::absolute(&program).unwrap_or(program);
        Ok(Self {
            name,
            program,
            command: Box::new(command),
            addr: kernel_port(name)?,
            dir,
            child: None,
            starts: 0,
        })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the arguments and environment its next start gets (a
    /// proxy whose upstream's port is known only once the upstream runs).
    pub fn set_command(
        &mut self,
        command: impl Fn(SocketAddr) -> (Vec<OsString>, Vec<(String, String)>) + Send + Sync + 'static,
    ) {
        self.command = Box::new(command);
    }

    /// Starts it (its output in `<name>.<n>.log` in its directory), and
    /// waits, polling, until it holds its port and `ready` says it answers.
    /// A first start whose port another process took tries another port;
    /// a restart keeps its port (its clients know it) or fails.
    pub async fn start<F, Fut>(&mut self, ready: F) -> Result<(), SetupError>
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = bool>,
    {
        let first = self.starts == 0;
        let mut tries = 1;
        loop {
            match self.start_once(&ready).await {
                Err(Start::LostPort(why)) if first && tries < FIRST_START_PORTS => {
                    eprintln!("{why}; trying another port");
                    self.kill().await;
                    self.addr = kernel_port(self.name)?;
                    tries += 1;
                }
                Err(Start::LostPort(why) | Start::Failed(why)) => {
                    self.kill().await;
                    return Err(SetupError(why));
                }
                Ok(()) => return Ok(()),
            }
        }
    }

    async fn start_once<F, Fut>(&mut self, ready: &F) -> Result<(), Start>
    where
        F: Fn(SocketAddr) -> Fut,
        Fut: Future<Output = bool>,
    {
        self.starts += 1;
        let log_path = self.dir.join(format!("{}.{}.log", self.name, self.starts));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| Start::Failed(format!("cannot create {}: {e}", log_path.display())))?;
        let stderr = log
            .try_clone()
            .map_err(|e| Start::Failed(format!("{}: {e}", log_path.display())))?;
        let (args, env) = (self.command)(self.addr);
        let child = Command::new(&self.program)
            .args(&args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                Start::Failed(format!(
                    "cannot start {} ({}): {e}",
                    self.name,
                    self.program.display()
                ))
            })?;
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let holds = pid.is_some_and(|pid| holds_port(pid, self.addr.port()));
            if holds && ready(self.addr).await {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                // Most often the port was taken between the kernel's
                // choice and the server's bind.
                let why = format!(
                    "{} exited with {status} while starting on {}; see {}",
                    self.name,
                    self.addr,
                    log_path.display()
                );
                return Err(if port_taken(self.addr) {
                    Start::LostPort(why)
                } else {
                    Start::Failed(why)
                });
            }
            if Instant::now() > deadline {
                let why = format!(
                    "{} on {} did not answer within {READY_WITHIN:?}; see {}",
                    self.name,
                    self.addr,
                    log_path.display()
                );
                return Err(if holds {
                    Start::Failed(why)
                } else {
                    Start::LostPort(why)
                });
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

/// Why one start failed.
enum Start {
    /// Another process holds the port.
    LostPort(String),
    /// Anything else.
    Failed(String),
}

/// A port of 127.0.0.1 the kernel picked as free just now.
fn kernel_port(name: &str) -> Result<SocketAddr, SetupError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| SetupError(format!("no free port for {name}: {e}")))
}

/// Whether some process other than ours could bind `addr` now (it is free).
fn port_taken(addr: SocketAddr) -> bool {
    std::net::TcpListener::bind(addr).is_err()
}

/// Whether process `pid` has a socket listening on TCP `port`: the
/// inodes of `/proc/net/tcp{,6}`'s listening sockets on that port, against
/// the sockets among `/proc/<pid>/fd`. (Linux only, as is the bench.)
fn holds_port(pid: u32, port: u16) -> bool {
    const LISTEN: &str = "0A";
    let port_hex = format!(":{port:04X}");
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
                    (local.ends_with(&port_hex) && *state == LISTEN)
                        .then(|| format!("socket:[{inode}]"))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .any(|target| {
            inodes
                .iter()
                .any(|inode| target.as_os_str() == inode.as_str())
        })
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
pub fn signal(which: &str, pid: u32) -> Result<(), SetupError> {
    let status = std::process::Command::new("kill")
        .arg(which)
        .arg(pid.to_string())
        .status()
        .map_err(|e| SetupError(format!("kill {which} {pid}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(SetupError(format!("kill {which} {pid}: {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_holds_the_ports_it_listens_on_and_no_others() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(holds_port(std::process::id(), port));
        // pid 1 (init) does not listen on a port this test just picked.
        assert!(!holds_port(1, port));
        drop(listener);
        assert!(!holds_port(std::process::id(), port));
    }
}
