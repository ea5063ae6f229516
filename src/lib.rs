//! `oms`: the whole mesh in one process — user-svc, product-svc, order-svc
//! and the gateway, each on its own port, each with its own SQLite file
//! under `OMS_DATA_DIR`. The embedded default a newcomer runs first; in
//! production each service runs as its own binary instead.
//!
//! [`Mesh::build`] opens all four listeners first, so a taken port fails
//! before anything starts and names the variable to change, then builds
//! each part's `App` as its own binary would; [`Mesh::run_until_stopped`]
//! serves until shutdown, and stops everything if any one part fails.

#![forbid(unsafe_code)]

use std::future::Future;
use std::net::SocketAddr;

use oms_config::Env;
use oms_runtime::StartupError;
use oms_runtime::app::Application;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// All four parts, built and ready to serve.
#[derive(Debug)]
pub struct Mesh {
    user: user_svc::App,
    product: product_svc::App,
    order: order_svc::App,
    gateway: gateway::App,
}

/// Where each part actually listens.
#[derive(Debug, Clone, Copy)]
pub struct MeshAddrs {
    /// user-svc (gRPC).
    pub user: SocketAddr,
    /// product-svc (gRPC).
    pub product: SocketAddr,
    /// order-svc (gRPC).
    pub order: SocketAddr,
    /// The gateway (HTTP).
    pub gateway: SocketAddr,
}

/// Reads every part's configuration as [`Mesh::build`] does, without
/// binding anything (for `oms env-vars` and `--help`).
pub fn read_config(env: &Env) -> Result<(), oms_config::ConfigError> {
    user_svc::Config::from_env(env, "USER_SVC_DATABASE_URL")?;
    product_svc::Config::from_env(env, "PRODUCT_SVC_DATABASE_URL")?;
    order_svc::Config::from_env(env, "ORDER_SVC_DATABASE_URL")?;
    gateway::Config::from_env(env)?;
    Ok(())
}

impl Mesh {
    /// Reads every part's configuration (`<SVC>_DATABASE_URL` per service,
    /// SQLite under `OMS_DATA_DIR` by default), binds every listener, then
    /// builds each part on its listener.
    pub async fn build(env: &Env) -> Result<Self, StartupError> {
        let mut user = user_svc::Config::from_env(env, "USER_SVC_DATABASE_URL")?;
        let mut product = product_svc::Config::from_env(env, "PRODUCT_SVC_DATABASE_URL")?;
        let mut order = order_svc::Config::from_env(env, "ORDER_SVC_DATABASE_URL")?;
        let mut gateway = gateway::Config::from_env(env)?;

        // The gateway reaches user-svc over loopback in this one process:
        // user-svc believes its x-forwarded-for, so per-address login
        // limits see the client behind it (unless the operator said who).
        // Loopback alone would vouch for any local process (or an SSRF)
        // naming a new address per call: only a caller holding this
        // process's secret, which the gateway alone is given, is believed.
        if user.trusted_proxies.is_empty() {
            user.trusted_proxies = vec![
                std::net::IpAddr::from([127, 0, 0, 1]).into(),
                std::net::IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]).into(),
            ];
        }
        if user.proxy_secret.is_none() {
            let secret: oms_config::SecretString = user_svc::clients::random_secret()
                .map_err(|e| StartupError::setup("the gateway's proxy secret", e))?
                .into();
            user.proxy_secret = Some(secret.clone());
            gateway.proxy_secret = Some(secret);
        }

        // Zero configuration: order-svc and product-svc get client
        // credentials that user-svc knows, made up fresh for this process.
        if order.client_secret.is_none() {
            order.client_secret = Some(made_up_client(
                &mut user,
                &order.client_id,
                &["inventory:write", "products:read", "revocations:read"],
            )?);
        }
        if product.client_secret.is_none() {
            product.client_secret = Some(made_up_client(
                &mut user,
                &product.client_id,
                &["revocations:read"],
            )?);
        }

        // Without a broker, events travel on one in-process bus: product-svc
        // consumes what order-svc publishes.
        if let events::Broker::InProcess(bus) = &product.broker {
            order.broker = events::Broker::InProcess(bus.clone());
        }

        let user_listener = oms_runtime::server::bind(user.base.addr, user_svc::ADDR_VAR).await?;
        let product_listener =
            oms_runtime::server::bind(product.base.addr, product_svc::ADDR_VAR).await?;
        let order_listener =
            oms_runtime::server::bind(order.base.addr, order_svc::ADDR_VAR).await?;
        let gateway_listener = oms_runtime::server::bind(gateway.addr, gateway::ADDR_VAR).await?;

        // Wire the parts to the ports they actually got, so `:0` works.
        user.base.addr = local_addr(&user_listener)?;
        product.base.addr = local_addr(&product_listener)?;
        order.base.addr = local_addr(&order_listener)?;
        gateway.addr = local_addr(&gateway_listener)?;
        // Parts dial each other over loopback, even when they listen on
        // every interface: the one certificate of `oms` names 127.0.0.1.
        let (user_at, product_at, order_at) = (
            loopback(user.base.addr),
            loopback(product.base.addr),
            loopback(order.base.addr),
        );
        order.user_svc_addr = user_at.into();
        product.user_svc_addr = user_at.into();
        order.product_svc_addr = product_at.into();
        gateway.user_svc_addr = user_at.into();
        gateway.product_svc_addr = product_at.into();
        gateway.order_svc_addr = order_at.into();
        // The OpenID Provider is served by the gateway: unless told its
        // public URL, it is the gateway's own port on this machine. The
        // console (served by the gateway too) signs users in as a public
        // client there.
        let scheme = if gateway.public_tls.is_some() {
            "https"
        } else {
            "http"
        };
        if env.get(user_svc::config::OIDC_ISSUER_VAR)?.is_none() {
            user.oidc.issuer = format!("{scheme}://localhost:{}", gateway.addr.port());
        }
        register_console(&mut user, scheme, gateway.addr.port());

        Ok(Self {
            user: build_part("user-svc", user, user_listener).await?,
            product: build_part("product-svc", product, product_listener).await?,
            order: build_part("order-svc", order, order_listener).await?,
            gateway: build_part("gateway", gateway, gateway_listener).await?,
        })
    }

    /// Where each part listens.
    pub fn addrs(&self) -> MeshAddrs {
        MeshAddrs {
            user: self.user.addr(),
            product: self.product.addr(),
            order: self.order.addr(),
            gateway: self.gateway.addr(),
        }
    }

    /// Serves all four until `shutdown` resolves, then stops them all
    /// gracefully. If one part fails, the others are stopped and its error
    /// is returned.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), StartupError> {
        let (stop, stopping) = watch::channel(false);
        let mut parts: JoinSet<(&'static str, Result<(), StartupError>)> = JoinSet::new();
        run_part(&mut parts, "user-svc", self.user, &stopping);
        run_part(&mut parts, "product-svc", self.product, &stopping);
        run_part(&mut parts, "order-svc", self.order, &stopping);
        run_part(&mut parts, "gateway", self.gateway, &stopping);

        let mut shutdown = std::pin::pin!(shutdown);
        let mut first_error = None;
        loop {
            tokio::select! {
                () = &mut shutdown, if !*stop.borrow() => {
                    stop.send_replace(true);
                }
                joined = parts.join_next() => match joined {
                    None => break,
                    Some(Ok((_, Ok(())))) => {
                        stop.send_replace(true);
                    }
                    Some(Ok((name, Err(e)))) => {
                        tracing::error!(part = name, error = %e, "stopped with an error; stopping the mesh");
                        first_error.get_or_insert(in_part(name, e));
                        stop.send_replace(true);
                    }
                    Some(Err(e)) => {
                        first_error.get_or_insert(StartupError::setup("a mesh task", e));
                        stop.send_replace(true);
                    }
                },
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A part's failure, saying which part: a bad value stays a configuration
/// error (exit 2, naming the variable).
fn in_part(part: &'static str, e: StartupError) -> StartupError {
    match e {
        e @ StartupError::Config(_) => e,
        other => StartupError::setup(part, other),
    }
}

/// Builds one part on its listener.
async fn build_part<A: Application>(
    part: &'static str,
    config: A::Config,
    listener: TcpListener,
) -> Result<A, StartupError> {
    A::build_on(config, listener)
        .await
        .map_err(|e| in_part(part, e))
}

/// Runs `app` in `parts` until `stopping` says stop.
fn run_part<A: Application>(
    parts: &mut JoinSet<(&'static str, Result<(), StartupError>)>,
    name: &'static str,
    app: A,
    stopping: &watch::Receiver<bool>,
) {
    let mut stopping = stopping.clone();
    let stopped = Box::pin(async move {
        // An Err means the sender is gone, which also means stop.
        let _ = stopping.wait_for(|stop| *stop).await;
    });
    parts.spawn(async move { (name, app.run_until_stopped(stopped).await) });
}

/// A client of user-svc with a secret made up for this process: user-svc
/// learns its hash, the caller gets the secret.
fn made_up_client(
    user: &mut user_svc::Config,
    client_id: &str,
    scopes: &[&str],
) -> Result<oms_config::SecretString, StartupError> {
    let secret = user_svc::clients::random_secret()
        .map_err(|e| StartupError::setup(format!("{client_id}'s client secret"), e))?;
    user.service_clients
        .push(user_svc::clients::ServiceClient::new(
            client_id, &secret, scopes,
        ));
    Ok(secret.into())
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, StartupError> {
    listener
        .local_addr()
        .map_err(|e| StartupError::setup("a listener's address", e))
}

/// Where a part listening on `addr` is reached from this process: its
/// own address, or loopback when it listens on every interface.
fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}

/// The client id the console signs in as.
pub const CONSOLE_CLIENT_ID: &str = "console";

/// Registers the console as a public client redirected to
/// `<scheme>://localhost:<port>/console/callback` (and `127.0.0.1`), and
/// back to `/console/` after logout, unless `OMS_OAUTH_CLIENTS` registers
/// a `console` of its own.
fn register_console(user: &mut user_svc::Config, scheme: &str, gateway_port: u16) {
    if user
        .oauth_clients
        .iter()
        .any(|c| c.client_id == CONSOLE_CLIENT_ID)
    {
        return;
    }
    let at = |path: &str| -> Vec<String> {
        ["localhost", "127.0.0.1"]
            .iter()
            .map(|host| format!("{scheme}://{host}:{gateway_port}{path}"))
            .collect()
    };
    let mut console = user_svc::oauth_clients::OAuthClient::public(
        CONSOLE_CLIENT_ID,
        &at("/console/callback"),
        user_svc::oauth_clients::OIDC_SCOPES,
    );
    console.post_logout_redirect_uris = at("/console/");
    user.oauth_clients.push(console);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_config(pairs: &[(&str, &str)]) -> user_svc::Config {
        let mut all = vec![("OMS_DATA_DIR", "/tmp/oms-console-test")];
        all.extend_from_slice(pairs);
        user_svc::Config::from_env(&Env::from_pairs(all.iter().copied()), "DATABASE_URL")
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_console_is_registered_at_the_gateways_port_unless_configured() {
        let mut user = user_config(&[]);
        register_console(&mut user, "http", 18080);
        let console = user
            .oauth_clients
            .iter()
            .find(|c| c.client_id == CONSOLE_CLIENT_ID)
            .unwrap_or_else(|| panic!("no console client"));
        assert_eq!(
            console.client_type,
            user_svc::oauth_clients::ClientType::Public
        );
        assert!(console.redirects_to("http://localhost:18080/console/callback"));
        assert!(console.redirects_to("http://127.0.0.1:18080/console/callback"));
        assert!(!console.redirects_to("http://localhost:8080/console/callback"));

        let own = r#"[{"client_id":"console","type":"public","redirect_uris":["https://oms.example.com/console/callback"],"scopes":["openid"]}]"#;
        let mut user = user_config(&[("OMS_OAUTH_CLIENTS", own)]);
        register_console(&mut user, "http", 18080);
        assert_eq!(user.oauth_clients.len(), 1);
        assert!(user.oauth_clients[0].redirects_to("https://oms.example.com/console/callback"));
    }

    #[test]
    fn a_bad_client_stops_user_svc_naming_the_variable() {
        let wild = r#"[{"client_id":"console","type":"public","redirect_uris":["https://*.example.com/cb"],"scopes":["openid"]}]"#;
        let env = Env::from_pairs([
            ("OMS_DATA_DIR", "/tmp/oms-console-test"),
            ("OMS_OAUTH_CLIENTS", wild),
        ]);
        match user_svc::Config::from_env(&env, "DATABASE_URL") {
            Ok(_) => panic!("a wildcard redirect URI was accepted"),
            Err(e) => {
                assert_eq!(e.var, "OMS_OAUTH_CLIENTS");
                assert!(e.reason.contains("wildcard"), "{e}");
            }
        }
    }
}
