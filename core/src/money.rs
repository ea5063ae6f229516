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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_need_a_known_currency_and_a_positive_amount() {
        assert!(Money::parse_price("price", "USD", 1999).is_ok());
        assert_eq!(Money::parse_price("price", "usd", 0).unwrap_err().len(), 2);
        assert!(Money::parse_price("price", "XXX", 5).is_err());
        assert!(Money::parse_price("price", "EUR", -1).is_err());
    }
}
