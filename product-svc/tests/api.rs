//! product-svc over real gRPC on 127.0.0.1:0, with a real user-svc issuing
//! the tokens: on SQLite with the in-process cache, and on MariaDB with
//! Redis.

// Tests unwrap: a panic here is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kit::config::Env;
use kit::test_support::{
    Spawned, TestDb, assert_grpc_basics, bearer, error_metadata as metadata,
    error_reason as reason, eventually, spawn, unique_name, violated_fields,
};
use oms_proto::common::v1::{LineItem, Money};
use oms_proto::product::v1::{
    self as pb, inventory_service_client::InventoryServiceClient,
    product_service_client::ProductServiceClient,
};
use oms_proto::user::v1::{self as user_pb, auth_service_client::AuthServiceClient};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

const ADMIN_EMAIL: &str = "admin@oms.test";
const ADMIN_PASSWORD: &str = "admin password for tests";
const WRITER_SECRET: &str = "order-svc test secret";
const READER_SECRET: &str = "reporting test secret";

kit::test_on_each_db!(
    starts_migrated_with_health_and_reflection,
    the_catalogue_creates_reads_updates_and_archives,
    bad_products_report_every_field_and_skus_are_unique,
    update_masks_name_only_changeable_fields,
    stock_adjustments_are_audited_and_never_below_reserved,
    who_may_call_what,
    concurrent_reservations_never_oversell,
    a_reservation_is_all_or_nothing_and_names_every_short_line,
    reserve_is_idempotent_on_its_id,
    commit_and_release_move_stock_once_each,
    expired_reservations_are_swept_even_after_a_restart,
    two_replicas_sweeping_together_return_each_unit_once,
    product_pages_stay_stable_while_products_are_added,
    validate_reports_each_line_without_holding_stock,
    unknown_archived_and_malformed_lines_are_refused,
);

/// A user-svc and a product-svc wired together, and tokens for each kind
/// of caller.
struct Mesh {
    products: Spawned,
    _users: Spawned,
    _users_db: TestDb,
    admin: String,
    customer: String,
    /// order-svc's token: `inventory:write`.
    writer: String,
    /// A reporting service's token: `products:read` only.
    reader: String,
    db_url: kit::config::DatabaseUrl,
}

async fn start_users() -> (Spawned, TestDb) {
    let db = TestDb::sqlite();
    let clients = format!(
        r#"[{{"client_id":"order-svc","secret_sha256":"{}","scopes":["inventory:write","products:read"]}},
            {{"client_id":"reporting","secret_sha256":"{}","scopes":["products:read"]}}]"#,
        user_svc::clients::sha256_hex(WRITER_SECRET),
        user_svc::clients::sha256_hex(READER_SECRET)
    );
    let env = Env::from_pairs([
        ("DATABASE_URL", db.url().expose().to_owned()),
        (
            "OMS_DATA_DIR",
            std::env::temp_dir()
                .join(unique_name("oms_keys"))
                .display()
                .to_string(),
        ),
        ("OMS_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL.to_owned()),
        ("OMS_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ("OMS_SERVICE_CLIENTS", clients),
    ]);
    let config = user_svc::Config::from_env(&env, "DATABASE_URL").unwrap();
    (spawn(|l, s| user_svc::serve(config, l, s)).await, db)
}

async fn start_products(db: &TestDb, users: &Spawned, extra: &[(&str, &str)]) -> Spawned {
    let mut pairs: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), db.url().expose().to_owned()),
        ("USER_SVC_ADDR".into(), users.addr.to_string()),
        (
            "OMS_REDIS_KEY_PREFIX".into(),
            format!("{}:", unique_name("oms_test")),
        ),
    ];
    if !db.url().is_sqlite()
        && let Some(redis) = kit::test_support::redis_url()
    {
        pairs.push(("REDIS_URL".into(), redis.expose().to_owned()));
    }
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let config = product_svc::Config::from_env(&Env::from_pairs(pairs), "DATABASE_URL").unwrap();
    spawn(|l, s| product_svc::serve(config, l, s)).await
}

async fn login(users: &Spawned, email: &str, password: &str) -> String {
    AuthServiceClient::new(users.channel())
        .login(user_pb::LoginRequest {
            email: email.into(),
            password: password.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

async fn service_token(users: &Spawned, client: &str, secret: &str) -> String {
    AuthServiceClient::new(users.channel())
        .issue_service_token(user_pb::IssueServiceTokenRequest {
            client_id: client.into(),
            client_secret: secret.into(),
            scopes: vec![],
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Mesh {
    let (users, users_db) = start_users().await;
    let products = start_products(db, &users, extra).await;
    AuthServiceClient::new(users.channel())
        .register(user_pb::RegisterRequest {
            email: "shopper@example.com".into(),
            password: "shopper password".into(),
            display_name: "Shopper".into(),
        })
        .await
        .unwrap();
    Mesh {
        admin: login(&users, ADMIN_EMAIL, ADMIN_PASSWORD).await,
        customer: login(&users, "shopper@example.com", "shopper password").await,
        writer: service_token(&users, "order-svc", WRITER_SECRET).await,
        reader: service_token(&users, "reporting", READER_SECRET).await,
        products,
        _users: users,
        _users_db: users_db,
        db_url: db.url().clone(),
    }
}

impl Mesh {
    fn catalogue(&self) -> ProductServiceClient<Channel> {
        ProductServiceClient::new(self.products.channel())
    }

    fn inventory(&self) -> InventoryServiceClient<Channel> {
        InventoryServiceClient::new(self.products.channel())
    }

    async fn create(&self, sku: &str, price: i64, stock: i64) -> pb::Product {
        self.catalogue()
            .create_product(bearer(
                pb::CreateProductRequest {
                    product: Some(pb::Product {
                        sku: sku.into(),
                        name: format!("Product {sku}"),
                        description: "A thing".into(),
                        price: Some(usd(price)),
                        stock_on_hand: stock,
                        ..Default::default()
                    }),
                },
                &self.admin,
            ))
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap()
    }

    async fn get(&self, id: &str) -> pb::Product {
        self.catalogue()
            .get_product(pb::GetProductRequest {
                product_id: id.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .product
            .unwrap()
    }

    async fn reserve(&self, id: &str, lines: &[(&str, i32)]) -> Result<pb::Reservation, Status> {
        self.inventory()
            .reserve_stock(bearer(
                pb::ReserveStockRequest {
                    reservation_id: id.into(),
                    lines: items(lines),
                },
                &self.writer,
            ))
            .await
            .map(|r| r.into_inner().reservation.unwrap())
    }

    async fn commit(&self, id: &str) -> Result<pb::Reservation, Status> {
        self.inventory()
            .commit_reservation(bearer(
                pb::CommitReservationRequest {
                    reservation_id: id.into(),
                },
                &self.writer,
            ))
            .await
            .map(|r| r.into_inner().reservation.unwrap())
    }

    async fn release(&self, id: &str) -> Result<pb::Reservation, Status> {
        self.inventory()
            .release_reservation(bearer(
                pb::ReleaseReservationRequest {
                    reservation_id: id.into(),
                },
                &self.writer,
            ))
            .await
            .map(|r| r.into_inner().reservation.unwrap())
    }

    async fn reservation(&self, id: &str) -> pb::Reservation {
        self.inventory()
            .get_reservation(bearer(
                pb::GetReservationRequest {
                    reservation_id: id.into(),
                },
                &self.writer,
            ))
            .await
            .unwrap()
            .into_inner()
            .reservation
            .unwrap()
    }
}

fn usd(amount_minor: i64) -> Money {
    Money {
        currency_code: "USD".into(),
        amount_minor,
    }
}

fn items(lines: &[(&str, i32)]) -> Vec<LineItem> {
    lines
        .iter()
        .map(|(id, quantity)| LineItem {
            product_id: (*id).into(),
            quantity: *quantity,
        })
        .collect()
}

fn stock(p: &pb::Product) -> (i64, i64, i64) {
    (p.stock_on_hand, p.stock_reserved, p.stock_available)
}

async fn starts_migrated_with_health_and_reflection(db: TestDb) {
    let mesh = start(&db, &[]).await;
    assert_grpc_basics(mesh.products.channel(), product_svc::SERVICE_INFO).await;
    mesh.products.stop().await.unwrap();
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

async fn the_catalogue_creates_reads_updates_and_archives(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let mug = mesh.create("MUG-RED", 1_250, 40).await;
    assert_eq!(
        (mug.sku.as_str(), mug.price.clone().unwrap().amount_minor),
        ("MUG-RED", 1_250)
    );
    assert_eq!(stock(&mug), (40, 0, 40));
    // Read twice: the second answer comes from the cache and must agree.
    assert_eq!(mesh.get(&mug.id).await, mug);
    assert_eq!(mesh.get(&mug.id).await, mug);

    let updated = mesh
        .catalogue()
        .update_product(bearer(
            pb::UpdateProductRequest {
                product: Some(pb::Product {
                    id: mug.id.clone(),
                    name: "Red mug".into(),
                    price: Some(usd(1_500)),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into(), "price".into()],
                }),
            },
            &mesh.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(
        (updated.name.as_str(), updated.description.as_str()),
        ("Red mug", "A thing")
    );
    // The cached copy was invalidated by the write.
    assert_eq!(mesh.get(&mug.id).await.name, "Red mug");

    let history = mesh
        .catalogue()
        .list_price_history(pb::ListPriceHistoryRequest {
            product_id: mug.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .prices;
    let amounts: Vec<i64> = history
        .iter()
        .map(|p| p.price.clone().unwrap().amount_minor)
        .collect();
    assert_eq!(amounts, [1_500, 1_250], "newest first");
    assert!(
        history
            .iter()
            .all(|p| !p.changed_by.is_empty() && p.effective_time.is_some())
    );

    let archived = mesh
        .catalogue()
        .delete_product(bearer(
            pb::DeleteProductRequest {
                product_id: mug.id.clone(),
            },
            &mesh.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert!(archived.archived);
    assert!(mesh.get(&mug.id).await.archived);
    let visible = |include_archived| {
        let catalogue = mesh.catalogue();
        async move {
            let mut catalogue = catalogue;
            catalogue
                .list_products(pb::ListProductsRequest {
                    include_archived,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .products
                .len()
        }
    };
    assert_eq!((visible(false).await, visible(true).await), (0, 1));
    let missing = mesh
        .catalogue()
        .get_product(pb::GetProductRequest {
            product_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), reason(&missing).as_str()),
        (Code::NotFound, "PRODUCT_NOT_FOUND")
    );
}

async fn bad_products_report_every_field_and_skus_are_unique(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let bad = mesh
        .catalogue()
        .create_product(bearer(
            pb::CreateProductRequest {
                product: Some(pb::Product {
                    sku: "has spaces".into(),
                    name: String::new(),
                    price: Some(Money {
                        currency_code: "usd".into(),
                        amount_minor: 0,
                    }),
                    stock_on_hand: -1,
                    ..Default::default()
                }),
            },
            &mesh.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        [
            "product.sku",
            "product.name",
            "product.price.currency_code",
            "product.price.amount_minor",
            "product.stock_on_hand"
        ]
    );
    mesh.create("UNIQUE-1", 100, 1).await;
    let taken = mesh
        .catalogue()
        .create_product(bearer(
            pb::CreateProductRequest {
                product: Some(pb::Product {
                    sku: "UNIQUE-1".into(),
                    name: "Again".into(),
                    price: Some(usd(5)),
                    ..Default::default()
                }),
            },
            &mesh.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        (taken.code(), reason(&taken).as_str()),
        (Code::AlreadyExists, "SKU_TAKEN")
    );
}

async fn update_masks_name_only_changeable_fields(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("MASK-1", 100, 1).await;
    let update = |paths: &[&str]| {
        bearer(
            pb::UpdateProductRequest {
                product: Some(pb::Product {
                    id: p.id.clone(),
                    name: "New".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|s| (*s).to_owned()).collect(),
                }),
            },
            &mesh.admin,
        )
    };
    for paths in [&[][..], &["colour"], &["stock_on_hand"], &["sku"]] {
        let e = mesh
            .catalogue()
            .update_product(update(paths))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{paths:?}");
        assert_eq!(violated_fields(&e), ["update_mask"], "{paths:?}");
    }
    // A price named in the mask but missing from the product is an error.
    let e = mesh
        .catalogue()
        .update_product(update(&["price"]))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&e), ["product.price"]);
    assert_eq!(
        mesh.get(&p.id).await.name,
        "Product MASK-1",
        "nothing changed"
    );
}

async fn stock_adjustments_are_audited_and_never_below_reserved(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("ADJ-1", 100, 10).await;
    let adjust = |delta: i64| {
        bearer(
            pb::AdjustStockRequest {
                product_id: p.id.clone(),
                delta,
                reason: "cycle count".into(),
            },
            &mesh.admin,
        )
    };
    let after = mesh
        .catalogue()
        .adjust_stock(adjust(5))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(stock(&after), (15, 0, 15));
    mesh.reserve("adj-hold", &[(&p.id, 12)]).await.unwrap();
    let refused = mesh.catalogue().adjust_stock(adjust(-4)).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "STOCK_BELOW_RESERVED")
    );
    assert_eq!(metadata(&refused, "reserved"), "12");
    let ok = mesh
        .catalogue()
        .adjust_stock(adjust(-3))
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(stock(&ok), (12, 12, 0));
    let zero = mesh.catalogue().adjust_stock(adjust(0)).await.unwrap_err();
    assert_eq!(violated_fields(&zero), ["delta"]);
    kit::test_support::assert_row_count(&mesh.db_url, "stock_adjustments", 2).await;
}

async fn who_may_call_what(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("AUTH-1", 100, 10).await;
    let create = |token: Option<&str>| {
        let message = pb::CreateProductRequest {
            product: Some(pb::Product {
                sku: format!("AUTH-{}", uuid::Uuid::new_v4().simple()),
                name: "x".into(),
                price: Some(usd(1)),
                ..Default::default()
            }),
        };
        token.map_or_else(
            || Request::new(message.clone()),
            |t| bearer(message.clone(), t),
        )
    };
    let code =
        |r: Result<tonic::Response<pb::CreateProductResponse>, Status>| r.err().map(|s| s.code());
    assert_eq!(
        code(mesh.catalogue().create_product(create(None)).await),
        Some(Code::Unauthenticated)
    );
    assert_eq!(
        code(
            mesh.catalogue()
                .create_product(create(Some(&mesh.customer)))
                .await
        ),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        code(
            mesh.catalogue()
                .create_product(create(Some(&mesh.writer)))
                .await
        ),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        code(
            mesh.catalogue()
                .create_product(create(Some(&mesh.admin)))
                .await
        ),
        None
    );

    // Reads are public.
    assert!(
        mesh.catalogue()
            .get_product(pb::GetProductRequest {
                product_id: p.id.clone()
            })
            .await
            .is_ok()
    );

    let reserve = |token: Option<&str>| {
        let message = pb::ReserveStockRequest {
            reservation_id: uuid::Uuid::new_v4().to_string(),
            lines: items(&[(&p.id, 1)]),
        };
        token.map_or_else(
            || Request::new(message.clone()),
            |t| bearer(message.clone(), t),
        )
    };
    let reserve_code =
        |r: Result<tonic::Response<pb::ReserveStockResponse>, Status>| r.err().map(|s| s.code());
    assert_eq!(
        reserve_code(mesh.inventory().reserve_stock(reserve(None)).await),
        Some(Code::Unauthenticated)
    );
    assert_eq!(
        reserve_code(
            mesh.inventory()
                .reserve_stock(reserve(Some(&mesh.customer)))
                .await
        ),
        Some(Code::PermissionDenied)
    );
    // Even an admin's user token is not a service token.
    assert_eq!(
        reserve_code(
            mesh.inventory()
                .reserve_stock(reserve(Some(&mesh.admin)))
                .await
        ),
        Some(Code::PermissionDenied)
    );
    assert_eq!(
        reserve_code(
            mesh.inventory()
                .reserve_stock(reserve(Some(&mesh.reader)))
                .await
        ),
        Some(Code::PermissionDenied),
        "products:read does not allow reserving"
    );
    assert_eq!(
        reserve_code(
            mesh.inventory()
                .reserve_stock(reserve(Some(&mesh.writer)))
                .await
        ),
        None
    );

    let validate = |token: &str| {
        bearer(
            pb::ValidateProductsRequest {
                lines: items(&[(&p.id, 1)]),
            },
            token,
        )
    };
    assert!(
        mesh.inventory()
            .validate_products(validate(&mesh.reader))
            .await
            .is_ok()
    );
    assert!(
        mesh.inventory()
            .validate_products(validate(&mesh.writer))
            .await
            .is_ok()
    );
    let by_admin = mesh
        .inventory()
        .validate_products(validate(&mesh.admin))
        .await
        .unwrap_err();
    assert_eq!(by_admin.code(), Code::PermissionDenied);
}

async fn concurrent_reservations_never_oversell(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("HOT-1", 100, 30).await;
    let attempts = (0..120).map(|i| {
        let (mut inventory, token, id) = (mesh.inventory(), mesh.writer.clone(), p.id.clone());
        tokio::spawn(async move {
            inventory
                .reserve_stock(bearer(
                    pb::ReserveStockRequest {
                        reservation_id: format!("hot-{i}"),
                        lines: items(&[(&id, 1)]),
                    },
                    &token,
                ))
                .await
        })
    });
    let (mut reserved, mut short) = (0, 0);
    for attempt in attempts.collect::<Vec<_>>() {
        match attempt.await.unwrap() {
            Ok(_) => reserved += 1,
            Err(e) if reason(&e) == "INSUFFICIENT_STOCK" => short += 1,
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!((reserved, short), (30, 90));
    assert_eq!(stock(&mesh.get(&p.id).await), (30, 30, 0));
}

async fn a_reservation_is_all_or_nothing_and_names_every_short_line(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let (a, b, c) = (
        mesh.create("AON-A", 100, 10).await,
        mesh.create("AON-B", 100, 1).await,
        mesh.create("AON-C", 100, 0).await,
    );
    let one_short = mesh
        .reserve("aon-1", &[(&a.id, 5), (&b.id, 2)])
        .await
        .unwrap_err();
    assert_eq!(
        (one_short.code(), reason(&one_short).as_str()),
        (Code::FailedPrecondition, "INSUFFICIENT_STOCK")
    );
    assert_eq!(
        (
            metadata(&one_short, "productId"),
            metadata(&one_short, "requested"),
            metadata(&one_short, "available")
        ),
        (b.id.clone(), "2".into(), "1".into())
    );
    assert_eq!(
        stock(&mesh.get(&a.id).await),
        (10, 0, 10),
        "the line that fit was not held"
    );

    let two_short = mesh
        .reserve("aon-2", &[(&a.id, 1), (&b.id, 2), (&c.id, 1)])
        .await
        .unwrap_err();
    assert_eq!(metadata(&two_short, "shortLines"), "2");
    let subjects: Vec<String> = two_short
        .get_error_details()
        .precondition_failure()
        .map(|f| f.violations.iter().map(|v| v.subject.clone()).collect())
        .unwrap_or_default();
    let mut expected = vec![format!("products/{}", b.id), format!("products/{}", c.id)];
    expected.sort();
    assert_eq!(subjects, expected);
    // A refused ID is free to use again.
    assert!(mesh.reserve("aon-2", &[(&a.id, 1)]).await.is_ok());
}

async fn reserve_is_idempotent_on_its_id(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let (a, b) = (
        mesh.create("IDEM-A", 250, 10).await,
        mesh.create("IDEM-B", 99, 10).await,
    );
    let first = mesh
        .reserve("idem-1", &[(&a.id, 2), (&b.id, 3)])
        .await
        .unwrap();
    assert_eq!(first.state(), pb::ReservationState::Reserved);
    assert_eq!(first.lines.len(), 2);
    let line_a = first.lines.iter().find(|l| l.product_id == a.id).unwrap();
    assert_eq!(
        (
            line_a.sku.as_str(),
            line_a.unit_price.clone().unwrap().amount_minor
        ),
        ("IDEM-A", 250)
    );
    // Same lines in another order: the same reservation, held once.
    let again = mesh
        .reserve("idem-1", &[(&b.id, 3), (&a.id, 2)])
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(stock(&mesh.get(&a.id).await), (10, 2, 8));
    let other = mesh.reserve("idem-1", &[(&a.id, 1)]).await.unwrap_err();
    assert_eq!(
        (other.code(), reason(&other).as_str()),
        (Code::AlreadyExists, "RESERVATION_ID_REUSED")
    );
}

async fn commit_and_release_move_stock_once_each(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("LIFE-1", 100, 10).await;
    mesh.reserve("life-1", &[(&p.id, 4)]).await.unwrap();
    assert_eq!(stock(&mesh.get(&p.id).await), (10, 4, 6));

    assert_eq!(
        mesh.commit("life-1").await.unwrap().state(),
        pb::ReservationState::Committed
    );
    assert_eq!(
        mesh.commit("life-1").await.unwrap().state(),
        pb::ReservationState::Committed
    );
    assert_eq!(stock(&mesh.get(&p.id).await), (6, 0, 6));

    // A cancellation after commit: the units come back, once.
    assert_eq!(
        mesh.release("life-1").await.unwrap().state(),
        pb::ReservationState::Released
    );
    assert_eq!(
        mesh.release("life-1").await.unwrap().state(),
        pb::ReservationState::Released
    );
    assert_eq!(stock(&mesh.get(&p.id).await), (10, 0, 10));
    let late = mesh.commit("life-1").await.unwrap_err();
    assert_eq!(
        (late.code(), reason(&late).as_str()),
        (Code::FailedPrecondition, "RESERVATION_RELEASED")
    );

    mesh.reserve("life-2", &[(&p.id, 3)]).await.unwrap();
    assert_eq!(
        mesh.release("life-2").await.unwrap().state(),
        pb::ReservationState::Released
    );
    assert_eq!(stock(&mesh.get(&p.id).await), (10, 0, 10));
    let missing = mesh.commit("no-such-reservation").await.unwrap_err();
    assert_eq!(
        (missing.code(), reason(&missing).as_str()),
        (Code::NotFound, "RESERVATION_NOT_FOUND")
    );
}

async fn expired_reservations_are_swept_even_after_a_restart(db: TestDb) {
    let short_ttl = [
        ("OMS_RESERVATION_TTL_SECS", "1"),
        ("OMS_RESERVATION_SWEEP_SECS", "3600"),
    ];
    let mesh = start(&db, &short_ttl).await;
    let p = mesh.create("EXP-1", 100, 5).await;
    let held = mesh.reserve("exp-1", &[(&p.id, 2)]).await.unwrap();
    mesh.reserve("exp-2", &[(&p.id, 1)]).await.unwrap();
    let expire_time = held.expire_time.unwrap();
    eventually(
        Duration::from_secs(10),
        "exp-1 to pass its expiry",
        || async {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            (now.as_secs_f64() > expire_time.seconds as f64 + f64::from(expire_time.nanos) / 1e9)
                .then_some(())
        },
    )
    .await;
    // This instance never sweeps in time; a commit past expiry is refused
    // all the same, and expires the reservation on the spot.
    let expired = mesh.commit("exp-1").await.unwrap_err();
    assert_eq!(
        (expired.code(), reason(&expired).as_str()),
        (Code::FailedPrecondition, "RESERVATION_EXPIRED")
    );
    assert_eq!(
        stock(&mesh.get(&p.id).await),
        (5, 1, 4),
        "exp-1 returned its units"
    );
    assert_eq!(
        mesh.reservation("exp-1").await.state(),
        pb::ReservationState::Expired
    );
    let Mesh { products, .. } = mesh;
    products.stop().await.unwrap();

    // A new instance on the same database finds exp-2 by its stored state.
    let (users, _users_db) = start_users().await;
    let restarted = start_products(&db, &users, &[("OMS_RESERVATION_SWEEP_SECS", "1")]).await;
    let mut catalogue = ProductServiceClient::new(restarted.channel());
    eventually(
        Duration::from_secs(15),
        "the sweeper to return exp-2's unit",
        || {
            let mut catalogue = catalogue.clone();
            let id = p.id.clone();
            async move {
                let product = catalogue
                    .get_product(pb::GetProductRequest { product_id: id })
                    .await
                    .ok()?
                    .into_inner();
                (product.product?.stock_reserved == 0).then_some(())
            }
        },
    )
    .await;
    let product = catalogue
        .get_product(pb::GetProductRequest {
            product_id: p.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap();
    assert_eq!(stock(&product), (5, 0, 5));
}

async fn product_pages_stay_stable_while_products_are_added(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(mesh.create(&format!("PAGE-{i}"), 100, 1).await.id);
    }
    let page = |token: String| {
        let mut catalogue = mesh.catalogue();
        async move {
            catalogue
                .list_products(pb::ListProductsRequest {
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = page(String::new()).await;
    let mut seen: Vec<String> = first.products.iter().map(|p| p.id.clone()).collect();
    for i in 0..3 {
        mesh.create(&format!("LATE-{i}"), 100, 1).await;
    }
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let next = page(token).await;
        seen.extend(next.products.iter().map(|p| p.id.clone()));
        token = next.next_page_token;
    }
    created.reverse();
    assert_eq!(
        seen, created,
        "newest first, each once, none of the later inserts"
    );

    let search = mesh
        .catalogue()
        .list_products(pb::ListProductsRequest {
            query: "late-".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        search.products.len(),
        3,
        "query matches sku case-insensitively"
    );
    let literal = mesh
        .catalogue()
        .list_products(pb::ListProductsRequest {
            query: "%".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        literal.products.is_empty(),
        "LIKE wildcards in a query are literal"
    );
}

async fn validate_reports_each_line_without_holding_stock(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let (a, b) = (
        mesh.create("VAL-A", 300, 5).await,
        mesh.create("VAL-B", 100, 1).await,
    );
    let ghost = uuid::Uuid::now_v7().to_string();
    let results = mesh
        .inventory()
        .validate_products(bearer(
            pb::ValidateProductsRequest {
                lines: items(&[(&a.id, 5), (&b.id, 2), (&ghost, 1)]),
            },
            &mesh.writer,
        ))
        .await
        .unwrap()
        .into_inner()
        .results;
    let flags: Vec<(bool, bool, bool, i64)> = results
        .iter()
        .map(|r| (r.found, r.active, r.sufficient_stock, r.available))
        .collect();
    assert_eq!(
        flags,
        [
            (true, true, true, 5),
            (true, true, false, 1),
            (false, false, false, 0)
        ]
    );
    assert_eq!(results[0].unit_price.clone().unwrap().amount_minor, 300);
    assert_eq!(stock(&mesh.get(&a.id).await), (5, 0, 5));
}

async fn unknown_archived_and_malformed_lines_are_refused(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let p = mesh.create("GONE-1", 100, 5).await;
    let ghost = uuid::Uuid::now_v7().to_string();
    let unknown = mesh
        .reserve("bad-1", &[(&p.id, 1), (&ghost, 1)])
        .await
        .unwrap_err();
    assert_eq!(
        (unknown.code(), reason(&unknown).as_str()),
        (Code::NotFound, "PRODUCT_NOT_FOUND")
    );
    assert_eq!(metadata(&unknown, "productId"), ghost);

    mesh.catalogue()
        .delete_product(bearer(
            pb::DeleteProductRequest {
                product_id: p.id.clone(),
            },
            &mesh.admin,
        ))
        .await
        .unwrap();
    let archived = mesh.reserve("bad-2", &[(&p.id, 1)]).await.unwrap_err();
    assert_eq!(
        (archived.code(), reason(&archived).as_str()),
        (Code::FailedPrecondition, "PRODUCT_ARCHIVED")
    );

    let malformed = mesh
        .reserve("bad 3!", &[(&p.id, 0), ("x", 1), (&p.id, 10_001)])
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&malformed),
        [
            "reservation_id",
            "lines[0].quantity",
            "lines[1].product_id",
            "lines[2].quantity",
            "lines[2].product_id"
        ]
    );
    let empty = mesh.reserve("bad-4", &[]).await.unwrap_err();
    assert_eq!(violated_fields(&empty), ["lines"]);
}

async fn two_replicas_sweeping_together_return_each_unit_once(db: TestDb) {
    let fast = [
        ("OMS_RESERVATION_TTL_SECS", "1"),
        ("OMS_RESERVATION_SWEEP_SECS", "1"),
    ];
    let mesh = start(&db, &fast).await;
    let twin = start_products(&db, &mesh._users, &fast).await;
    let p = mesh.create("TWIN-1", 100, 50).await;
    for i in 0..20 {
        mesh.reserve(&format!("twin-{i}"), &[(&p.id, 2)])
            .await
            .unwrap();
    }
    assert_eq!(stock(&mesh.get(&p.id).await), (50, 40, 10));
    // Both instances sweep the same rows; a unit returned twice would show
    // as negative reserved stock.
    let twin_catalogue = ProductServiceClient::new(twin.channel());
    let settled = eventually(
        Duration::from_secs(20),
        "every reservation to expire",
        || {
            let mut catalogue = twin_catalogue.clone();
            let id = p.id.clone();
            async move {
                let product = catalogue
                    .get_product(pb::GetProductRequest { product_id: id })
                    .await
                    .ok()?
                    .into_inner()
                    .product?;
                (product.stock_reserved <= 0).then_some(product)
            }
        },
    )
    .await;
    assert_eq!(stock(&settled), (50, 0, 50));
    for i in [0, 19] {
        assert_eq!(
            mesh.reservation(&format!("twin-{i}")).await.state(),
            pb::ReservationState::Expired
        );
    }
}
