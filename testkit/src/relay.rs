//! A TCP relay that stands where a service is reached, so a test can stop
//! the service and start it again on a new port (port 0, as always) while
//! its clients keep the one address they were configured with. While no
//! service is behind it, the relay closes every connection at once: a
//! client sees the service down (UNAVAILABLE), never a hang, and the
//! relay's own port stays held, so no other process can take it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A relay on `127.0.0.1:0`; stops when dropped.
#[derive(Debug)]
pub struct Relay {
    /// Where clients connect.
    pub addr: SocketAddr,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    /// Bumped on every change, so relayed connections to an old upstream
    /// are cut (as a stopped service would cut them).
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// A relay to `upstream` (or to nothing yet).
    pub async fn start(upstream: Option<SocketAddr>) -> Self {
        let listener = match TcpListener::bind(("127.0.0.1", 0)).await {
            Ok(listener) => listener,
            Err(e) => panic!("relay: cannot bind: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("relay: no local address: {e}"),
        };
        let upstream = Arc::new(Mutex::new(upstream));
        let (generation, _) = watch::channel(0u64);
        let task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&upstream),
            generation.subscribe(),
        ));
        Self {
            addr,
            upstream,
            generation,
            task,
        }
    }

    /// Sends new connections to `upstream` (`None`: refuse them) and cuts
    /// the ones relayed so far.
    pub fn point_to(&self, upstream: Option<SocketAddr>) {
        if let Ok(mut current) = self.upstream.lock() {
            *current = upstream;
        }
        self.generation.send_modify(|g| *g += 1);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    generation: watch::Receiver<u64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let target = upstream.lock().ok().and_then(|u| *u);
        let Some(target) = target else {
            // Nobody home: close at once.
            drop(client);
            continue;
        };
        let mut changed = generation.clone();
        changed.mark_unchanged();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(target).await else {
                return;
            };
            let mut client = client;
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = changed.changed() => {}
            }
        });
    }
}
