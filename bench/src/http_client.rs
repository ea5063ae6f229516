//! A minimal HTTP client on hyper: one connection per bench client, as a
//! browser or a backend-for-frontend would hold to the gateway; HTTP/1.1
//! keep-alive, or HTTP/2 without TLS (h2c with prior knowledge, as load
//! tools such as oha and h2load speak it).

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Which HTTP a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    /// HTTP/2 over plain TCP, with prior knowledge.
    H2c,
}

enum Sender {
    Http1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Self::Http1(s) => s.is_closed(),
            Self::H2(s) => s.is_closed(),
        }
    }
}

/// One connection to `addr`; reconnects if the server closed it.
pub struct HttpClient {
    addr: SocketAddr,
    protocol: Protocol,
    sender: Option<Sender>,
}

/// A response's status and body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl HttpClient {
    /// An HTTP/1.1 client for `addr`; connects on first use.
    pub fn new(addr: SocketAddr) -> Self {
        Self::speaking(addr, Protocol::Http1)
    }

    /// A client for `addr` speaking `protocol`; connects on first use.
    pub fn speaking(addr: SocketAddr, protocol: Protocol) -> Self {
        Self {
            addr,
            protocol,
            sender: None,
        }
    }

    /// Where it connects.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    async fn connect(&self) -> Result<Sender, String> {
        let stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect {}: {e}", self.addr))?;
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let handshake = |e| format!("handshake: {e}");
        Ok(match self.protocol {
            Protocol::Http1 => {
                let (sender, connection) = http1::handshake(io).await.map_err(handshake)?;
                tokio::spawn(connection);
                Sender::Http1(sender)
            }
            Protocol::H2c => {
                let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(handshake)?;
                tokio::spawn(connection);
                Sender::H2(sender)
            }
        })
    }

    /// Sends one request; `body` as JSON when given.
    pub async fn send(
        &mut self,
        method: http::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Bytes>,
    ) -> Result<Reply, String> {
        if self.sender.as_ref().is_none_or(Sender::is_closed) {
            self.sender = Some(self.connect().await?);
        }
        let Some(sender) = self.sender.as_mut() else {
            return Err("no connection".to_owned());
        };
        let ready = match sender {
            Sender::Http1(s) => s.ready().await,
            Sender::H2(s) => s.ready().await,
        };
        ready.map_err(|e| format!("connection: {e}"))?;
        let mut request = http::Request::builder().method(method);
        request = match sender {
            Sender::Http1(_) => request
                .uri(path)
                .header(http::header::HOST, self.addr.to_string()),
            // HTTP/2 carries scheme and authority as pseudo-headers.
            Sender::H2(_) => request.uri(format!("http://{}{path}", self.addr)),
        };
        if let Some(token) = bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| format!("request: {e}"))?;
        let response = match sender {
            Sender::Http1(s) => s.send_request(request).await,
            Sender::H2(s) => s.send_request(request).await,
        }
        .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(Reply { status, body })
    }
}

/// The status of `GET path` on a fresh connection, or `None` if it failed.
pub async fn get_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut client = HttpClient::new(addr);
    client
        .send(http::Method::GET, path, None, None)
        .await
        .ok()
        .map(|r| r.status)
}
