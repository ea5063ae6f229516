//! The gateway: JSON/HTTP in front of the gRPC services, routed by the
//! `google.api.http` annotations of the contract. It holds no business
//! logic.
//!
//! - [`config`]: listen address and where each backend is.
//! - `routes` and `template`: the route table read from the descriptors.
//! - `transcode` and `codec`: JSON ⇄ protobuf, and calling any RPC.
//! - `proxy`: the one handler behind every route.
//! - `images`: product image uploads and downloads as raw bodies.
//! - `backends`: one lazily connected HTTP/2 channel per service.
//! - `openapi`: the OpenAPI document of those same routes.
//! - `oauth2`: the RFC 6749 token endpoint onto AuthService and
//!   OAuthService; `oidc`: the OpenID Provider's discovery, authorize,
//!   sign-in page, userinfo, revoke and logout endpoints.
//! - `console`: the operator console at `/console`, pages over the public
//!   API signed in through the OpenID Provider.
//! - `health`: `/healthz` (process up) and `/readyz` (every backend SERVING).
//! - `observe`: request metrics, the per-request log event, trace context;
//!   `/metrics` shows the process's metrics.
//! - `error`: gRPC codes to HTTP statuses and the AIP-193 JSON error body.
//! - [`transport`]: the accept loop, with its connection cap and timeouts;
//!   `parse_errors` gives hyper's own parse-error answers a JSON body.
//!
//! [`App`] is the gateway built (listener bound, routes loaded) and then
//! run until stopped; `oms`, the binary and the tests build it alike.

#![forbid(unsafe_code)]

mod backends;
mod codec;
pub mod config;
mod console;
mod cookies;
mod error;
mod health;
mod images;
mod limits;
mod oauth2;
mod observe;
mod oidc;
mod openapi;
mod parse_errors;
#[cfg(test)]
mod properties;
mod proxy;
mod routes;
mod template;
mod transcode;
pub mod transport;
mod wire_json;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler as _;
use axum::routing::get;
use tokio::net::TcpListener;

pub use config::{ADDR_VAR, Config};

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// Every contract route, most specific first.
    pub(crate) routes: Vec<routes::Route>,
    /// The backends' channels.
    pub(crate) backends: backends::Backends,
    /// The contract's descriptors, for JSON of typed messages.
    pub(crate) descriptors: prost_reflect::DescriptorPool,
    /// `OMS_PROXY_SECRET`, sent beside `x-forwarded-for`; marked sensitive
    /// so HTTP/2 never puts it in a header compression table.
    pub(crate) proxy_secret: Option<tonic::metadata::AsciiMetadataValue>,
    /// Whether clients reach the gateway over TLS: the provider's cookies
    /// are then `Secure`.
    pub(crate) public_tls: bool,
}

/// gateway as a binary: its commands and configuration, in the runtime's service shape
/// (`gateway --help`).
#[derive(Debug)]
pub struct Binary;

impl oms_runtime::service::Service for Binary {
    const NAME: &'static str = "gateway";
    const SUMMARY: &'static str =
        "JSON/HTTP front of the OMS gRPC services, routed by their google.api.http annotations";
    const PROBE: oms_runtime::healthcheck::Probe = oms_runtime::healthcheck::Probe::Http("/readyz");
    type Config = Config;
    type App = App;

    fn config(env: &oms_config::Env) -> Result<Config, oms_config::ConfigError> {
        Config::from_env(env)
    }
}

/// The gateway, built: its listener bound, its routes loaded from the
/// descriptors, its backend channels made (they connect lazily).
#[derive(Debug)]
pub struct App {
    listener: TcpListener,
    router: Router,
    connections: transport::ConnectionLimits,
    /// HTTPS, when `GATEWAY_TLS_CERT` is set.
    tls: Option<oms_runtime::tls::Tls>,
}

impl oms_runtime::app::Application for App {
    type Config = Config;
    const ADDR_VAR: &'static str = ADDR_VAR;

    fn listen_addr(config: &Config) -> std::net::SocketAddr {
        config.addr
    }

    async fn build_on(
        config: Config,
        listener: TcpListener,
    ) -> Result<Self, oms_runtime::StartupError> {
        let tls = match &config.public_tls {
            Some(public) => Some(oms_runtime::tls::Tls::public("gateway", public)?),
            None => None,
        };
        let router = router(&config)?;
        // Browsers that once reached us over HTTPS never try plaintext.
        let router = match tls {
            Some(_) => router.layer(axum::middleware::map_response(strict_transport)),
            None => router,
        };
        Ok(Self {
            listener,
            router,
            connections: config.connections,
            tls,
        })
    }

    fn addr(&self) -> std::net::SocketAddr {
        // A bound listener has an address; the fallback is never reached.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves HTTP until `shutdown` resolves, then lets in-flight requests
    /// finish.
    async fn run_until_stopped(
        self,
        shutdown: oms_runtime::app::Shutdown,
    ) -> Result<(), oms_runtime::StartupError> {
        oms_runtime::server::announce("gateway", "http", self.addr());
        transport::serve(
            self.listener,
            self.tls,
            self.router,
            self.connections,
            shutdown,
        )
        .await;
        tracing::info!(service = "gateway", "stopped");
        Ok(())
    }
}

/// `Strict-Transport-Security` on every answer over HTTPS: a year, as
/// browsers' preload lists ask; subdomains are the operator's to add.
const HSTS: &str = "max-age=31536000";

async fn strict_transport(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static(HSTS),
    );
    response
}

/// Every route, with the layers around them.
fn router(config: &Config) -> Result<Router, oms_runtime::StartupError> {
    oms_telemetry::metrics::install();
    let dial = oms_runtime::channel::Dial::load("gateway", config.resolve, &config.mesh_tls)?;
    let backends = backends::Backends::connect_lazy(config, &dial)
        .map_err(|e| oms_runtime::StartupError::setup("gateway backends", e))?;
    let (pool, routes) = routes::load(oms_proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| oms_runtime::StartupError::setup("gateway routes", e))?;
    // Serialised once: every request shares these bytes instead of
    // holding a copy of its own while a slow client reads it.
    let openapi = bytes::Bytes::from(openapi::document(&pool, &routes).to_string());
    let proxy_secret = match &config.proxy_secret {
        None => None,
        Some(secret) => {
            use oms_config::ExposeSecret as _;
            let mut value = tonic::metadata::AsciiMetadataValue::try_from(secret.expose_secret())
                .map_err(|_| {
                oms_runtime::StartupError::setup(
                    oms_config::PROXY_SECRET_VAR,
                    "must be printable ASCII",
                )
            })?;
            value.set_sensitive(true);
            Some(value)
        }
    };
    let gateway = Arc::new(Gateway {
        routes,
        backends,
        descriptors: pool.clone(),
        proxy_secret,
        public_tls: config.public_tls.is_some(),
    });
    // Each route declares, per method, the most body bytes it takes
    // (`limits::body_limit`): a declared length over it is refused before
    // anything is read, and the handler reads the body within it with its
    // own answers (413, 408, an abort).
    let none = || limits::body_limit(limits::NO_BODY);
    let json = || limits::body_limit(limits::JSON_MAX);
    let app = Router::new()
        .route("/healthz", get(health::healthz).layer(none()))
        .route("/readyz", get(health::readyz).layer(none()))
        .route("/metrics", get(oms_runtime::admin::handler).layer(none()))
        .route(
            "/oauth2/token",
            axum::routing::post(oauth2::token).layer(limits::body_limit(limits::TOKEN_FORM_MAX)),
        )
        .route(
            "/.well-known/openid-configuration",
            get(oidc::discovery).layer(none()),
        )
        .route("/oauth2/style.css", get(oidc::stylesheet).layer(none()))
        .route(
            "/oauth2/authorize",
            get(oidc::authorize)
                .post(oidc::authorize)
                .layer(limits::body_limit(oidc::FORM_MAX)),
        )
        .route(
            "/oauth2/login",
            axum::routing::post(oidc::login).layer(limits::body_limit(oidc::FORM_MAX)),
        )
        .route(
            "/oauth2/userinfo",
            get(oidc::userinfo)
                .post(oidc::userinfo)
                .layer(limits::body_limit(limits::TOKEN_FORM_MAX)),
        )
        .route(
            "/oauth2/revoke",
            axum::routing::post(oidc::revoke).layer(limits::body_limit(limits::TOKEN_FORM_MAX)),
        )
        .route(
            "/oauth2/logout",
            get(oidc::logout)
                .post(oidc::logout)
                .layer(limits::body_limit(oidc::FORM_MAX)),
        )
        .route(
            "/openapi.json",
            get(move || {
                let document = openapi.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        document,
                    )
                }
            })
            .layer(none()),
        )
        .merge(console::routes())
        // Image bytes are not JSON: their routes stream raw bodies; other
        // methods on the same paths are contract routes.
        .route(
            "/v1/products/{product_id}/images",
            axum::routing::put(images::upload.layer(limits::body_limit(images::UPLOAD_MAX)))
                .fallback(proxy::handle.layer(json())),
        )
        .route(
            "/v1/products/{product_id}/images/{image_id}",
            get(images::download.layer(none())).fallback(proxy::handle.layer(json())),
        )
        .route(
            "/v1/products/{product_id}/images/{image_id}/thumbnail",
            get(images::thumbnail.layer(none())).fallback(images::thumbnail_other_methods),
        )
        .fallback(proxy::handle.layer(json()))
        // Handlers read raw bodies themselves; axum's own extractor limit
        // would be a second, silent one.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(limits::refuse_large_headers))
        .with_state(gateway);
    let app = match cors(&config.cors_allowed_origins) {
        Some(layer) => app.layer(layer),
        None => app,
    };
    // Outermost, so CORS preflights and refusals are measured too.
    Ok(app.layer(axum::middleware::from_fn(observe::observe)))
}

/// The CORS layer for the configured origins; `None` (no CORS headers at
/// all) unless some are configured.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{HeaderName, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| o.parse().ok()))
    };
    let header = HeaderName::from_static;
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header("authorization"),
                header("content-type"),
                header("idempotency-key"),
                header("x-request-id"),
                header("traceparent"),
                header("grpc-timeout"),
            ])
            .expose_headers([header("x-request-id"), header("retry-after")])
            .max_age(std::time::Duration::from_secs(600)),
    )
}
