//! `oms.user.v1.UserService`: every RPC needs a user access token.

use kit::auth::{Role, require_admin, require_user};
use kit::fields::AllFields as _;
use oms_proto::user::v1::{self as pb, user_service_server::UserService};
use tonic::{Request, Response, Status};

use super::auth::required;
use super::{State, to_proto_user};
use crate::error::UserError;
use crate::input::{Password, user_id};

pub(super) struct UserApi {
    pub(super) state: State,
}

#[tonic::async_trait]
impl UserService for UserApi {
    #[tracing::instrument(skip_all, name = "GetCurrentUser")]
    async fn get_current_user(
        &self,
        request: Request<pb::GetCurrentUserRequest>,
    ) -> Result<Response<pb::GetCurrentUserResponse>, Status> {
        let (caller, role) = require_user(&request).map_err(UserError::Auth)?;
        let user = self
            .state
            .accounts
            .get_user((&caller, role), &caller)
            .await?;
        Ok(Response::new(pb::GetCurrentUserResponse {
            user: Some(to_proto_user(user)),
        }))
    }

    #[tracing::instrument(skip_all, name = "GetUser")]
    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let (caller, role) = require_user(&request).map_err(UserError::Auth)?;
        let id = user_id("user_id", &request.get_ref().user_id).map_err(UserError::from)?;
        let user = self.state.accounts.get_user((&caller, role), &id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(to_proto_user(user)),
        }))
    }

    #[tracing::instrument(skip_all, name = "ListUsers")]
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        require_admin(&request).map_err(UserError::Auth)?;
        let r = request.into_inner();
        let page_size = kit::paging::page_size(r.page_size).map_err(UserError::from)?;
        let after = kit::paging::decode_token(&r.page_token).map_err(UserError::from)?;
        let (users, next) = self
            .state
            .accounts
            .list_users(after.as_deref(), page_size)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(to_proto_user).collect(),
            next_page_token: next
                .as_deref()
                .map(kit::paging::encode_token)
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, name = "ChangePassword")]
    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let (caller, _) = require_user(&request).map_err(UserError::Auth)?;
        let r = request.into_inner();
        let ((), new) = (
            required("current_password", &r.current_password),
            Password::parse("new_password", &r.new_password),
        )
            .all_fields()
            .map_err(UserError::Invalid)?;
        self.state
            .accounts
            .change_password(&caller, &r.current_password, new)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    #[tracing::instrument(skip_all, name = "SetUserRole")]
    async fn set_user_role(
        &self,
        request: Request<pb::SetUserRoleRequest>,
    ) -> Result<Response<pb::SetUserRoleResponse>, Status> {
        require_admin(&request).map_err(UserError::Auth)?;
        let r = request.into_inner();
        let id = user_id("user_id", &r.user_id);
        let role = match pb::Role::try_from(r.role) {
            Ok(pb::Role::Customer) => Ok(Role::Customer),
            Ok(pb::Role::Admin) => Ok(Role::Admin),
            _ => Err(kit::FieldViolation::new(
                "role",
                "must be ROLE_CUSTOMER or ROLE_ADMIN",
            )),
        };
        let (id, role) = (id, role).all_fields().map_err(UserError::Invalid)?;
        let user = self.state.accounts.set_role(&id, role).await?;
        Ok(Response::new(pb::SetUserRoleResponse {
            user: Some(to_proto_user(user)),
        }))
    }
}
