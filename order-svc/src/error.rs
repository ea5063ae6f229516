//! Everything order-svc can fail with, and its one mapping to the wire.
//! Errors product-svc gave for a business reason pass through unchanged
//! (same code, same details), so clients see INSUFFICIENT_STOCK as
//! product-svc said it.

use kit::{ApiError, FieldViolation, Rejection};
use tonic::{Code, Status};

use crate::DOMAIN;
use crate::store::orders::Failure;

/// An order-svc failure.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// Bad request fields, every one of them.
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// The request ID was used with other lines.
    #[error("request_id was already used for an order with other lines")]
    IdempotencyKeyReused,
    /// The same request is still being processed.
    #[error("this order is still being placed; retry shortly")]
    InFlight,
    /// No such order, or not the caller's.
    #[error("order not found")]
    NotFound,
    /// A status change the rules don't allow.
    #[error("an order cannot go from {from} to {to}")]
    InvalidTransition {
        /// Current status.
        from: &'static str,
        /// Asked status.
        to: &'static str,
    },
    /// Lines priced in more than one currency.
    #[error("one order holds one currency; these products are priced in several")]
    MixedCurrencies,
    /// The total does not fit in 64 bits of minor units.
    #[error("the order total is too large")]
    TotalOverflow,
    /// product-svc refused for a business reason: passed on as is.
    #[error("product-svc: {}", .0.message())]
    Upstream(Status),
    /// A dependency was down or slow.
    #[error("a dependency failed: {}", .0.message())]
    Dependency(Status),
    /// A retry of an order that failed: the original error, again.
    #[error("{}", .0.message)]
    Replayed(Failure),
    /// Authentication or authorization refused the call.
    #[error(transparent)]
    Auth(ApiError),
    /// The database failed.
    #[error("{0}")]
    Internal(String),
}

impl From<FieldViolation> for OrderError {
    fn from(violation: FieldViolation) -> Self {
        Self::Invalid(vec![violation])
    }
}

impl From<sea_orm::DbErr> for OrderError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Internal(format!("orders database: {e}"))
    }
}

impl OrderError {
    /// What to store for a failed order, so a retry answers alike.
    pub fn to_failure(&self) -> Failure {
        let status = self.clone_status();
        Failure {
            code: i32::from(status.code()),
            message: status.message().to_owned(),
            details: status.details().to_vec(),
        }
    }

    fn clone_status(&self) -> Status {
        match self {
            Self::Upstream(s) | Self::Dependency(s) => {
                Status::with_details(s.code(), s.message(), s.details().to_vec().into())
            }
            Self::MixedCurrencies => reject(
                Code::FailedPrecondition,
                "MIXED_CURRENCIES",
                self.to_string(),
            )
            .into(),
            Self::TotalOverflow => {
                reject(Code::OutOfRange, "TOTAL_OVERFLOW", self.to_string()).into()
            }
            other => Status::internal(other.to_string()),
        }
    }
}

/// Whether a stored failure was transient, so a retry may try again.
pub fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::Internal
            | Code::Unknown
            | Code::Cancelled
    )
}

fn reject(code: Code, reason: &'static str, message: String) -> ApiError {
    Rejection::new(code, DOMAIN, reason, message).into()
}

impl From<OrderError> for Status {
    fn from(error: OrderError) -> Self {
        let message = error.to_string();
        let api = match error {
            OrderError::Upstream(status) => return status,
            OrderError::Dependency(status) => {
                // The caller learns which kind of failure, not our internals.
                let code = if status.code() == Code::DeadlineExceeded {
                    Code::DeadlineExceeded
                } else {
                    Code::Unavailable
                };
                Rejection::new(
                    code,
                    DOMAIN,
                    "DEPENDENCY_UNAVAILABLE",
                    format!("{message}; retry with the same request_id"),
                )
                .into()
            }
            OrderError::Replayed(f) => {
                return Status::with_details(Code::from(f.code), f.message, f.details.into());
            }
            OrderError::Invalid(violations) => ApiError::InvalidArgument {
                domain: DOMAIN,
                violations,
            },
            OrderError::IdempotencyKeyReused => {
                reject(Code::InvalidArgument, "IDEMPOTENCY_KEY_REUSED", message)
            }
            OrderError::InFlight => reject(Code::Aborted, "ORDER_IN_FLIGHT", message),
            OrderError::NotFound => reject(Code::NotFound, "ORDER_NOT_FOUND", message),
            OrderError::InvalidTransition { from, to } => Rejection::new(
                Code::FailedPrecondition,
                DOMAIN,
                "INVALID_TRANSITION",
                message,
            )
            .with("from", from)
            .with("to", to)
            .into(),
            e @ (OrderError::MixedCurrencies | OrderError::TotalOverflow) => {
                return e.clone_status();
            }
            OrderError::Auth(e) => e,
            OrderError::Internal(cause) => ApiError::internal(cause),
        };
        api.into()
    }
}
