//! A binary of the mesh as a child process: started with its listen
//! address at port 0, its output in a log file, and the address it got
//! read from the `oms::listen` line it logs once bound. Nothing picks a
//! port that was free a moment ago; the kernel gives each listener its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What `RUST_LOG` must let through for [`Process::wait_listening`]:
/// append it to any filter, e.g. `warn,oms::listen=info`.
pub const LISTEN_DIRECTIVE: &str = "oms::listen=info";

/// `RUST_LOG` for a child: `level` for everything, plus the listen lines.
pub fn rust_log(level: &str) -> String {
    format!("{level},{LISTEN_DIRECTIVE}")
}

/// A running child process with its log.
#[derive(Debug)]
pub struct Process {
    /// Its name, for messages.
    pub name: String,
    /// The child; killed when dropped.
    pub child: tokio::process::Child,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
}

/// Why a child could not be started or did not come up.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl Process {
    /// Starts `binary` with only `env` (and `PATH`) set, JSON logs (the
    /// caller's `LOG_FORMAT` is overridden), output to `log`.
    pub fn spawn(
        name: &str,
        binary: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        log: PathBuf,
    ) -> Result<Self, StartError> {
        let out = std::fs::File::create(&log)
            .map_err(|e| StartError(format!("cannot create {}: {e}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(|e| StartError(format!("cannot share {}: {e}", log.display())))?;
        let child = tokio::process::Command::new(binary)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env)
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StartError(format!("cannot start {}: {e}", binary.display())))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// Waits (polling its log, with a deadline) until the child says where
    /// its listener of `kind` (`grpc`, `http`, `metrics`) listens; fails
    /// at once if it exits first.
    pub async fn wait_listening(
        &mut self,
        kind: &str,
        timeout: Duration,
    ) -> Result<SocketAddr, StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(addr) = listen_addr(&text, kind) {
                return Ok(addr);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(StartError(format!(
                    "{} exited with {status} while starting: {}",
                    self.name,
                    self.log_tail()
                )));
            }
            if Instant::now() > deadline {
                return Err(StartError(format!(
                    "{} did not report a {kind} listener within {timeout:?} (is {LISTEN_DIRECTIVE} in RUST_LOG?): {}",
                    self.name,
                    self.log_tail()
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The end of its log, for error messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Kills it and waits for it to be gone.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The address in the first `oms::listen` line of `kind` in JSON `logs`.
pub fn listen_addr(logs: &str, kind: &str) -> Option<SocketAddr> {
    logs.lines()
        .filter(|line| line.contains("oms::listen"))
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["target"] == "oms::listen" && event["kind"] == kind)
        .and_then(|event| event["addr"].as_str()?.parse().ok())
}

/// The last 2,000 bytes of a log file, for error messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    let start = (start..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!("last log lines of {}:\n{}", path.display(), &text[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listen_line_of_the_asked_kind_gives_the_address() {
        let logs = concat!(
            "{\"level\":\"INFO\",\"message\":\"starting\",\"target\":\"kit\"}\n",
            "not json at all\n",
            "{\"level\":\"INFO\",\"message\":\"listening\",\"service\":\"user-svc\",\"kind\":\"metrics\",\"addr\":\"127.0.0.1:4000\",\"target\":\"oms::listen\"}\n",
            "{\"level\":\"INFO\",\"message\":\"listening\",\"service\":\"user-svc\",\"kind\":\"grpc\",\"addr\":\"127.0.0.1:4001\",\"target\":\"oms::listen\"}\n",
        );
        assert_eq!(
            listen_addr(logs, "grpc"),
            Some(SocketAddr::from(([127, 0, 0, 1], 4001)))
        );
        assert_eq!(listen_addr(logs, "metrics").map(|a| a.port()), Some(4000));
        assert_eq!(listen_addr(logs, "http"), None);
    }
}
