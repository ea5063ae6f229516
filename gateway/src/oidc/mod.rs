//! The OpenID Provider's browser-facing endpoints, onto
//! `oms.user.v1.OAuthService`: discovery, `/oauth2/authorize`, the sign-in
//! page and its form (`/oauth2/login`), `/oauth2/userinfo`,
//! `/oauth2/revoke` and `/oauth2/logout`. The token endpoint is
//! [`crate::oauth2`]. Every decision is user-svc's; this module parses,
//! keeps the two cookies and renders.
//!
//! Cookies (both `HttpOnly`, `Path=/oauth2`, `Secure` over TLS):
//! - the sign-in session, `SameSite=Lax` so a client's redirect to the
//!   authorization endpoint carries it;
//! - the CSRF token, `SameSite=Strict`, which the sign-in and logout forms
//!   must repeat (a double-submitted token: another site can neither read
//!   it nor set it).

pub(crate) mod page;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use oms_proto::user::v1::{self as pb, o_auth_service_client::OAuthServiceClient};
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::backends::Service;
use crate::limits;
use crate::oauth2::{form, param};
use crate::{Gateway, cookies};

/// The parameters of an authorization request carried through sign-in.
const AUTHORIZE_PARAMS: &[&str] = &[
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
];

/// The parameters of a logout carried through its confirmation.
const LOGOUT_PARAMS: &[&str] = &[
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
];

/// The largest form the provider's pages post.
pub(crate) const FORM_MAX: usize = 16 * 1024;

const SESSION_COOKIE: &str = "oms_session";
const CSRF_COOKIE: &str = "oms_csrf";

/// A refusal at the gateway's own checks, logged at WARN and counted with
/// user-svc's refusals.
fn refused(reason: &'static str, peer: SocketAddr) {
    metrics::counter!("oms_oauth_refusals_total", "reason" => reason).increment(1);
    tracing::warn!(reason, peer = %peer.ip(), "OpenID Connect request refused");
}

fn client(gateway: &Gateway) -> OAuthServiceClient<oms_runtime::channel::Balanced> {
    OAuthServiceClient::new(gateway.backends.channel(Service::User))
}

fn set_cookie(
    headers: &mut HeaderMap,
    name: &str,
    value: &str,
    max_age: u64,
    same_site: &str,
    secure: bool,
) {
    if let Some(value) = cookies::set(name, value, "/oauth2", max_age, same_site, secure) {
        headers.append(header::SET_COOKIE, value);
    }
}

/// Whether a posted form is the provider's own.
fn same_origin_form(headers: &HeaderMap, pairs: &[(String, String)]) -> bool {
    cookies::form_is_ours(
        headers,
        cookies::read(headers, CSRF_COOKIE).as_deref(),
        param(pairs, "csrf"),
    )
}

/// The ErrorInfo reason of a refusal from user-svc.
fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

fn unavailable(status: &tonic::Status) -> Response {
    tracing::warn!(code = ?status.code(), message = status.message(), "the OpenID Provider could not reach user-svc");
    page::error(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "Sign-in is unavailable for a moment. Please try again.",
    )
}

/// A redirect: 302 to a GET, 303 after a POST (never replaying the form).
fn redirect(method: &Method, location: &str) -> Response {
    let status = if method == Method::POST {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    page::security_headers(response.headers_mut(), "");
    response
}

/// Reads the parameters of a GET (query) or a POST (form body).
async fn parameters(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
    route: &'static str,
    peer: SocketAddr,
) -> Result<Vec<(String, String)>, Response> {
    let bad = |why: String| {
        page::error(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            &format!("The request is malformed: {why}."),
        )
    };
    if method == Method::POST {
        let form_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !form_type {
            return Err(bad("the body must be a form".to_owned()));
        }
        let body = limits::read_body(body, FORM_MAX, route, peer).await?;
        form(&body).map_err(bad)
    } else {
        form(uri.query().unwrap_or_default().as_bytes()).map_err(bad)
    }
}

fn secure(gateway: &Gateway) -> bool {
    gateway.public_tls
}

/// `GET /.well-known/openid-configuration` (OIDC Discovery 1.0 §3).
pub(crate) async fn discovery(State(gateway): State<Arc<Gateway>>) -> Response {
    let metadata = match client(&gateway)
        .get_provider_metadata(pb::GetProviderMetadataRequest {})
        .await
    {
        Ok(r) => r.into_inner(),
        Err(status) => return crate::error::from_status(&status),
    };
    let issuer = metadata.issuer;
    let at = |path: &str| format!("{issuer}{path}");
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": at("/oauth2/authorize"),
        "token_endpoint": at("/oauth2/token"),
        "userinfo_endpoint": at("/oauth2/userinfo"),
        "jwks_uri": at("/.well-known/jwks.json"),
        "revocation_endpoint": at("/oauth2/revoke"),
        "end_session_endpoint": at("/oauth2/logout"),
        "scopes_supported": metadata.scopes_supported,
        "claims_supported": metadata.claims_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    });
    let mut response = Json(document).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// `GET /oauth2/style.css`: the pages' one stylesheet.
pub(crate) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        page::STYLESHEET,
    )
        .into_response()
}

fn authorize_request(pairs: &[(String, String)], session: String) -> pb::AuthorizeRequest {
    let get = |name| param(pairs, name).unwrap_or_default().to_owned();
    pb::AuthorizeRequest {
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        response_type: get("response_type"),
        scope: get("scope"),
        state: get("state"),
        nonce: get("nonce"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        prompt: get("prompt"),
        // Not a number is as wrong as a negative one.
        max_age: param(pairs, "max_age").map(|v| v.parse::<i64>().unwrap_or(-1)),
        session,
        signed_in_now: false,
    }
}

fn carried<'a>(pairs: &'a [(String, String)], names: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    names
        .iter()
        .filter_map(|name| param(pairs, name).map(|v| (*name, v)))
        .collect()
}

/// The sign-in page for `pairs`, with its CSRF cookie.
fn sign_in_page(
    gateway: &Gateway,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    prompt: &pb::SignInPrompt,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let (csrf, new) = cookies::form_token(headers, CSRF_COOKIE);
    let mut response = page::sign_in(
        status,
        &prompt.client_id,
        error,
        param(pairs, "email").unwrap_or_default(),
        &csrf,
        &carried(pairs, AUTHORIZE_PARAMS),
        &prompt.redirect_origin,
    );
    if new {
        set_cookie(
            response.headers_mut(),
            CSRF_COOKIE,
            &csrf,
            3_600,
            "Strict",
            secure(gateway),
        );
    }
    response
}

/// Answers what user-svc decided for an authorization request.
fn decided(
    gateway: &Gateway,
    method: &Method,
    headers: &HeaderMap,
    pairs: &[(String, String)],
    result: Result<pb::AuthorizeResponse, tonic::Status>,
) -> Response {
    match result.map(|r| r.outcome) {
        Ok(Some(pb::authorize_response::Outcome::RedirectUri(location))) => {
            redirect(method, &location)
        }
        Ok(Some(pb::authorize_response::Outcome::SignIn(prompt))) => {
            sign_in_page(gateway, headers, pairs, &prompt, StatusCode::OK, None)
        }
        Ok(None) => unavailable(&tonic::Status::internal("an empty decision")),
        Err(status) if status.code() == Code::InvalidArgument => {
            let title = match reason(&status).as_str() {
                "UNKNOWN_CLIENT" => "Unknown application",
                "INVALID_REDIRECT_URI" => "Unregistered redirect",
                _ => "Invalid request",
            };
            page::error(StatusCode::BAD_REQUEST, title, status.message())
        }
        Err(status) => unavailable(&status),
    }
}

/// `GET|POST /oauth2/authorize` (RFC 6749 §4.1.1, OIDC Core §3.1.2.1).
pub(crate) async fn authorize(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let pairs = match parameters(&method, &uri, &headers, body, "/oauth2/authorize", peer).await {
        Ok(pairs) => pairs,
        Err(response) => return response,
    };
    let session = cookies::read(&headers, SESSION_COOKIE).unwrap_or_default();
    let mut request = tonic::Request::new(authorize_request(&pairs, session));
    crate::proxy::forward(&gateway, &mut request, &headers, peer);
    let result = client(&gateway)
        .authorize(request)
        .await
        .map(tonic::Response::into_inner);
    decided(&gateway, &method, &headers, &pairs, result)
}

/// `POST /oauth2/login`: the sign-in form.
pub(crate) async fn login(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let method = Method::POST;
    let pairs = match parameters(&method, &uri, &headers, body, "/oauth2/login", peer).await {
        Ok(pairs) => pairs,
        Err(response) => return response,
    };
    if !same_origin_form(&headers, &pairs) {
        refused("csrf", peer);
        return page::error(
            StatusCode::FORBIDDEN,
            "Sign-in refused",
            "This sign-in form did not come from this site, or it expired. Go back to the application and sign in again.",
        );
    }
    // The request must still be one to sign in for: checked before the
    // password is, so a form for an unknown client costs nothing.
    let mut oauth = client(&gateway);
    let mut check = tonic::Request::new(authorize_request(&pairs, String::new()));
    crate::proxy::forward(&gateway, &mut check, &headers, peer);
    let prompt = match oauth
        .authorize(check)
        .await
        .map(tonic::Response::into_inner)
    {
        Ok(pb::AuthorizeResponse {
            outcome: Some(pb::authorize_response::Outcome::SignIn(prompt)),
        }) => prompt,
        other => return decided(&gateway, &method, &headers, &pairs, other),
    };
    let mut sign_in = tonic::Request::new(pb::SignInRequest {
        email: param(&pairs, "email").unwrap_or_default().to_owned(),
        password: param(&pairs, "password").unwrap_or_default().to_owned(),
    });
    crate::proxy::forward(&gateway, &mut sign_in, &headers, peer);
    let signed_in = match oauth.sign_in(sign_in).await {
        Ok(r) => r.into_inner(),
        Err(status) => {
            let (code, message) = match status.code() {
                Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "Wrong email or password."),
                Code::ResourceExhausted => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many sign-in attempts. Wait a minute and try again.",
                ),
                Code::PermissionDenied => (StatusCode::FORBIDDEN, "This account is disabled."),
                _ => return unavailable(&status),
            };
            let mut response =
                sign_in_page(&gateway, &headers, &pairs, &prompt, code, Some(message));
            if let Some(retry) = crate::error::retry_after(&status) {
                response.headers_mut().insert(header::RETRY_AFTER, retry);
            }
            return response;
        }
    };
    let mut request = authorize_request(&pairs, signed_in.session.clone());
    request.signed_in_now = true;
    let mut request = tonic::Request::new(request);
    crate::proxy::forward(&gateway, &mut request, &headers, peer);
    let result = oauth
        .authorize(request)
        .await
        .map(tonic::Response::into_inner);
    let mut response = decided(&gateway, &method, &headers, &pairs, result);
    set_cookie(
        response.headers_mut(),
        SESSION_COOKIE,
        &signed_in.session,
        u64::try_from(signed_in.expires_in).unwrap_or(0),
        "Lax",
        secure(&gateway),
    );
    response
}

/// A UserInfo refusal (RFC 6750 §3).
fn bearer_error(status: StatusCode, challenge: &'static str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": challenge, "error_description": description})),
    )
        .into_response();
    let value = if challenge.is_empty() {
        HeaderValue::from_static(r#"Bearer realm="oms""#)
    } else {
        HeaderValue::from_str(&format!(r#"Bearer realm="oms", error="{challenge}""#))
            .unwrap_or_else(|_| HeaderValue::from_static(r#"Bearer realm="oms""#))
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET|POST /oauth2/userinfo` (OIDC Core §5.3).
pub(crate) async fn userinfo(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") || v.starts_with("bearer "));
    if !bearer {
        return bearer_error(
            StatusCode::UNAUTHORIZED,
            "",
            "an access token is required as Authorization: Bearer",
        );
    }
    let mut request = tonic::Request::new(pb::GetUserInfoRequest {});
    crate::proxy::forward(&gateway, &mut request, &headers, peer);
    match client(&gateway).get_user_info(request).await {
        Ok(r) => {
            let r = r.into_inner();
            let mut claims = serde_json::Map::new();
            claims.insert("sub".into(), r.sub.into());
            if let Some(email) = r.email {
                claims.insert("email".into(), email.into());
            }
            if let Some(verified) = r.email_verified {
                claims.insert("email_verified".into(), verified.into());
            }
            if let Some(name) = r.name {
                claims.insert("name".into(), name.into());
            }
            let mut response = Json(claims).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(status) => match status.code() {
            Code::Unauthenticated => {
                bearer_error(StatusCode::UNAUTHORIZED, "invalid_token", status.message())
            }
            Code::PermissionDenied => bearer_error(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                status.message(),
            ),
            Code::NotFound => bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the token's account is gone or disabled",
            ),
            _ => crate::error::from_status(&status),
        },
    }
}

/// `POST /oauth2/revoke` (RFC 7009): 200 whether or not the token was
/// live.
pub(crate) async fn revoke(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    use crate::oauth2::{ClientAuth, oauth_error};
    let body = match limits::read_body(body, limits::TOKEN_FORM_MAX, "/oauth2/revoke", peer).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let pairs = match crate::oauth2::token_form(&headers, &body) {
        Ok(pairs) => pairs,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e),
    };
    let (client_id, client_secret) = match ClientAuth::read(&headers, &pairs) {
        Ok(Some(auth)) => (auth.client_id, auth.client_secret),
        Ok(None) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is required",
            );
        }
        Err(refusal) => return refusal.into_response(),
    };
    let Some(token) = param(&pairs, "token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    let request = pb::RevokeTokenRequest {
        client_id,
        client_secret,
        token: token.to_owned(),
        token_type_hint: param(&pairs, "token_type_hint")
            .unwrap_or_default()
            .to_owned(),
    };
    match client(&gateway).revoke_token(request).await {
        Ok(_) => {
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(status) if status.code() == Code::Unauthenticated => {
            oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", status.message())
        }
        Err(status) => crate::oauth2::unavailable(&status),
    }
}

/// `GET|POST /oauth2/logout`: RP-initiated logout. With an
/// `id_token_hint`, or from the confirmation form, it ends the session
/// at once; otherwise it asks first.
pub(crate) async fn logout(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let pairs = match parameters(&method, &uri, &headers, body, "/oauth2/logout", peer).await {
        Ok(pairs) => pairs,
        Err(response) => return response,
    };
    let confirmed = method == Method::POST && param(&pairs, "csrf").is_some();
    if confirmed && !same_origin_form(&headers, &pairs) {
        refused("csrf", peer);
        return page::error(
            StatusCode::FORBIDDEN,
            "Sign-out refused",
            "This sign-out form did not come from this site, or it expired.",
        );
    }
    let get = |name| param(&pairs, name).unwrap_or_default().to_owned();
    let hinted = !get("id_token_hint").is_empty();
    if !hinted && !confirmed {
        let (csrf, new) = cookies::form_token(&headers, CSRF_COOKIE);
        let form_action = url::Url::parse(&get("post_logout_redirect_uri"))
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let form_action = if form_action == "null" {
            String::new()
        } else {
            form_action
        };
        let mut response =
            page::confirm_logout(&csrf, &carried(&pairs, LOGOUT_PARAMS), &form_action);
        if new {
            set_cookie(
                response.headers_mut(),
                CSRF_COOKIE,
                &csrf,
                3_600,
                "Strict",
                secure(&gateway),
            );
        }
        return response;
    }
    let request = pb::EndSessionRequest {
        session: cookies::read(&headers, SESSION_COOKIE).unwrap_or_default(),
        id_token_hint: get("id_token_hint"),
        client_id: get("client_id"),
        post_logout_redirect_uri: get("post_logout_redirect_uri"),
        state: get("state"),
    };
    let mut response = match client(&gateway).end_session(request).await {
        Ok(r) => {
            let location = r.into_inner().redirect_uri;
            if location.is_empty() {
                page::signed_out()
            } else {
                redirect(&method, &location)
            }
        }
        Err(status) if status.code() == Code::InvalidArgument => {
            return page::error(
                StatusCode::BAD_REQUEST,
                "Invalid sign-out",
                status.message(),
            );
        }
        Err(status) => return unavailable(&status),
    };
    set_cookie(
        response.headers_mut(),
        SESSION_COOKIE,
        "",
        0,
        "Lax",
        secure(&gateway),
    );
    response
}
