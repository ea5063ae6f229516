//! What every scenario sets up alike: signed-in customers and an admin,
//! and products with stock, over the mesh's own gRPC API.

use oms_proto::common::v1::Money;
use oms_proto::product::v1::{self as product_pb, product_service_client::ProductServiceClient};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::BenchError;

/// Every bench customer's password.
pub(crate) const CUSTOMER_PASSWORD: &str = "bench customer password";

/// `Bearer <token>` as a header value.
pub(crate) fn bearer(token: &str) -> Result<MetadataValue<Ascii>, BenchError> {
    format!("Bearer {token}")
        .parse()
        .map_err(|_| BenchError::Setup("a token is not a valid header value".into()))
}

/// `message` sent as the holder of `token`.
pub(crate) fn authed<T>(message: T, token: &MetadataValue<Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", token.clone());
    request
}

/// Signs `email` in: its access token.
pub(crate) async fn login(
    users: &Channel,
    email: &str,
    password: &str,
) -> Result<String, BenchError> {
    let session = testkit::users::session(users.clone(), email, password)
        .await
        .map_err(BenchError::call("login"))?;
    Ok(session.token)
}

/// Registers a customer and logs in: (user id, access token).
pub(crate) async fn customer(users: &Channel, email: &str) -> Result<(String, String), BenchError> {
    testkit::users::register(users.clone(), email, CUSTOMER_PASSWORD, "Bench customer")
        .await
        .map_err(BenchError::call("register"))?;
    let session = testkit::users::session(users.clone(), email, CUSTOMER_PASSWORD)
        .await
        .map_err(BenchError::call("login"))?;
    Ok((session.user_id, session.token))
}

/// `count` products named `<label> product <i>` (SKU `<LABEL>-<i>`), each
/// with `stock` units, created by `admin`; their IDs in order.
pub(crate) async fn create_products(
    catalogue: &mut ProductServiceClient<Channel>,
    admin: &MetadataValue<Ascii>,
    label: &str,
    count: usize,
    stock: i64,
) -> Result<Vec<String>, BenchError> {
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let product = product_pb::Product {
            sku: format!("{}-{i}", label.to_uppercase()),
            name: format!("{label} product {i}"),
            price: Some(Money {
                currency_code: "EUR".to_owned(),
                amount_minor: 1000 + i64::try_from(i % 1000).unwrap_or(0),
            }),
            stock_on_hand: stock,
            ..Default::default()
        };
        let created = catalogue
            .create_product(authed(
                product_pb::CreateProductRequest {
                    product: Some(product),
                },
                admin,
            ))
            .await
            .map_err(BenchError::call("create product"))?
            .into_inner()
            .product
            .ok_or_else(|| {
                BenchError::Setup("CreateProduct answered without the product".into())
            })?;
        ids.push(created.id);
    }
    Ok(ids)
}
