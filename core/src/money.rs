//! Money on the wire: ISO 4217 currency codes and amounts in minor units.
//! Money never floats.

use crate::error::FieldViolation;

/// Active ISO 4217 currency codes.
const ISO_4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP",
    "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY",
    "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD",
    "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK",
    "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG",
    "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS",
    "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VED",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// A positive amount in one currency's minor unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// ISO 4217 code, upper case.
    pub currency_code: String,
    /// Minor units, above zero.
    pub amount_minor: i64,
}

impl Money {
    /// Checks a price from the wire: a known currency and an amount above
    /// zero. `field` is the path of the Money field, e.g. `product.price`.
    pub fn parse_price(
        field: &str,
        currency_code: &str,
        amount_minor: i64,
    ) -> Result<Self, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        if !ISO_4217.contains(&currency_code) {
            violations.push(FieldViolation::new(
                format!("{field}.currency_code"),
                "must be an ISO 4217 code in upper case, e.g. USD",
            ));
        }
        if amount_minor <= 0 {
            violations.push(FieldViolation::new(
                format!("{field}.amount_minor"),
                "must be above zero",
            ));
        }
        if violations.is_empty() {
            Ok(Self {
                currency_code: currency_code.to_owned(),
                amount_minor,
            })
        } else {
            Err(violations)
        }
    }
}

/// Why lines cannot be priced together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PricingError {
    /// Lines in more than one currency: the first line's, then another's.
    MixedCurrencies {
        /// The first line's currency.
        first: String,
        /// A later line's, unlike it.
        other: String,
    },
    /// Line `index`'s total, or the sum with it, does not fit in 64 bits
    /// of minor units.
    Overflow {
        /// The line (from 0) whose total did not fit.
        index: usize,
    },
}

/// Lines priced together: their one currency, their total, and each
/// line's total in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    /// The currency every line shares ("" for no lines).
    pub currency_code: String,
    /// The sum of the line totals.
    pub total_minor: i64,
    /// Each line's `unit × quantity`, in the order given.
    pub line_totals_minor: Vec<i64>,
}

/// The pricing rule of quotes and orders alike: every line in one
/// currency, a line's total is its unit price times its quantity, and no
/// total may wrap. Lines are `(currency, unit price in minor units,
/// quantity)`.
pub fn price_lines<'a>(
    lines: impl IntoIterator<Item = (&'a str, i64, i32)>,
) -> Result<Priced, PricingError> {
    let mut currency: Option<&str> = None;
    let mut total_minor = 0i64;
    let mut line_totals_minor = Vec::new();
    for (index, (line_currency, unit_minor, quantity)) in lines.into_iter().enumerate() {
        match currency {
            None => currency = Some(line_currency),
            Some(first) if first != line_currency => {
                return Err(PricingError::MixedCurrencies {
                    first: first.to_owned(),
                    other: line_currency.to_owned(),
                });
            }
            Some(_) => {}
        }
        let line_total = unit_minor
            .checked_mul(i64::from(quantity))
            .ok_or(PricingError::Overflow { index })?;
        total_minor = total_minor
            .checked_add(line_total)
            .ok_or(PricingError::Overflow { index })?;
        line_totals_minor.push(line_total);
    }
    Ok(Priced {
        currency_code: currency.unwrap_or_default().to_owned(),
        total_minor,
        line_totals_minor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_priced_in_one_currency_without_wrapping() {
        let priced = price_lines([("USD", 1999, 2), ("USD", 500, 3)]).unwrap();
        assert_eq!(
            priced,
            Priced {
                currency_code: "USD".into(),
                total_minor: 5498,
                line_totals_minor: vec![3998, 1500],
            }
        );
        assert_eq!(
            price_lines([("USD", 1, 1), ("EUR", 1, 1)]),
            Err(PricingError::MixedCurrencies {
                first: "USD".into(),
                other: "EUR".into(),
            })
        );
        // A line that wraps alone, and a sum that wraps only with the next.
        assert_eq!(
            price_lines([("USD", 1, 1), ("USD", i64::MAX, 2)]),
            Err(PricingError::Overflow { index: 1 })
        );
        assert_eq!(
            price_lines([("USD", i64::MAX, 1), ("USD", 1, 1), ("USD", 1, 1)]),
            Err(PricingError::Overflow { index: 1 })
        );
        assert_eq!(price_lines([]).unwrap().currency_code, "");
    }

    #[test]
    fn prices_need_a_known_currency_and_a_positive_amount() {
        assert!(Money::parse_price("price", "USD", 1999).is_ok());
        assert_eq!(Money::parse_price("price", "usd", 0).unwrap_err().len(), 2);
        assert!(Money::parse_price("price", "XXX", 5).is_err());
        assert!(Money::parse_price("price", "EUR", -1).is_err());
    }
}
