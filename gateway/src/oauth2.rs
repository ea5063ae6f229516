//! `POST /oauth2/token` (RFC 6749 §3.2), form-encoded, onto AuthService:
//! the `client_credentials` grant (client authentication by HTTP Basic or
//! form fields, §2.3.1) becomes IssueServiceToken, the `refresh_token` grant
//! becomes RefreshToken. There is no password grant (RFC 9700 §2.4).
//! Answers per §5.1 and §5.2, never cached.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use oms_proto::user::v1::{
    IssueServiceTokenRequest, RefreshTokenRequest, auth_service_client::AuthServiceClient,
};
use serde_json::{Value, json};
use tonic::Code;

use crate::backends::Service;
use crate::limits;

use crate::Gateway;
use crate::template::percent_decode;

/// Parses an `application/x-www-form-urlencoded` body; a repeated
/// parameter is an error (§3.2: parameters MUST NOT be included more than once).
fn form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode(&s.replace('+', " ")).ok_or_else(|| format!("bad encoding in {key}"))
        };
        let (key, value) = (decode(key)?, decode(value)?);
        if pairs.iter().any(|(k, _)| *k == key) {
            return Err(format!("{key} is given more than once"));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// An OAuth2 error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    no_store(response.headers_mut());
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="oms""#),
        );
    }
    response
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

fn success(body: Value) -> Response {
    let mut response = (StatusCode::OK, Json(body)).into_response();
    no_store(response.headers_mut());
    response
}

/// A refused token request, before it becomes a response.
#[derive(Debug, Clone, Copy)]
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

impl Refusal {
    fn into_response(self) -> Response {
        oauth_error(self.status, self.error, self.description)
    }
}

/// The client's credentials from `Authorization: Basic` (form-encoded
/// parts, §2.3.1) or from the form, not both.
fn client_credentials(
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Result<(String, String), Refusal> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        });
    let in_form = (param(pairs, "client_id"), param(pairs, "client_secret"));
    let invalid = Refusal {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        description: "malformed Basic credentials",
    };
    match (basic, in_form) {
        (Some(_), (Some(_), _) | (_, Some(_))) => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: "use one client authentication method, not both",
        }),
        (Some(encoded), _) => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| invalid)?;
            let text = String::from_utf8(decoded).map_err(|_| invalid)?;
            let (id, secret) = text.split_once(':').ok_or(invalid)?;
            let decode = |s: &str| percent_decode(&s.replace('+', " ")).ok_or(invalid);
            Ok((decode(id)?, decode(secret)?))
        }
        (None, (Some(id), Some(secret))) => Ok((id.to_owned(), secret.to_owned())),
        (None, _) => Err(Refusal {
            status: StatusCode::UNAUTHORIZED,
            error: "invalid_client",
            description: "client authentication is required",
        }),
    }
}

/// `POST /oauth2/token`.
pub(crate) async fn token(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    limits::BodyLimit(limit): limits::BodyLimit,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // Read with the form's own limit (declared with the route): nobody is
    // authenticated until the form is, so a large body must cost nothing.
    let body = match limits::read_body(body, limit, "/oauth2/token", peer).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    }
    let pairs = match form(&body) {
        Ok(pairs) => pairs,
        Err(e) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &e),
    };
    let mut auth = AuthServiceClient::new(gateway.backends.channel(Service::User));
    match param(&pairs, "grant_type") {
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        ),
        Some("client_credentials") => {
            let (client_id, client_secret) = match client_credentials(&headers, &pairs) {
                Ok(credentials) => credentials,
                Err(refusal) => return refusal.into_response(),
            };
            let scopes = param(&pairs, "scope")
                .map(|s| {
                    s.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            let request = IssueServiceTokenRequest {
                client_id,
                client_secret,
                scopes,
            };
            match auth.issue_service_token(request).await {
                Ok(r) => {
                    let r = r.into_inner();
                    success(json!({
                        "access_token": r.access_token,
                        "token_type": r.token_type,
                        "expires_in": r.expires_in,
                        "scope": r.scopes.join(" "),
                    }))
                }
                Err(status) => match status.code() {
                    Code::Unauthenticated => {
                        oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", status.message())
                    }
                    Code::PermissionDenied | Code::InvalidArgument => {
                        oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", status.message())
                    }
                    _ => unavailable(&status),
                },
            }
        }
        Some("refresh_token") => {
            let Some(refresh_token) = param(&pairs, "refresh_token") else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "refresh_token is required",
                );
            };
            let request = RefreshTokenRequest {
                refresh_token: refresh_token.to_owned(),
            };
            match auth.refresh_token(request).await {
                Ok(r) => {
                    let r = r.into_inner();
                    success(json!({
                        "access_token": r.access_token,
                        "token_type": r.token_type,
                        "expires_in": r.expires_in,
                        "refresh_token": r.refresh_token,
                    }))
                }
                Err(status) => match status.code() {
                    Code::Unauthenticated | Code::InvalidArgument => {
                        oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", status.message())
                    }
                    _ => unavailable(&status),
                },
            }
        }
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("{other} is not supported (client_credentials and refresh_token are)"),
        ),
    }
}

fn unavailable(status: &tonic::Status) -> Response {
    tracing::warn!(code = ?status.code(), message = status.message(), "token endpoint could not reach user-svc");
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the authorization server is unavailable; try again",
    )
}
