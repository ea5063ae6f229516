//! The OpenID Provider's rules (OAuth 2.1 authorization code with PKCE,
//! RFC 9700, OpenID Connect Core 1.0): which authorization request gets a
//! code, an error sent back to the client, the sign-in page, or an error
//! page; what a code is exchanged for; what UserInfo says; what revocation
//! and logout end. No wire types: the gRPC layer converts.
//!
//! - [`codes`]: authorization codes, single-use, at most 60 s.
//! - [`sign_in`]: the browser's signed sign-in session.

pub mod codes;
pub mod sign_in;

use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::accounts::Accounts;
use crate::error::UserError;
use crate::oauth_clients::{ClientType, OAuthClient, OIDC_SCOPES};
use crate::store::users;
use crate::throttle::SlidingWindow;
use crate::tokens::{Granted, IdClaims, SignedToken};
use codes::{CodeGrant, Codes, Issued, Taken};
use sign_in::SignInSessions;

/// Longest `state` carried through (it comes back in a URL).
const MAX_STATE: usize = 512;
/// Longest `nonce`.
const MAX_NONCE: usize = 256;
/// Longest `scope` parameter.
const MAX_SCOPE: usize = 256;
/// Longest `client_id`.
const MAX_CLIENT_ID: usize = 64;
/// Longest `redirect_uri` (as registered).
const MAX_REDIRECT_URI: usize = 2_000;
/// How recent a password entry `signed_in_now` may vouch for.
const JUST_SIGNED_IN_SECS: u64 = 30;

/// Codes one sign-in session may have pending with one client: a page
/// that loops on authorize cannot fill the store.
pub const MAX_PENDING_CODES: u64 = 10;

/// The claims an ID token or UserInfo may carry.
pub const CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "email",
    "email_verified",
    "name",
];

/// An authorization request, as the browser sent it.
#[derive(Debug, Clone, Default)]
pub struct AuthorizationRequest {
    /// `client_id`.
    pub client_id: String,
    /// `redirect_uri`.
    pub redirect_uri: String,
    /// `response_type`.
    pub response_type: String,
    /// `scope`.
    pub scope: String,
    /// `state`.
    pub state: String,
    /// `nonce`.
    pub nonce: String,
    /// `code_challenge`.
    pub code_challenge: String,
    /// `code_challenge_method`.
    pub code_challenge_method: String,
    /// `prompt`.
    pub prompt: String,
    /// `max_age`.
    pub max_age: Option<i64>,
    /// The browser's sign-in session, if any.
    pub session: String,
    /// Whether the session was made for this very request.
    pub signed_in_now: bool,
}

/// What the browser gets for an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Back to the client, with a code or an error.
    Redirect(String),
    /// The sign-in page.
    SignIn {
        /// The client signed in to.
        client_id: String,
        /// Where the page's form may lead (CSP `form-action`).
        redirect_origin: String,
    },
}

/// A token request with the `authorization_code` grant.
#[derive(Debug, Clone, Default)]
pub struct CodeExchange {
    /// The client.
    pub client_id: String,
    /// Its secret, when confidential.
    pub client_secret: String,
    /// The code.
    pub code: String,
    /// The request's redirect URI.
    pub redirect_uri: String,
    /// The PKCE verifier.
    pub code_verifier: String,
}

/// What a code is exchanged for.
#[derive(Debug)]
pub struct Tokens {
    /// The access token.
    pub access: SignedToken,
    /// The ID token.
    pub id_token: String,
    /// With `offline_access`.
    pub refresh_token: Option<String>,
    /// The granted scopes.
    pub scope: String,
}

/// The claims UserInfo gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user.
    pub sub: String,
    /// With `email`.
    pub email: Option<String>,
    /// With `email`.
    pub email_verified: Option<bool>,
    /// With `profile`.
    pub name: Option<String>,
}

/// An RP-initiated logout.
#[derive(Debug, Clone, Default)]
pub struct LogoutRequest {
    /// The browser's session, if any.
    pub session: String,
    /// `id_token_hint`.
    pub id_token_hint: String,
    /// `client_id`.
    pub client_id: String,
    /// `post_logout_redirect_uri`.
    pub post_logout_redirect_uri: String,
    /// `state`.
    pub state: String,
}

/// The OpenID Provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub(crate) accounts: Accounts,
    pub(crate) clients: Arc<Vec<OAuthClient>>,
    pub(crate) issuer: String,
    pub(crate) sign_ins: SignInSessions,
    pub(crate) codes: Codes,
    pub(crate) pending: SlidingWindow,
}

/// A refusal, logged at WARN and counted by reason.
fn refused(reason: &'static str, client_id: &str) {
    metrics::counter!("oms_oauth_refusals_total", "reason" => reason).increment(1);
    tracing::warn!(
        reason,
        client_id = %client_id.chars().take(MAX_CLIENT_ID).collect::<String>(),
        "OpenID Connect request refused"
    );
}

/// The reasons counted in `oms_oauth_refusals_total`, zeroed at start-up.
pub const REFUSAL_REASONS: &[&str] = &[
    "unknown_client",
    "unregistered_redirect_uri",
    "invalid_request",
    "unsupported_response_type",
    "invalid_scope",
    "login_required",
    "too_many_pending_codes",
    "invalid_client",
    "invalid_grant",
    "code_reused",
    "invalid_id_token_hint",
];

impl Provider {
    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How long a sign-in session lives.
    pub fn session_ttl(&self) -> std::time::Duration {
        self.sign_ins.ttl()
    }

    fn client(&self, client_id: &str) -> Option<&OAuthClient> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// The client, if it authenticates: a confidential client with its
    /// secret, a public one by naming itself with no secret.
    pub fn authenticate_client(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<&OAuthClient, UserError> {
        let client = self.client(client_id);
        let ok = match client {
            Some(c) if c.client_type == ClientType::Public => secret.is_empty(),
            Some(c) => c.secret_matches(secret),
            // The same work for an unknown client as for a wrong secret.
            None => {
                let _ = crate::clients::sha256_hex(secret);
                false
            }
        };
        match client.filter(|_| ok) {
            Some(client) => Ok(client),
            None => {
                refused("invalid_client", client_id);
                Err(UserError::InvalidClient)
            }
        }
    }

    /// Decides an authorization request (RFC 6749 §4.1.1, OIDC Core
    /// §3.1.2): until the client and its redirect URI are known good,
    /// every fault is an error for the user's eyes, never a redirect.
    pub async fn authorize(&self, request: AuthorizationRequest) -> Result<Decision, UserError> {
        let client = (request.client_id.len() <= MAX_CLIENT_ID)
            .then(|| self.client(&request.client_id))
            .flatten();
        let Some(client) = client else {
            refused("unknown_client", &request.client_id);
            return Err(UserError::UnknownOAuthClient);
        };
        if request.redirect_uri.len() > MAX_REDIRECT_URI
            || !client.redirects_to(&request.redirect_uri)
        {
            refused("unregistered_redirect_uri", &client.client_id);
            return Err(UserError::UnregisteredRedirectUri);
        }
        let back = Back {
            redirect_uri: &request.redirect_uri,
            state: (request.state.len() <= MAX_STATE).then_some(request.state.as_str()),
            issuer: &self.issuer,
        };
        let error =
            |reason: &'static str, error: &str, description: &str| -> Result<Decision, UserError> {
                refused(reason, &client.client_id);
                Ok(Decision::Redirect(back.with_error(error, description)))
            };
        if request.state.len() > MAX_STATE {
            return error(
                "invalid_request",
                "invalid_request",
                "state is longer than 512 characters",
            );
        }
        if request.nonce.len() > MAX_NONCE {
            return error(
                "invalid_request",
                "invalid_request",
                "nonce is longer than 256 characters",
            );
        }
        if request.response_type != "code" {
            return error(
                "unsupported_response_type",
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
        if request.code_challenge_method != "S256" || !is_challenge(&request.code_challenge) {
            return error(
                "invalid_request",
                "invalid_request",
                "PKCE is required: code_challenge (43 characters) with code_challenge_method=S256",
            );
        }
        let Some(scope) = granted_scope(&request.scope, client) else {
            return error(
                "invalid_scope",
                "invalid_scope",
                "scope must include openid and only scopes this client may have",
            );
        };
        let Some(prompt) = Prompt::parse(&request.prompt) else {
            return error(
                "invalid_request",
                "invalid_request",
                "prompt must be none, login, consent or select_account; none stands alone",
            );
        };
        if request.max_age.is_some_and(|age| age < 0) {
            return error(
                "invalid_request",
                "invalid_request",
                "max_age must not be negative",
            );
        }

        let session = self.sign_ins.resume(&request.session).await?;
        let now = crate::tokens::now();
        // "Signed in just now" is believed only of a session whose password
        // was entered moments ago: a caller cannot use the flag to skip
        // `prompt=login` or `max_age` with an older session.
        let just_now = |auth_time: u64| {
            request.signed_in_now && now.saturating_sub(auth_time) <= JUST_SIGNED_IN_SECS
        };
        let fresh_enough = |auth_time: u64| {
            just_now(auth_time)
                || request
                    .max_age
                    .is_none_or(|age| now.saturating_sub(auth_time) <= age.unsigned_abs())
        };
        let session = session
            .filter(|s| fresh_enough(s.auth_time) && (just_now(s.auth_time) || !prompt.login));
        let Some(session) = session else {
            if prompt.none {
                return error(
                    "login_required",
                    "login_required",
                    "the user is not signed in",
                );
            }
            return Ok(Decision::SignIn {
                client_id: client.client_id.clone(),
                redirect_origin: origin_of(&request.redirect_uri),
            });
        };

        let pending_key = format!("{}|{}", client.client_id, session.sid);
        let hit = self.pending.hit(&pending_key).await?;
        if hit.retry_after.is_some() {
            self.pending.release(&pending_key, &hit).await?;
            return error(
                "too_many_pending_codes",
                "temporarily_unavailable",
                "too many authorization requests from this sign-in; try again in a minute",
            );
        }
        let grant = CodeGrant {
            client_id: client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge,
            user_id: session.user_id,
            scope,
            nonce: (!request.nonce.is_empty()).then_some(request.nonce),
            auth_time: session.auth_time,
            sid: session.sid,
            exp: now + self.codes.ttl().as_secs(),
        };
        let code = self.codes.issue(&grant).await?;
        tracing::info!(client_id = %client.client_id, user_id = %grant.user_id, "authorization code issued");
        Ok(Decision::Redirect(back.with(&[("code", &code)])))
    }

    /// Signs a user in for the browser, with the JSON login's throttling.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        peer: Option<IpAddr>,
    ) -> Result<String, UserError> {
        let user = self.accounts.authenticate(email, password, peer).await?;
        let session = self.sign_ins.start(&user.id).await?;
        tracing::info!(user_id = %user.id, "signed in to the OpenID Provider");
        Ok(session)
    }

    /// The `authorization_code` grant (RFC 6749 §4.1.3, RFC 7636 §4.6).
    pub async fn exchange(&self, request: CodeExchange) -> Result<Tokens, UserError> {
        let client = self.authenticate_client(&request.client_id, &request.client_secret)?;
        let invalid = |reason: &'static str, why: &'static str| -> Result<Tokens, UserError> {
            refused(reason, &client.client_id);
            Err(UserError::InvalidGrant(why))
        };
        if request.code.is_empty() || request.code.len() > 128 {
            return invalid("invalid_grant", "the code is not one this server issued");
        }
        let grant = match self.codes.take(&request.code).await? {
            Taken::Fresh(grant) => grant,
            Taken::Replayed(issued) => {
                // RFC 6749 §4.1.2: a code used twice was stolen by one of
                // its users; what it issued is revoked.
                if let Some(family) = &issued.family {
                    self.accounts.sessions.revoke_family(family).await?;
                }
                tracing::warn!(client_id = %client.client_id, user_id = %issued.user_id, "an authorization code was used twice; its refresh token is revoked");
                return invalid(
                    "code_reused",
                    "the code was already used; the tokens it issued are revoked",
                );
            }
            Taken::Unknown => {
                return invalid("invalid_grant", "the code is unknown or expired");
            }
        };
        if crate::tokens::now() > grant.exp {
            return invalid("invalid_grant", "the code is unknown or expired");
        }
        if grant.client_id != client.client_id {
            return invalid("invalid_grant", "the code was issued to another client");
        }
        if grant.redirect_uri != request.redirect_uri {
            return invalid(
                "invalid_grant",
                "redirect_uri differs from the authorization request's",
            );
        }
        if !verifier_matches(&request.code_verifier, &grant.code_challenge) {
            return invalid(
                "invalid_grant",
                "the code_verifier does not match the code_challenge",
            );
        }
        let Some(user) = users::find_by_id(&self.accounts.db, &grant.user_id).await? else {
            return invalid("invalid_grant", "the account is gone");
        };
        if user.disabled {
            return invalid("invalid_grant", "the account is disabled");
        }
        let granted = Granted {
            client_id: client.client_id.clone(),
            scope: grant.scope.clone(),
        };
        let access = self.accounts.tokens.user_token(
            &user.id,
            user.role,
            user.token_version,
            Some(&granted),
        )?;
        let id_token = self.accounts.tokens.id_token(IdClaims {
            iss: self.issuer.clone(),
            sub: user.id.clone(),
            aud: client.client_id.clone(),
            exp: 0,
            iat: 0,
            auth_time: grant.auth_time,
            nonce: grant.nonce.clone(),
            email: granted.has("email").then(|| user.email.clone()),
            email_verified: granted.has("email").then_some(false),
            name: granted.has("profile").then(|| user.display_name.clone()),
        })?;
        let refresh_token = if granted.has("offline_access") {
            let (token, family) = self
                .accounts
                .sessions
                .start_for(&user.id, Some(&granted))
                .await?;
            self.codes
                .record(
                    &request.code,
                    &Issued {
                        user_id: user.id.clone(),
                        family: Some(family),
                    },
                )
                .await?;
            Some(token)
        } else {
            None
        };
        tracing::info!(client_id = %client.client_id, user_id = %user.id, "authorization code exchanged");
        Ok(Tokens {
            access,
            id_token,
            refresh_token,
            scope: grant.scope,
        })
    }

    /// The `refresh_token` grant for an OpenID Connect client: it
    /// authenticates, and only its own tokens rotate.
    pub async fn refresh(
        &self,
        client_id: &str,
        client_secret: &str,
        refresh_token: &str,
    ) -> Result<crate::accounts::SignIn, UserError> {
        let client = self.authenticate_client(client_id, client_secret)?;
        self.accounts
            .refresh(refresh_token, Some(&client.client_id))
            .await
    }

    /// UserInfo for the user with the token's `scopes`.
    pub async fn user_info(&self, user_id: &str, scopes: &[String]) -> Result<UserInfo, UserError> {
        let user = users::find_by_id(&self.accounts.db, user_id)
            .await?
            .filter(|u| !u.disabled)
            .ok_or(UserError::UserNotFound)?;
        let has = |scope: &str| scopes.iter().any(|s| s == scope);
        Ok(UserInfo {
            sub: user.id,
            email: has("email").then_some(user.email),
            email_verified: has("email").then_some(false),
            name: has("profile").then_some(user.display_name),
        })
    }

    /// RFC 7009: revokes `token` if it is a refresh token of this client's.
    /// Anything else (unknown, another client's, an access token, which
    /// lives at most 15 minutes) is left alone with the same answer.
    pub async fn revoke(
        &self,
        client_id: &str,
        client_secret: &str,
        token: &str,
    ) -> Result<(), UserError> {
        let client = self.authenticate_client(client_id, client_secret)?;
        if token.is_empty() || token.len() > 4_096 {
            return Ok(());
        }
        if let Some(Some(owner)) = self.accounts.sessions.client_of(token).await?
            && owner == client.client_id
        {
            self.accounts.sessions.revoke_family_of(token).await?;
            tracing::info!(client_id = %client.client_id, "refresh token revoked");
        }
        Ok(())
    }

    /// RP-initiated logout (OIDC RP-Initiated Logout 1.0 §2, §3): ends the
    /// browser's session; where to send it, if the client asked for a
    /// place it registered.
    pub async fn end_session(&self, request: LogoutRequest) -> Result<Option<String>, UserError> {
        let hinted = if request.id_token_hint.is_empty() {
            None
        } else {
            let claims = (request.id_token_hint.len() <= 4_096)
                .then(|| {
                    jsonwebtoken::decode_header(&request.id_token_hint)
                        .ok()
                        .filter(|h| h.typ.as_deref() == Some("JWT"))?;
                    self.accounts.tokens.verify_own::<IdClaims>(
                        &request.id_token_hint,
                        &self.issuer,
                        None,
                        false,
                    )
                })
                .flatten();
            let Some(claims) = claims else {
                refused("invalid_id_token_hint", &request.client_id);
                return Err(UserError::ForeignIdToken);
            };
            Some(claims)
        };
        let client_id = match (&hinted, request.client_id.as_str()) {
            (Some(claims), "") => claims.aud.clone(),
            (Some(claims), id) if claims.aud != id => {
                refused("invalid_id_token_hint", id);
                return Err(UserError::ForeignIdToken);
            }
            (_, id) => id.to_owned(),
        };
        let redirect = if request.post_logout_redirect_uri.is_empty() {
            None
        } else {
            let allowed = self
                .client(&client_id)
                .is_some_and(|c| c.logs_out_to(&request.post_logout_redirect_uri));
            if !allowed {
                refused("unregistered_redirect_uri", &client_id);
                return Err(UserError::UnregisteredRedirectUri);
            }
            let state = (!request.state.is_empty() && request.state.len() <= MAX_STATE)
                .then_some(request.state.as_str());
            Some(with_query(
                &request.post_logout_redirect_uri,
                &state.map(|s| vec![("state", s)]).unwrap_or_default(),
            ))
        };
        if let Some(user_id) = self.sign_ins.end(&request.session).await? {
            tracing::info!(user_id = %user_id, client_id = %client_id, "signed out of the OpenID Provider");
        }
        Ok(redirect)
    }
}

/// The way back to a client that passed the first checks.
struct Back<'a> {
    redirect_uri: &'a str,
    state: Option<&'a str>,
    issuer: &'a str,
}

impl Back<'_> {
    /// The redirect URI with `params`, `state` and `iss` (RFC 9207).
    fn with(&self, params: &[(&str, &str)]) -> String {
        let mut all = params.to_vec();
        if let Some(state) = self.state.filter(|s| !s.is_empty()) {
            all.push(("state", state));
        }
        all.push(("iss", self.issuer));
        with_query(self.redirect_uri, &all)
    }

    fn with_error(&self, error: &str, description: &str) -> String {
        self.with(&[("error", error), ("error_description", description)])
    }
}

/// `uri` with `params` added to its query.
fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(uri) {
        Ok(mut url) => {
            if !params.is_empty() {
                url.query_pairs_mut().extend_pairs(params);
            }
            url.to_string()
        }
        // Registered URIs were parsed at start-up.
        Err(_) => uri.to_owned(),
    }
}

/// The CSP source that allows a form to lead to `uri`.
fn origin_of(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url.origin().ascii_serialization(),
        Ok(url) => format!("{}:", url.scheme()),
        Err(_) => "'none'".to_owned(),
    }
}

/// The scopes granted for `requested`: `openid` among them, each allowed
/// for the client, duplicates dropped.
fn granted_scope(requested: &str, client: &OAuthClient) -> Option<String> {
    if requested.len() > MAX_SCOPE {
        return None;
    }
    let mut scopes: Vec<&str> = Vec::new();
    for scope in requested.split(' ').filter(|s| !s.is_empty()) {
        if !OIDC_SCOPES.contains(&scope) || !client.scopes.iter().any(|s| s == scope) {
            return None;
        }
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes.contains(&"openid").then(|| scopes.join(" "))
}

/// The `prompt` values honoured.
#[derive(Debug, Default, Clone, Copy)]
struct Prompt {
    none: bool,
    login: bool,
}

impl Prompt {
    fn parse(raw: &str) -> Option<Self> {
        let mut prompt = Self::default();
        let mut count = 0;
        for value in raw.split(' ').filter(|s| !s.is_empty()) {
            count += 1;
            match value {
                "none" => prompt.none = true,
                // Choosing an account is signing in again.
                "login" | "select_account" => prompt.login = true,
                // Clients are registered by the operator: consent is given.
                "consent" => {}
                _ => return None,
            }
        }
        (!prompt.none || count == 1).then_some(prompt)
    }
}

/// A PKCE S256 challenge: 43 base64url characters (RFC 7636 §4.2).
fn is_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `verifier` (43 to 128 unreserved characters, RFC 7636 §4.1)
/// hashes to `challenge`, compared in constant time.
fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(scopes: &[&str]) -> OAuthClient {
        OAuthClient::public("app", &["https://app.example/cb".to_owned()], scopes)
    }

    #[test]
    fn pkce_s256_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_challenge(challenge));
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!verifier_matches("short", challenge), "under 43 characters");
        assert!(!is_challenge("plain-challenge"));
    }

    #[test]
    fn scopes_need_openid_and_the_clients_leave() {
        let c = client(&["openid", "email"]);
        assert_eq!(
            granted_scope("openid email openid", &c).as_deref(),
            Some("openid email")
        );
        assert_eq!(granted_scope("email", &c), None, "no openid");
        assert_eq!(
            granted_scope("openid profile", &c),
            None,
            "not the client's"
        );
        assert_eq!(granted_scope("openid inventory:write", &c), None);
        assert_eq!(granted_scope(&"openid ".repeat(100), &c), None, "too long");
    }

    #[test]
    fn prompt_none_stands_alone() {
        assert!(Prompt::parse("").is_some_and(|p| !p.none && !p.login));
        assert!(Prompt::parse("login consent").is_some_and(|p| p.login));
        assert!(Prompt::parse("none").is_some_and(|p| p.none));
        assert!(Prompt::parse("none login").is_none());
        assert!(Prompt::parse("bogus").is_none());
    }

    #[test]
    fn redirects_keep_the_registered_query_and_add_state_and_iss() {
        let back = Back {
            redirect_uri: "https://app.example/cb?tenant=a",
            state: Some("s p&"),
            issuer: "http://localhost:8080",
        };
        assert_eq!(
            back.with(&[("code", "c1")]),
            "https://app.example/cb?tenant=a&code=c1&state=s+p%26&iss=http%3A%2F%2Flocalhost%3A8080"
        );
        assert_eq!(
            origin_of("https://app.example:8443/cb"),
            "https://app.example:8443"
        );
        assert_eq!(origin_of("com.example.app:/cb"), "com.example.app:");
    }
}
