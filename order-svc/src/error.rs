//! Everything order-svc can fail with, and its one mapping to the wire.
//! Errors product-svc gave for a business reason pass through unchanged
//! (same code, same details), so clients see INSUFFICIENT_STOCK as
//! product-svc said it.

use oms_runtime::{ApiError, FieldViolation, Rejection};
use tonic::{Code, Status};

use crate::DOMAIN;
use crate::inventory::{Refusal, RefusalKind, Unavailable};
use crate::model::Failure;

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
    /// Every WatchOrder slot of this instance is taken.
    #[error("too many orders are being watched here; retry later")]
    TooManyWatchers,
    /// The caller holds their share of WatchOrder slots already.
    #[error("you are watching {0} orders already, the most one user may; close a watch first")]
    TooManyOwnWatches(usize),
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
    #[error("product-svc: {}", .0.message)]
    Upstream(Refusal),
    /// A dependency was down or slow.
    #[error("a dependency failed: {}", .0.message)]
    Dependency(Unavailable),
    /// A retry of an order that failed: the original error, again.
    #[error("{}", .0.message)]
    Replayed(Failure),
    /// Authentication or authorization refused the call.
    #[error(transparent)]
    Auth(ApiError),
    /// The database failed.
    #[error("orders database")]
    Database(#[from] sea_orm::DbErr),
    /// The order changed under a saga that held it PENDING (a replica's
    /// recovery took it over).
    #[error("order {order_id} left PENDING while it was placed")]
    NoLongerPending {
        /// The order.
        order_id: String,
    },
    /// The task running a saga or a cancellation panicked or was dropped.
    #[error("the {what} task failed")]
    Task {
        /// Which task.
        what: &'static str,
        /// Its join error.
        #[source]
        source: tokio::task::JoinError,
    },
}

impl From<FieldViolation> for OrderError {
    fn from(violation: FieldViolation) -> Self {
        Self::Invalid(vec![violation])
    }
}

impl From<Vec<FieldViolation>> for OrderError {
    fn from(violations: Vec<FieldViolation>) -> Self {
        Self::Invalid(violations)
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
            Self::Upstream(refusal) => refused(refusal),
            Self::Dependency(why) => dependency(why, &self.to_string()),
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

impl Failure {
    /// A transient failure (recovery gave up on the attempt): a retry
    /// places the order again.
    pub fn unavailable(message: &str) -> Self {
        Self {
            code: i32::from(Code::Unavailable),
            message: message.to_owned(),
            details: Vec::new(),
        }
    }

    /// Whether the failure was transient, so a retry may try again.
    pub fn is_transient(&self) -> bool {
        matches!(
            Code::from(self.code),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Aborted
                | Code::Internal
                | Code::Unknown
                | Code::Cancelled
        )
    }
}

/// The status code of a refusal of this kind.
pub fn refusal_code(kind: RefusalKind) -> Code {
    match kind {
        RefusalKind::Invalid => Code::InvalidArgument,
        RefusalKind::NotFound => Code::NotFound,
        RefusalKind::FailedPrecondition => Code::FailedPrecondition,
        RefusalKind::AlreadyExists => Code::AlreadyExists,
        RefusalKind::OutOfRange => Code::OutOfRange,
    }
}

/// product-svc's refusal, as it said it.
fn refused(refusal: &Refusal) -> Status {
    Status::with_details(
        refusal_code(refusal.kind),
        refusal.message.clone(),
        refusal.details.clone().into(),
    )
}

/// A dependency failure: the caller learns which kind, not our internals.
fn dependency(why: &Unavailable, message: &str) -> Status {
    let code = if why.timed_out {
        Code::DeadlineExceeded
    } else {
        Code::Unavailable
    };
    ApiError::from(Rejection::new(
        code,
        DOMAIN,
        "DEPENDENCY_UNAVAILABLE",
        format!("{message}; retry with the same request_id"),
    ))
    .into()
}

fn reject(code: Code, reason: &'static str, message: String) -> ApiError {
    Rejection::new(code, DOMAIN, reason, message).into()
}

impl From<OrderError> for Status {
    fn from(error: OrderError) -> Self {
        let message = error.to_string();
        let api = match error {
            OrderError::Upstream(refusal) => return refused(&refusal),
            OrderError::Dependency(why) => return dependency(&why, &message),
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
            OrderError::TooManyWatchers => Rejection::new(
                Code::ResourceExhausted,
                DOMAIN,
                "TOO_MANY_WATCHERS",
                message,
            )
            .retry_after(std::time::Duration::from_secs(5))
            .into(),
            OrderError::TooManyOwnWatches(_) => Rejection::new(
                Code::ResourceExhausted,
                DOMAIN,
                "TOO_MANY_OWN_WATCHES",
                message,
            )
            .into(),
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
            OrderError::Database(e) if oms_store::db::is_unavailable(&e) => {
                ApiError::unavailable(e)
            }
            e @ (OrderError::Database(_)
            | OrderError::NoLongerPending { .. }
            | OrderError::Task { .. }) => ApiError::internal(e),
        };
        api.into()
    }
}
