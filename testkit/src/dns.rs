//! A real DNS server of the test's own: dnsmasq (`OMS_TEST_DNSMASQ`, from
//! Debian's dnsmasq-base) answering from a hosts file the test rewrites,
//! read again on SIGHUP, on a port of 127.0.0.1. Nothing upstream: it
//! knows the test's names and no others.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::scratch::TempDir;

/// The variable naming the dnsmasq binary.
pub const DNSMASQ_VAR: &str = "OMS_TEST_DNSMASQ";

/// A running dnsmasq; killed when dropped.
#[derive(Debug)]
pub struct Dnsmasq {
    child: tokio::process::Child,
    addr: SocketAddr,
    hosts: PathBuf,
    _dir: TempDir,
}

impl Dnsmasq {
    /// Starts one answering `hosts` (address, name), or `None` (NOT
    /// TESTED, a failure under CI) without `OMS_TEST_DNSMASQ`. Ready once
    /// it answers for the first name, which proves the server on the port
    /// is this one.
    pub async fn start(hosts: &[(IpAddr, &str)]) -> Option<Self> {
        let program = crate::require_backend(DNSMASQ_VAR)?;
        match Self::start_program(&program, hosts).await {
            Ok(dns) => Some(dns),
            Err(e) => panic!("{e}"),
        }
    }

    /// Starts `program` (a dnsmasq) answering `hosts`; for the bench,
    /// which names its own binary.
    pub async fn start_program(program: &str, hosts: &[(IpAddr, &str)]) -> Result<Self, String> {
        let Some((_, probe_name)) = hosts.first() else {
            return Err("a DNS server of our own needs a name to answer".to_owned());
        };
        let dir = TempDir::new("dnsmasq");
        let hosts_file = dir.path().join("hosts");
        write_hosts(&hosts_file, hosts)?;
        // dnsmasq cannot report a port it picked: it gets one the kernel
        // picked and is ours once it answers our name there; a port taken
        // in between is given up for another.
        for _ in 0..5 {
            let port = std::net::UdpSocket::bind("127.0.0.1:0")
                .and_then(|s| s.local_addr())
                .map_err(|e| format!("no free UDP port: {e}"))?
                .port();
            let mut child = tokio::process::Command::new(program)
                .args([
                    "--keep-in-foreground",
                    &format!("--port={port}"),
                    "--listen-address=127.0.0.1",
                    "--bind-interfaces",
                    "--no-resolv",
                    "--no-hosts",
                    "--no-negcache",
                    &format!("--addn-hosts={}", hosts_file.display()),
                    "--user=root",
                    "--group=root",
                    "--pid-file",
                    "--log-facility=-",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("cannot run {program}: {e}"))?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while tokio::time::Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if answers(addr, probe_name).await {
                    return Ok(Self {
                        child,
                        addr,
                        hosts: hosts_file,
                        _dir: dir,
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill().await;
        }
        Err("dnsmasq did not come up on a port of its own".to_owned())
    }

    /// Where it answers (`OMS_DNS_SERVER`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers `hosts` from now on (the file rewritten, then SIGHUP).
    pub fn set_hosts(&self, hosts: &[(IpAddr, &str)]) {
        if let Err(e) = self.try_set_hosts(hosts) {
            panic!("{e}");
        }
    }

    /// [`Self::set_hosts`], saying what went wrong instead of panicking.
    pub fn try_set_hosts(&self, hosts: &[(IpAddr, &str)]) -> Result<(), String> {
        write_hosts(&self.hosts, hosts)?;
        let pid = self.child.id().ok_or("dnsmasq is gone")?;
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status();
        if status.is_ok_and(|s| s.success()) {
            Ok(())
        } else {
            Err("cannot send SIGHUP to dnsmasq".to_owned())
        }
    }
}

fn write_hosts(path: &std::path::Path, hosts: &[(IpAddr, &str)]) -> Result<(), String> {
    let text: String = hosts
        .iter()
        .map(|(ip, name)| format!("{ip} {name}\n"))
        .collect();
    // Written whole, then renamed: dnsmasq never reads half a file.
    let part = path.with_extension("part");
    std::fs::write(&part, text)
        .and_then(|()| std::fs::rename(&part, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Whether the server at `addr` answers an A query for `name` with an
/// address (a minimal query: the test's own check, not the services').
async fn answers(addr: SocketAddr, name: &str) -> bool {
    let Ok(socket) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else {
        return false;
    };
    let mut query = vec![0x4f, 0x4d, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(u8::try_from(label.len()).unwrap_or(63));
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    if socket.send_to(&query, addr).await.is_err() {
        return false;
    }
    let mut answer = [0u8; 512];
    match tokio::time::timeout(Duration::from_millis(500), socket.recv(&mut answer)).await {
        // The same ID, a response, no error, at least one answer.
        Ok(Ok(len)) if len > 12 => {
            answer[..2] == query[..2]
                && answer[2] & 0x80 != 0
                && answer[3] & 0x0f == 0
                && u16::from_be_bytes([answer[6], answer[7]]) > 0
        }
        _ => false,
    }
}
