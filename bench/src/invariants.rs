//! What must hold in the databases after any fault has healed, read
//! straight from product-svc's and order-svc's MariaDB databases (never
//! from the services' own answers): every unit of stock accounted for,
//! no order left half-done, no reservation held past its time, one order
//! per request ID, every acknowledged order stored; and with Kafka, read
//! from the order topic, every order's creation and final state published,
//! each change under one event ID only.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend, QueryResult, Statement};

use crate::BenchError;

/// How long recovery may take to settle every order after the load stops.
const SETTLE_WITHIN: Duration = Duration::from_secs(90);
/// How long the relay may take to publish the outbox once settled, and the
/// topic to be read back.
const PUBLISH_WITHIN: Duration = Duration::from_secs(60);

/// A line of an order or a reservation: product, quantity, unit price.
type Line = (String, i64, i64);

/// Where the two databases are.
pub struct Databases {
    server: DatabaseConnection,
    products: String,
    orders: String,
}

/// What the bench knows independently of the databases.
pub struct Expected<'a> {
    /// Each product's stock when it was created.
    pub initial_stock: &'a HashMap<String, i64>,
    /// Every order ID a client got back.
    pub acknowledged: &'a HashSet<String>,
    /// A RESERVED reservation this long past its expiry is a breach (the
    /// sweep runs more often).
    pub expiry_grace: Duration,
}

/// Counts that tell whether recovery has finished.
#[derive(Debug, PartialEq, Eq)]
struct Unsettled {
    pending_orders: i64,
    unreleased_orders: i64,
    overdue_reservations: i64,
}

impl Databases {
    /// Connects to `server_url` (no database) for the databases named.
    pub async fn connect(
        server_url: &str,
        products: &str,
        orders: &str,
    ) -> Result<Self, BenchError> {
        let server = sea_orm::Database::connect(server_url)
            .await
            .map_err(|e| BenchError::Setup(format!("cannot reach MariaDB: {e}")))?;
        Ok(Self {
            server,
            products: products.to_owned(),
            orders: orders.to_owned(),
        })
    }

    async fn rows(&self, sql: String) -> Result<Vec<QueryResult>, String> {
        self.server
            .query_all_raw(Statement::from_string(DbBackend::MySql, sql.clone()))
            .await
            .map_err(|e| format!("{sql}: {e}"))
    }

    async fn count(&self, sql: String) -> Result<i64, String> {
        let rows = self.rows(sql).await?;
        rows.first()
            .and_then(|r| r.try_get_by_index::<i64>(0).ok())
            .ok_or_else(|| "a count without a row".to_owned())
    }

    async fn unsettled(&self, grace: Duration) -> Result<Unsettled, String> {
        let (p, o) = (&self.products, &self.orders);
        Ok(Unsettled {
            pending_orders: self
                .count(format!(
                    "SELECT COUNT(*) FROM `{o}`.orders WHERE status = 'pending'"
                ))
                .await?,
            unreleased_orders: self
                .count(format!(
                    "SELECT COUNT(*) FROM `{o}`.orders \
                     WHERE status IN ('cancelled', 'failed') AND stock_released = 0"
                ))
                .await?,
            overdue_reservations: self
                .count(format!(
                    "SELECT COUNT(*) FROM `{p}`.reservations WHERE state = 'reserved' \
                     AND expire_time < UTC_TIMESTAMP(6) - INTERVAL {} SECOND",
                    grace.as_secs()
                ))
                .await?,
        })
    }

    /// Waits (polling, at most 90 s) until recovery has finished every
    /// order and the sweep every expired reservation; how long it took.
    pub async fn settle(&self, grace: Duration) -> Result<Duration, BenchError> {
        let began = Instant::now();
        let settled = Unsettled {
            pending_orders: 0,
            unreleased_orders: 0,
            overdue_reservations: 0,
        };
        loop {
            match self.unsettled(grace).await {
                Ok(state) if state == settled => return Ok(began.elapsed()),
                Ok(state) if began.elapsed() > SETTLE_WITHIN => {
                    eprintln!("  not settled within {SETTLE_WITHIN:?}: {state:?}");
                    return Ok(began.elapsed());
                }
                // MariaDB itself may be coming back.
                Err(e) if began.elapsed() > SETTLE_WITHIN => return Err(BenchError::Setup(e)),
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// Every breach of the invariants, each with its offending rows; empty
    /// when all hold.
    pub async fn breaches(&self, expected: &Expected<'_>) -> Result<Vec<String>, BenchError> {
        self.check(expected).await.map_err(BenchError::Setup)
    }

    async fn check(&self, expected: &Expected<'_>) -> Result<Vec<String>, String> {
        let (p, o) = (&self.products, &self.orders);
        let mut breaches = Vec::new();

        // Reservations with their lines: (state, [(product, quantity, price)]).
        let mut reservations: BTreeMap<String, (String, Vec<Line>)> = BTreeMap::new();
        for row in self
            .rows(format!(
                "SELECT r.id, r.state, l.product_id, CAST(l.quantity AS SIGNED), \
                 l.unit_price_minor FROM `{p}`.reservations r \
                 JOIN `{p}`.reservation_lines l ON l.reservation_id = r.id"
            ))
            .await?
        {
            let id: String = get(&row, 0)?;
            let state: String = get(&row, 1)?;
            let line = (get(&row, 2)?, get(&row, 3)?, get(&row, 4)?);
            reservations
                .entry(id)
                .or_insert((state, Vec::new()))
                .1
                .push(line);
        }

        // 1. Every unit of stock: reserved = what RESERVED reservations
        //    hold; taken from stock = what COMMITTED ones hold (a
        //    cancellation releases its reservation and gives the units back).
        let mut held: HashMap<&str, i64> = HashMap::new();
        let mut taken: HashMap<&str, i64> = HashMap::new();
        for (state, lines) in reservations.values() {
            let into = match state.as_str() {
                "reserved" => &mut held,
                "committed" => &mut taken,
                _ => continue,
            };
            for (product, quantity, _) in lines {
                *into.entry(product.as_str()).or_default() += quantity;
            }
        }
        for row in self
            .rows(format!(
                "SELECT id, stock_on_hand, stock_reserved FROM `{p}`.products"
            ))
            .await?
        {
            let id: String = get(&row, 0)?;
            let (on_hand, reserved): (i64, i64) = (get(&row, 1)?, get(&row, 2)?);
            let Some(initial) = expected.initial_stock.get(&id) else {
                continue;
            };
            let (held, taken) = (
                held.get(id.as_str()).copied().unwrap_or(0),
                taken.get(id.as_str()).copied().unwrap_or(0),
            );
            if reserved != held || initial - on_hand != taken {
                breaches.push(format!(
                    "stock of product {id}: initial {initial}, on hand {on_hand}, reserved {reserved}; \
                     RESERVED reservations hold {held}, COMMITTED ones took {taken}"
                ));
            }
        }

        // Orders with their lines.
        let mut orders: BTreeMap<String, (String, i64)> = BTreeMap::new();
        for row in self
            .rows(format!(
                "SELECT id, status, CAST(attempt AS SIGNED) FROM `{o}`.orders"
            ))
            .await?
        {
            orders.insert(get(&row, 0)?, (get(&row, 1)?, get(&row, 2)?));
        }
        let mut order_lines: HashMap<String, Vec<Line>> = HashMap::new();
        for row in self
            .rows(format!(
                "SELECT order_id, product_id, CAST(quantity AS SIGNED), unit_price_minor \
                 FROM `{o}`.order_lines"
            ))
            .await?
        {
            order_lines.entry(get(&row, 0)?).or_default().push((
                get(&row, 1)?,
                get(&row, 2)?,
                get(&row, 3)?,
            ));
        }
        let kept = |status: &str| matches!(status, "confirmed" | "shipped" | "delivered");

        // 2. Nothing half-done once recovery has run.
        let unsettled = self.unsettled(expected.expiry_grace).await?;
        if unsettled.pending_orders > 0 {
            breaches.push(format!(
                "{} orders still PENDING after recovery: {:?}",
                unsettled.pending_orders,
                orders
                    .iter()
                    .filter(|(_, (s, _))| s == "pending")
                    .map(|(id, _)| id)
                    .take(10)
                    .collect::<Vec<_>>()
            ));
        }
        if unsettled.unreleased_orders > 0 {
            breaches.push(format!(
                "{} cancelled or failed orders still marked as maybe holding stock",
                unsettled.unreleased_orders
            ));
        }
        if unsettled.overdue_reservations > 0 {
            breaches.push(format!(
                "{} reservations RESERVED past their expiry plus {:?}",
                unsettled.overdue_reservations, expected.expiry_grace
            ));
        }

        // 3. A kept order has its committed reservation, same lines and
        //    prices; a committed reservation has its kept order.
        for (id, (status, attempt)) in &orders {
            if !kept(status) {
                continue;
            }
            let reservation_id = format!("{id}-{attempt}");
            match reservations.get(&reservation_id) {
                Some((state, lines)) if state == "committed" => {
                    let mut want = order_lines.get(id).cloned().unwrap_or_default();
                    let mut have = lines.clone();
                    want.sort();
                    have.sort();
                    if want != have {
                        breaches.push(format!(
                            "order {id} ({status}) has lines {want:?}, its reservation {have:?}"
                        ));
                    }
                }
                Some((state, _)) => breaches.push(format!(
                    "order {id} is {status} but its reservation {reservation_id} is {state}"
                )),
                None => breaches.push(format!(
                    "order {id} is {status} without its reservation {reservation_id}"
                )),
            }
        }
        for (reservation_id, (state, _)) in &reservations {
            if state != "committed" {
                continue;
            }
            let order = reservation_id
                .rsplit_once('-')
                .and_then(|(id, attempt)| Some((orders.get(id)?, attempt)));
            match order {
                Some(((status, attempt), a)) if kept(status) && attempt.to_string() == a => {}
                Some(((status, _), _)) => breaches.push(format!(
                    "reservation {reservation_id} is committed but its order is {status}"
                )),
                None => breaches.push(format!(
                    "reservation {reservation_id} is committed without an order"
                )),
            }
        }

        // 4. Every order a client was told about is stored.
        let missing: Vec<&String> = expected
            .acknowledged
            .iter()
            .filter(|id| !orders.contains_key(*id))
            .take(10)
            .collect();
        if !missing.is_empty() {
            breaches.push(format!(
                "orders acknowledged to clients but not stored: {missing:?}"
            ));
        }

        // 5. One order per (customer, request ID).
        for row in self
            .rows(format!(
                "SELECT customer_id, request_id, COUNT(*) FROM `{o}`.orders \
                 GROUP BY customer_id, request_id HAVING COUNT(*) > 1 LIMIT 10"
            ))
            .await?
        {
            let (customer, request, count): (String, String, i64) =
                (get(&row, 0)?, get(&row, 1)?, get(&row, 2)?);
            breaches.push(format!(
                "request {request} of customer {customer} produced {count} orders"
            ));
        }
        Ok(breaches)
    }
}

impl Databases {
    /// Waits until order-svc's outbox is published, reads the order topic
    /// back from `brokers`, and checks it against the orders table: how
    /// many events it read, and the breaches. Events missing already
    /// (`lost`, reported after an earlier fault) are not breaches again;
    /// newly missing ones are added to it.
    pub async fn event_breaches(
        &self,
        brokers: &str,
        lost: &mut HashSet<(String, String)>,
    ) -> Result<(usize, Vec<String>), BenchError> {
        let o = &self.orders;
        let began = Instant::now();
        let unpublished = format!("SELECT COUNT(*) FROM `{o}`.outbox");
        loop {
            match self.count(unpublished.clone()).await {
                Ok(0) => break,
                Ok(n) if began.elapsed() > PUBLISH_WITHIN => {
                    return Ok((
                        0,
                        vec![format!(
                            "{n} order events still unpublished {PUBLISH_WITHIN:?} after settling"
                        )],
                    ));
                }
                Err(e) if began.elapsed() > PUBLISH_WITHIN => return Err(BenchError::Setup(e)),
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
        let mut statuses = BTreeMap::new();
        for row in self
            .rows(format!("SELECT id, status FROM `{o}`.orders"))
            .await
            .map_err(BenchError::Setup)?
        {
            let id: String = get(&row, 0).map_err(BenchError::Setup)?;
            let status: String = get(&row, 1).map_err(BenchError::Setup)?;
            statuses.insert(id, status);
        }
        let wanted = wanted_events(&statuses);
        let events =
            crate::broker::read_topic(brokers, events::ORDER_TOPIC, &wanted, PUBLISH_WITHIN)
                .await?;
        let (mut missing, mut breaches) = event_breaches(&wanted, &events);
        missing.retain(|pair| !lost.contains(pair));
        lost.extend(missing.iter().cloned());
        if !missing.is_empty() {
            // The outbox is empty by now (the relay deletes a row once
            // the broker acknowledged it): each of these was acknowledged
            // and then lost, or never written.
            let shown: Vec<String> = missing
                .iter()
                .take(10)
                .map(|(id, kind)| format!("{id} {kind}"))
                .collect();
            breaches.insert(
                0,
                format!(
                    "{} order events not on the topic, though none is left in the outbox, e.g. {}",
                    missing.len(),
                    shown.join("; ")
                ),
            );
        }
        Ok((events.len(), breaches))
    }
}

/// The (order ID, event type) pairs the topic must hold: every order's
/// creation, and the event of the state it ended in.
pub fn wanted_events(statuses: &BTreeMap<String, String>) -> HashSet<(String, String)> {
    let mut wanted = HashSet::new();
    for (id, status) in statuses {
        wanted.insert((id.clone(), "oms.order.v1.OrderCreated".to_owned()));
        let last = match status.as_str() {
            "confirmed" => "oms.order.v1.OrderConfirmed",
            "cancelled" => "oms.order.v1.OrderCancelled",
            "failed" => "oms.order.v1.OrderFailed",
            _ => continue,
        };
        wanted.insert((id.clone(), last.to_owned()));
    }
    wanted
}

/// What is missing from `events` (sorted), and a breach for every change
/// of an order published under more than one event ID (a redelivery
/// repeats its ID; a change written twice would not).
pub fn event_breaches(
    wanted: &HashSet<(String, String)>,
    events: &[crate::broker::TopicEvent],
) -> (Vec<(String, String)>, Vec<String>) {
    let mut ids: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for event in events {
        ids.entry((event.key.as_str(), event.event_type.as_str()))
            .or_default()
            .insert(event.id.as_str());
    }
    let mut breaches = Vec::new();
    let mut missing: Vec<(String, String)> = wanted
        .iter()
        .filter(|(key, kind)| !ids.contains_key(&(key.as_str(), kind.as_str())))
        .cloned()
        .collect();
    missing.sort();
    for ((key, kind), event_ids) in &ids {
        if event_ids.len() > 1 && wanted.contains(&((*key).to_owned(), (*kind).to_owned())) {
            breaches.push(format!(
                "order {key}: {kind} published as {} different events {event_ids:?}",
                event_ids.len()
            ));
        }
    }
    (missing, breaches)
}

fn get<T: sea_orm::TryGetable>(row: &QueryResult, index: usize) -> Result<T, String> {
    row.try_get_by_index(index)
        .map_err(|e| format!("column {index}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::TopicEvent;

    fn event(key: &str, kind: &str, id: &str) -> TopicEvent {
        TopicEvent {
            key: key.to_owned(),
            event_type: format!("oms.order.v1.{kind}"),
            id: id.to_owned(),
        }
    }

    #[test]
    fn every_order_needs_its_creation_and_final_state_each_under_one_event_id() {
        let statuses: BTreeMap<String, String> = [
            ("a", "confirmed"),
            ("b", "cancelled"),
            ("c", "failed"),
            ("d", "shipped"),
        ]
        .map(|(id, status)| (id.to_owned(), status.to_owned()))
        .into();
        let wanted = wanted_events(&statuses);
        assert_eq!(wanted.len(), 7, "{wanted:?}");

        let complete = vec![
            event("a", "OrderCreated", "1"),
            event("a", "OrderConfirmed", "2"),
            // A redelivery repeats its event ID: not a breach.
            event("a", "OrderConfirmed", "2"),
            event("b", "OrderCreated", "3"),
            event("b", "OrderConfirmed", "4"),
            event("b", "OrderCancelled", "5"),
            event("c", "OrderCreated", "6"),
            event("c", "OrderFailed", "7"),
            event("d", "OrderCreated", "8"),
        ];
        assert_eq!(event_breaches(&wanted, &complete), (Vec::new(), Vec::new()));

        let mut damaged = complete;
        damaged.retain(|e| !(e.key == "c" && e.event_type.ends_with("OrderFailed")));
        damaged.push(event("b", "OrderCancelled", "9"));
        let (missing, breaches) = event_breaches(&wanted, &damaged);
        assert_eq!(
            missing,
            vec![("c".to_owned(), "oms.order.v1.OrderFailed".to_owned())]
        );
        assert_eq!(breaches.len(), 1, "{breaches:?}");
        assert!(breaches[0].contains("order b"), "{breaches:?}");
    }
}
