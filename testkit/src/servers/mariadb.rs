//! A MariaDB server of the bench's own (`mariadb-install-db` and
//! `mariadbd`, as the Debian package installs them), so the chaos scenario
//! can kill it mid-load and start it again on the same data. Durable
//! settings as shipped (every commit flushed): a crash must lose nothing
//! a client was told was committed.

use std::path::PathBuf;

use super::SetupError;
use super::peer::{Peer, accepts, find_program};

/// A running (or killed) mariadbd.
pub struct MariadbServer {
    peer: Peer,
    /// The CA its certificate chains to, when it offers TLS.
    ca: Option<PathBuf>,
}

impl MariadbServer {
    /// Makes a data directory in `dir` and starts a server on it on a free
    /// port of 127.0.0.1, without grant tables (root, no password: it is
    /// reachable from this machine only and gone with the run).
    pub async fn start(dir: PathBuf) -> Result<Self, SetupError> {
        Self::start_with(dir, None).await
    }

    /// [`MariadbServer::start`], offering TLS with `tls`'s certificate
    /// (without grant tables a server cannot require it; clients ask).
    pub async fn start_with(
        dir: PathBuf,
        tls: Option<super::ServerTls>,
    ) -> Result<Self, SetupError> {
        let missing = |name: &str| {
            SetupError(format!(
                "the chaos scenario runs a MariaDB of its own and needs {name} \
                 (Debian: apt-get install mariadb-server)"
            ))
        };
        let install =
            find_program("mariadb-install-db").ok_or_else(|| missing("mariadb-install-db"))?;
        let server = find_program("mariadbd").ok_or_else(|| missing("mariadbd"))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| SetupError(format!("cannot create {}: {e}", dir.display())))?;
        let data = dir.join("data");
        let user = whoami();
        let installed = tokio::process::Command::new(&install)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--user={user}"))
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| SetupError(format!("cannot run {}: {e}", install.display())))?;
        if !installed.status.success() {
            return Err(SetupError(format!(
                "mariadb-install-db failed ({}): {}",
                installed.status,
                String::from_utf8_lossy(&installed.stderr)
            )));
        }
        let scratch = dir.clone();
        let ca = tls.as_ref().map(|tls| tls.ca.clone());
        let peer = Peer::new("mariadbd", server, dir, move |addr| {
            let mut args: Vec<std::ffi::OsString> = vec![
                "--no-defaults".into(),
                format!("--datadir={}", data.display()).into(),
                format!("--port={}", addr.port()).into(),
                "--bind-address=127.0.0.1".into(),
                format!("--socket={}", scratch.join("mariadbd.sock").display()).into(),
                format!("--pid-file={}", scratch.join("mariadbd.pid").display()).into(),
                "--skip-grant-tables".into(),
                format!("--user={user}").into(),
                "--skip-log-bin".into(),
                "--innodb-buffer-pool-size=128M".into(),
                "--max-connections=500".into(),
            ];
            if let Some(tls) = &tls {
                args.extend([
                    format!("--ssl-cert={}", tls.cert.display()).into(),
                    format!("--ssl-key={}", tls.key.display()).into(),
                    format!("--ssl-ca={}", tls.ca.display()).into(),
                ]);
            }
            (args, Vec::new())
        })?;
        let mut server = Self { peer, ca };
        server.resume().await?;
        Ok(server)
    }

    /// `mysql://root@127.0.0.1:PORT`, without a database; with TLS,
    /// `mysql://root@localhost:PORT?ssl-mode=VERIFY_IDENTITY&ssl-ca=…`.
    pub fn url(&self) -> String {
        match &self.ca {
            None => format!("mysql://root@{}", self.peer.addr()),
            Some(ca) => format!(
                "mysql://root@localhost:{}?ssl-mode=VERIFY_IDENTITY&ssl-ca={}",
                self.peer.addr().port(),
                ca.display()
            ),
        }
    }

    /// Kills it (SIGKILL: InnoDB recovers at the next start).
    pub async fn kill(&mut self) {
        self.peer.kill().await;
    }

    /// Starts it again on the same port and data, and waits until it
    /// takes a query.
    pub async fn resume(&mut self) -> Result<(), SetupError> {
        let url = self.url();
        self.peer
            .start(|addr| {
                let url = url.clone();
                async move {
                    if !accepts(addr).await {
                        return false;
                    }
                    match sea_orm::Database::connect(url).await {
                        Ok(db) => {
                            let ok = db.ping().await.is_ok();
                            let _ = db.close().await;
                            ok
                        }
                        Err(_) => false,
                    }
                }
            })
            .await
    }
}

/// The user the bench runs as (mariadbd refuses to run as root unless
/// told so by name).
fn whoami() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "root".to_owned())
}
