//! Network-free tests of the CreateOrder saga and of recovery's state
//! table: the rules on a real SQLite file, product-svc replaced by an
//! in-memory inventory that fails exactly where a test says.

#![allow(clippy::unwrap_used)]

mod fake;
mod recovery;
mod saga;

use std::sync::Arc;

use testkit::TestDb;

use crate::inventory::Line;
use crate::orders::Orders;
use fake::FakeInventory;

/// The rules over a fresh database and a fake inventory.
struct Harness {
    orders: Orders,
    inventory: Arc<FakeInventory>,
    _db: TestDb,
}

async fn harness() -> Harness {
    let db = TestDb::sqlite();
    let conn = oms_store::db::connect_and_migrate::<crate::migration::Migrator>(
        db.url(),
        Default::default(),
    )
    .await
    .unwrap();
    let inventory = Arc::new(FakeInventory::default());
    Harness {
        orders: Orders::new(conn, inventory.clone(), Default::default()),
        inventory,
        _db: db,
    }
}

impl Harness {
    /// Alice places `lines` under `request_id`, with no deadline.
    async fn place(
        &self,
        request_id: &str,
        lines: Vec<Line>,
    ) -> Result<crate::model::Order, crate::error::OrderError> {
        let ctx = crate::inventory::CallContext::default();
        self.orders
            .create(&ctx, "alice", request_id, lines, None)
            .await
    }
}

fn line(product_id: &str, quantity: i32) -> Line {
    Line {
        product_id: product_id.to_owned(),
        quantity,
    }
}

/// The layering rule, checked: the rules, the port and the store speak no
/// wire type, and the store encodes no event (it is handed them through
/// `store::OrderEventSink`).
#[test]
fn the_saga_recovery_the_port_and_the_store_import_no_wire_types() {
    let store = [
        ("store/mod.rs", include_str!("../store/mod.rs")),
        ("store/orders.rs", include_str!("../store/orders.rs")),
        ("store/order.rs", include_str!("../store/order.rs")),
        (
            "store/order_line.rs",
            include_str!("../store/order_line.rs"),
        ),
    ];
    let rules = [
        ("orders.rs", include_str!("../orders.rs")),
        ("recovery.rs", include_str!("../recovery.rs")),
        ("inventory.rs", include_str!("../inventory.rs")),
        ("model.rs", include_str!("../model.rs")),
    ];
    for (file, source) in rules.iter().chain(&store) {
        for wire in ["tonic", "oms_proto", "prost"] {
            assert!(!source.contains(wire), "{file} mentions {wire}");
        }
    }
    for (file, source) in store {
        assert!(!source.contains("order_events"), "{file} encodes events");
    }
}
