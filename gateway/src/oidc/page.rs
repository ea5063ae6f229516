//! The provider's HTML: the sign-in page, the logout confirmation, the
//! signed-out and error pages. Server-rendered, no JavaScript, one
//! stylesheet of our own, every value escaped; each answer carries a
//! Content-Security-Policy without inline script, refuses framing
//! (`frame-ancestors 'none'`, `X-Frame-Options: DENY`), sends no referrer
//! and is never cached.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The stylesheet every page links (`/oauth2/style.css`).
pub(crate) const STYLESHEET: &str = "\
:root{color-scheme:light dark;font-family:system-ui,sans-serif;line-height:1.5}\
body{margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:Canvas;color:CanvasText}\
main{width:min(24rem,100% - 2rem);padding:2rem 1.5rem;border:1px solid GrayText;border-radius:.5rem}\
h1{font-size:1.4rem;margin:0 0 1rem}\
label{display:block;margin:.75rem 0 .25rem;font-weight:600}\
input[type=email],input[type=password]{box-sizing:border-box;width:100%;padding:.5rem;font:inherit;border:1px solid GrayText;border-radius:.25rem}\
button{margin-top:1.25rem;width:100%;padding:.6rem;font:inherit;font-weight:600;border:0;border-radius:.25rem;background:#1f5fbf;color:#fff;cursor:pointer}\
:focus-visible{outline:3px solid #f0a000;outline-offset:2px}\
.error{margin:0 0 1rem;padding:.5rem .75rem;border-left:4px solid #b00020;background:color-mix(in srgb,#b00020 12%,Canvas)}\
.muted{color:color-mix(in srgb,CanvasText 70%,Canvas);font-size:.9rem}\
";

/// `text` with the HTML specials escaped, for element content and
/// double-quoted attributes alike.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Hidden form fields carrying `params` through a round trip.
pub(crate) fn hidden(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v)
            )
        })
        .collect()
}

/// A whole page around `body`.
fn document(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{} · OMS</title><link rel="stylesheet" href="/oauth2/style.css"></head><body><main>{body}</main></body></html>"#,
        escape(title)
    )
}

/// The headers of every provider page: `form_action` is where its form may
/// lead (the provider itself, and the client it redirects to).
pub(crate) fn security_headers(headers: &mut HeaderMap, form_action: &str) {
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(csp.trim_end()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
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
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// An HTML answer with the provider's headers.
pub(crate) fn html(status: StatusCode, title: &str, body: &str, form_action: &str) -> Response {
    let mut response = (status, document(title, body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(headers, form_action);
    response
}

/// The sign-in form, posting `carried` (the authorization request) and the
/// CSRF token back to `/oauth2/login`.
pub(crate) fn sign_in(
    status: StatusCode,
    client_id: &str,
    error: Option<&str>,
    email: &str,
    csrf: &str,
    carried: &[(&str, &str)],
    form_action: &str,
) -> Response {
    let error = error.map_or_else(String::new, |e| {
        format!(
            r#"<p class="error" role="alert" id="sign-in-error">{}</p>"#,
            escape(e)
        )
    });
    let described = if error.is_empty() {
        ""
    } else {
        r#" aria-describedby="sign-in-error""#
    };
    let body = format!(
        r#"<h1>Sign in</h1><p class="muted">to continue to <strong>{client}</strong></p>{error}<form method="post" action="/oauth2/login"><input type="hidden" name="csrf" value="{csrf}">{carried}<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required maxlength="320" value="{email}"{described} autofocus><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required maxlength="128"{described}><button type="submit">Sign in</button></form>"#,
        client = escape(client_id),
        csrf = escape(csrf),
        carried = hidden(carried),
        email = escape(email),
    );
    html(status, "Sign in", &body, form_action)
}

/// An error the user reads: nothing is sent back to the client.
pub(crate) fn error(status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        r#"<h1>{}</h1><p role="alert">{}</p><p class="muted">You can close this page and start again from the application.</p>"#,
        escape(title),
        escape(message)
    );
    html(status, title, &body, "")
}

/// The page after a logout with nowhere to go back to.
pub(crate) fn signed_out() -> Response {
    html(
        StatusCode::OK,
        "Signed out",
        "<h1>Signed out</h1><p>You are signed out of OMS.</p>",
        "",
    )
}

/// Asks before a logout nobody vouched for (no `id_token_hint`): a link
/// in another site must not sign the user out.
pub(crate) fn confirm_logout(csrf: &str, carried: &[(&str, &str)], form_action: &str) -> Response {
    let body = format!(
        r#"<h1>Sign out?</h1><p>Sign out of OMS in this browser.</p><form method="post" action="/oauth2/logout"><input type="hidden" name="csrf" value="{}">{}<button type="submit">Sign out</button></form>"#,
        escape(csrf),
        hidden(carried)
    );
    html(StatusCode::OK, "Sign out", &body, form_action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_in_text_and_attributes() {
        assert_eq!(
            escape(r#"<script>"x" & 'y'"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;"
        );
        let fields = hidden(&[("state", r#""><script>"#), ("empty", "")]);
        assert_eq!(
            fields,
            r#"<input type="hidden" name="state" value="&quot;&gt;&lt;script&gt;">"#
        );
    }
}
