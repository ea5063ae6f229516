//! One small HTTP/1.1 client for tests of the gateway: one request per
//! connection (plaintext or TLS), the whole answer read, JSON parsed when
//! it is JSON.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What came back.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Every header, in order.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Null` if it is not JSON).
    pub json: serde_json::Value,
    /// The body as text.
    pub text: String,
    /// The body as it came.
    pub bytes: Vec<u8>,
}

impl Reply {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `ErrorInfo.reason` of an AIP-193 error body, or "".
    pub fn reason(&self) -> &str {
        self.json["error"]["details"]
            .as_array()
            .and_then(|d| {
                d.iter()
                    .find(|x| x["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
            })
            .and_then(|x| x["reason"].as_str())
            .unwrap_or_default()
    }
}

/// Sends only the head of a `method` request declaring a body of `length`
/// bytes of `content_type`, and returns the status the server answers
/// without waiting for the body (or panics after 10 s: it waited).
pub async fn send_declared(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    length: u64,
) -> u16 {
    let mut stream = connect(addr).await;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    );
    if let Err(e) = stream.write_all(head.as_bytes()).await {
        panic!("{method} {path}: {e}");
    }
    let answered =
        tokio::time::timeout(std::time::Duration::from_secs(10), status_line(&mut stream));
    match answered.await {
        Ok(Some(status)) => status,
        Ok(None) => panic!("{method} {path}: closed without an answer"),
        Err(_) => panic!("{method} {path}: no answer before the body (it waits to read it)"),
    }
}

/// The status code of the answer on `stream`, if one arrives.
pub async fn status_line(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<u16> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Sends one request (JSON content type unless `headers` name one) and
/// reads the whole answer. Panics on a transport failure: in a test that
/// is a failed assertion.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    send_bytes(
        addr,
        method,
        path,
        headers,
        body.map(str::as_bytes).unwrap_or_default(),
    )
    .await
}

/// [`send`] with a body of any bytes (an image, say).
pub async fn send_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    send_on(connect(addr).await, addr, method, path, headers, body).await
}

/// A connection to `addr`; not getting one fails the test.
async fn connect(addr: SocketAddr) -> tokio::net::TcpStream {
    match tokio::net::TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(e) => panic!("cannot connect to {addr}: {e}"),
    }
}

/// [`send`] over HTTPS: TLS as `tls` says, the server's certificate
/// checked for `localhost`.
pub async fn send_tls(
    addr: SocketAddr,
    tls: std::sync::Arc<rustls::ClientConfig>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Reply {
    let tcp = connect(addr).await;
    let Ok(name) = rustls::pki_types::ServerName::try_from("localhost") else {
        panic!("localhost is a name");
    };
    let stream = match tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
    {
        Ok(stream) => stream,
        Err(e) => panic!("TLS handshake with {addr}: {e}"),
    };
    let body = body.map(str::as_bytes).unwrap_or_default();
    send_on(stream, addr, method, path, headers, body).await
}

/// One request on `stream`, the whole answer read.
async fn send_on(
    mut stream: impl AsyncReadExt + AsyncWriteExt + Unpin,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
    {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut raw = Vec::new();
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        panic!("{method} {path}: {e}");
    }
    // A server may answer (413, say) and close before taking the whole
    // body; what it answered is still the answer.
    let sent = stream.write_all(body).await;
    let read = stream.read_to_end(&mut raw).await;
    // A TLS server may close without close_notify once it has answered.
    if raw.is_empty() {
        panic!("{method} {path}: no answer (sending: {sent:?}, reading: {read:?})");
    }
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        panic!(
            "{method} {path}: no complete HTTP answer: {:?}",
            String::from_utf8_lossy(&raw)
        );
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let bytes = raw[split + 4..].to_vec();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: bad status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        json: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        text: body,
        bytes,
    }
}
