//! product-svc over real gRPC on 127.0.0.1:0, on SQLite and MariaDB.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use kit::test_support::{TestDb, assert_grpc_basics, spawn};
use oms_proto::product::v1::{GetProductRequest, product_service_client::ProductServiceClient};

kit::test_on_each_db!(starts_migrated_with_health_and_reflection);

fn config(db: &TestDb) -> product_svc::Config {
    product_svc::Config {
        addr: "127.0.0.1:0".parse().expect("literal address"),
        database_url: db.url().clone(),
        redis_url: kit::test_support::redis_url(),
        redis_key_prefix: format!("{}:", kit::test_support::unique_name("oms_test")),
        user_svc_addr: "127.0.0.1:9".parse().expect("literal address"),
        jwt_issuer: "oms-user-svc".to_owned(),
    }
}

async fn starts_migrated_with_health_and_reflection(db: TestDb) {
    let config = config(&db);
    let svc = spawn(|listener, shutdown| product_svc::serve(config, listener, shutdown)).await;
    assert_grpc_basics(svc.channel(), product_svc::SERVICE_INFO).await;

    let answer = ProductServiceClient::new(svc.channel())
        .get_product(GetProductRequest::default())
        .await;
    assert_eq!(
        answer.err().map(|s| s.code()),
        Some(tonic::Code::Unimplemented)
    );

    svc.stop().await.expect("clean shutdown");
    kit::test_support::assert_tables(
        db.url(),
        &[
            "products",
            "price_history",
            "stock_adjustments",
            "reservations",
            "reservation_lines",
        ],
    )
    .await;
}
