//! The operator console at `/console`: server-rendered pages over the
//! public API, with the signed-in user's own token on every call, so it
//! adds no privileged path; its stylesheet and one small script are
//! compiled into the binary (no npm at build or run time).
//!
//! - [`session`]: sign-in as the `console` OpenID Connect client, tokens
//!   in an `HttpOnly` cookie, refresh, sign-out.
//! - [`view`]: the layout and its helpers.
//! - [`orders`]: the orders pages and their live feed.
//! - [`products`]: products, their stock, price chart and images.
//! - [`admin`]: users and health.
//! - [`chart`]: server-drawn SVG charts.

mod admin;
mod chart;
mod orders;
mod products;
pub(crate) mod session;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::Gateway;
use crate::limits;
use session::Viewer;

const STYLESHEET: &str = include_str!("../../console/console.css");
const SCRIPT: &str = include_str!("../../console/console.js");

/// The largest form a console page posts.
const FORM_MAX: usize = 16 * 1024;

/// The console's routes.
pub(crate) fn routes() -> Router<Arc<Gateway>> {
    let none = || limits::body_limit(limits::NO_BODY);
    let form = || limits::body_limit(FORM_MAX);
    Router::new()
        .route(
            "/console",
            get(|| async { view::redirect("/console/") }).layer(none()),
        )
        .route("/console/", get(home).layer(none()))
        .route("/console/assets/console.css", get(stylesheet).layer(none()))
        .route("/console/assets/console.js", get(script).layer(none()))
        .route("/console/login", get(login).layer(none()))
        .route("/console/callback", get(callback).layer(none()))
        .route("/console/logout", post(logout).layer(form()))
        .route("/console/orders", get(orders_list).layer(none()))
        .route("/console/orders/live", get(orders_live).layer(none()))
        .route("/console/orders/{id}", get(order_detail).layer(none()))
        .route(
            "/console/orders/{id}/cancel",
            post(order_cancel).layer(form()),
        )
        .route("/console/products", get(products_list).layer(none()))
        .route("/console/products/{id}", get(product_detail).layer(none()))
        .route(
            "/console/products/{id}/edit",
            post(product_edit).layer(form()),
        )
        .route(
            "/console/products/{id}/stock",
            post(product_stock).layer(form()),
        )
        .route(
            "/console/products/{id}/images",
            axum::routing::put(product_upload).layer(limits::body_limit(crate::images::UPLOAD_MAX)),
        )
        .route(
            "/console/products/{id}/images/{image}/delete",
            post(product_image_delete).layer(form()),
        )
        .route("/console/users", get(users).layer(none()))
        .route("/console/users/{id}/role", post(user_role).layer(form()))
        .route("/console/health", get(health).layer(none()))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// `/console/`: the orders for a signed-in viewer, else a page to sign in
/// from (a sign-out ends here, so it never sends the browser away itself).
async fn home(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    if crate::cookies::read(&headers, "oms_console").is_some()
        && let Ok(viewer) = Viewer::of(&gateway, &headers, &uri).await
    {
        return viewer.finish(view::redirect("/console/orders"));
    }
    view::page(
        StatusCode::OK,
        None,
        "",
        "OMS console",
        r#"<p>Orders, stock and prices of the shop, for the people who run it.</p><p><a class="button" href="/console/login">Sign in</a></p>"#,
    )
}

async fn login(State(gateway): State<Arc<Gateway>>, uri: Uri) -> Response {
    session::login(&gateway, &uri).await
}

async fn callback(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    session::callback(&gateway, &headers, &uri).await
}

/// A posted console form, read within its limit; `None` (and the answer)
/// when it is not this browser's.
async fn posted(
    viewer: &Viewer,
    headers: &HeaderMap,
    body: Body,
    route: &'static str,
    peer: SocketAddr,
) -> Result<Vec<(String, String)>, Response> {
    let body = limits::read_body(body, FORM_MAX, route, peer).await?;
    let form = crate::oauth2::form(&body)
        .map_err(|e| view::failure(&tonic::Status::invalid_argument(e)))?;
    if !viewer.form_is_ours(headers, crate::oauth2::param(&form, "csrf")) {
        tracing::warn!(peer = %peer.ip(), route, "console form refused: not from this site");
        metrics::counter!("oms_oauth_refusals_total", "reason" => "csrf").increment(1);
        return Err(view::page(
            StatusCode::FORBIDDEN,
            Some(viewer),
            "",
            "Refused",
            r#"<p class="error" role="alert">This form did not come from the console, or it expired. Go back and try again.</p>"#,
        ));
    }
    Ok(form)
}

/// A console form post, taken whole from the request (the body last): the
/// handler names only what it adds (its path) and what it does.
struct Posted {
    gateway: Arc<Gateway>,
    peer: SocketAddr,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
}

impl axum::extract::FromRequest<Arc<Gateway>> for Posted {
    type Rejection = std::convert::Infallible;

    async fn from_request(
        request: axum::extract::Request,
        gateway: &Arc<Gateway>,
    ) -> Result<Self, Self::Rejection> {
        // The accept loop always sets the peer; a request without one is
        // counted as from nowhere.
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
        let (parts, body) = request.into_parts();
        Ok(Self {
            gateway: gateway.clone(),
            peer,
            headers: parts.headers,
            uri: parts.uri,
            body,
        })
    }
}

impl Posted {
    /// The signed-in viewer (or the way to sign in), their form read and
    /// checked as theirs (else refused), then `act`.
    async fn then<F, Fut>(self, route: &'static str, act: F) -> Response
    where
        F: FnOnce(Arc<Gateway>, Viewer, Vec<(String, String)>) -> Fut,
        Fut: std::future::Future<Output = Response>,
    {
        let viewer = match Viewer::of(&self.gateway, &self.headers, &self.uri).await {
            Ok(viewer) => viewer,
            Err(login) => return login,
        };
        match posted(&viewer, &self.headers, self.body, route, self.peer).await {
            Ok(form) => act(self.gateway, viewer, form).await,
            Err(refused) => refused,
        }
    }
}

async fn logout(post: Posted) -> Response {
    if crate::cookies::read(&post.headers, "oms_console").is_none() {
        return view::redirect("/console/");
    }
    post.then("/console/logout", |gateway, viewer, _| async move {
        session::logout(&gateway, &viewer).await
    })
    .await
}

async fn orders_list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match Viewer::of(&gateway, &headers, &uri).await {
        Ok(viewer) => orders::list(&gateway, &viewer, &uri).await,
        Err(login) => login,
    }
}

async fn orders_live(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match Viewer::of(&gateway, &headers, &uri).await {
        Ok(viewer) => orders::live(&gateway, &viewer, &uri).await,
        // A feed is not a page: no redirect to sign in.
        Err(_) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn order_detail(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match Viewer::of(&gateway, &headers, &uri).await {
        Ok(viewer) => {
            orders::detail(&gateway, &viewer, &id, view::done_notice(&uri).as_deref()).await
        }
        Err(login) => login,
    }
}

async fn order_cancel(Path(id): Path<String>, post: Posted) -> Response {
    post.then(
        "/console/orders/{id}/cancel",
        |gateway, viewer, form| async move { orders::cancel(&gateway, &viewer, &id, &form).await },
    )
    .await
}

/// A page for the signed-in viewer, or the way to sign in.
macro_rules! viewer_or_login {
    ($gateway:expr, $headers:expr, $uri:expr) => {
        match Viewer::of(&$gateway, &$headers, &$uri).await {
            Ok(viewer) => viewer,
            Err(login) => return login,
        }
    };
}

async fn products_list(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let viewer = viewer_or_login!(gateway, headers, uri);
    products::list(&gateway, &viewer, &uri).await
}

async fn product_detail(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let viewer = viewer_or_login!(gateway, headers, uri);
    products::detail(&gateway, &viewer, &id, view::done_notice(&uri).as_deref()).await
}

async fn product_edit(Path(id): Path<String>, post: Posted) -> Response {
    post.then(
        "/console/products/{id}/edit",
        |gateway, viewer, form| async move { products::edit(&gateway, &viewer, &id, &form).await },
    )
    .await
}

async fn product_stock(Path(id): Path<String>, post: Posted) -> Response {
    post.then("/console/products/{id}/stock", |gateway, viewer, form| async move {
        products::adjust(&gateway, &viewer, &id, &form).await
    })
    .await
}

async fn product_image_delete(Path((id, image)): Path<(String, String)>, post: Posted) -> Response {
    let route = "/console/products/{id}/images/{image}/delete";
    post.then(route, |gateway, viewer, _| async move {
        products::remove_image(&gateway, &viewer, &id, &image).await
    })
    .await
}

/// `PUT /console/products/{id}/images`: the script's upload (with its
/// progress), as the API's own upload route with the viewer's token; the
/// form token comes as `x-csrf-token`.
async fn product_upload(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    let Ok(viewer) = Viewer::of(&gateway, &headers, &uri).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if !viewer.form_is_ours(&headers, token) {
        tracing::warn!(peer = %peer.ip(), "console upload refused: not from this site");
        metrics::counter!("oms_oauth_refusals_total", "reason" => "csrf").increment(1);
        return StatusCode::FORBIDDEN.into_response();
    }
    let mut forwarded = headers.clone();
    forwarded.remove(header::COOKIE);
    if let Some(bearer) = viewer.bearer() {
        forwarded.insert(header::AUTHORIZATION, bearer);
    }
    let response = crate::images::upload(
        State(gateway.clone()),
        ConnectInfo(peer),
        Path(id),
        axum::extract::Query(query),
        forwarded,
        body,
    )
    .await;
    viewer.finish(response)
}

async fn users(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = viewer_or_login!(gateway, headers, uri);
    let done = view::done_notice(&uri).map(Ok);
    admin::users(&gateway, &viewer, &uri, done).await
}

async fn user_role(Path(id): Path<String>, post: Posted) -> Response {
    let page = post.uri.clone();
    post.then(
        "/console/users/{id}/role",
        |gateway, viewer, form| async move {
            admin::set_role(&gateway, &viewer, &page, &id, &form).await
        },
    )
    .await
}

async fn health(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, uri: Uri) -> Response {
    let viewer = viewer_or_login!(gateway, headers, uri);
    admin::health(&gateway, &viewer).await
}
