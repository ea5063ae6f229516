//! A port of 127.0.0.1 that refuses connections for as long as a test
//! holds it: bound but never listening, so no other process can take it
//! (a port bound and released would be free for anyone).

use std::net::SocketAddr;

/// A bound, non-listening socket on 127.0.0.1: connections to
/// [`ClosedPort::addr`] are refused until it is dropped.
#[derive(Debug)]
pub struct ClosedPort {
    _socket: tokio::net::TcpSocket,
    addr: SocketAddr,
}

impl ClosedPort {
    /// Holds a port the kernel chose.
    pub fn hold() -> Self {
        let socket = match tokio::net::TcpSocket::new_v4() {
            Ok(socket) => socket,
            Err(e) => panic!("cannot make a socket: {e}"),
        };
        if let Err(e) = socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))) {
            panic!("cannot bind 127.0.0.1:0: {e}");
        }
        let addr = match socket.local_addr() {
            Ok(addr) => addr,
            Err(e) => panic!("no local address: {e}"),
        };
        Self {
            _socket: socket,
            addr,
        }
    }

    /// Where nothing answers.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_port_refuses_connections() {
        let closed = ClosedPort::hold();
        let err = tokio::net::TcpStream::connect(closed.addr())
            .await
            .expect_err("nothing listens");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        // And it is ours: binding it again fails while we hold it.
        assert!(std::net::TcpListener::bind(closed.addr()).is_err());
    }
}
