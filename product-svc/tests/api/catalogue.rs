//! The catalogue: products, prices, stock adjustments, paging, authorization.

use oms_proto::common::v1::Money;
use oms_proto::product::v1::{self as pb};
use testkit::{
    TestDb, assert_grpc_basics, bearer, error_metadata as metadata, error_reason as reason,
    violated_fields,
};
use tonic::{Code, Request, Status};

use crate::helpers::*;

testkit::test_on_each_db!(
    starts_migrated_with_health_and_reflection,
    the_catalogue_creates_reads_updates_and_archives,
    bad_products_report_every_field_and_skus_are_unique,
    update_masks_name_only_changeable_fields,
    stock_adjustments_are_audited_and_never_below_reserved,
    product_pages_stay_stable_while_products_are_added,
    who_may_call_what,
    undecodable_and_oversized_messages_are_the_callers_fault,
    stored_text_holds_no_control_or_invisible_characters,
);

async fn stored_text_holds_no_control_or_invisible_characters(db: TestDb) {
    let mesh = start(&db, &[]).await;
    let create = |name: &str, description: &str| {
        let mut catalogue = mesh.catalogue();
        let request = bearer(
            pb::CreateProductRequest {
                product: Some(pb::Product {
                    sku: format!("TXT-{}", name.len() + description.len()),
                    name: name.into(),
                    description: description.into(),
                    price: Some(usd(100)),
                    stock_on_hand: 1,
                    ..Default::default()
                }),
            },
            &mesh.admin,
        );
        async move { catalogue.create_product(request).await }
    };
    for (name, description, field) in [
        ("Nul\0name", "fine", "product.name"),
        ("Bidi\u{202E}name", "fine", "product.name"),
        ("Fine", "bell\u{7}", "product.description"),
        ("Fine", "zero\u{200B}width", "product.description"),
    ] {
        let refused = create(name, description).await.unwrap_err();
        assert_eq!(
            refused.code(),
            Code::InvalidArgument,
            "{name:?} {description:?}"
        );
        assert_eq!(
            violated_fields(&refused),
            [field],
            "{name:?} {description:?}"
        );
    }
    // Lines and tabs are text.
    let kept = create("Two lines", "first line\n\tsecond line")
        .await
        .unwrap();
    assert_eq!(
        kept.into_inner().product.unwrap().description,
        "first line\n\tsecond line"
    );
    let searched = mesh
        .catalogue()
        .list_products(pb::ListProductsRequest {
            query: "lamp\0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&searched), ["query"]);
}

async fn undecodable_and_oversized_messages_are_the_callers_fault(db: TestDb) {
    let mesh = start(&db, &[]).await;
    const GET: &str = "/oms.product.v1.ProductService/GetProduct";
    // Field 1 as a length-delimited string that claims more than follows.
    let garbage = testkit::call_raw(mesh.products.channel(), GET, vec![0x0a, 0xff, 0x01]).await;
    assert_eq!(garbage.code(), Code::InvalidArgument, "{garbage:?}");
    assert!(garbage.message().contains("decode"), "{garbage:?}");
    let huge = testkit::call_raw(mesh.products.channel(), GET, vec![0; 5 * 1024 * 1024]).await;
    assert_eq!(huge.code(), Code::ResourceExhausted, "{huge:?}");
    // The service still answers well-formed calls.
    let fine = testkit::call_raw(mesh.products.channel(), GET, Vec::new()).await;
    assert_eq!(
        fine.code(),
        Code::InvalidArgument,
        "an empty id is a bad field: {fine:?}"
    );
    assert!(!violated_fields(&fine).is_empty());
}

async fn starts_migrated_with_health_and_reflection(db: TestDb) {
    let mesh = start(&db, &[]).await;
    assert_grpc_basics(mesh.products.channel(), product_svc::SERVICE_INFO).await;
    mesh.products.stop().await.unwrap();
    testkit::assert_tables(
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
    // The first read fills the cache; the second is served from it: a
    // change made behind the service's back does not show.
    assert_eq!(mesh.get(&mug.id).await, mug);
    let behind_its_back = format!(
        "UPDATE products SET name = 'Changed in SQL' WHERE id = '{}'",
        mug.id
    );
    assert_eq!(testkit::execute(&mesh.db_url, &behind_its_back).await, 1);
    assert_eq!(mesh.get(&mug.id).await, mug, "served from the cache");

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
    testkit::assert_row_count(&mesh.db_url, "stock_adjustments", 2).await;
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
            ..Default::default()
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

/// Two product-svc replicas on one database and one Redis: a twin's write
/// reaches the other's reads at once (the cache is shared and the write
/// drops its entry), never after the cache's TTL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mariadb_and_redis_a_twins_write_is_read_at_once() {
    oms_telemetry::init_for_tests();
    let Some((db, prefix)) = testkit::backends::shared_by_twins().await else {
        return;
    };
    let shared = [("OMS_REDIS_KEY_PREFIX", prefix.as_str())];
    let mesh = start(&db, &shared).await;
    let twin = start_products(&db, &mesh.users, &shared, &mesh.bus).await;
    let read_by_twin = |id: String| {
        let mut client = oms_proto::product::v1::product_service_client::ProductServiceClient::new(
            twin.channel(),
        );
        async move {
            client
                .get_product(pb::GetProductRequest { product_id: id })
                .await
                .unwrap()
                .into_inner()
                .product
                .unwrap()
        }
    };
    let mug = mesh.create("TWIN-1", 1_000, 5).await;
    // The twin reads it (and caches it in the shared cache).
    assert_eq!(read_by_twin(mug.id.clone()).await.name, mug.name);
    mesh.catalogue()
        .update_product(bearer(
            pb::UpdateProductRequest {
                product: Some(pb::Product {
                    id: mug.id.clone(),
                    name: "Twin mug".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
            },
            &mesh.admin,
        ))
        .await
        .unwrap();
    assert_eq!(read_by_twin(mug.id.clone()).await.name, "Twin mug");
}
