//! The gateway's ceiling: a bare forwarder that turns `GET
//! /v1/products/{id}` into the same GetProduct call over one shared
//! channel and writes the answer out in a fixed JSON shape. It parses no
//! body, matches one route, checks no headers, keeps no metrics and logs
//! nothing, on the same server stack as the gateway (axum over hyper,
//! HTTP/1.1 and h2c), in a process of its own. What the gateway costs
//! beyond it is the gateway's own work: routing from the annotations,
//! transcoding, limits, auth forwarding, its access line and metrics.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use oms_proto::product::v1::{GetProductRequest, product_service_client::ProductServiceClient};
use tonic::transport::Channel;

use crate::BenchError;

/// Serves the forwarder on `addr` in front of product-svc at `product`
/// until killed, printing the bound address on stdout first.
pub async fn serve(addr: SocketAddr, product: SocketAddr) -> Result<(), BenchError> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{product}"))
        .map_err(|e| BenchError::Setup(format!("forwarder: {e}")))?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .connect_lazy();
    let app = axum::Router::new()
        .route("/v1/products/{id}", axum::routing::get(get_product))
        .with_state(ProductServiceClient::new(channel));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| BenchError::Setup(format!("forwarder: cannot bind {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| BenchError::Setup(format!("forwarder: {e}")))?;
    println!("{bound}");
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .await
        .map_err(|e| BenchError::Setup(format!("forwarder: {e}")))
}

async fn get_product(
    State(mut products): State<ProductServiceClient<Channel>>,
    Path(id): Path<String>,
) -> Response {
    let product = match products
        .get_product(GetProductRequest { product_id: id })
        .await
    {
        Ok(reply) => reply.into_inner().product.unwrap_or_default(),
        Err(status) => {
            return (StatusCode::BAD_GATEWAY, status.message().to_owned()).into_response();
        }
    };
    let price = product.price.unwrap_or_default();
    let time = |t: Option<prost_types::Timestamp>| {
        t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    // The fields the gateway writes for a product, in proto3's JSON form.
    let body = serde_json::json!({
        "product": {
            "id": product.id,
            "sku": product.sku,
            "name": product.name,
            "description": product.description,
            "price": {
                "currencyCode": price.currency_code,
                "amountMinor": price.amount_minor.to_string(),
            },
            "stockOnHand": product.stock_on_hand.to_string(),
            "stockReserved": product.stock_reserved.to_string(),
            "stockAvailable": product.stock_available.to_string(),
            "archived": product.archived,
            "createTime": time(product.create_time),
            "updateTime": time(product.update_time),
            "images": [],
        }
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
