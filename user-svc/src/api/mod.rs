//! The gRPC layer of user-svc: decodes requests into `input` types,
//! authorizes, calls [`Accounts`], and maps results to the wire.

mod auth;
mod oauth;
mod users;

use std::net::IpAddr;

use oms_proto::user::v1 as pb;
use oms_runtime::auth::Role;
use tonic::service::Routes;

use crate::accounts::Accounts;
use crate::model::User;

/// What the handlers share.
#[derive(Debug, Clone)]
pub(crate) struct State {
    /// The account rules.
    pub(crate) accounts: Accounts,
    /// The OpenID Provider.
    pub(crate) provider: crate::oidc::Provider,
    /// Whose `x-forwarded-for` is believed.
    pub(crate) proxies: TrustedProxies,
}

/// The proxies (the gateway) whose `x-forwarded-for` names the client.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrustedProxies {
    /// Their addresses or networks.
    pub(crate) peers: Vec<ipnet::IpNet>,
    /// What they must send beside the header, if anything.
    pub(crate) secret: Option<oms_config::SecretString>,
}

impl TrustedProxies {
    /// Whether `request` comes from a trusted proxy: its peer address is
    /// one, and it carries the proxy secret when one is configured
    /// (compared in constant time).
    fn vouch<T>(&self, request: &tonic::Request<T>, peer: IpAddr) -> bool {
        use oms_config::ExposeSecret as _;
        use subtle::ConstantTimeEq as _;
        if !self.peers.iter().any(|net| net.contains(&peer)) {
            return false;
        }
        let Some(secret) = &self.secret else {
            return true;
        };
        let given = request
            .metadata()
            .get(oms_config::PROXY_SECRET_HEADER)
            .map_or(&[][..], tonic::metadata::MetadataValue::as_bytes);
        bool::from(given.ct_eq(secret.expose_secret().as_bytes()))
    }
}

/// The routes of AuthService, UserService and OAuthService.
pub(crate) fn routes(state: State) -> Routes {
    Routes::new(pb::auth_service_server::AuthServiceServer::new(
        auth::AuthApi {
            state: state.clone(),
        },
    ))
    .add_service(pb::o_auth_service_server::OAuthServiceServer::new(
        oauth::OAuthApi {
            state: state.clone(),
        },
    ))
    .add_service(pb::user_service_server::UserServiceServer::new(
        users::UserApi { state },
    ))
}

fn to_proto_role(role: Role) -> pb::Role {
    match role {
        Role::Customer => pb::Role::Customer,
        Role::Admin => pb::Role::Admin,
    }
}

fn to_proto_user(user: User) -> pb::User {
    pb::User {
        id: user.id,
        email: user.email,
        display_name: user.display_name,
        role: to_proto_role(user.role).into(),
        create_time: Some(oms_core::time::to_timestamp(user.create_time)),
        state: if user.disabled {
            pb::user::State::Disabled
        } else {
            pb::user::State::Active
        }
        .into(),
    }
}

/// The client's address: the peer, or the last `x-forwarded-for` hop when
/// the peer is a trusted proxy (the gateway).
fn client_ip<T>(request: &tonic::Request<T>, proxies: &TrustedProxies) -> Option<IpAddr> {
    // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
    let peer = request.remote_addr()?.ip().to_canonical();
    if !proxies.vouch(request, peer) {
        return Some(peer);
    }
    request
        .metadata()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok())
        .or(Some(peer))
}
