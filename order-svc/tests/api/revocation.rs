//! A role change reaches every service within seconds: a demoted admin's
//! earlier token is refused by product-svc (both of its replicas: each
//! fetches the list itself) and order-svc, not only by user-svc, and
//! nobody else's token is touched.

use std::time::Duration;

use oms_proto::order::v1 as pb;
use oms_proto::product::v1 as product_pb;
use oms_proto::user::v1::{self as user_pb, user_service_client::UserServiceClient};
use testkit::{TestDb, bearer, error_reason, eventually};
use tonic::Code;

use crate::helpers::*;

testkit::test_on_each_db!(a_demoted_admin_is_refused_by_every_service_within_seconds);

async fn a_demoted_admin_is_refused_by_every_service_within_seconds(db: TestDb) {
    let mesh = start(&db, &[]).await;
    // A second product-svc replica on the same database.
    let twin = start_products(&mesh.products_db, mesh.users_relay.addr, &mesh.broker).await;
    let users_channel = mesh.users.as_ref().unwrap().channel();
    let set_role = |role: user_pb::Role| {
        let mut users = UserServiceClient::new(users_channel.clone());
        let request = bearer(
            user_pb::SetUserRoleRequest {
                user_id: mesh.alice_id.clone(),
                role: role.into(),
            },
            &mesh.admin,
        );
        async move { users.set_user_role(request).await.unwrap() }
    };
    set_role(user_pb::Role::Admin).await;
    let alice_admin = testkit::users::session(
        users_channel.clone(),
        "alice@example.com",
        testkit::users::CUSTOMER_PASSWORD,
    )
    .await
    .unwrap()
    .token;

    // Each attempt a new SKU: an attempt made before the change reached
    // product-svc succeeds, and the next must not fail for another reason.
    let skus = std::sync::atomic::AtomicUsize::new(0);
    let create_product_on =
        |mut catalogue: product_pb::product_service_client::ProductServiceClient<
            tonic::transport::Channel,
        >,
         token: String| {
            let sku = format!(
                "LAMP-{}",
                skus.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            async move {
                catalogue
                    .create_product(bearer(
                        product_pb::CreateProductRequest {
                            product: Some(product_pb::Product {
                                sku,
                                name: "Lamp".into(),
                                price: Some(usd(1500)),
                                stock_on_hand: 3,
                                ..Default::default()
                            }),
                        },
                        &token,
                    ))
                    .await
            }
        };
    let bobs_orders = |token: String| {
        let mut orders = mesh.orders();
        let request = bearer(
            pb::ListOrdersRequest {
                customer_id: mesh.bob_id.clone(),
                ..Default::default()
            },
            &token,
        );
        async move { orders.list_orders(request).await }
    };
    let create_product = |token: String| create_product_on(mesh.catalogue(), token);
    let create_product_on_twin = |token: String| {
        create_product_on(
            product_pb::product_service_client::ProductServiceClient::new(twin.channel()),
            token,
        )
    };
    create_product(alice_admin.clone()).await.unwrap();
    create_product_on_twin(alice_admin.clone()).await.unwrap();
    bobs_orders(alice_admin.clone()).await.unwrap();

    set_role(user_pb::Role::Customer).await;
    for (service, refused) in [
        (
            "product-svc",
            eventually(Duration::from_secs(10), "product-svc to refuse", || {
                let attempt = create_product(alice_admin.clone());
                async move { attempt.await.err() }
            })
            .await,
        ),
        (
            "product-svc's twin",
            eventually(Duration::from_secs(10), "the twin to refuse", || {
                let attempt = create_product_on_twin(alice_admin.clone());
                async move { attempt.await.err() }
            })
            .await,
        ),
        (
            "order-svc",
            eventually(Duration::from_secs(10), "order-svc to refuse", || {
                let attempt = bobs_orders(alice_admin.clone());
                async move { attempt.await.err() }
            })
            .await,
        ),
    ] {
        assert_eq!(
            (refused.code(), error_reason(&refused).as_str()),
            (Code::Unauthenticated, "TOKEN_REVOKED"),
            "{service}: {refused:?}"
        );
    }
    // The admin who did it, and the other customers, carry on.
    create_product(mesh.admin.clone()).await.unwrap();
    mesh.orders()
        .list_orders(bearer(pb::ListOrdersRequest::default(), &mesh.bob))
        .await
        .unwrap();
}
