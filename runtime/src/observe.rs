//! What every gRPC call leaves behind: a span (with the trace id and, once
//! authenticated, the caller), one log event when it ends (method, code,
//! latency, caller), and the request metrics (count by code, latency
//! histogram, in-flight gauge).
//!
//! A tower layer outside the auth layer, so refused tokens are counted and
//! logged too. The status code of a gRPC response is in its headers when
//! it failed before any message, else in the trailers at the end of the
//! body; so the call is finished when the body is done (or dropped, when
//! the client went away first).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use prost::Message;
use tonic::Code;
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;

use oms_telemetry::trace::CallTrace;
use tonic::transport::server::TcpConnectInfo;

use crate::error::code_name;
use crate::info::ServiceInfo;

/// Label for a path that names no method of this server, so a client
/// cannot grow the metrics without bound.
const UNKNOWN: &str = "unknown";

/// Services whose calls are logged at debug level: probes and tooling,
/// which would drown the log.
const QUIET_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The longest `x-request-id` a log line carries.
const MAX_REQUEST_ID: usize = 128;

/// Where the auth layer writes who is calling, for the end-of-call event.
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(Arc<OnceLock<String>>);

impl CallerSlot {
    /// Records the verified caller, as the access line names it (the
    /// first one wins).
    pub fn set(&self, caller: impl std::fmt::Display) {
        let _ = self.0.set(caller.to_string());
    }
}

/// Adds spans, the end-of-call log event and metrics to a gRPC server.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    service: &'static str,
    /// Every method this server answers, by path, with its metric handles
    /// made once: a call looks its method up and touches atomics, never
    /// the recorder's registry.
    methods: Arc<HashMap<String, Arc<Method>>>,
    /// Paths that name no method share one set of series.
    unknown: Arc<Method>,
}

/// One method's labels and metric handles.
#[derive(Debug)]
struct Method {
    /// Health checks and reflection are logged at debug level.
    quiet: bool,
    /// Called on a timer by other processes: logged at debug level when
    /// it succeeds.
    polled: bool,
    in_flight: metrics::Gauge,
    handling: metrics::Histogram,
    labels: [(&'static str, String); 3],
    /// `grpc_server_handled_total` by code, registered at first use so
    /// only codes that happened are exposed.
    handled: [OnceLock<metrics::Counter>; 17],
}

impl Method {
    fn new(service: &'static str, grpc_service: &str, grpc_method: &str, polled: bool) -> Self {
        let labels = [
            ("service", service.to_owned()),
            ("grpc_service", grpc_service.to_owned()),
            ("grpc_method", grpc_method.to_owned()),
        ];
        Self {
            quiet: QUIET_SERVICES.contains(&grpc_service),
            polled,
            in_flight: metrics::gauge!("grpc_server_in_flight_requests", &labels),
            handling: metrics::histogram!("grpc_server_handling_seconds", &labels),
            labels,
            handled: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    fn handled(&self, code: Code) -> &metrics::Counter {
        let slot = usize::try_from(code as i32).unwrap_or(2) % self.handled.len();
        self.handled[slot].get_or_init(|| {
            let mut labels = self.labels.to_vec();
            labels.push(("grpc_code", code_name(code).to_owned()));
            metrics::counter!("grpc_server_handled_total", &labels)
        })
    }
}

impl ObserveLayer {
    /// A layer for the server described by `info`: its own methods plus
    /// health and reflection get their own labels.
    pub fn new(info: ServiceInfo) -> Self {
        // Installed before the first call, so nothing recorded is lost.
        oms_telemetry::metrics::install();
        let mut methods = HashMap::new();
        for set in [
            info.descriptors,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            // Descriptor sets are compiled into the binary; one that does
            // not decode only costs its methods their labels.
            let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
                continue;
            };
            for file in &set.file {
                for service in &file.service {
                    let full = format!("{}.{}", file.package(), service.name());
                    if !info.grpc_services.contains(&full.as_str()) && !full.starts_with("grpc.") {
                        continue;
                    }
                    for method in &service.method {
                        let path = format!("/{full}/{}", method.name());
                        let polled = info.polled.contains(&path.as_str());
                        methods.insert(
                            path,
                            Arc::new(Method::new(info.name, &full, method.name(), polled)),
                        );
                    }
                }
            }
        }
        Self {
            service: info.name,
            methods: Arc::new(methods),
            unknown: Arc::new(Method::new(info.name, UNKNOWN, UNKNOWN, false)),
        }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`ObserveLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Observe<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Body + Unpin + Send + 'static,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let call = Call::start(&self.layer, &mut request);
        let span = call.span.clone();
        Box::pin(
            async move {
                let response = inner.call(request).await?;
                let (mut parts, body) = response.into_parts();
                client_fault_codes(&mut parts.headers);
                let mut call = call;
                call.code = grpc_status(&parts.headers);
                Ok(http::Response::from_parts(
                    parts,
                    ObservedBody {
                        inner: body,
                        call: Some(call),
                    },
                ))
            }
            .instrument(span),
        )
    }
}

/// One call in flight; recorded when dropped.
#[derive(Debug)]
struct Call {
    method: Arc<Method>,
    rpc: String,
    peer: Option<String>,
    caller: CallerSlot,
    span: tracing::Span,
    started: Instant,
    /// From the headers (trailers-only answer) or the trailers.
    code: Option<Code>,
    /// The body ended; a call dropped before that was abandoned.
    ended: bool,
}

impl Call {
    fn start<B>(layer: &ObserveLayer, request: &mut http::Request<B>) -> Self {
        let path = request.uri().path();
        let method = layer.methods.get(path).unwrap_or(&layer.unknown).clone();
        // `oms.product.v1.ProductService/GetProduct`, as grpcurl names it.
        let rpc = path.trim_start_matches('/').to_owned();
        let trace = CallTrace::start(request.headers_mut());
        // Formatted once, for the span and the access line.
        let peer = request
            .extensions()
            .get::<TcpConnectInfo>()
            .and_then(TcpConnectInfo::remote_addr)
            .map(|addr| addr.to_string());
        // Bounded as the gateway bounds it: a client's header is not
        // copied into every line at any length.
        let request_id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= MAX_REQUEST_ID);
        // The fields every line logged in the call carries (docs/logging.md);
        // the dotted ones go to an OpenTelemetry exporter only.
        let span = tracing::info_span!(
            "rpc",
            otel.name = %rpc,
            otel.kind = "server",
            rpc.system = "grpc",
            oms.service = layer.service,
            rpc = rpc.as_str(),
            trace_id = trace.trace_id(),
            span_id = trace.span_id(),
            peer = peer.as_deref(),
            request_id,
            caller = tracing::field::Empty,
        );
        let caller = CallerSlot::default();
        request.extensions_mut().insert(caller.clone());
        // The calls this one makes are children of its span.
        trace.carry(&span, request.headers_mut());
        method.in_flight.increment(1.0);
        Self {
            method,
            rpc,
            peer,
            caller,
            span,
            started: Instant::now(),
            code: None,
            ended: false,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let code = match (self.code, self.ended) {
            (Some(code), _) => code,
            (None, true) => Code::Unknown,
            // The client went away before the answer was complete.
            (None, false) => Code::Cancelled,
        };
        self.method.in_flight.decrement(1.0);
        self.method.handling.record(elapsed.as_secs_f64());
        self.method.handled(code).increment(1);

        let caller = self.caller.0.get().map_or("anonymous", String::as_str);
        // Microseconds are what a call's duration is worth showing.
        let ms = elapsed.as_micros() as f64 / 1000.0;
        let (rpc, peer) = (self.rpc.as_str(), self.peer.as_deref());
        let _entered = self.span.enter();
        // The event names its facts itself, as an exported log record
        // carries no span fields; the JSON line writes each key once.
        if self.method.quiet || (self.method.polled && code == Code::Ok) {
            tracing::debug!(target: "oms::rpc", rpc, code = code_name(code), ms, caller, peer, "rpc finished");
        } else {
            tracing::info!(target: "oms::rpc", rpc, code = code_name(code), ms, caller, peer, "rpc finished");
        }
    }
}

/// The response body, passed through untouched, watched for the trailers
/// that carry the status.
#[derive(Debug)]
pub struct ObservedBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B: Body + Unpin> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(frame) = &polled {
            match frame {
                Some(Ok(frame)) => {
                    if let Some(trailers) = frame.trailers_ref()
                        && let Some(mut call) = this.call.take()
                    {
                        call.code = call.code.or(grpc_status(trailers));
                        call.ended = true;
                    }
                }
                Some(Err(_)) => {
                    if let Some(mut call) = this.call.take() {
                        call.code = call.code.or(Some(Code::Internal));
                        call.ended = true;
                    }
                }
                None => {
                    if let Some(mut call) = this.call.take() {
                        call.ended = true;
                    }
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// tonic answers a request it cannot decode with INTERNAL and one over the
/// message size limit with OUT_OF_RANGE. Both are the client's doing, and
/// neither is worth a retry: INVALID_ARGUMENT and RESOURCE_EXHAUSTED (what
/// gRPC's own servers answer to an oversized message).
fn client_fault_codes(headers: &mut http::HeaderMap) {
    // Every call passes here: look at the message only for the two codes.
    let status = grpc_status(headers);
    if !matches!(status, Some(Code::Internal | Code::OutOfRange)) {
        return;
    }
    // tonic percent-encodes the message; its spaces are enough to match.
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let corrected = match status {
        Some(Code::Internal) if message.starts_with("failed to decode Protobuf message") => {
            Code::InvalidArgument
        }
        Some(Code::OutOfRange) if message.contains("decoded message length too large") => {
            Code::ResourceExhausted
        }
        _ => return,
    };
    headers.insert("grpc-status", http::HeaderValue::from(corrected as i32));
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from)
}

/// [`unique_header`] as gRPC metadata.
pub fn unique_metadata(
    value: &str,
) -> Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
    let mut value: tonic::metadata::MetadataValue<tonic::metadata::Ascii> = value.parse().ok()?;
    value.set_sensitive(true);
    Some(value)
}
