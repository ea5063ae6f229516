//! The one mapping from service errors to the wire: every service turns its
//! own error enum into an [`ApiError`], and `From<ApiError> for Status` is
//! the only place a `tonic::Status` with `google.rpc` details is built.

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub use oms_core::error::{BoxError, FieldViolation};

/// A request a domain rule refused: the gRPC code, an `ErrorInfo` reason in
/// UPPER_SNAKE case, and metadata a client can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The gRPC status code.
    pub code: Code,
    /// `ErrorInfo.domain`: the service that refused, e.g. `product.oms`.
    pub domain: &'static str,
    /// `ErrorInfo.reason`, e.g. `INSUFFICIENT_STOCK`.
    pub reason: &'static str,
    /// A message for people.
    pub message: String,
    /// `ErrorInfo.metadata`, e.g. `productId`, `requested`, `available`.
    pub metadata: BTreeMap<String, String>,
    /// Becomes a `RetryInfo` detail (throttling).
    pub retry_after: Option<Duration>,
    /// Becomes a `PreconditionFailure` detail: one `(type, subject,
    /// description)` per failed precondition, when there are several.
    pub preconditions: Vec<(String, String, String)>,
    /// Becomes a `BadRequest` detail: the request fields a rule refused
    /// (e.g. the lines that differ from a quote), though each is well-formed.
    pub fields: Vec<FieldViolation>,
}

impl Rejection {
    /// A rejection with no metadata.
    pub fn new(
        code: Code,
        domain: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            domain,
            reason,
            message: message.into(),
            metadata: BTreeMap::new(),
            retry_after: None,
            preconditions: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Adds one `ErrorInfo.metadata` entry.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.metadata.insert(key.into(), value.to_string());
        self
    }

    /// Adds one `PreconditionFailure` violation.
    #[must_use]
    pub fn precondition(
        mut self,
        kind: impl Into<String>,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.preconditions
            .push((kind.into(), subject.into(), description.into()));
        self
    }

    /// Adds one `BadRequest` field violation.
    #[must_use]
    pub fn field(mut self, violation: FieldViolation) -> Self {
        self.fields.push(violation);
        self
    }

    /// Tells the client when to try again.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }
}

/// What a handler can fail with, as the client will see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; one violation per bad field.
    #[error("invalid request: {}", summarize(violations))]
    InvalidArgument {
        /// The service that checked the request.
        domain: &'static str,
        /// Every bad field, not only the first.
        violations: Vec<FieldViolation>,
    },
    /// A domain rule refused the request (boxed: it is the large variant,
    /// and errors travel through every `Result`).
    #[error("{}", .0.message)]
    Rejected(Box<Rejection>),
    /// A bug or an infrastructure failure. Logged with its cause chain; the
    /// client sees only "internal error".
    #[error("internal error")]
    Internal(#[source] BoxError),
    /// A dependency (the database, Redis) could not be reached: the same
    /// call may succeed shortly. Logged at WARN with its cause chain; the
    /// client sees UNAVAILABLE with a retry delay, never the cause.
    #[error("a dependency is unavailable")]
    Unavailable(#[source] BoxError),
}

impl ApiError {
    /// Wraps any error as an internal one.
    pub fn internal(error: impl Into<BoxError>) -> Self {
        Self::Internal(error.into())
    }

    /// Wraps the failure of a dependency that is down or unreachable.
    pub fn unavailable(error: impl Into<BoxError>) -> Self {
        Self::Unavailable(error.into())
    }

    /// A malformed request with a single bad field.
    pub fn invalid(
        domain: &'static str,
        field: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self::InvalidArgument {
            domain,
            violations: vec![FieldViolation::new(field, description)],
        }
    }
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        Self::Rejected(Box::new(rejection))
    }
}

/// Field violations (and failed preconditions) sent in full; the rest are
/// counted. A request with a thousand bad lines must not make a status
/// that HTTP/2 peers refuse (grpc-status-details-bin over 8 KiB breaks
/// grpcio) or that costs other clients their connection.
pub const MAX_DETAILED: usize = 20;
/// Violations named in the one-line message; the details list more.
const MAX_IN_MESSAGE: usize = 3;
/// Longest field path sent (`lines[99].product_id` is 20).
const MAX_FIELD: usize = 48;
/// Longest description or metadata value sent; some echo what the client
/// sent.
const MAX_TEXT: usize = 80;
/// The retry delay an UNAVAILABLE for a dependency suggests.
const DEPENDENCY_RETRY_DELAY: Duration = Duration::from_secs(1);

/// `text` cut to at most `max` characters, marked with `…` when cut.
fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}…", &text[..end]),
    }
}

fn summarize(violations: &[FieldViolation]) -> String {
    let mut text = violations
        .iter()
        .take(MAX_IN_MESSAGE)
        .map(|v| {
            format!(
                "{}: {}",
                clip(&v.field, MAX_FIELD),
                clip(&v.description, MAX_TEXT)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if violations.len() > MAX_IN_MESSAGE {
        text.push_str(&format!(
            "; and {} more (see the details)",
            violations.len() - MAX_IN_MESSAGE
        ));
    }
    text
}

/// `ErrorInfo` metadata saying how many items there were and how many
/// the details leave out.
fn counted(total: usize) -> std::collections::HashMap<String, String> {
    let mut metadata = std::collections::HashMap::new();
    if total > MAX_DETAILED {
        metadata.insert("violations".to_owned(), total.to_string());
        metadata.insert("omitted".to_owned(), (total - MAX_DETAILED).to_string());
    }
    metadata
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        match error {
            ApiError::InvalidArgument { domain, violations } => {
                let message = format!("invalid request: {}", summarize(&violations));
                let mut details = ErrorDetails::new();
                details.set_error_info("INVALID_ARGUMENT", domain, counted(violations.len()));
                for v in violations.into_iter().take(MAX_DETAILED) {
                    details.add_bad_request_violation(
                        clip(&v.field, MAX_FIELD),
                        clip(&v.description, MAX_TEXT),
                    );
                }
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            ApiError::Rejected(r) => {
                let r = *r;
                let mut details = ErrorDetails::new();
                let mut metadata = counted(r.preconditions.len().max(r.fields.len()));
                metadata.extend(r.metadata.into_iter().map(|(k, v)| (k, clip(&v, MAX_TEXT))));
                details.set_error_info(r.reason, r.domain, metadata);
                if let Some(delay) = r.retry_after {
                    details.set_retry_info(Some(delay));
                }
                for (kind, subject, description) in r.preconditions.into_iter().take(MAX_DETAILED) {
                    details.add_precondition_failure_violation(
                        kind,
                        clip(&subject, MAX_FIELD),
                        clip(&description, MAX_TEXT),
                    );
                }
                for v in r.fields.into_iter().take(MAX_DETAILED) {
                    details.add_bad_request_violation(
                        clip(&v.field, MAX_FIELD),
                        clip(&v.description, MAX_TEXT),
                    );
                }
                Status::with_error_details(r.code, clip(&r.message, 4 * MAX_TEXT), details)
            }
            ApiError::Internal(source) => {
                // The one place the cause chain is logged; clients never see it.
                let chain = oms_core::error::report(source.as_ref());
                tracing::error!(error = %chain, "internal error");
                Status::internal("internal error")
            }
            ApiError::Unavailable(source) => {
                let chain = oms_core::error::report(source.as_ref());
                tracing::warn!(error = %chain, "dependency unavailable");
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    "DEPENDENCY_UNAVAILABLE",
                    "oms",
                    std::collections::HashMap::new(),
                );
                details.set_retry_info(Some(DEPENDENCY_RETRY_DELAY));
                Status::with_error_details(
                    Code::Unavailable,
                    "a dependency of this service is unavailable; retry shortly",
                    details,
                )
            }
        }
    }
}

/// The canonical name of a code, as `google.rpc.Code` and AIP-193's
/// `status` field spell it.
pub fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_violation_and_an_error_info() {
        let error = ApiError::InvalidArgument {
            domain: "test.oms",
            violations: vec![
                FieldViolation::new("email", "must contain @"),
                FieldViolation::new("password", "must be at least 8 characters"),
            ],
        };
        let status = Status::from(error);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["email", "password"]);
        assert_eq!(
            details.error_info().map(|i| i.domain.as_str()),
            Some("test.oms")
        );
    }

    #[test]
    fn an_unreachable_dependency_is_unavailable_with_a_retry_delay_and_no_cause() {
        let status = Status::from(ApiError::unavailable(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "redis at 10.0.0.7:6379 refused",
        )));
        assert_eq!(status.code(), Code::Unavailable);
        assert!(
            !status.message().contains("10.0.0.7"),
            "{}",
            status.message()
        );
        let details = status.get_error_details();
        assert_eq!(
            details.error_info().map(|i| i.reason.as_str()),
            Some("DEPENDENCY_UNAVAILABLE")
        );
        assert!(details.retry_info().is_some());
    }

    /// What a status costs on the wire: its message and its details.
    fn wire_size(status: &Status) -> usize {
        status.message().len() + status.details().len()
    }

    #[test]
    fn a_thousand_long_violations_make_a_small_status_that_counts_them() {
        let long = "x".repeat(10_000);
        let violations = (0..1000)
            .map(|i| FieldViolation::new(format!("lines[{i}].product_id{long}"), &long))
            .collect();
        let status = Status::from(ApiError::InvalidArgument {
            domain: "test.oms",
            violations,
        });
        assert!(wire_size(&status) < 4096, "{} bytes", wire_size(&status));
        let details = status.get_error_details();
        let listed = details
            .bad_request()
            .map_or(0, |b| b.field_violations.len());
        assert_eq!(listed, MAX_DETAILED);
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(
            info.metadata.get("violations").map(String::as_str),
            Some("1000")
        );
        assert_eq!(
            info.metadata.get("omitted").map(String::as_str),
            Some("980")
        );
        assert!(
            status.message().contains("and 997 more"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn many_failed_preconditions_make_a_small_status_too() {
        let mut rejection = Rejection::new(
            Code::FailedPrecondition,
            "product.oms",
            "INSUFFICIENT_STOCK",
            "short",
        )
        .with("echo", "y".repeat(10_000));
        for i in 0..500 {
            rejection = rejection.precondition(
                "INSUFFICIENT_STOCK",
                format!("products/{i}"),
                "requested 5, available 1",
            );
        }
        let status = Status::from(ApiError::from(rejection));
        assert!(wire_size(&status) < 4096, "{} bytes", wire_size(&status));
        let details = status.get_error_details();
        assert_eq!(
            details.precondition_failure().map(|p| p.violations.len()),
            Some(MAX_DETAILED)
        );
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(
            info.metadata.get("violations").map(String::as_str),
            Some("500")
        );
    }

    #[test]
    fn clipping_counts_characters_and_marks_the_cut() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 2), "hé…");
    }

    #[test]
    fn rejections_keep_code_reason_metadata_and_retry() {
        let rejection = Rejection::new(
            Code::FailedPrecondition,
            "product.oms",
            "INSUFFICIENT_STOCK",
            "short",
        )
        .with("productId", "p1")
        .with("available", 3)
        .retry_after(Duration::from_secs(2));
        let status = Status::from(ApiError::from(rejection));
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "INSUFFICIENT_STOCK");
        assert_eq!(
            info.metadata.get("available").map(String::as_str),
            Some("3")
        );
        assert!(details.retry_info().is_some());
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status = Status::from(ApiError::internal(std::io::Error::other(
            "disk on fire at /var/db",
        )));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("disk"));
    }
}
