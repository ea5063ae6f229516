//! order-svc over real gRPC on 127.0.0.1:0, on SQLite and MariaDB.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use kit::test_support::{TestDb, assert_grpc_basics, spawn};
use oms_proto::order::v1::{GetOrderRequest, order_service_client::OrderServiceClient};

kit::test_on_each_db!(starts_migrated_with_health_and_reflection);

fn config(db: &TestDb) -> order_svc::Config {
    let unused: std::net::SocketAddr = "127.0.0.1:9".parse().expect("literal address");
    order_svc::Config {
        addr: "127.0.0.1:0".parse().expect("literal address"),
        database_url: db.url().clone(),
        user_svc_addr: unused,
        product_svc_addr: unused,
        jwt_issuer: "oms-user-svc".to_owned(),
        client_id: "order-svc".to_owned(),
        client_secret: Some(order_svc::config::ClientSecret("unused".to_owned())),
        call_timeout: std::time::Duration::from_secs(1),
        recovery_interval: std::time::Duration::from_secs(60),
        recovery_age: std::time::Duration::from_secs(60),
        faults: Default::default(),
    }
}

async fn starts_migrated_with_health_and_reflection(db: TestDb) {
    let config = config(&db);
    let svc = spawn(|listener, shutdown| order_svc::serve(config, listener, shutdown)).await;
    assert_grpc_basics(svc.channel(), order_svc::SERVICE_INFO).await;

    let answer = OrderServiceClient::new(svc.channel())
        .get_order(GetOrderRequest::default())
        .await;
    assert_eq!(
        answer.err().map(|s| s.code()),
        Some(tonic::Code::Unimplemented)
    );

    svc.stop().await.expect("clean shutdown");
    kit::test_support::assert_tables(db.url(), &["orders", "order_lines"]).await;
}
