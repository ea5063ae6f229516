//! Errors at the gateway: the gRPC code mapped to an HTTP status exactly as
//! grpc-gateway v2 does, and the body in the AIP-193 JSON form with the
//! status details (`ErrorInfo`, `BadRequest`, `RetryInfo`,
//! `PreconditionFailure`) as `@type`-tagged objects.

use axum::Json;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tonic::Code;
use tonic_types::StatusExt as _;

/// The HTTP status grpc-gateway v2 answers for a gRPC code.
pub(crate) fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

const TYPE_PREFIX: &str = "type.googleapis.com/google.rpc.";

/// The answer to a failed backend call: the backend's own status as
/// [`from_status`] maps it, or, when the call failed below gRPC (the
/// connection, HTTP/2, or an answer without `grpc-status`), 503 if the
/// backend was unreachable or refused the stream and 502 otherwise. tonic
/// gives such failures codes like RESOURCE_EXHAUSTED (an h2
/// ENHANCE_YOUR_CALM) or UNKNOWN (an HTTP 431), which would tell the client
/// it was rate-limited or hit a bug of ours; it was neither.
pub(crate) fn from_call_failure(status: &tonic::Status) -> Response {
    // tonic answers a call whose own deadline passed with CANCELLED and
    // its `TimeoutExpired` text (the cause is not kept): the client's
    // deadline passed, which is 504 DEADLINE_EXCEEDED, not a 499.
    if status.code() == Code::Cancelled && status.message() == tonic::TimeoutExpired(()).to_string()
    {
        return body(
            StatusCode::GATEWAY_TIMEOUT,
            Code::DeadlineExceeded,
            "the backend did not answer within the request's deadline",
            Vec::new(),
        );
    }
    if !below_grpc(status) {
        return from_status(status);
    }
    let (http, message) = if status.code() == Code::Unavailable {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the backend service is unavailable; try again shortly",
        )
    } else {
        (
            StatusCode::BAD_GATEWAY,
            "the backend service gave no valid gRPC answer",
        )
    };
    tracing::warn!(
        code = ?status.code(),
        error = %status.message(),
        "a backend call failed below gRPC"
    );
    body(http, Code::Unavailable, message, Vec::new())
}

/// Whether tonic made `status` up from a transport failure rather than
/// reading it from the backend's `grpc-status`. Deadlines and
/// cancellations keep their own answers.
fn below_grpc(status: &tonic::Status) -> bool {
    if matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled) {
        return false;
    }
    // Connection, hyper and h2 errors carry their cause; statuses that
    // came in a backend's trailers never do. An answer that is not gRPC
    // (no `grpc-status`, or a body that is no gRPC frame) has neither,
    // only tonic's wording.
    std::error::Error::source(status).is_some()
        || status.message().starts_with("grpc-status header missing")
        || status.message().starts_with("protocol error")
}

/// A gRPC status as the gateway's HTTP answer.
pub(crate) fn from_status(status: &tonic::Status) -> Response {
    let details = status.get_error_details();
    let mut items = Vec::new();
    if let Some(info) = details.error_info() {
        items.push(json!({
            "@type": format!("{TYPE_PREFIX}ErrorInfo"),
            "reason": info.reason,
            "domain": info.domain,
            "metadata": info.metadata,
        }));
    }
    if let Some(bad) = details.bad_request() {
        let violations: Vec<Value> = bad
            .field_violations
            .iter()
            .map(|v| json!({"field": v.field, "description": v.description}))
            .collect();
        items.push(
            json!({"@type": format!("{TYPE_PREFIX}BadRequest"), "fieldViolations": violations}),
        );
    }
    if let Some(failure) = details.precondition_failure() {
        let violations: Vec<Value> = failure
            .violations
            .iter()
            .map(|v| json!({"type": v.r#type, "subject": v.subject, "description": v.description}))
            .collect();
        items.push(
            json!({"@type": format!("{TYPE_PREFIX}PreconditionFailure"), "violations": violations}),
        );
    }
    let retry_after = details.retry_info().and_then(|r| r.retry_delay);
    if let Some(delay) = retry_after {
        items.push(json!({
            "@type": format!("{TYPE_PREFIX}RetryInfo"),
            "retryDelay": format!("{}s", delay.as_secs_f64()),
        }));
    }
    // The IETF Idempotency-Key draft answers a key reused with another
    // body with 422; gRPC says INVALID_ARGUMENT.
    // An upload over its size limit is RESOURCE_EXHAUSTED in gRPC and 413
    // in HTTP (not 429: waiting does not help).
    let reason = details.error_info().map(|info| info.reason.as_str());
    let http = match reason {
        Some("IDEMPOTENCY_KEY_REUSED") => StatusCode::UNPROCESSABLE_ENTITY,
        Some("IMAGE_TOO_LARGE") => StatusCode::PAYLOAD_TOO_LARGE,
        _ => http_status(status.code()),
    };
    let mut response = body(http, status.code(), status.message(), items);
    if let Some(value) = retry_after_header(retry_after) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// The `Retry-After` of a refusal that carries a RetryInfo: whole
/// seconds, rounded up, at least one.
pub(crate) fn retry_after(status: &tonic::Status) -> Option<HeaderValue> {
    retry_after_header(
        status
            .get_error_details()
            .retry_info()
            .and_then(|r| r.retry_delay),
    )
}

fn retry_after_header(delay: Option<std::time::Duration>) -> Option<HeaderValue> {
    let delay = delay?;
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    HeaderValue::from_str(&seconds.max(1).to_string()).ok()
}

/// The AIP-193 body of a failure in the middle of a stream, when the HTTP
/// status (200) is long sent.
pub(crate) fn stream_error(status: &tonic::Status) -> Value {
    let (http, code) = if below_grpc(status) {
        (StatusCode::BAD_GATEWAY, Code::Unavailable)
    } else {
        (http_status(status.code()), status.code())
    };
    json!({
        "error": {
            "code": http.as_u16(),
            "status": oms_runtime::error::code_name(code),
            "message": status.message(),
        }
    })
}

/// An AIP-193 error body.
pub(crate) fn body(http: StatusCode, code: Code, message: &str, details: Vec<Value>) -> Response {
    let body = json!({
        "error": {
            "code": http.as_u16(),
            "status": oms_runtime::error::code_name(code),
            "message": message,
            "details": details,
        }
    });
    (http, Json(body)).into_response()
}

/// A malformed request, naming the field.
pub(crate) fn bad_request(field: &str, message: &str) -> Response {
    let violation = json!({
        "@type": format!("{TYPE_PREFIX}BadRequest"),
        "fieldViolations": [{"field": field, "description": message}],
    });
    let text = if field.is_empty() {
        message.to_owned()
    } else {
        format!("{field}: {message}")
    };
    body(
        StatusCode::BAD_REQUEST,
        Code::InvalidArgument,
        &text,
        vec![violation],
    )
}

/// Any path no route matches.
pub(crate) async fn no_route(method: Method) -> Response {
    body(
        StatusCode::NOT_FOUND,
        Code::NotFound,
        // The path is not echoed: an answer should not carry back what a
        // client (or someone luring a browser) put in it.
        &format!("no route for {method} on this path"),
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_http_statuses_as_grpc_gateway_does() {
        let table = [
            (Code::Ok, 200),
            (Code::InvalidArgument, 400),
            (Code::FailedPrecondition, 400),
            (Code::OutOfRange, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::Aborted, 409),
            (Code::ResourceExhausted, 429),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::Internal, 500),
            (Code::DataLoss, 500),
            (Code::Unimplemented, 501),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
        ];
        for (code, http) in table {
            assert_eq!(http_status(code).as_u16(), http, "{code:?}");
        }
    }
}
