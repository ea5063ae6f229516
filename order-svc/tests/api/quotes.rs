//! Ordering at a quote: the quoted price holds, a quote is used once, by
//! its own customer, before it expires, for exactly its lines; on product-
//! svc's SQLite and MariaDB alike.

use std::time::Duration;

use oms_proto::order::v1 as pb;
use oms_proto::product::v1::{self as product_pb, quote_service_client::QuoteServiceClient};
use testkit::{
    TestDb, bearer, error_metadata, error_reason as reason, eventually, violated_fields,
};
use tonic::{Code, Status};

use crate::helpers::{Mesh, MeshOptions, lines, start_with};

testkit::test_on_each_db!(
    an_order_at_a_quote_keeps_the_quoted_price,
    an_expired_quote_is_refused_with_its_expiry,
    lines_that_differ_from_the_quote_are_each_named,
    a_quote_is_used_once_and_a_refused_order_leaves_it_open,
    twenty_concurrent_orders_on_one_quote_make_one_order,
    another_customers_quote_is_not_found,
    a_quote_outlives_its_product_but_cannot_order_it,
);

async fn quoted_mesh(db: &TestDb, ttl: &str) -> Mesh {
    start_with(
        db,
        MeshOptions {
            products_env: &[("OMS_QUOTE_TTL", ttl)],
            products_on_same_backend: true,
            ..MeshOptions::default()
        },
    )
    .await
}

impl Mesh {
    fn quotes(&self) -> QuoteServiceClient<tonic::transport::Channel> {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", self.products_relay.addr))
                .unwrap()
                .connect_lazy();
        QuoteServiceClient::new(channel)
    }

    async fn quote(&self, token: &str, items: &[(&str, i32)]) -> product_pb::Quote {
        self.quotes()
            .create_quote(bearer(
                product_pb::CreateQuoteRequest {
                    lines: lines(items),
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner()
            .quote
            .unwrap()
    }

    async fn get_quote(&self, token: &str, id: &str) -> Result<product_pb::Quote, Status> {
        self.quotes()
            .get_quote(bearer(
                product_pb::GetQuoteRequest {
                    quote_id: id.into(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().quote.unwrap())
    }

    async fn order_at(
        &self,
        token: &str,
        request_id: &str,
        items: &[(&str, i32)],
        quote_id: &str,
    ) -> Result<pb::Order, Status> {
        self.orders()
            .create_order(bearer(
                pb::CreateOrderRequest {
                    lines: lines(items),
                    request_id: request_id.into(),
                    quote_id: quote_id.into(),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().order.unwrap())
    }
}

fn amount(money: Option<&oms_proto::common::v1::Money>) -> i64 {
    money.unwrap().amount_minor
}

async fn an_order_at_a_quote_keeps_the_quoted_price(db: TestDb) {
    let mesh = quoted_mesh(&db, "15m").await;
    let mug = mesh.product("MUG", 1_999, 10).await;
    let quote = mesh.quote(&mesh.alice, &[(&mug.id, 2)]).await;
    assert_eq!(quote.state(), product_pb::QuoteState::Open);
    assert_eq!(quote.customer_id, mesh.alice_id);
    assert_eq!(amount(quote.lines[0].unit_price.as_ref()), 1_999);
    assert_eq!(amount(quote.lines[0].line_total.as_ref()), 3_998);
    assert_eq!(amount(quote.total.as_ref()), 3_998);
    let lifetime = quote.expire_time.unwrap().seconds - quote.create_time.unwrap().seconds;
    assert_eq!(lifetime, 15 * 60, "OMS_QUOTE_TTL=15m");

    mesh.set_price(&mug.id, 2_999).await;
    let quoted = mesh
        .order_at(&mesh.alice, "at-quote", &[(&mug.id, 2)], &quote.id)
        .await
        .unwrap();
    assert_eq!(quoted.status(), pb::OrderStatus::Confirmed);
    assert_eq!(amount(quoted.lines[0].unit_price.as_ref()), 1_999);
    assert_eq!(amount(quoted.total.as_ref()), 3_998);
    assert_eq!(quoted.quote_id, quote.id, "the order names its quote");

    let used = mesh.get_quote(&mesh.alice, &quote.id).await.unwrap();
    assert_eq!(used.state(), product_pb::QuoteState::Consumed);
    assert_eq!(used.order_id, quoted.id);

    // The same request again is the same order, not a second use.
    let again = mesh
        .order_at(&mesh.alice, "at-quote", &[(&mug.id, 2)], &quote.id)
        .await
        .unwrap();
    assert_eq!(again, quoted);
    // The same key at another quote is another request.
    let other = mesh.quote(&mesh.alice, &[(&mug.id, 2)]).await;
    let reused = mesh
        .order_at(&mesh.alice, "at-quote", &[(&mug.id, 2)], &other.id)
        .await
        .unwrap_err();
    assert_eq!(reason(&reused), "IDEMPOTENCY_KEY_REUSED");

    let unquoted = mesh
        .order(&mesh.alice, "no-quote", &[(&mug.id, 2)])
        .await
        .unwrap();
    assert_eq!(amount(unquoted.lines[0].unit_price.as_ref()), 2_999);
    assert_eq!(amount(unquoted.total.as_ref()), 5_998);
    assert!(unquoted.quote_id.is_empty());
    assert_eq!(mesh.stock(&mug.id).await, (6, 0, 6));
}

async fn an_expired_quote_is_refused_with_its_expiry(db: TestDb) {
    let mesh = quoted_mesh(&db, "1s").await;
    let mug = mesh.product("MUG", 500, 10).await;
    let quote = mesh.quote(&mesh.alice, &[(&mug.id, 1)]).await;
    eventually(Duration::from_secs(10), "the quote to expire", || async {
        let seen = mesh.get_quote(&mesh.alice, &quote.id).await.unwrap();
        (seen.state() == product_pb::QuoteState::Expired).then_some(())
    })
    .await;
    let refused = mesh
        .order_at(&mesh.alice, "late", &[(&mug.id, 1)], &quote.id)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "QUOTE_EXPIRED");
    assert_eq!(error_metadata(&refused, "quoteId"), quote.id);
    let expire = quote.expire_time.unwrap();
    let said =
        chrono::DateTime::parse_from_rfc3339(&error_metadata(&refused, "expireTime")).unwrap();
    assert_eq!(
        (said.timestamp(), said.timestamp_subsec_micros()),
        (expire.seconds, u32::try_from(expire.nanos).unwrap() / 1_000)
    );
    assert_eq!(mesh.stock(&mug.id).await, (10, 0, 10), "nothing held");
}

async fn lines_that_differ_from_the_quote_are_each_named(db: TestDb) {
    let mesh = quoted_mesh(&db, "15m").await;
    let mug = mesh.product("MUG", 500, 10).await;
    let tea = mesh.product("TEA", 300, 10).await;
    let jam = mesh.product("JAM", 200, 10).await;
    let quote = mesh.quote(&mesh.alice, &[(&mug.id, 2), (&tea.id, 1)]).await;
    let refused = mesh
        .order_at(
            &mesh.alice,
            "differs",
            &[(&mug.id, 3), (&jam.id, 1)],
            &quote.id,
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(reason(&refused), "QUOTE_MISMATCH");
    assert_eq!(
        violated_fields(&refused),
        ["lines[0].quantity", "lines[1].product_id", "lines"],
        "mug's quantity, jam not quoted, tea left out"
    );
    assert_eq!(
        mesh.get_quote(&mesh.alice, &quote.id)
            .await
            .unwrap()
            .state(),
        product_pb::QuoteState::Open,
        "a refused order leaves the quote open"
    );
    // The same lines in another order match.
    let order = mesh
        .order_at(
            &mesh.alice,
            "matches",
            &[(&tea.id, 1), (&mug.id, 2)],
            &quote.id,
        )
        .await
        .unwrap();
    assert_eq!(amount(order.total.as_ref()), 2 * 500 + 300);
}

async fn a_quote_is_used_once_and_a_refused_order_leaves_it_open(db: TestDb) {
    let mesh = quoted_mesh(&db, "15m").await;
    let mug = mesh.product("MUG", 500, 3).await;
    let quote = mesh.quote(&mesh.alice, &[(&mug.id, 5)]).await;
    let short = mesh
        .order_at(&mesh.alice, "short", &[(&mug.id, 5)], &quote.id)
        .await
        .unwrap_err();
    assert_eq!(reason(&short), "INSUFFICIENT_STOCK");
    assert_eq!(
        mesh.get_quote(&mesh.alice, &quote.id)
            .await
            .unwrap()
            .state(),
        product_pb::QuoteState::Open,
        "no stock, no use"
    );

    let restock = mesh.product("CUP", 400, 10).await;
    let cup_quote = mesh.quote(&mesh.alice, &[(&restock.id, 2)]).await;
    let first = mesh
        .order_at(&mesh.alice, "first", &[(&restock.id, 2)], &cup_quote.id)
        .await
        .unwrap();
    let second = mesh
        .order_at(&mesh.alice, "second", &[(&restock.id, 2)], &cup_quote.id)
        .await
        .unwrap_err();
    assert_eq!(second.code(), Code::FailedPrecondition);
    assert_eq!(reason(&second), "QUOTE_ALREADY_USED");
    assert_eq!(error_metadata(&second, "orderId"), first.id);
    assert_eq!(mesh.stock(&restock.id).await, (8, 0, 8));
}

async fn twenty_concurrent_orders_on_one_quote_make_one_order(db: TestDb) {
    let mesh = std::sync::Arc::new(quoted_mesh(&db, "15m").await);
    let mug = mesh.product("MUG", 700, 100).await;
    let quote = mesh.quote(&mesh.alice, &[(&mug.id, 3)]).await;
    let attempts: Vec<_> = (0..20)
        .map(|i| {
            let (mesh, mug, quote) = (mesh.clone(), mug.id.clone(), quote.id.clone());
            tokio::spawn(async move {
                mesh.order_at(&mesh.alice, &format!("race-{i}"), &[(&mug, 3)], &quote)
                    .await
            })
        })
        .collect();
    let mut placed = Vec::new();
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(order) => placed.push(order),
            Err(status) => assert_eq!(reason(&status), "QUOTE_ALREADY_USED", "{status:?}"),
        }
    }
    assert_eq!(placed.len(), 1, "exactly one order used the quote");
    assert_eq!(mesh.stock(&mug.id).await, (97, 0, 97));
    assert_eq!(mesh.count_orders("confirmed").await, 1);
    let used = mesh.get_quote(&mesh.alice, &quote.id).await.unwrap();
    assert_eq!(used.order_id, placed[0].id);
}

async fn another_customers_quote_is_not_found(db: TestDb) {
    let mesh = quoted_mesh(&db, "15m").await;
    let mug = mesh.product("MUG", 500, 10).await;
    let quote = mesh.quote(&mesh.alice, &[(&mug.id, 1)]).await;
    let peek = mesh.get_quote(&mesh.bob, &quote.id).await.unwrap_err();
    assert_eq!(peek.code(), Code::NotFound);
    assert_eq!(reason(&peek), "QUOTE_NOT_FOUND");
    let taken = mesh
        .order_at(&mesh.bob, "bobs", &[(&mug.id, 1)], &quote.id)
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::NotFound);
    assert_eq!(reason(&taken), "QUOTE_NOT_FOUND");
    let unknown = mesh
        .get_quote(&mesh.alice, &uuid::Uuid::now_v7().to_string())
        .await
        .unwrap_err();
    assert_eq!(reason(&unknown), "QUOTE_NOT_FOUND");
    assert_eq!(
        mesh.get_quote(&mesh.alice, &quote.id)
            .await
            .unwrap()
            .state(),
        product_pb::QuoteState::Open,
        "bob's attempts left alice's quote alone"
    );
    mesh.order_at(&mesh.alice, "alices", &[(&mug.id, 1)], &quote.id)
        .await
        .unwrap();
}

async fn a_quote_outlives_its_product_but_cannot_order_it(db: TestDb) {
    let mesh = quoted_mesh(&db, "15m").await;
    let mug = mesh.product("MUG", 500, 10).await;
    let quote = mesh.quote(&mesh.alice, &[(&mug.id, 1)]).await;
    mesh.catalogue()
        .delete_product(bearer(
            product_pb::DeleteProductRequest {
                product_id: mug.id.clone(),
            },
            &mesh.admin,
        ))
        .await
        .unwrap();
    let kept = mesh.get_quote(&mesh.alice, &quote.id).await.unwrap();
    assert_eq!(kept.lines[0].sku, "MUG", "the quote keeps what it quoted");
    let refused = mesh
        .order_at(&mesh.alice, "gone", &[(&mug.id, 1)], &quote.id)
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "PRODUCT_ARCHIVED");
    assert_eq!(
        mesh.get_quote(&mesh.alice, &quote.id)
            .await
            .unwrap()
            .state(),
        product_pb::QuoteState::Open
    );
    let new_quote = mesh
        .quotes()
        .create_quote(bearer(
            product_pb::CreateQuoteRequest {
                lines: lines(&[(&mug.id, 1)]),
            },
            &mesh.alice,
        ))
        .await
        .unwrap_err();
    assert_eq!(reason(&new_quote), "PRODUCT_ARCHIVED");
}
