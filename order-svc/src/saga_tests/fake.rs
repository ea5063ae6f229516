//! An inventory in memory: products with a price and stock, reservations
//! with their state, and scripted failures per operation.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::inventory::{
    CallContext, Inventory, InventoryError, Line, Price, QuoteUse, Refusal, RefusalKind,
    Reservation, ReservationState, ReservedLine, Unavailable,
};

/// An inventory operation, to script a failure on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Op {
    Take,
    Release,
    Get,
}

#[derive(Debug, Default)]
struct State {
    /// product id → (price, units available).
    products: HashMap<String, (Price, i64)>,
    reservations: HashMap<String, Reservation>,
    /// The next call of an operation fails with this, once.
    failures: HashMap<Op, InventoryError>,
    /// The next call of an operation takes effect, then its answer is lost
    /// with this error, once.
    lost_answers: HashMap<Op, InventoryError>,
    /// Every call made, in order, with its reservation ID.
    calls: Vec<(Op, String)>,
}

#[derive(Debug, Default)]
pub(super) struct FakeInventory {
    state: Mutex<State>,
}

pub(super) fn unavailable() -> InventoryError {
    InventoryError::Unavailable(Unavailable {
        timed_out: false,
        message: "fake inventory down".to_owned(),
    })
}

pub(super) fn refused(kind: RefusalKind, message: &str) -> InventoryError {
    InventoryError::Refused(Refusal {
        kind,
        message: message.to_owned(),
        details: b"opaque details".to_vec(),
    })
}

impl FakeInventory {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub(super) fn add_product(&self, id: &str, currency: &str, price: i64, stock: i64) {
        let price = Price {
            currency_code: currency.to_owned(),
            amount_minor: price,
        };
        self.state().products.insert(id.to_owned(), (price, stock));
    }

    pub(super) fn available(&self, id: &str) -> i64 {
        self.state().products[id].1
    }

    /// The next `op` fails with `error`.
    pub(super) fn fail_next(&self, op: Op, error: InventoryError) {
        self.state().failures.insert(op, error);
    }

    /// The next `op` takes effect, but its caller gets `error`.
    pub(super) fn lose_next_answer(&self, op: Op, error: InventoryError) {
        self.state().lost_answers.insert(op, error);
    }

    pub(super) fn calls(&self, op: Op) -> Vec<String> {
        self.state()
            .calls
            .iter()
            .filter(|(o, _)| *o == op)
            .map(|(_, id)| id.clone())
            .collect()
    }

    pub(super) fn reservation(&self, id: &str) -> Option<Reservation> {
        self.state().reservations.get(id).cloned()
    }

    /// Puts a reservation in `state` directly, as if a crashed saga had
    /// left it there; RESERVED and COMMITTED ones hold their units.
    pub(super) fn put(&self, id: &str, state: ReservationState, lines: &[Line]) {
        let mut s = self.state();
        let lines: Vec<ReservedLine> = lines
            .iter()
            .map(|l| reserved_line(&s.products, l))
            .collect();
        if matches!(
            state,
            ReservationState::Reserved | ReservationState::Committed
        ) {
            for line in &lines {
                if let Some(product) = s.products.get_mut(&line.product_id) {
                    product.1 -= i64::from(line.quantity);
                }
            }
        }
        s.reservations.insert(
            id.to_owned(),
            Reservation {
                id: id.to_owned(),
                state,
                lines,
            },
        );
    }

    fn begin(&self, op: Op, id: &str) -> Result<std::sync::MutexGuard<'_, State>, InventoryError> {
        let mut s = self.state();
        s.calls.push((op, id.to_owned()));
        match s.failures.remove(&op) {
            Some(error) => Err(error),
            None => Ok(s),
        }
    }
}

fn reserved_line(products: &HashMap<String, (Price, i64)>, line: &Line) -> ReservedLine {
    let (price, _) = &products[&line.product_id];
    ReservedLine {
        product_id: line.product_id.clone(),
        sku: format!("SKU-{}", &line.product_id),
        name: format!("Product {}", &line.product_id),
        quantity: line.quantity,
        unit_price: price.clone(),
    }
}

fn give_back(s: &mut State, reservation: &Reservation) {
    for line in &reservation.lines {
        if let Some(product) = s.products.get_mut(&line.product_id) {
            product.1 += i64::from(line.quantity);
        }
    }
}

#[async_trait::async_trait]
impl Inventory for FakeInventory {
    async fn take(
        &self,
        _ctx: &CallContext,
        reservation_id: &str,
        lines: &[Line],
        _quote: Option<&QuoteUse>,
    ) -> Result<Reservation, InventoryError> {
        let mut s = self.begin(Op::Take, reservation_id)?;
        if let Some(existing) = s.reservations.get(reservation_id) {
            return match existing.state {
                ReservationState::Committed => Ok(existing.clone()),
                _ => Err(refused(
                    RefusalKind::FailedPrecondition,
                    "reservation no longer held",
                )),
            };
        }
        for line in lines {
            match s.products.get(&line.product_id) {
                None => return Err(refused(RefusalKind::NotFound, "no such product")),
                Some((_, stock)) if *stock < i64::from(line.quantity) => {
                    return Err(refused(
                        RefusalKind::FailedPrecondition,
                        "insufficient stock",
                    ));
                }
                Some(_) => {}
            }
        }
        let reserved: Vec<ReservedLine> = lines
            .iter()
            .map(|l| reserved_line(&s.products, l))
            .collect();
        for line in lines {
            if let Some(product) = s.products.get_mut(&line.product_id) {
                product.1 -= i64::from(line.quantity);
            }
        }
        let reservation = Reservation {
            id: reservation_id.to_owned(),
            state: ReservationState::Committed,
            lines: reserved,
        };
        s.reservations
            .insert(reservation_id.to_owned(), reservation.clone());
        match s.lost_answers.remove(&Op::Take) {
            Some(error) => Err(error),
            None => Ok(reservation),
        }
    }

    async fn release(
        &self,
        _ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<(), InventoryError> {
        let mut s = self.begin(Op::Release, reservation_id)?;
        let Some(reservation) = s.reservations.get(reservation_id).cloned() else {
            return Ok(());
        };
        if matches!(
            reservation.state,
            ReservationState::Reserved | ReservationState::Committed
        ) {
            give_back(&mut s, &reservation);
            if let Some(r) = s.reservations.get_mut(reservation_id) {
                r.state = ReservationState::Released;
            }
        }
        Ok(())
    }

    async fn get(
        &self,
        _ctx: &CallContext,
        reservation_id: &str,
    ) -> Result<Option<Reservation>, InventoryError> {
        let s = self.begin(Op::Get, reservation_id)?;
        Ok(s.reservations.get(reservation_id).cloned())
    }
}
