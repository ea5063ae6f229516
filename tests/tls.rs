//! The one-process `oms` with TLS on every link: one certificate (for
//! `localhost` and `127.0.0.1`) on all three gRPC listeners with client
//! certificates required, every internal channel verifying and presenting
//! it, and the gateway serving HTTPS. A customer's whole flow goes through
//! it; a client without a certificate, or in plaintext, gets nothing.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use oms_config::Env;
use testkit::http::send_tls;
use testkit::{TestCa, eventually, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_orders_through_https_with_mutual_tls_on_every_internal_link() {
    oms_telemetry::init_for_tests();
    let data_dir = std::env::temp_dir().join(unique_name("oms_tls"));
    let ca = TestCa::new("oms development CA");
    let cert = ca.issue("oms", &["localhost", "127.0.0.1"]);
    let mut pairs: Vec<(String, String)> = [
        ("USER_SVC_ADDR", "127.0.0.1:0"),
        ("PRODUCT_SVC_ADDR", "127.0.0.1:0"),
        ("ORDER_SVC_ADDR", "127.0.0.1:0"),
        ("GATEWAY_ADDR", "127.0.0.1:0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    pairs.push(("OMS_DATA_DIR".to_owned(), data_dir.display().to_string()));
    pairs.extend(ca.mesh_env(&cert));
    pairs.push((
        "GATEWAY_TLS_CERT".to_owned(),
        cert.cert.display().to_string(),
    ));
    pairs.push(("GATEWAY_TLS_KEY".to_owned(), cert.key.display().to_string()));
    pairs.extend(testkit::users::accounts_env(&[]));
    let mesh = oms::Mesh::build(&Env::from_pairs(pairs)).await.unwrap();
    let addrs = mesh.addrs();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(mesh.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let https = ca.https_client();
    let gw = addrs.gateway;
    // Ready: the gateway reached all three services over mutual TLS.
    eventually(Duration::from_secs(20), "/readyz over HTTPS", || {
        let https = https.clone();
        async move {
            let reply = send_tls(gw, https, "GET", "/readyz", &[], None).await;
            (reply.status == 200).then_some(reply)
        }
    })
    .await;
    let reply = send_tls(gw, https.clone(), "GET", "/healthz", &[], None).await;
    assert_eq!(
        reply.header("strict-transport-security"),
        Some("max-age=31536000"),
        "HSTS on every answer over HTTPS"
    );

    let login = |email: &'static str, password: &'static str| {
        let https = https.clone();
        async move {
            let body = serde_json::json!({"email": email, "password": password}).to_string();
            let reply = send_tls(gw, https, "POST", "/v1/auth/login", &[], Some(&body)).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            format!("Bearer {}", reply.json["accessToken"].as_str().unwrap())
        }
    };
    let admin = login(testkit::users::ADMIN_EMAIL, testkit::users::ADMIN_PASSWORD).await;
    let product = send_tls(
        gw,
        https.clone(),
        "POST",
        "/v1/products",
        &[("authorization", &admin)],
        Some(r#"{"sku":"TLS-1","name":"Sealed mug","price":{"currencyCode":"EUR","amountMinor":"900"},"stockOnHand":"3"}"#),
    )
    .await;
    assert_eq!(product.status, 200, "{}", product.text);
    let product_id = product.json["product"]["id"].as_str().unwrap().to_owned();
    let registered = send_tls(
        gw,
        https.clone(),
        "POST",
        "/v1/auth/register",
        &[],
        Some(r#"{"email":"sealed@example.com","password":"a sealed password","displayName":"Sealed"}"#),
    )
    .await;
    assert_eq!(registered.status, 200, "{}", registered.text);
    let customer = login("sealed@example.com", "a sealed password").await;
    // order-svc reserves through product-svc with a service token from
    // user-svc: both links over mutual TLS.
    let body = serde_json::json!({
        "lines": [{"productId": product_id, "quantity": 2}],
        "requestId": "tls-1",
    })
    .to_string();
    let order = send_tls(
        gw,
        https.clone(),
        "POST",
        "/v1/orders",
        &[("authorization", &customer)],
        Some(&body),
    )
    .await;
    assert_eq!(order.status, 200, "{}", order.text);
    assert_eq!(order.json["order"]["status"], "ORDER_STATUS_CONFIRMED");
    let after = send_tls(
        gw,
        https.clone(),
        "GET",
        &format!("/v1/products/{product_id}"),
        &[],
        None,
    )
    .await;
    assert_eq!(after.json["product"]["stockAvailable"], "1");

    // What a container's health check runs, with the same variables.
    // (Plaintext and certificate-less clients are refused: runtime's
    // tls tests; here, a plaintext gRPC client of the real mesh.)
    let plaintext = tonic::transport::Endpoint::from_shared(format!("http://{}", addrs.product))
        .unwrap()
        .connect_lazy();
    let refused = tonic_health::pb::health_client::HealthClient::new(plaintext)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await;
    assert!(refused.is_err(), "a plaintext client was served");

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&data_dir);
}
