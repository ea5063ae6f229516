//! Parse, don't validate: each OrderService request turned into validated
//! input once, at the edge, with every bad field reported together.

use oms_core::fields::AllFields as _;
use oms_proto::order::v1 as pb;
use oms_runtime::FieldViolation;

use crate::model::Status;

pub use oms_core::lines::Line;

/// A CreateOrder request, valid.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// 1 to 100 lines of distinct products.
    pub lines: Vec<Line>,
    /// The client's idempotency key.
    pub request_id: String,
    /// The quote whose prices the order takes (canonical UUID text).
    pub quote_id: Option<String>,
}

impl TryFrom<pb::CreateOrderRequest> for NewOrder {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::CreateOrderRequest) -> Result<Self, Self::Error> {
        let (lines, request_id, quote_id) = (
            oms_core::lines::parse(&r.lines),
            request_id(&r.request_id),
            quote_id(&r.quote_id),
        )
            .all_fields()?;
        Ok(Self {
            lines,
            request_id,
            quote_id,
        })
    }
}

/// An optional quote ID: empty, or a UUID.
fn quote_id(raw: &str) -> Result<Option<String>, FieldViolation> {
    if raw.is_empty() {
        return Ok(None);
    }
    uuid::Uuid::parse_str(raw.trim())
        .map(|id| Some(id.hyphenated().to_string()))
        .map_err(|_| FieldViolation::new("quote_id", "must be a quote ID (UUID)"))
}

/// A ListOrders request, valid.
#[derive(Debug, Clone)]
pub struct OrderQuery {
    /// Only orders of this status.
    pub status: Option<Status>,
    /// Only this customer's (admins).
    pub customer_id: Option<String>,
    /// Orders per page.
    pub page_size: u64,
    /// Where the page starts.
    pub cursor: Option<String>,
    /// Only orders created at or after this.
    pub created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Only orders created before this.
    pub created_until: Option<chrono::DateTime<chrono::Utc>>,
}

impl TryFrom<pb::ListOrdersRequest> for OrderQuery {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::ListOrdersRequest) -> Result<Self, Self::Error> {
        let status = match pb::OrderStatus::try_from(r.status) {
            Ok(pb::OrderStatus::Unspecified) => Ok(None),
            Ok(status) => Ok(Some(from_proto_status(status))),
            Err(_) => Err(FieldViolation::new("status", "is not an OrderStatus")),
        };
        let customer_id = if r.customer_id.is_empty() {
            Ok(None)
        } else {
            uuid::Uuid::parse_str(&r.customer_id)
                .map(|u| Some(u.hyphenated().to_string()))
                .map_err(|_| FieldViolation::new("customer_id", "must be a user ID (UUID)"))
        };
        let time = |field: &'static str, t: Option<prost_types::Timestamp>| match t {
            None => Ok(None),
            Some(t) => oms_core::time::from_timestamp(&t)
                .map(Some)
                .ok_or_else(|| FieldViolation::new(field, "is not a valid timestamp")),
        };
        let (status, customer_id, page_size, cursor, created_from, created_until) = (
            status,
            customer_id,
            oms_core::paging::page_size(r.page_size),
            oms_core::paging::decode_token(&r.page_token),
            time("create_time_start", r.create_time_start),
            time("create_time_end", r.create_time_end),
        )
            .all_fields()?;
        Ok(Self {
            status,
            customer_id,
            page_size,
            cursor,
            created_from,
            created_until,
        })
    }
}

/// A CancelOrder request, valid.
#[derive(Debug, Clone)]
pub struct Cancellation {
    /// The order.
    pub order_id: String,
    /// Why, at most 500 characters.
    pub reason: String,
}

impl TryFrom<pb::CancelOrderRequest> for Cancellation {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::CancelOrderRequest) -> Result<Self, Self::Error> {
        let (order_id, reason) = (order_id(&r.order_id), cancel_reason(&r.reason)).all_fields()?;
        Ok(Self { order_id, reason })
    }
}

/// An UpdateOrderStatus request, valid.
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// The order.
    pub order_id: String,
    /// SHIPPED or DELIVERED.
    pub to: Status,
}

impl TryFrom<pb::UpdateOrderStatusRequest> for StatusChange {
    type Error = Vec<FieldViolation>;

    fn try_from(r: pb::UpdateOrderStatusRequest) -> Result<Self, Self::Error> {
        let to = match pb::OrderStatus::try_from(r.status) {
            Ok(pb::OrderStatus::Shipped) => Ok(Status::Shipped),
            Ok(pb::OrderStatus::Delivered) => Ok(Status::Delivered),
            _ => Err(FieldViolation::new(
                "status",
                "must be ORDER_STATUS_SHIPPED or ORDER_STATUS_DELIVERED",
            )),
        };
        let (order_id, to) = (order_id(&r.order_id), to).all_fields()?;
        Ok(Self { order_id, to })
    }
}

/// The domain status of a protobuf one (UNSPECIFIED is the caller's to
/// refuse before this).
pub fn from_proto_status(status: pb::OrderStatus) -> Status {
    match status {
        pb::OrderStatus::Unspecified | pb::OrderStatus::Pending => Status::Pending,
        pb::OrderStatus::Confirmed => Status::Confirmed,
        pb::OrderStatus::Cancelled => Status::Cancelled,
        pb::OrderStatus::Shipped => Status::Shipped,
        pb::OrderStatus::Delivered => Status::Delivered,
        pb::OrderStatus::Failed => Status::Failed,
    }
}

/// The client's idempotency key: 1 to 128 printable ASCII characters.
pub fn request_id(raw: &str) -> Result<String, FieldViolation> {
    if raw.is_empty() || raw.len() > 128 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldViolation::new(
            "request_id",
            "must be 1 to 128 printable ASCII characters (e.g. a UUID); set it, or the Idempotency-Key header",
        ));
    }
    Ok(raw.to_owned())
}

/// An order ID: a UUID.
pub fn order_id(raw: &str) -> Result<String, FieldViolation> {
    uuid::Uuid::parse_str(raw.trim())
        .map(|id| id.hyphenated().to_string())
        .map_err(|_| FieldViolation::new("order_id", "must be an order ID (UUID)"))
}

/// A cancellation reason: at most 500 characters.
pub fn cancel_reason(raw: &str) -> Result<String, FieldViolation> {
    if raw.chars().count() > 500 {
        return Err(FieldViolation::new(
            "reason",
            "must be at most 500 characters",
        ));
    }
    if oms_core::text::hidden_in_text(raw).is_some() {
        return Err(FieldViolation::new(
            "reason",
            "must not contain control characters (but tab and newline) or invisible ones",
        ));
    }
    Ok(raw.trim().to_owned())
}
