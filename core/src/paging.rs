//! List paging shared by every List RPC: `page_size` (default 50, at most
//! 200) and an opaque `page_token` that carries a keyset cursor, so a deep
//! page costs what the first one does.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::FieldViolation;

/// Page size when the request leaves it at 0.
pub const DEFAULT_PAGE_SIZE: u64 = 50;
/// The largest page served; bigger requests are capped, not refused (AIP-158).
pub const MAX_PAGE_SIZE: u64 = 200;

/// Versioned prefix inside tokens, so a token format change can be told apart.
const TOKEN_PREFIX: &str = "v1:";

/// Reads `page_size`: 0 means the default, above the maximum is capped,
/// negative is an error.
pub fn page_size(raw: i32) -> Result<u64, FieldViolation> {
    match u64::try_from(raw) {
        Err(_) => Err(FieldViolation::new("page_size", "must not be negative")),
        Ok(0) => Ok(DEFAULT_PAGE_SIZE),
        Ok(n) => Ok(n.min(MAX_PAGE_SIZE)),
    }
}

/// Wraps a cursor (e.g. the last ID of a page) into an opaque token.
pub fn encode_token(cursor: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{cursor}"))
}

/// Reads a token made by [`encode_token`]; empty means the first page.
pub fn decode_token(token: &str) -> Result<Option<String>, FieldViolation> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || FieldViolation::new("page_token", "is not a token from a previous response");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let cursor = text.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
    Ok(Some(cursor.to_owned()))
}

/// Splits rows fetched with one more than `page_size` (the usual trick to
/// learn whether another page exists) into the page and the cursor of the
/// next one, taken from the page's last row.
pub fn split_page<T>(
    mut rows: Vec<T>,
    page_size: u64,
    cursor: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    let size = usize::try_from(page_size).unwrap_or(usize::MAX);
    if rows.len() > size {
        rows.truncate(size);
        let next = rows.last().map(cursor);
        (rows, next)
    } else {
        (rows, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_caps_and_rejects_negative() {
        assert_eq!(page_size(0), Ok(DEFAULT_PAGE_SIZE));
        assert_eq!(page_size(7), Ok(7));
        assert_eq!(page_size(10_000), Ok(MAX_PAGE_SIZE));
        assert!(page_size(-1).is_err());
    }

    #[test]
    fn a_page_has_a_next_cursor_only_when_an_extra_row_came_back() {
        assert_eq!(
            split_page(vec![1, 2, 3], 2, ToString::to_string),
            (vec![1, 2], Some("2".to_owned()))
        );
        assert_eq!(
            split_page(vec![1, 2], 2, ToString::to_string),
            (vec![1, 2], None)
        );
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let token = encode_token("0190-abc");
        assert_eq!(decode_token(&token), Ok(Some("0190-abc".to_owned())));
        assert_eq!(decode_token(""), Ok(None));
        assert!(decode_token("not base64!").is_err());
        assert!(decode_token(&URL_SAFE_NO_PAD.encode("v0:x")).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 1024, failure_persistence: None, ..proptest::test_runner::Config::default() })]

        #[test]
        fn a_cursor_round_trips_through_its_token(cursor in "\\PC{0,80}") {
            proptest::prop_assert_eq!(decode_token(&encode_token(&cursor)), Ok(Some(cursor)));
        }

        // Tokens come from clients: anything is a cursor or a violation of
        // `page_token`.
        #[test]
        fn any_token_is_a_cursor_or_refused(token in "\\PC{0,80}|[A-Za-z0-9_-]{0,80}") {
            if let Err(violation) = decode_token(&token) {
                proptest::prop_assert_eq!(violation.field, "page_token");
            }
        }

        #[test]
        fn any_page_size_is_served_within_bounds(raw in proptest::prelude::any::<i32>()) {
            match page_size(raw) {
                Ok(size) => proptest::prop_assert!((1..=MAX_PAGE_SIZE).contains(&size) && raw >= 0),
                Err(_) => proptest::prop_assert!(raw < 0),
            }
        }
    }
}
