//! The answers hyper writes itself, before any handler runs, to an HTTP/1
//! request it cannot parse (400 for a malformed request line or path, 414
//! for a request line too long, 431 for headers too large): bodiless,
//! where every other refusal of ours carries the AIP-193 JSON body. hyper
//! has no hook for them, so the connection's writes are watched for one of
//! those exact answers (`content-length: 0`, which no answer of ours has
//! at these statuses) and it is written with the JSON body instead.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose bodiless parse-error answers get a JSON body.
#[derive(Debug)]
pub(crate) struct JsonParseErrors<T> {
    inner: T,
    /// An answer being written in place of hyper's: the bytes and how
    /// many are out, and the length of hyper's own (what it is told).
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<T> JsonParseErrors<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            replacing: None,
        }
    }
}

/// hyper's answer in `written`, if it is a bodiless parse error: its
/// status and reason, and where its head ends.
fn parse_error(written: &[u8]) -> Option<(u16, usize)> {
    let rest = written.strip_prefix(b"HTTP/1.1 ")?;
    let status = match rest.get(..4)? {
        b"400 " => 400,
        b"414 " => 414,
        b"431 " => 431,
        _ => return None,
    };
    let end = written.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&written[..end])
        .ok()?
        .to_ascii_lowercase();
    (end == written.len() && head.contains("\r\ncontent-length: 0\r\n")).then_some((status, end))
}

/// The same answer with the JSON error body.
fn with_json_body(written: &[u8], status: u16, head_end: usize) -> Vec<u8> {
    let message = match status {
        414 => "the request line is too long",
        431 => "the request headers are too large",
        _ => "the request is not valid HTTP/1.1 (request line, path or headers)",
    };
    let body = serde_json::json!({
        "error": {
            "code": status,
            "status": "INVALID_ARGUMENT",
            "message": message,
            "details": [],
        }
    })
    .to_string();
    let head = String::from_utf8_lossy(&written[..head_end - 2]);
    let mut out = String::with_capacity(head.len() + body.len() + 64);
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if line.to_ascii_lowercase().starts_with("content-length:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("content-type: application/json\r\n");
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    out.push_str(&body);
    out.into_bytes()
}

impl<T: AsyncRead + Unpin> AsyncRead for JsonParseErrors<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            let Some((status, head_end)) = parse_error(buf) else {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            };
            this.replacing = Some((with_json_body(buf, status, head_end), 0, buf.len()));
        }
        // hyper calls again with the same bytes until told they are out.
        while let Some((bytes, out, told)) = this.replacing.as_mut() {
            if *out == bytes.len() {
                let told = *told;
                this.replacing = None;
                return Poll::Ready(Ok(told));
            }
            match Pin::new(&mut this.inner).poll_write(cx, &bytes[*out..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *out += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(0))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    // Not vectored: hyper then writes each answer's head as one buffer,
    // where a parse error's can be seen whole.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bodiless_parse_errors_are_rewritten() {
        let canned = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Sun, 06 Dec 2026 04:00:00 GMT\r\n\r\n";
        let (status, end) = parse_error(canned).expect("hyper's 414");
        assert_eq!((status, end), (414, canned.len()));
        let rewritten = String::from_utf8(with_json_body(canned, status, end)).unwrap();
        let (head, body) = rewritten.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains("date: Sun"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], 414);
        // Our own answers have bodies, and other statuses are left alone.
        assert!(parse_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 20\r\n\r\n").is_none());
        assert!(parse_error(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(
            parse_error(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\nmore").is_none()
        );
    }
}
