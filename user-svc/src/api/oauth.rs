//! `oms.user.v1.OAuthService`: the OpenID Provider's decisions, for the
//! gateway's browser-facing endpoints.

use oms_proto::user::v1::{self as pb, o_auth_service_server::OAuthService};
use tonic::{Request, Response, Status};

use super::{State, client_ip};
use crate::error::UserError;
use crate::oidc::{AuthorizationRequest, CodeExchange, Decision, LogoutRequest};

pub(super) struct OAuthApi {
    pub(super) state: State,
}

fn seconds(d: std::time::Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

#[tonic::async_trait]
impl OAuthService for OAuthApi {
    async fn get_provider_metadata(
        &self,
        _request: Request<pb::GetProviderMetadataRequest>,
    ) -> Result<Response<pb::GetProviderMetadataResponse>, Status> {
        Ok(Response::new(pb::GetProviderMetadataResponse {
            issuer: self.state.provider.issuer().to_owned(),
            scopes_supported: crate::oauth_clients::OIDC_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            claims_supported: crate::oidc::CLAIMS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }))
    }

    async fn authorize(
        &self,
        request: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        let r = request.into_inner();
        let decision = self
            .state
            .provider
            .authorize(AuthorizationRequest {
                client_id: r.client_id,
                redirect_uri: r.redirect_uri,
                response_type: r.response_type,
                scope: r.scope,
                state: r.state,
                nonce: r.nonce,
                code_challenge: r.code_challenge,
                code_challenge_method: r.code_challenge_method,
                prompt: r.prompt,
                max_age: r.max_age,
                session: r.session,
                signed_in_now: r.signed_in_now,
            })
            .await?;
        let outcome = match decision {
            Decision::Redirect(uri) => pb::authorize_response::Outcome::RedirectUri(uri),
            Decision::SignIn {
                client_id,
                redirect_origin,
            } => pb::authorize_response::Outcome::SignIn(pb::SignInPrompt {
                client_id,
                redirect_origin,
            }),
        };
        Ok(Response::new(pb::AuthorizeResponse {
            outcome: Some(outcome),
        }))
    }

    async fn sign_in(
        &self,
        request: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        let peer = client_ip(&request, &self.state.proxies);
        let r = request.into_inner();
        // Bounded like Login's fields; a malformed email is a wrong one.
        if r.email.len() > 320 || r.password.len() > 1_024 {
            return Err(UserError::BadCredentials.into());
        }
        let session = self
            .state
            .provider
            .sign_in(&r.email, &r.password, peer)
            .await?;
        Ok(Response::new(pb::SignInResponse {
            session,
            expires_in: seconds(self.state.provider.session_ttl()),
        }))
    }

    async fn exchange_authorization_code(
        &self,
        request: Request<pb::ExchangeAuthorizationCodeRequest>,
    ) -> Result<Response<pb::ExchangeAuthorizationCodeResponse>, Status> {
        let r = request.into_inner();
        let tokens = self
            .state
            .provider
            .exchange(CodeExchange {
                client_id: r.client_id,
                client_secret: r.client_secret,
                code: r.code,
                redirect_uri: r.redirect_uri,
                code_verifier: r.code_verifier,
            })
            .await?;
        Ok(Response::new(pb::ExchangeAuthorizationCodeResponse {
            access_token: tokens.access.token,
            token_type: "Bearer".to_owned(),
            expires_in: i32::try_from(tokens.access.expires_in).unwrap_or(i32::MAX),
            id_token: tokens.id_token,
            refresh_token: tokens.refresh_token.unwrap_or_default(),
            scope: tokens.scope,
        }))
    }

    async fn get_user_info(
        &self,
        request: Request<pb::GetUserInfoRequest>,
    ) -> Result<Response<pb::GetUserInfoResponse>, Status> {
        let (user_id, scopes) = match oms_runtime::auth::caller(&request) {
            Some(oms_runtime::auth::Caller::User { id, scopes, .. })
                if scopes.iter().any(|s| s == "openid") =>
            {
                (id.clone(), scopes.clone())
            }
            _ => {
                return Err(UserError::Auth(oms_runtime::ApiError::from(
                    oms_runtime::Rejection::new(
                        tonic::Code::PermissionDenied,
                        crate::DOMAIN,
                        "OPENID_SCOPE_REQUIRED",
                        "UserInfo needs an access token granted the openid scope",
                    ),
                ))
                .into());
            }
        };
        let info = self.state.provider.user_info(&user_id, &scopes).await?;
        Ok(Response::new(pb::GetUserInfoResponse {
            sub: info.sub,
            email: info.email,
            email_verified: info.email_verified,
            name: info.name,
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let r = request.into_inner();
        self.state
            .provider
            .revoke(&r.client_id, &r.client_secret, &r.token)
            .await?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    async fn end_session(
        &self,
        request: Request<pb::EndSessionRequest>,
    ) -> Result<Response<pb::EndSessionResponse>, Status> {
        let r = request.into_inner();
        let redirect = self
            .state
            .provider
            .end_session(LogoutRequest {
                session: r.session,
                id_token_hint: r.id_token_hint,
                client_id: r.client_id,
                post_logout_redirect_uri: r.post_logout_redirect_uri,
                state: r.state,
            })
            .await?;
        Ok(Response::new(pb::EndSessionResponse {
            redirect_uri: redirect.unwrap_or_default(),
        }))
    }
}
