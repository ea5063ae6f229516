//! The console's HTML: one layout (skip link, bar, navigation, a live
//! region), helpers for money and times that read without script (and
//! that `console.js` puts in the viewer's locale and time zone), and the
//! headers of every page (a Content-Security-Policy allowing only our own
//! script and style, no framing, no referrer, never cached).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub(crate) use crate::oidc::page::escape;

use super::session::Viewer;

/// The pages in the bar, and who sees them.
const SECTIONS: &[(&str, &str, bool)] = &[
    ("orders", "Orders", false),
    ("products", "Products", false),
    ("users", "Users", true),
    ("health", "Health", true),
];

fn headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A whole page: `section` is the bar's current entry.
pub(crate) fn page(
    status: StatusCode,
    viewer: Option<&Viewer>,
    section: &str,
    title: &str,
    body: &str,
) -> Response {
    let nav = match viewer {
        Some(viewer) => {
            let links: String = SECTIONS
                .iter()
                .filter(|(_, _, admin_only)| !admin_only || viewer.admin)
                .map(|(path, label, _)| {
                    let current = if *path == section {
                        r#" aria-current="page""#
                    } else {
                        ""
                    };
                    format!(r#"<li><a href="/console/{path}"{current}>{label}</a></li>"#)
                })
                .collect();
            format!(
                r#"<nav aria-label="Console"><ul>{links}</ul></nav><span class="who">{who}{role}</span><form method="post" action="/console/logout"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="secondary">Sign out</button></form>"#,
                who = escape(&viewer.label),
                role = if viewer.admin { " · admin" } else { "" },
                csrf = escape(&viewer.csrf),
            )
        }
        None => String::new(),
    };
    let html = format!(
        r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{title} · OMS console</title><link rel="stylesheet" href="/console/assets/console.css"><script src="/console/assets/console.js" defer></script></head><body><a class="skip" href="#main">Skip to content</a><header class="bar"><span class="brand">OMS console</span>{nav}</header><main id="main"><h1>{title}</h1><p id="live-status" class="live-status muted" role="status" aria-live="polite"></p>{body}</main></body></html>"##,
        title = escape(title),
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    headers(&mut response);
    match viewer {
        Some(viewer) => viewer.finish(response),
        None => response,
    }
}

/// A page that only says something.
pub(crate) fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        None,
        "",
        title,
        &format!(
            r#"<p class="error" role="alert">{}</p><p><a class="button" href="/console/login">Sign in</a></p>"#,
            escape(message)
        ),
    )
}

/// A refusal or failure of the API, with its AIP-193 message as the API
/// gave it.
pub(crate) fn failure(status: &tonic::Status) -> Response {
    let http = crate::error::http_status(status.code());
    page(
        http,
        None,
        "",
        "Something went wrong",
        &format!(
            r#"<p class="error" role="alert">{} <span class="muted">({:?})</span></p><p><a href="/console/orders">Back to orders</a></p>"#,
            escape(status.message()),
            status.code()
        ),
    )
}

/// The API's refusal shown inside the viewer's page.
pub(crate) fn refused(viewer: &Viewer, section: &str, status: &tonic::Status) -> Response {
    page(
        crate::error::http_status(status.code()),
        Some(viewer),
        section,
        if status.code() == tonic::Code::PermissionDenied {
            "Not allowed"
        } else {
            "Something went wrong"
        },
        &format!(
            r#"<p class="error" role="alert">{} <span class="muted">({:?})</span></p>"#,
            escape(status.message()),
            status.code()
        ),
    )
}

/// A request's query parameters (the last of a repeated one wins).
pub(crate) fn query(uri: &axum::http::Uri) -> std::collections::HashMap<String, String> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// The notice of a change that was just made, from its redirect's
/// `done` (a fixed set: a link cannot make the page say anything else).
pub(crate) fn done_notice(uri: &axum::http::Uri) -> Option<String> {
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let get = |k: &str| {
        query
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    };
    Some(match get("done")? {
        "cancelled" => "The order is cancelled and its stock returned.".to_owned(),
        "saved" => "Saved.".to_owned(),
        "adjusted" => match get("by").and_then(|by| by.parse::<i64>().ok()) {
            Some(by) => format!("Stock adjusted by {by}."),
            None => "Stock adjusted.".to_owned(),
        },
        "image-removed" => "Image removed.".to_owned(),
        "role" => "Role changed; the user is signed out everywhere.".to_owned(),
        _ => return None,
    })
}

/// 303 to `location`.
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    headers(&mut response);
    response
}

/// Money that reads without script: `12.50 USD`, in a `<data>` element
/// `console.js` formats for the viewer's locale.
pub(crate) fn money(money: Option<&oms_proto::common::v1::Money>) -> String {
    let Some(money) = money else {
        return String::new();
    };
    let minor = money.amount_minor;
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!(
        r#"<data value="{minor}" data-currency="{currency}">{sign}{}.{:02} {currency}</data>"#,
        abs / 100,
        abs % 100,
        currency = escape(&money.currency_code),
    )
}

/// A time that reads without script (UTC), which `console.js` shows in
/// the viewer's time zone.
pub(crate) fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
    let Some(t) = timestamp.and_then(oms_core::time::from_timestamp) else {
        return String::new();
    };
    format!(
        r#"<time datetime="{}">{}</time>"#,
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        t.format("%Y-%m-%d %H:%M UTC")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_time_read_without_script() {
        let price = oms_proto::common::v1::Money {
            currency_code: "USD".into(),
            amount_minor: 1250,
        };
        assert_eq!(
            money(Some(&price)),
            r#"<data value="1250" data-currency="USD">12.50 USD</data>"#
        );
        let at = prost_types::Timestamp {
            seconds: 1_796_000_000,
            nanos: 0,
        };
        assert_eq!(
            time(Some(&at)),
            r#"<time datetime="2026-11-30T00:53:20.000Z">2026-11-30 00:53 UTC</time>"#
        );
    }
}
