//! Price quotes: lines priced at today's prices for one customer and held
//! until they expire, then used by at most one order. A quote is consumed
//! in the transaction of the reservation that takes its prices, and given
//! back when that reservation is dropped before commit.

use std::time::Duration;

use chrono::{DateTime, Utc};
use oms_runtime::FieldViolation;
use sea_orm::{ConnectionTrait, DatabaseConnection};

use crate::error::ProductError;
use crate::input::Line;
use crate::model::{Quote, QuoteLine, QuoteState, QuoteUse};
use crate::store::{products, quotes};

/// Open quotes one customer may hold at once.
pub const MAX_OPEN_QUOTES: u64 = 100;

/// The quote rules.
#[derive(Debug, Clone)]
pub struct Quotes {
    pub(crate) db: DatabaseConnection,
    /// How long a new quote holds its prices (`OMS_QUOTE_TTL`).
    pub(crate) ttl: Duration,
    /// How long a quote that expired unused is kept for audit.
    pub(crate) retention: Duration,
}

impl Quotes {
    /// Prices `lines` for `customer_id` at today's prices: every product
    /// must exist, be active and share one currency. Holds no stock.
    /// A customer with [`MAX_OPEN_QUOTES`] open quotes is refused.
    pub async fn create(&self, customer_id: &str, lines: Vec<Line>) -> Result<Quote, ProductError> {
        // Each quote is rows kept for weeks: bounded per customer. Checked
        // before the insert without a lock, so a burst may pass the bound
        // by its own size, never grow without end.
        let open = quotes::open_count(&self.db, customer_id, oms_core::time::now()).await?;
        if open >= MAX_OPEN_QUOTES {
            tracing::warn!(customer_id, open, "refused a quote: too many open quotes");
            metrics::counter!("oms_quotes_refused_total", "reason" => "too_many_open").increment(1);
            return Err(ProductError::TooManyQuotes {
                limit: MAX_OPEN_QUOTES,
            });
        }
        let ids: Vec<String> = lines.iter().map(|l| l.product_id.clone()).collect();
        let found = products::get_many(&self.db, &ids).await?;
        let mut priced = Vec::with_capacity(lines.len());
        for line in &lines {
            let product = found
                .iter()
                .find(|p| p.id == line.product_id)
                .ok_or_else(|| ProductError::ProductNotFound(line.product_id.clone()))?;
            if product.archived {
                return Err(ProductError::ProductArchived(product.id.clone()));
            }
            priced.push(product);
        }
        let pricing =
            oms_core::money::price_lines(lines.iter().zip(&priced).map(|(line, product)| {
                (
                    product.currency_code.as_str(),
                    product.price_minor,
                    line.quantity,
                )
            }))
            .map_err(|e| match e {
                oms_core::money::PricingError::MixedCurrencies { first, other } => {
                    ProductError::MixedCurrencies { first, other }
                }
                oms_core::money::PricingError::Overflow { index } => {
                    ProductError::from(FieldViolation::new(
                        format!("lines[{index}].quantity"),
                        "makes the total too large to price",
                    ))
                }
            })?;
        let quoted = lines
            .iter()
            .zip(&priced)
            .zip(pricing.line_totals_minor)
            .map(|((line, product), line_total_minor)| QuoteLine {
                product_id: product.id.clone(),
                sku: product.sku.clone(),
                name: product.name.clone(),
                quantity: line.quantity,
                unit_price_minor: product.price_minor,
                line_total_minor,
            })
            .collect();
        let (currency_code, total_minor) = (pricing.currency_code, pricing.total_minor);
        let now = oms_core::time::now();
        let quote = Quote {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: customer_id.to_owned(),
            consumed: false,
            currency_code,
            total_minor,
            lines: quoted,
            create_time: now,
            expire_time: now + chrono::Duration::from_std(self.ttl).unwrap_or_default(),
            order_id: None,
        };
        quotes::insert(&self.db, &quote).await?;
        tracing::info!(quote_id = %quote.id, lines = quote.lines.len(), "quote created");
        Ok(quote)
    }

    /// The caller's quote `id`; anyone else's is not found.
    pub async fn get(&self, customer_id: &str, id: &str) -> Result<Quote, ProductError> {
        quotes::get(&self.db, id)
            .await?
            .filter(|q| q.customer_id == customer_id)
            .ok_or_else(|| ProductError::QuoteNotFound(id.to_owned()))
    }

    /// Deletes quotes that expired unused longer ago than the retention;
    /// how many.
    pub async fn prune(&self) -> Result<usize, ProductError> {
        let before =
            oms_core::time::now() - chrono::Duration::from_std(self.retention).unwrap_or_default();
        let pruned = quotes::prune(&self.db, before).await?;
        Ok(usize::try_from(pruned).unwrap_or(usize::MAX))
    }
}

/// A consumed quote's prices, for the reservation's snapshots.
#[derive(Debug, Clone)]
pub(crate) struct Quoted {
    currency_code: String,
    lines: Vec<QuoteLine>,
}

impl Quoted {
    /// The quoted currency and unit price of `product_id`.
    pub(crate) fn price_of(&self, product_id: &str) -> Option<(&String, i64)> {
        self.lines
            .iter()
            .find(|l| l.product_id == product_id)
            .map(|l| (&self.currency_code, l.unit_price_minor))
    }
}

/// Checks `using`'s quote against the `requested` lines (in the caller's
/// order) and consumes it for reservation `reservation_id`, in `txn`:
/// the reservation's transaction, so the quote is used exactly when the
/// stock is held.
pub(crate) async fn consume(
    txn: &impl ConnectionTrait,
    using: &QuoteUse,
    requested: &[Line],
    reservation_id: &str,
    now: DateTime<Utc>,
) -> Result<Quoted, ProductError> {
    let quote = quotes::get(txn, &using.quote_id)
        .await?
        .filter(|q| q.customer_id == using.customer_id)
        .ok_or_else(|| ProductError::QuoteNotFound(using.quote_id.clone()))?;
    let this_orders = quote.order_id.as_deref() == Some(using.order_id.as_str());
    match quote.state_at(now) {
        QuoteState::Consumed if !this_orders => return Err(already_used(&quote)),
        // This order's earlier attempt, whose stock perhaps went back
        // (the conditional update below decides), unless its time is up.
        QuoteState::Consumed if now < quote.expire_time => {}
        QuoteState::Consumed | QuoteState::Expired => {
            return Err(ProductError::QuoteExpired {
                quote_id: quote.id,
                expire_time: quote.expire_time,
            });
        }
        QuoteState::Open => {}
    }
    let differences = mismatches(&quote, requested);
    if !differences.is_empty() {
        return Err(ProductError::QuoteMismatch {
            quote_id: quote.id,
            differences,
        });
    }
    // The conditional UPDATE settles a race the read above cannot see.
    if !quotes::consume(txn, using, reservation_id, now).await? {
        return Err(ProductError::QuoteAlreadyUsed {
            quote_id: quote.id,
            order_id: quote.order_id,
        });
    }
    Ok(Quoted {
        currency_code: quote.currency_code,
        lines: quote.lines,
    })
}

fn already_used(quote: &Quote) -> ProductError {
    ProductError::QuoteAlreadyUsed {
        quote_id: quote.id.clone(),
        order_id: quote.order_id.clone(),
    }
}

/// One violation per requested line that differs from the quote, and one
/// per quoted product the request leaves out.
fn mismatches(quote: &Quote, requested: &[Line]) -> Vec<FieldViolation> {
    let mut differences = Vec::new();
    for (i, line) in requested.iter().enumerate() {
        match quote.lines.iter().find(|q| q.product_id == line.product_id) {
            None => differences.push(FieldViolation::new(
                format!("lines[{i}].product_id"),
                format!("product {} is not on the quote", line.product_id),
            )),
            Some(q) if q.quantity != line.quantity => differences.push(FieldViolation::new(
                format!("lines[{i}].quantity"),
                format!("the quote is for {} units", q.quantity),
            )),
            Some(_) => {}
        }
    }
    for q in &quote.lines {
        if !requested.iter().any(|l| l.product_id == q.product_id) {
            differences.push(FieldViolation::new(
                "lines",
                format!(
                    "the quote also has product {} ({} units)",
                    q.product_id, q.quantity
                ),
            ));
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote(lines: &[(&str, i32)]) -> Quote {
        let now = oms_core::time::now();
        Quote {
            id: "q".to_owned(),
            customer_id: "c".to_owned(),
            consumed: false,
            currency_code: "USD".to_owned(),
            total_minor: 0,
            lines: lines
                .iter()
                .map(|(id, quantity)| QuoteLine {
                    product_id: (*id).to_owned(),
                    sku: String::new(),
                    name: String::new(),
                    quantity: *quantity,
                    unit_price_minor: 100,
                    line_total_minor: 100 * i64::from(*quantity),
                })
                .collect(),
            create_time: now,
            expire_time: now,
            order_id: None,
        }
    }

    fn lines(lines: &[(&str, i32)]) -> Vec<Line> {
        lines
            .iter()
            .map(|(id, quantity)| Line {
                product_id: (*id).to_owned(),
                quantity: *quantity,
            })
            .collect()
    }

    #[test]
    fn the_same_lines_in_another_order_match() {
        let q = quote(&[("a", 1), ("b", 2)]);
        assert!(mismatches(&q, &lines(&[("b", 2), ("a", 1)])).is_empty());
    }

    #[test]
    fn each_differing_line_is_named_by_its_field() {
        let q = quote(&[("a", 1), ("b", 2), ("c", 3)]);
        let fields: Vec<String> = mismatches(&q, &lines(&[("a", 5), ("d", 1), ("b", 2)]))
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            ["lines[0].quantity", "lines[1].product_id", "lines"]
        );
    }
}
