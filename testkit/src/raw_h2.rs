//! A hand-written HTTP/2 client that does what honest clients won't: opens
//! streams past the server's advertised limit, never ends them, declares
//! message bodies it never sends, and keeps answering pings (so keep-alive
//! alone never closes it). It counts what the server ends.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// What the server did to this connection's streams.
#[derive(Debug, Default)]
struct Seen {
    /// Streams the server ended (END_STREAM or RST_STREAM).
    ended: HashSet<u32>,
    /// Of those, the ones reset.
    reset: usize,
    goaway: bool,
    /// The connection closed.
    closed: bool,
}

/// One raw HTTP/2 connection.
#[derive(Debug)]
pub struct RawH2 {
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    seen: Arc<Mutex<Seen>>,
    next_stream: u32,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for RawH2 {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK string literal, not Huffman-coded (short strings only).
fn literal(out: &mut Vec<u8>, text: &str) {
    out.push(u8::try_from(text.len()).unwrap_or(127).min(126));
    out.extend_from_slice(text.as_bytes());
}

/// The header block of a request: `POST` (gRPC, with its content type
/// and `te`) or `GET`.
fn request_headers(path: &str, grpc: bool) -> Vec<u8> {
    // Static-table entries: 2 = `:method: GET`, 3 = `:method: POST`,
    // 6 = `:scheme: http`; literals without indexing on static names
    // 4 = `:path`, 1 = `:authority`, 31 = `content-type`; `te` by name.
    let mut block = vec![if grpc { 0x83 } else { 0x82 }, 0x86, 0x04];
    literal(&mut block, path);
    block.push(0x01);
    literal(&mut block, "localhost");
    if grpc {
        block.extend_from_slice(&[0x0f, 0x10]);
        literal(&mut block, "application/grpc");
        block.push(0x00);
        literal(&mut block, "te");
        literal(&mut block, "trailers");
    }
    block
}

impl RawH2 {
    /// Connects and greets (preface and empty SETTINGS); `None` when the
    /// server closed the connection before its SETTINGS arrived.
    pub async fn connect(addr: SocketAddr) -> Option<Self> {
        Self::connect_with_window(addr, None).await
    }

    /// As [`RawH2::connect`], announcing `window` as every stream's initial
    /// flow-control window (0: the server may send no body bytes at all).
    pub async fn connect_with_window(addr: SocketAddr, window: Option<u32>) -> Option<Self> {
        let stream = TcpStream::connect(addr).await.ok()?;
        let (mut read, mut write) = stream.into_split();
        let mut greeting = PREFACE.to_vec();
        let mut settings = Vec::new();
        if let Some(window) = window {
            // SETTINGS_INITIAL_WINDOW_SIZE.
            settings.extend_from_slice(&4u16.to_be_bytes());
            settings.extend_from_slice(&window.to_be_bytes());
        }
        greeting.extend(frame(SETTINGS, 0, 0, &settings));
        write.write_all(&greeting).await.ok()?;
        let writer = Arc::new(tokio::sync::Mutex::new(write));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (greeted_tx, greeted) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn({
            let (writer, seen) = (Arc::clone(&writer), Arc::clone(&seen));
            async move {
                let mut greeted_tx = Some(greeted_tx);
                loop {
                    let mut head = [0u8; 9];
                    if read.read_exact(&mut head).await.is_err() {
                        break;
                    }
                    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                    let (kind, flags) = (head[3], head[4]);
                    let stream =
                        u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & !(1 << 31);
                    let mut payload = vec![0u8; len];
                    if read.read_exact(&mut payload).await.is_err() {
                        break;
                    }
                    let reply = match kind {
                        SETTINGS if flags & ACK == 0 => {
                            if let Some(tx) = greeted_tx.take() {
                                let _ = tx.send(());
                            }
                            Some(frame(SETTINGS, ACK, 0, &[]))
                        }
                        PING if flags & ACK == 0 => Some(frame(PING, ACK, 0, &payload)),
                        HEADERS | DATA if flags & END_STREAM != 0 => {
                            seen.lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .ended
                                .insert(stream);
                            None
                        }
                        RST_STREAM => {
                            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                            if seen.ended.insert(stream) {
                                seen.reset += 1;
                            }
                            None
                        }
                        GOAWAY => {
                            seen.lock().unwrap_or_else(PoisonError::into_inner).goaway = true;
                            None
                        }
                        _ => None,
                    };
                    if let Some(reply) = reply
                        && writer.lock().await.write_all(&reply).await.is_err()
                    {
                        break;
                    }
                }
                seen.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
            }
        });
        greeted.await.ok()?;
        Some(Self {
            writer,
            seen,
            next_stream: 1,
            reader,
        })
    }

    /// Opens a gRPC call to `path` and never ends it; if `declared` is set,
    /// sends a message prefix declaring that many bytes, and none of them.
    /// Returns the stream's id.
    pub async fn open_call(&mut self, path: &str, declared: Option<u32>) -> std::io::Result<u32> {
        let id = self.next_stream;
        self.next_stream += 2;
        let mut bytes = frame(HEADERS, END_HEADERS, id, &request_headers(path, true));
        if let Some(declared) = declared {
            let mut prefix = vec![0u8];
            prefix.extend_from_slice(&declared.to_be_bytes());
            bytes.extend(frame(DATA, 0, id, &prefix));
        }
        self.writer.lock().await.write_all(&bytes).await?;
        Ok(id)
    }

    /// Opens a `GET` of `path`; unless `end` is set the request never ends
    /// (no END_STREAM: as if a body were still to come). Returns the
    /// stream's id.
    pub async fn open_get(&mut self, path: &str, end: bool) -> std::io::Result<u32> {
        let id = self.next_stream;
        self.next_stream += 2;
        let flags = END_HEADERS | if end { END_STREAM } else { 0 };
        let bytes = frame(HEADERS, flags, id, &request_headers(path, false));
        self.writer.lock().await.write_all(&bytes).await?;
        Ok(id)
    }

    /// Streams the server has ended so far.
    pub fn ended(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ended
            .len()
    }

    /// Of those, the ones it reset (RST_STREAM) rather than answered.
    pub fn reset(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .reset
    }

    /// Whether the server has closed the connection.
    pub fn closed(&self) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed
    }
}

/// Refusals this process's listeners counted under `limit`
/// (`oms_listener_refusals_total`).
pub fn listener_refusals(limit: &str) -> u64 {
    crate::metrics::counter("oms_listener_refusals_total", &format!("limit=\"{limit}\""))
}

/// This process's resident memory and address space, in bytes (Linux).
pub fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmSize:"))
}
