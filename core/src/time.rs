//! Times on the wire: database times (UTC `chrono`) as
//! `google.protobuf.Timestamp`, and gRPC `grpc-timeout` deadlines.

use chrono::{DateTime, Utc};

/// A UTC time as a protobuf Timestamp.
pub fn to_timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: time.timestamp(),
        // Always in 0..1e9, so the cast cannot truncate.
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf Timestamp as a UTC time; `None` when it is out of range
/// (nanos outside 0..1e9, or a year chrono cannot hold).
pub fn from_timestamp(timestamp: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let nanos = u32::try_from(timestamp.nanos)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    DateTime::from_timestamp(timestamp.seconds, nanos)
}

/// Now, truncated to microseconds: what `DATETIME(6)` stores, so a value
/// read back equals the one written.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit
/// (`H`ours, `M`inutes, `S`econds, `m`illis, `u`micros, `n`anos).
pub fn parse_grpc_timeout(value: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    // The unit is one ASCII letter; splitting before a multi-byte last
    // character would panic.
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::parse_grpc_timeout;

    #[test]
    fn grpc_timeouts_parse_per_the_spec() {
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        for bad in ["x", "", "10q", "S", "123456789S", "+5S", "1é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 1024, failure_persistence: None, ..proptest::test_runner::Config::default() })]

        // The header comes from clients: anything parses or is refused.
        #[test]
        fn any_header_value_parses_or_is_refused(value in "\\PC{0,12}|[0-9+-]{0,10}[HMSmunx\u{e9}]") {
            let valid = value.char_indices().last().is_some_and(|(at, unit)| {
                (1..=8).contains(&at)
                    && value[..at].bytes().all(|b| b.is_ascii_digit())
                    && "HMSmun".contains(unit)
            });
            proptest::prop_assert_eq!(parse_grpc_timeout(&value).is_some(), valid, "{:?}", value);
        }

        #[test]
        fn a_timeout_reads_as_its_amount_in_its_unit(amount in 0u64..100_000_000, unit in 0..6usize) {
            let (letter, nanos) = [('H', 3_600_000_000_000u128), ('M', 60_000_000_000), ('S', 1_000_000_000), ('m', 1_000_000), ('u', 1_000), ('n', 1)][unit];
            let parsed = parse_grpc_timeout(&format!("{amount}{letter}"));
            proptest::prop_assert_eq!(parsed.map(|d| d.as_nanos()), Some(u128::from(amount) * nanos));
        }
    }
}
