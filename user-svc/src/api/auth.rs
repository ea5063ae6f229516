//! `oms.user.v1.AuthService`: no RPC here needs a token.

use oms_config::ExposeSecret as _;
use oms_core::fields::AllFields as _;
use oms_proto::user::v1::{self as pb, auth_service_server::AuthService};
use tonic::{Request, Response, Status};

use super::{State, client_ip, to_proto_user};
use crate::accounts::SignIn;
use crate::error::UserError;
use crate::input::{Credentials, Registration, required};

pub(super) struct AuthApi {
    pub(super) state: State,
}

fn expires_in(secs: u64) -> i32 {
    i32::try_from(secs).unwrap_or(i32::MAX)
}

fn login_response(sign_in: SignIn) -> pb::LoginResponse {
    pb::LoginResponse {
        access_token: sign_in.access.token,
        refresh_token: sign_in.refresh_token,
        token_type: "Bearer".to_owned(),
        expires_in: expires_in(sign_in.access.expires_in),
        user: Some(to_proto_user(sign_in.user)),
    }
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let peer = client_ip(&request, &self.state.proxies);
        let new = Registration::try_from(request.into_inner()).map_err(UserError::Invalid)?;
        let user = self
            .state
            .accounts
            .register(new.email, new.password, new.display_name, peer)
            .await?;
        Ok(Response::new(pb::RegisterResponse {
            user: Some(to_proto_user(user)),
        }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let peer = client_ip(&request, &self.state.proxies);
        let given = Credentials::try_from(request.into_inner()).map_err(UserError::Invalid)?;
        let sign_in = self
            .state
            .accounts
            .login(&given.email, given.password.expose_secret(), peer)
            .await?;
        Ok(Response::new(login_response(sign_in)))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let r = request.into_inner();
        required("refresh_token", &r.refresh_token).map_err(UserError::from)?;
        // A token issued to an OpenID Connect client is refreshed by that
        // client alone, authenticated; a first-party token by its holder.
        let sign_in = if r.client_id.is_empty() {
            self.state.accounts.refresh(&r.refresh_token, None).await?
        } else {
            self.state
                .provider
                .refresh(&r.client_id, &r.client_secret, &r.refresh_token)
                .await?
        };
        let l = login_response(sign_in);
        Ok(Response::new(pb::RefreshTokenResponse {
            access_token: l.access_token,
            refresh_token: l.refresh_token,
            token_type: l.token_type,
            expires_in: l.expires_in,
            user: l.user,
        }))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let r = request.into_inner();
        required("refresh_token", &r.refresh_token).map_err(UserError::from)?;
        self.state.accounts.logout(&r.refresh_token).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> Result<Response<pb::IssueServiceTokenResponse>, Status> {
        let r = request.into_inner();
        (
            required("client_id", &r.client_id),
            required("client_secret", &r.client_secret),
        )
            .all_fields()
            .map_err(UserError::Invalid)?;
        let grant = self
            .state
            .accounts
            .service_token(&r.client_id, &r.client_secret, r.scopes)
            .await?;
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token: grant.access.token,
            token_type: "Bearer".to_owned(),
            expires_in: expires_in(grant.access.expires_in),
            scopes: grant.scopes,
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let keys = self
            .state
            .accounts
            .tokens
            .keys()
            .jwks()
            .iter()
            .map(|k| pb::Jwk {
                kty: k.kty.clone(),
                crv: k.crv.clone(),
                x: k.x.clone(),
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                r#use: k.use_.clone(),
            })
            .collect();
        Ok(Response::new(pb::GetJwksResponse { keys }))
    }

    async fn list_token_revocations(
        &self,
        request: Request<pb::ListTokenRevocationsRequest>,
    ) -> Result<Response<pb::ListTokenRevocationsResponse>, Status> {
        const MAX_PAGE: u64 = 1000;
        // Who changed when is for the mesh's verifiers, not for anyone.
        oms_runtime::auth::require_scope(&request, oms_runtime::auth::revocations::READ_SCOPE)
            .map_err(UserError::Auth)?;
        let r = request.into_inner();
        let page_size = match u64::try_from(r.page_size) {
            Err(_) => {
                return Err(UserError::from(oms_runtime::FieldViolation::new(
                    "page_size",
                    "must not be negative",
                ))
                .into());
            }
            Ok(0) => MAX_PAGE,
            Ok(n) => n.min(MAX_PAGE),
        };
        let offset = match oms_core::paging::decode_token(&r.page_token).map_err(UserError::from)? {
            None => 0,
            // No list is longer than a verifier holds, so neither is an
            // offset into one.
            Some(cursor) => cursor
                .parse::<u64>()
                .ok()
                .filter(|&offset| offset <= oms_runtime::auth::revocations::MAX_ENTRIES as u64)
                .ok_or_else(|| {
                    UserError::from(oms_runtime::FieldViolation::new(
                        "page_token",
                        "is not a token from a previous response",
                    ))
                })?,
        };
        let (listed, next) = self.state.accounts.revocations(offset, page_size).await?;
        Ok(Response::new(pb::ListTokenRevocationsResponse {
            revocations: listed
                .into_iter()
                .map(|r| pb::TokenRevocation {
                    subject_sha256: r.subject_sha256.to_vec(),
                    min_token_version: r.min_version,
                })
                .collect(),
            next_page_token: next
                .map(|offset| oms_core::paging::encode_token(&offset.to_string()))
                .unwrap_or_default(),
        }))
    }
}
