//! The gRPC layer of user-svc: decodes requests, authorizes, and maps
//! results to the wire. RPCs not yet implemented answer UNIMPLEMENTED (the
//! generated default) rather than pretending to work.

use std::sync::Arc;

use kit::kv::KvStore;
use oms_proto::user::v1::{
    auth_service_server::{AuthService, AuthServiceServer},
    user_service_server::{UserService, UserServiceServer},
};
use sea_orm::DatabaseConnection;
use tonic::service::Routes;

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct State {
    /// The users database.
    #[allow(dead_code)] // Read by the account RPCs of the [user-svc] issue.
    pub(crate) db: DatabaseConnection,
    /// Refresh tokens and login throttles.
    #[allow(dead_code)] // Read by the token RPCs of the [user-svc] issue.
    pub(crate) tokens: Arc<dyn KvStore>,
}

/// The routes of AuthService and UserService.
pub(crate) fn routes(state: State) -> Routes {
    Routes::new(AuthServiceServer::new(AuthApi {
        state: state.clone(),
    }))
    .add_service(UserServiceServer::new(UserApi { state }))
}

struct AuthApi {
    #[allow(dead_code)]
    state: State,
}

#[tonic::async_trait]
impl AuthService for AuthApi {}

struct UserApi {
    #[allow(dead_code)]
    state: State,
}

#[tonic::async_trait]
impl UserService for UserApi {}
