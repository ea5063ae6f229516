//! The browser cookies the gateway keeps (the OpenID Provider's sign-in
//! session and the console's tokens) and the double-submitted form token
//! that protects their forms: one reader, one writer, one check.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

/// The value of cookie `name`, if the request sent exactly one (two of a
/// name is a cookie planted beside ours: neither is believed).
pub(crate) fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    return None;
                }
                found = Some(v.to_owned());
            }
        }
    }
    found.filter(|v| !v.is_empty() && v.len() <= 4_096)
}

/// A `Set-Cookie` value: always `HttpOnly`, `Secure` when the browser
/// reaches the gateway over TLS. `max_age` 0 removes it.
pub(crate) fn set(
    name: &str,
    value: &str,
    path: &str,
    max_age: u64,
    same_site: &str,
    secure: bool,
) -> Option<HeaderValue> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}"
    ))
    .ok()
}

/// 256 random bits, base64url: a form token, a PKCE verifier, a state.
/// `None` without randomness (a form that cannot be posted is the safe
/// failure).
pub(crate) fn random_token() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The browser's form token from cookie `name`, or a new one (and `true`:
/// it must be set).
pub(crate) fn form_token(headers: &HeaderMap, name: &str) -> (String, bool) {
    match read(headers, name).filter(|v| v.len() == 43) {
        Some(token) => (token, false),
        None => random_token().map_or((String::new(), false), |t| (t, true)),
    }
}

/// Whether a posted form is the site's own: `given` repeats the browser's
/// form token (compared in constant time), and the browser does not say
/// the request came from another site.
pub(crate) fn form_is_ours(headers: &HeaderMap, token: Option<&str>, given: Option<&str>) -> bool {
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site");
    match (token.filter(|t| !t.is_empty()), given) {
        (Some(token), Some(given)) => {
            !cross_site && bool::from(token.as_bytes().ct_eq(given.as_bytes()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_sent_twice_counts_as_none() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; oms_csrf=x"));
        assert_eq!(read(&headers, "oms_csrf").as_deref(), Some("x"));
        headers.append(header::COOKIE, HeaderValue::from_static("oms_csrf=y"));
        assert_eq!(read(&headers, "oms_csrf"), None);
        assert_eq!(read(&headers, "missing"), None);
    }

    #[test]
    fn a_form_passes_only_with_the_browsers_token_from_this_site() {
        let token = "t".repeat(43);
        let mut headers = HeaderMap::new();
        assert!(form_is_ours(&headers, Some(&token), Some(&token)));
        assert!(!form_is_ours(&headers, Some(&token), Some("forged")));
        assert!(!form_is_ours(&headers, Some(&token), None));
        assert!(!form_is_ours(&headers, None, Some(&token)), "no cookie");
        assert!(!form_is_ours(&headers, Some(""), Some("")), "empty");
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!form_is_ours(&headers, Some(&token), Some(&token)));
    }
}
