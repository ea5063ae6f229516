//! The `quotes` table: prices held for a customer, and who used them.

use sea_orm::entity::prelude::*;

/// One quote's header.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "quotes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub customer_id: String,
    /// Expiry is read from `expire_time`, not stored.
    pub state: QuoteState,
    pub currency_code: String,
    pub total_minor: i64,
    pub create_time: DateTimeUtc,
    pub expire_time: DateTimeUtc,
    pub order_id: Option<String>,
    /// The reservation that consumed it: releasing that gives it back.
    pub reservation_id: Option<String>,
    pub consume_time: Option<DateTimeUtc>,
}

/// A quote's stored state, by name (a typed column: a name this build does
/// not know is an error when read, never taken for open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, DeriveValueType)]
#[sea_orm(
    value_type = "String",
    from_str = "QuoteState::parse",
    to_str = "QuoteState::as_str"
)]
pub enum QuoteState {
    /// May still be used.
    Open,
    /// Used by an order.
    Consumed,
}

impl QuoteState {
    const ALL: [Self; 2] = [Self::Open, Self::Consumed];

    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Consumed => "consumed",
        }
    }

    /// The state stored as `name`.
    pub fn parse(name: &str) -> Result<Self, oms_core::error::UnknownName> {
        oms_core::error::find_by_name("quote state", &Self::ALL, |s| s.as_str(), name)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
