//! The console's sign-in: the gateway is the console's OpenID Connect
//! client (`console`, public, PKCE), and keeps the user's tokens in an
//! `HttpOnly` cookie (`Path=/console`), never where page script could
//! read them. An access token near its end is refreshed (rotating the
//! refresh token) on the next page; sign-out revokes the refresh token and
//! ends the provider's session too.

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oms_proto::user::v1::{self as pb, auth_service_client::AuthServiceClient};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

use crate::backends::Service;
use crate::{Gateway, cookies};

/// The console's client ID at the provider.
pub(crate) const CLIENT_ID: &str = "console";
const SESSION_COOKIE: &str = "oms_console";
const LOGIN_COOKIE: &str = "oms_console_login";
const CSRF_COOKIE: &str = "oms_console_csrf";
/// Refreshed when it has less than this left.
const REFRESH_AHEAD_SECS: u64 = 30;

/// The tokens a signed-in console holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tokens {
    a: String,
    r: String,
    i: String,
}

/// Who is signed in, read from their own tokens (for what the page shows;
/// the API decides what they may do).
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    /// Whether the token says admin.
    pub(crate) admin: bool,
    /// Email or name, to show.
    pub(crate) label: String,
    tokens: Tokens,
    /// A new session cookie, when the tokens were refreshed.
    refreshed: Option<HeaderValue>,
    /// The form token of this browser, and whether it is new.
    pub(crate) csrf: String,
    new_csrf: bool,
    secure: bool,
}

fn payload(jwt: &str) -> Option<serde_json::Value> {
    let part = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn set_cookie(
    name: &str,
    value: &str,
    max_age: u64,
    same_site: &str,
    secure: bool,
) -> Option<HeaderValue> {
    cookies::set(name, value, "/console", max_age, same_site, secure)
}

fn encode(tokens: &Tokens) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(tokens).unwrap_or_default())
}

fn decode(raw: &str) -> Option<Tokens> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(raw).ok()?).ok()
}

/// Where sign-in goes back to: a console page, nothing else.
fn safe_next(next: &str) -> &str {
    let ok = next.starts_with("/console")
        && !next.contains("//")
        && !next.contains('\\')
        && next.len() <= 1_024;
    if ok { next } else { "/console/orders" }
}

impl Viewer {
    /// The signed-in viewer of a request, refreshing its tokens when they
    /// are about to end; else the way to sign in.
    pub(crate) async fn of(
        gateway: &Gateway,
        headers: &HeaderMap,
        uri: &Uri,
    ) -> Result<Self, Response> {
        let login = || {
            let next = uri
                .path_and_query()
                .map_or("/console/orders", |p| p.as_str());
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            super::view::redirect(&format!("/console/login?next={next}"))
        };
        let Some(mut tokens) = cookies::read(headers, SESSION_COOKIE).and_then(|raw| decode(&raw))
        else {
            return Err(login());
        };
        let secure = gateway.public_tls;
        let mut refreshed = None;
        let exp = payload(&tokens.a)
            .and_then(|p| p["exp"].as_u64())
            .unwrap_or(0);
        if exp < now() + REFRESH_AHEAD_SECS {
            let mut auth = AuthServiceClient::new(gateway.backends.channel(Service::User));
            let renewed = auth
                .refresh_token(pb::RefreshTokenRequest {
                    refresh_token: tokens.r.clone(),
                    client_id: CLIENT_ID.to_owned(),
                    client_secret: String::new(),
                })
                .await;
            let Ok(renewed) = renewed else {
                return Err(login());
            };
            let renewed = renewed.into_inner();
            tokens.a = renewed.access_token;
            tokens.r = renewed.refresh_token;
            refreshed = set_cookie(
                SESSION_COOKIE,
                &encode(&tokens),
                14 * 24 * 3600,
                "Lax",
                secure,
            );
        }
        let claims = payload(&tokens.a).unwrap_or_default();
        let identity = payload(&tokens.i).unwrap_or_default();
        let label = identity["email"]
            .as_str()
            .or(identity["name"].as_str())
            .unwrap_or("signed in")
            .to_owned();
        let (csrf, new_csrf) = cookies::form_token(headers, CSRF_COOKIE);
        Ok(Self {
            admin: claims["role"] == "admin",
            label,
            tokens,
            refreshed,
            csrf,
            new_csrf,
            secure,
        })
    }

    /// `message` as a call of this viewer's.
    pub(crate) fn call<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Ok(value) = format!("Bearer {}", self.tokens.a).parse() {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// The viewer's token as an `authorization` header.
    pub(crate) fn bearer(&self) -> Option<HeaderValue> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.tokens.a)).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Whether a posted form carries this browser's token and came from
    /// this site.
    pub(crate) fn form_is_ours(&self, headers: &HeaderMap, token: Option<&str>) -> bool {
        !self.new_csrf && cookies::form_is_ours(headers, Some(&self.csrf), token)
    }

    /// `response` with the cookies this request renewed.
    pub(crate) fn finish(&self, mut response: Response) -> Response {
        if let Some(cookie) = &self.refreshed {
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
        if self.new_csrf
            && let Some(cookie) =
                set_cookie(CSRF_COOKIE, &self.csrf, 12 * 3600, "Strict", self.secure)
        {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }
}

/// The provider's issuer, which is the console's own origin.
async fn issuer(gateway: &Gateway) -> Result<String, tonic::Status> {
    let mut oauth = oms_proto::user::v1::o_auth_service_client::OAuthServiceClient::new(
        gateway.backends.channel(Service::User),
    );
    Ok(oauth
        .get_provider_metadata(pb::GetProviderMetadataRequest {})
        .await?
        .into_inner()
        .issuer)
}

/// `GET /console/login`: off to the provider with a PKCE challenge.
pub(crate) async fn login(gateway: &Gateway, uri: &Uri) -> Response {
    let issuer = match issuer(gateway).await {
        Ok(issuer) => issuer,
        Err(status) => return super::view::failure(&status),
    };
    let next = uri
        .query()
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "next")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let (Some(state), Some(verifier), Some(nonce)) = (
        cookies::random_token(),
        cookies::random_token(),
        cookies::random_token(),
    ) else {
        return super::view::failure(&tonic::Status::unavailable("no randomness"));
    };
    use sha2::Digest as _;
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let redirect_uri = format!("{issuer}/console/callback");
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid email profile offline_access")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let next_b64 = URL_SAFE_NO_PAD.encode(safe_next(&next));
    let mut response = super::view::redirect(&format!("{issuer}/oauth2/authorize?{query}"));
    if let Some(cookie) = set_cookie(
        LOGIN_COOKIE,
        &format!("{state}.{verifier}.{nonce}.{next_b64}"),
        600,
        "Lax",
        gateway.public_tls,
    ) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /console/callback`: the code for tokens, checked against what this
/// browser asked for.
pub(crate) async fn callback(gateway: &Gateway, headers: &HeaderMap, uri: &Uri) -> Response {
    let params: std::collections::HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let refused = |why: &str| {
        tracing::warn!(reason = why, "console sign-in refused");
        metrics::counter!("oms_oauth_refusals_total", "reason" => "console_callback").increment(1);
        super::view::message_page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            &format!("{why} Sign in again."),
        )
    };
    if let Some(error) = params.get("error") {
        let description = params.get("error_description").map_or("", String::as_str);
        return refused(&format!(
            "The sign-in was refused ({error}: {description})."
        ));
    }
    let Some(remembered) = cookies::read(headers, LOGIN_COOKIE) else {
        return refused("This sign-in was not started here, or took too long.");
    };
    let mut parts = remembered.splitn(4, '.');
    let (Some(state), Some(verifier), Some(nonce), Some(next)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return refused("This sign-in was not started here.");
    };
    let given = params.get("state").map_or("", String::as_str);
    if !bool::from(given.as_bytes().ct_eq(state.as_bytes())) {
        return refused("The answer does not belong to this sign-in.");
    }
    let issuer = match issuer(gateway).await {
        Ok(issuer) => issuer,
        Err(status) => return super::view::failure(&status),
    };
    if params.get("iss").is_some_and(|iss| *iss != issuer) {
        return refused("The answer came from another provider.");
    }
    let mut oauth = oms_proto::user::v1::o_auth_service_client::OAuthServiceClient::new(
        gateway.backends.channel(Service::User),
    );
    let exchanged = oauth
        .exchange_authorization_code(pb::ExchangeAuthorizationCodeRequest {
            client_id: CLIENT_ID.to_owned(),
            client_secret: String::new(),
            code: params.get("code").cloned().unwrap_or_default(),
            redirect_uri: format!("{issuer}/console/callback"),
            code_verifier: verifier.to_owned(),
        })
        .await;
    let tokens = match exchanged {
        Ok(r) => r.into_inner(),
        Err(status) if status.code() == tonic::Code::FailedPrecondition => {
            return refused(status.message());
        }
        Err(status) => return super::view::failure(&status),
    };
    if payload(&tokens.id_token)
        .and_then(|p| p["nonce"].as_str().map(str::to_owned))
        .as_deref()
        != Some(nonce)
    {
        return refused("The ID token is not for this sign-in.");
    }
    let next = URL_SAFE_NO_PAD
        .decode(next)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default();
    let mut response = super::view::redirect(safe_next(&next));
    let session = Tokens {
        a: tokens.access_token,
        r: tokens.refresh_token,
        i: tokens.id_token,
    };
    let secure = gateway.public_tls;
    for cookie in [
        set_cookie(
            SESSION_COOKIE,
            &encode(&session),
            14 * 24 * 3600,
            "Lax",
            secure,
        ),
        set_cookie(LOGIN_COOKIE, "", 0, "Lax", secure),
    ]
    .into_iter()
    .flatten()
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /console/logout`: the refresh token revoked, the cookie gone, and
/// the provider's session ended too.
pub(crate) async fn logout(gateway: &Gateway, viewer: &Viewer) -> Response {
    let mut oauth = oms_proto::user::v1::o_auth_service_client::OAuthServiceClient::new(
        gateway.backends.channel(Service::User),
    );
    if let Err(status) = oauth
        .revoke_token(pb::RevokeTokenRequest {
            client_id: CLIENT_ID.to_owned(),
            client_secret: String::new(),
            token: viewer.tokens.r.clone(),
            token_type_hint: "refresh_token".to_owned(),
        })
        .await
    {
        tracing::warn!(code = ?status.code(), "console sign-out could not revoke the refresh token");
    }
    let issuer = issuer(gateway).await.unwrap_or_default();
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &viewer.tokens.i)
        .append_pair("post_logout_redirect_uri", &format!("{issuer}/console/"))
        .append_pair("client_id", CLIENT_ID)
        .finish();
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("{issuer}/oauth2/logout?{query}"))],
    )
        .into_response();
    if let Some(cookie) = set_cookie(SESSION_COOKIE, "", 0, "Lax", gateway.public_tls) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn sign_in_goes_back_only_to_a_console_page() {
        assert_eq!(
            safe_next("/console/orders?status=CONFIRMED"),
            "/console/orders?status=CONFIRMED"
        );
        for elsewhere in [
            "https://evil.example/",
            "//evil.example",
            "/console//evil",
            "/v1/users",
            "/console\\x",
        ] {
            assert_eq!(safe_next(elsewhere), "/console/orders", "{elsewhere}");
        }
    }
}
