//! `oms.user.v1.UserService`: every RPC needs a user access token.

use oms_config::ExposeSecret as _;
use oms_proto::user::v1::{self as pb, user_service_server::UserService};
use oms_runtime::auth::{require_admin, require_user};
use tonic::{Request, Response, Status};

use super::{State, to_proto_user};
use crate::error::UserError;
use crate::input::{PasswordChange, RoleChange, user_id};

pub(super) struct UserApi {
    pub(super) state: State,
}

#[tonic::async_trait]
impl UserService for UserApi {
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

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        require_admin(&request).map_err(UserError::Auth)?;
        let r = request.into_inner();
        let page_size = oms_core::paging::page_size(r.page_size).map_err(UserError::from)?;
        let after = oms_core::paging::decode_token(&r.page_token).map_err(UserError::from)?;
        let (users, next) = self
            .state
            .accounts
            .list_users(after.as_deref(), page_size)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.into_iter().map(to_proto_user).collect(),
            next_page_token: next
                .as_deref()
                .map(oms_core::paging::encode_token)
                .unwrap_or_default(),
        }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let (caller, _) = require_user(&request).map_err(UserError::Auth)?;
        let change = PasswordChange::try_from(request.into_inner()).map_err(UserError::Invalid)?;
        self.state
            .accounts
            .change_password(&caller, change.current.expose_secret(), change.new)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {}))
    }

    async fn set_user_role(
        &self,
        request: Request<pb::SetUserRoleRequest>,
    ) -> Result<Response<pb::SetUserRoleResponse>, Status> {
        require_admin(&request).map_err(UserError::Auth)?;
        let change = RoleChange::try_from(request.into_inner()).map_err(UserError::Invalid)?;
        let user = self
            .state
            .accounts
            .set_role(&change.user_id, change.role)
            .await?;
        Ok(Response::new(pb::SetUserRoleResponse {
            user: Some(to_proto_user(user)),
        }))
    }

    async fn disable_user(
        &self,
        request: Request<pb::DisableUserRequest>,
    ) -> Result<Response<pb::DisableUserResponse>, Status> {
        require_admin(&request).map_err(UserError::Auth)?;
        let id = user_id("user_id", &request.get_ref().user_id).map_err(UserError::from)?;
        let user = self.state.accounts.set_disabled(&id, true).await?;
        Ok(Response::new(pb::DisableUserResponse {
            user: Some(to_proto_user(user)),
        }))
    }

    async fn enable_user(
        &self,
        request: Request<pb::EnableUserRequest>,
    ) -> Result<Response<pb::EnableUserResponse>, Status> {
        require_admin(&request).map_err(UserError::Auth)?;
        let id = user_id("user_id", &request.get_ref().user_id).map_err(UserError::from)?;
        let user = self.state.accounts.set_disabled(&id, false).await?;
        Ok(Response::new(pb::EnableUserResponse {
            user: Some(to_proto_user(user)),
        }))
    }
}
