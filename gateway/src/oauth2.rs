//! `POST /oauth2/token` (RFC 6749 §3.2), form-encoded, onto AuthService
//! and OAuthService: the `authorization_code` grant becomes
//! ExchangeAuthorizationCode, the `client_credentials` grant (client
//! authentication by HTTP Basic or form fields, §2.3.1) IssueServiceToken,
//! the `refresh_token` grant RefreshToken. There is no password grant
//! (RFC 9700 §2.4). Answers per §5.1 and §5.2, never cached.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use oms_proto::user::v1::{
    ExchangeAuthorizationCodeRequest, IssueServiceTokenRequest, RefreshTokenRequest,
    auth_service_client::AuthServiceClient, o_auth_service_client::OAuthServiceClient,
};
use serde_json::{Value, json};
use tonic::Code;

use crate::backends::Service;
use crate::limits;

use crate::Gateway;
use crate::template::percent_decode;

/// Parses an `application/x-www-form-urlencoded` body; a repeated
/// parameter is an error (§3.2: parameters MUST NOT be included more than once).
pub(crate) fn form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
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

pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// An OAuth2 error response.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
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
pub(crate) struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
}

impl Refusal {
    pub(crate) fn into_response(self) -> Response {
        oauth_error(self.status, self.error, self.description)
    }
}

/// How a client authenticated: by secret (Basic or `client_secret_post`),
/// or, public, by naming itself (`none`, with an empty secret).
#[derive(Debug)]
pub(crate) struct ClientAuth {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

impl ClientAuth {
    /// The client of a request: from `Authorization: Basic`, or the form's
    /// `client_id` (with `client_secret` or, public, without); `None` when
    /// it names no client.
    pub(crate) fn read(
        headers: &HeaderMap,
        pairs: &[(String, String)],
    ) -> Result<Option<Self>, Refusal> {
        let basic = headers.contains_key(header::AUTHORIZATION);
        match (basic, param(pairs, "client_id")) {
            (false, Some(id)) if param(pairs, "client_secret").is_none() => Ok(Some(Self {
                client_id: id.to_owned(),
                client_secret: String::new(),
            })),
            (false, None) => Ok(None),
            _ => client_credentials(headers, pairs).map(|(client_id, client_secret)| {
                Some(Self {
                    client_id,
                    client_secret,
                })
            }),
        }
    }
}

/// A token-endpoint form: the right content type, each parameter once;
/// else why not, for an `invalid_request`.
pub(crate) fn token_form(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return Err("the body must be application/x-www-form-urlencoded".to_owned());
    }
    form(body)
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
    let pairs = match token_form(&headers, &body) {
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
        Some("authorization_code") => authorization_code(&gateway, &headers, &pairs).await,
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
            // A token issued to an OpenID Connect client comes back with
            // that client's authentication; a first-party one with none.
            let client = match ClientAuth::read(&headers, &pairs) {
                Ok(client) => client,
                Err(refusal) => return refusal.into_response(),
            };
            let (client_id, client_secret) = client
                .map(|c| (c.client_id, c.client_secret))
                .unwrap_or_default();
            let request = RefreshTokenRequest {
                refresh_token: refresh_token.to_owned(),
                client_id,
                client_secret,
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
                    Code::Unauthenticated if is_client_refusal(&status) => {
                        oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", status.message())
                    }
                    Code::Unauthenticated | Code::InvalidArgument | Code::PermissionDenied => {
                        oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", status.message())
                    }
                    _ => unavailable(&status),
                },
            }
        }
        Some("password") => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "the resource owner password grant is not supported (RFC 9700 §2.4): use the authorization code flow",
        ),
        Some(other) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!(
                "{other} is not supported (authorization_code, refresh_token and client_credentials are)"
            ),
        ),
    }
}

/// Whether user-svc refused the client rather than the grant.
fn is_client_refusal(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt as _;
    status
        .get_details_error_info()
        .is_some_and(|info| info.reason == "INVALID_CLIENT")
}

/// The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.5).
async fn authorization_code(
    gateway: &Gateway,
    headers: &HeaderMap,
    pairs: &[(String, String)],
) -> Response {
    let client = match ClientAuth::read(headers, pairs) {
        Ok(Some(client)) => client,
        Ok(None) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "client authentication is required (client_id for a public client)",
            );
        }
        Err(refusal) => return refusal.into_response(),
    };
    for required in ["code", "redirect_uri", "code_verifier"] {
        if param(pairs, required).is_none() {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("{required} is required"),
            );
        }
    }
    let get = |name| param(pairs, name).unwrap_or_default().to_owned();
    let request = ExchangeAuthorizationCodeRequest {
        client_id: client.client_id,
        client_secret: client.client_secret,
        code: get("code"),
        redirect_uri: get("redirect_uri"),
        code_verifier: get("code_verifier"),
    };
    let mut oauth = OAuthServiceClient::new(gateway.backends.channel(Service::User));
    match oauth.exchange_authorization_code(request).await {
        Ok(r) => {
            let r = r.into_inner();
            let mut body = json!({
                "access_token": r.access_token,
                "token_type": r.token_type,
                "expires_in": r.expires_in,
                "id_token": r.id_token,
                "scope": r.scope,
            });
            if !r.refresh_token.is_empty() {
                body["refresh_token"] = r.refresh_token.into();
            }
            success(body)
        }
        Err(status) => match status.code() {
            Code::Unauthenticated => {
                oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", status.message())
            }
            Code::FailedPrecondition | Code::InvalidArgument => {
                oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", status.message())
            }
            _ => unavailable(&status),
        },
    }
}

pub(crate) fn unavailable(status: &tonic::Status) -> Response {
    tracing::warn!(code = ?status.code(), message = status.message(), "token endpoint could not reach user-svc");
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the authorization server is unavailable; try again",
    )
}
