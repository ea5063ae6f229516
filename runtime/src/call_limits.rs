//! Bounds on what calls in flight may hold on a gRPC listener: how many
//! calls are open at once, from their headers to the end of their answer
//! (more are refused with RESOURCE_EXHAUSTED, not queued), and how many
//! bytes of messages not yet whole they hold, over all of them.
//!
//! Why the byte budget: tonic reserves a message's whole declared length as
//! soon as its 5-byte prefix arrives, so a stream that declares 4 MiB and
//! never sends it reserved 4 MiB, and thousands of them reserved gigabytes.
//! Here a request's bytes reach tonic only as whole messages; until then
//! they wait in a buffer that grows only as bytes arrive, and the bytes
//! waiting across every call of the listener are bounded.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf as _, Bytes, BytesMut};
use futures_util::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Semaphore;
use tower_layer::Layer;
use tower_service::Service;

use crate::refusals::Refusals;

/// The gRPC message prefix: a compression flag and a 4-byte length.
const PREFIX: usize = 5;

/// The limits one listener enforces, shared by its connections.
#[derive(Debug, Clone)]
pub struct CallLimitLayer {
    calls: Arc<Semaphore>,
    max_calls: usize,
    pending: Arc<Budget>,
    max_message: usize,
    refusals: Arc<Refusals>,
}

/// Bytes of partial messages held, against a maximum.
#[derive(Debug)]
struct Budget {
    held: AtomicUsize,
    max: usize,
}

impl Budget {
    fn take(&self, bytes: usize) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= self.max)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl CallLimitLayer {
    /// At most `max_calls` calls awaiting their answer, and at most
    /// `max_pending_bytes` of not-yet-whole request messages, no message
    /// over `max_message` bytes (larger ones are left for tonic to refuse).
    pub fn new(
        max_calls: usize,
        max_pending_bytes: usize,
        max_message: usize,
        refusals: Arc<Refusals>,
    ) -> Self {
        Self {
            calls: Arc::new(Semaphore::new(max_calls)),
            max_calls,
            pending: Arc::new(Budget {
                held: AtomicUsize::new(0),
                max: max_pending_bytes,
            }),
            max_message,
            refusals,
        }
    }
}

impl<S> Layer<S> for CallLimitLayer {
    type Service = CallLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CallLimit {
            inner,
            limits: self.clone(),
        }
    }
}

/// The service [`CallLimitLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct CallLimit<S> {
    inner: S,
    limits: CallLimitLayer,
}

impl<S> Service<http::Request<tonic::body::Body>> for CallLimit<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let limits = &self.limits;
        let Ok(permit) = Arc::clone(&limits.calls).try_acquire_owned() else {
            limits.refusals.refuse(
                "calls",
                format_args!(
                    "{} calls in flight; refused {}",
                    limits.max_calls,
                    request.uri().path()
                ),
            );
            let status = tonic::Status::resource_exhausted(format!(
                "the server has {} calls in flight, its limit; retry later",
                limits.max_calls
            ));
            return Box::pin(std::future::ready(Ok(status.into_http())));
        };
        let request = request.map(|body| {
            tonic::body::Body::new(WholeMessages {
                inner: body,
                partial: BytesMut::new(),
                held: 0,
                passthrough: false,
                ended: false,
                budget: Arc::clone(&limits.pending),
                max_message: limits.max_message,
                refusals: Arc::clone(&limits.refusals),
            })
        });
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            // A call holds its place until its answer is sent or dropped:
            // streams (reflection, WatchOrder) and answers stuck behind a
            // peer's shut window count too, so what open calls hold is
            // bounded by the cap.
            Ok(response.map(|body| {
                tonic::body::Body::new(Placed {
                    inner: body,
                    _place: permit,
                })
            }))
        })
    }
}

/// A response body holding its call's place.
struct Placed {
    inner: tonic::body::Body,
    _place: tokio::sync::OwnedSemaphorePermit,
}

impl Body for Placed {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A request body that hands on whole gRPC messages only.
struct WholeMessages {
    inner: tonic::body::Body,
    /// Bytes of a message not yet whole (and any whole ones before it).
    partial: BytesMut,
    /// What `partial` holds of the budget.
    held: usize,
    /// A message declared over the limit: hand everything on as it comes,
    /// for tonic to refuse.
    passthrough: bool,
    ended: bool,
    budget: Arc<Budget>,
    max_message: usize,
    refusals: Arc<Refusals>,
}

impl Drop for WholeMessages {
    fn drop(&mut self) {
        self.budget.give_back(self.held);
    }
}

/// How many leading bytes of `bytes` are whole messages, and whether a
/// prefix among them declares more than `max_message`.
fn whole_prefix(bytes: &[u8], max_message: usize) -> (usize, bool) {
    let mut at = 0;
    while let Some(prefix) = bytes.get(at..at + PREFIX) {
        let declared = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]);
        let declared = usize::try_from(declared).unwrap_or(usize::MAX);
        if declared > max_message {
            return (at, true);
        }
        let end = at + PREFIX + declared;
        if end > bytes.len() {
            break;
        }
        at = end;
    }
    (at, false)
}

impl WholeMessages {
    /// Takes the whole messages off the front of `partial`.
    fn split_whole(&mut self) -> Option<Bytes> {
        let (whole, oversized) = whole_prefix(&self.partial, self.max_message);
        let take = if oversized {
            self.passthrough = true;
            self.partial.len()
        } else {
            whole
        };
        if take == 0 {
            return None;
        }
        let out = self.partial.split_to(take).freeze();
        let released = self.held.min(take);
        self.held -= released;
        self.budget.give_back(released);
        Some(out)
    }
}

impl Body for WholeMessages {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        loop {
            if this.ended {
                // What is left can never become whole; tonic reports the
                // truncated message.
                if this.partial.is_empty() {
                    return Poll::Ready(None);
                }
                let rest = this.partial.split().freeze();
                this.budget.give_back(std::mem::take(&mut this.held));
                return Poll::Ready(Some(Ok(Frame::data(rest))));
            }
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.ended = true;
                    continue;
                }
                Poll::Ready(Some(Err(status))) => return Poll::Ready(Some(Err(status))),
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            let mut data = match frame.into_data() {
                Ok(data) => data,
                // Trailers: whatever came before them is all there is.
                Err(frame) => {
                    if let Some(rest) = (!this.partial.is_empty()).then(|| {
                        this.budget.give_back(std::mem::take(&mut this.held));
                        this.partial.split().freeze()
                    }) {
                        this.ended = true;
                        // The trailers of a request carry nothing tonic
                        // reads; handing on the bytes is what matters.
                        drop(frame);
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
            };
            if this.passthrough {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if this.partial.is_empty() {
                // The common case, a chunk of whole messages: no copy.
                let (whole, oversized) = whole_prefix(&data, this.max_message);
                if oversized {
                    this.passthrough = true;
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                if whole == data.len() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                let front = data.split_to(whole);
                this.hold(data)?;
                if !front.is_empty() {
                    return Poll::Ready(Some(Ok(Frame::data(front))));
                }
                continue;
            }
            this.hold(data)?;
            if let Some(out) = this.split_whole() {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.partial.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl WholeMessages {
    /// Keeps `data` until its message is whole, within the budget.
    fn hold(&mut self, data: Bytes) -> Result<(), tonic::Status> {
        let n = data.remaining();
        if !self.budget.take(n) {
            self.refusals.refuse(
                "pending_bytes",
                format_args!(
                    "calls in flight hold {} bytes of unfinished messages",
                    self.budget.max
                ),
            );
            return Err(tonic::Status::resource_exhausted(
                "the server holds too many unfinished request messages; retry later",
            ));
        }
        self.held += n;
        self.partial.extend_from_slice(&data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Vec<u8> {
        let mut m = vec![0u8];
        m.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
        m.extend(std::iter::repeat_n(7u8, len));
        m
    }

    #[test]
    fn whole_prefix_stops_at_the_first_unfinished_message() {
        let mut bytes = message(3);
        bytes.extend(message(10));
        assert_eq!(whole_prefix(&bytes, 100), (bytes.len(), false));
        assert_eq!(whole_prefix(&bytes[..bytes.len() - 1], 100), (8, false));
        assert_eq!(whole_prefix(&bytes[..10], 100), (8, false));
        assert_eq!(whole_prefix(&bytes[..2], 100), (0, false));
        assert_eq!(whole_prefix(&message(0), 100), (5, false));
        let mut declared = vec![0u8];
        declared.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(whole_prefix(&declared, 100), (0, true));
    }

    #[test]
    fn the_budget_is_never_exceeded() {
        let budget = Budget {
            held: AtomicUsize::new(0),
            max: 10,
        };
        assert!(budget.take(6));
        assert!(!budget.take(5));
        assert!(budget.take(4));
        budget.give_back(6);
        assert!(budget.take(6));
    }
}
