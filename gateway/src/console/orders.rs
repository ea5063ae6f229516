//! The console's orders: the list (keyset pages, newest first, filtered by
//! status, customer and creation dates), one order with its lines and the
//! cancel form, and the live feed of statuses (WatchOrder streams merged
//! into one Server-Sent Events response).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use oms_proto::order::v1::{self as pb, order_service_client::OrderServiceClient};

use super::session::Viewer;
use super::view::{self, escape, money, time};
use crate::Gateway;
use crate::backends::Service;

/// The most orders one live feed follows.
const MAX_LIVE: usize = 50;

fn client(gateway: &Gateway) -> OrderServiceClient<oms_runtime::channel::Balanced> {
    OrderServiceClient::new(gateway.backends.channel(Service::Order))
}

/// A status's short name (`CONFIRMED`).
fn status_name(status: i32) -> &'static str {
    match pb::OrderStatus::try_from(status) {
        Ok(pb::OrderStatus::Pending) => "PENDING",
        Ok(pb::OrderStatus::Confirmed) => "CONFIRMED",
        Ok(pb::OrderStatus::Cancelled) => "CANCELLED",
        Ok(pb::OrderStatus::Shipped) => "SHIPPED",
        Ok(pb::OrderStatus::Delivered) => "DELIVERED",
        Ok(pb::OrderStatus::Failed) => "FAILED",
        _ => "UNKNOWN",
    }
}

const STATUSES: &[(&str, pb::OrderStatus)] = &[
    ("PENDING", pb::OrderStatus::Pending),
    ("CONFIRMED", pb::OrderStatus::Confirmed),
    ("SHIPPED", pb::OrderStatus::Shipped),
    ("DELIVERED", pb::OrderStatus::Delivered),
    ("CANCELLED", pb::OrderStatus::Cancelled),
    ("FAILED", pb::OrderStatus::Failed),
];

/// Whether an order in `status` may still change.
fn may_change(status: i32) -> bool {
    !matches!(
        pb::OrderStatus::try_from(status),
        Ok(pb::OrderStatus::Delivered | pb::OrderStatus::Cancelled | pb::OrderStatus::Failed)
    )
}

/// The end of an ID: UUIDv7s made in the same millisecond share their
/// start, not their random end.
fn short(id: &str) -> &str {
    id.get(id.len().saturating_sub(8)..).unwrap_or(id)
}

fn badge(status: i32) -> String {
    let name = status_name(status);
    format!(r#"<span class="badge status-{name}" data-status="{name}">{name}</span>"#)
}

/// `YYYY-MM-DD` at midnight in the viewer's zone (`tzo`: minutes west of
/// UTC, as JavaScript gives it), plus `days`.
fn day_start(date: &str, tzo: i64, days: i64) -> Option<prost_types::Timestamp> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let midnight = day.checked_add_days(chrono::Days::new(u64::try_from(days).ok()?))?;
    let utc = midnight.and_hms_opt(0, 0, 0)?.and_utc() + chrono::Duration::minutes(tzo);
    Some(oms_core::time::to_timestamp(utc))
}

fn row(order: &pb::Order) -> String {
    let live = if may_change(order.status) {
        " data-live"
    } else {
        ""
    };
    format!(
        r#"<tr data-order-id="{id}"{live}><td data-label="Order"><a href="/console/orders/{id}">{short}</a></td><td data-label="Customer"><code>{customer}</code></td><td data-label="Status" data-field="status">{badge}</td><td data-label="Total" class="num">{total}</td><td data-label="Lines" class="num">{lines}</td><td data-label="Created">{created}</td><td data-label="Updated" data-field="updated">{updated}</td></tr>"#,
        id = escape(&order.id),
        short = escape(short(&order.id)),
        customer = escape(short(&order.customer_id)),
        badge = badge(order.status),
        total = money(order.total.as_ref()),
        lines = order.lines.len(),
        created = time(order.create_time.as_ref()),
        updated = time(order.update_time.as_ref()),
    )
}

fn rows(orders: &[pb::Order]) -> String {
    if orders.is_empty() {
        return r#"<tr data-empty><td colspan="7" class="muted">No orders match.</td></tr>"#
            .to_owned();
    }
    orders.iter().map(row).collect()
}

/// `GET /console/orders` (and, with `rows=1`, just the table's rows for
/// `console.js` to pick new orders from).
pub(crate) async fn list(gateway: &Gateway, viewer: &Viewer, uri: &axum::http::Uri) -> Response {
    let q = view::query(uri);
    let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let tzo: i64 = get("tzo")
        .and_then(|v| v.parse().ok())
        .filter(|m: &i64| m.abs() <= 14 * 60)
        .unwrap_or(0);
    let status = get("status")
        .and_then(|s| STATUSES.iter().find(|(n, _)| *n == s))
        .map(|(_, st)| *st);
    let mut bad = Vec::new();
    let mut date = |name: &str, days: i64| match get(name) {
        None => None,
        Some(v) => {
            let parsed = day_start(v, tzo, days);
            if parsed.is_none() {
                bad.push(format!("{name} must be a date (YYYY-MM-DD)"));
            }
            parsed
        }
    };
    let request = pb::ListOrdersRequest {
        page_size: 25,
        page_token: get("page").unwrap_or_default().to_owned(),
        status: status.map_or(0, |s| s as i32),
        customer_id: get("customer").unwrap_or_default().to_owned(),
        create_time_start: date("from", 0),
        create_time_end: date("to", 1),
    };
    let answer = if bad.is_empty() {
        client(gateway)
            .list_orders(viewer.call(request))
            .await
            .map(tonic::Response::into_inner)
    } else {
        Err(tonic::Status::invalid_argument(bad.join("; ")))
    };
    let rows_only = get("rows").is_some();
    let (orders, next, error) = match answer {
        Ok(r) => (r.orders, r.next_page_token, None),
        Err(status) if rows_only => return view::failure(&status),
        Err(status) => (Vec::new(), String::new(), Some(status)),
    };
    if rows_only {
        let mut response = (
            StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
            rows(&orders),
        )
            .into_response();
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
        return viewer.finish(response);
    }
    let selected = |name: &str| {
        if get("status") == Some(name) {
            " selected"
        } else {
            ""
        }
    };
    let options: String = STATUSES
        .iter()
        .map(|(name, _)| {
            format!(
                r#"<option value="{name}"{}>{name}</option>"#,
                selected(name)
            )
        })
        .collect();
    let customer_filter = if viewer.admin {
        format!(
            r#"<div><label for="customer">Customer ID</label><input id="customer" name="customer" value="{}" size="38" pattern="[0-9a-fA-F-]{{36}}" title="a user ID"></div>"#,
            escape(get("customer").unwrap_or_default())
        )
    } else {
        String::new()
    };
    let error = error.map_or_else(String::new, |s| {
        format!(
            r#"<p class="error" role="alert">{}</p>"#,
            escape(s.message())
        )
    });
    // The live list is the first page of the current filters.
    let first_page = get("page").is_none();
    let mut refresh_query: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| *k != "page" && *k != "rows")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    refresh_query.push(("rows".into(), "1".into()));
    let refresh = if first_page {
        let encoded: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&refresh_query)
            .finish();
        format!(r#" data-refresh="/console/orders?{}""#, escape(&encoded))
    } else {
        String::new()
    };
    let mut pager = String::new();
    if !first_page {
        pager.push_str(r#"<a href="/console/orders">Newest</a>"#);
    }
    if !next.is_empty() {
        let mut next_query: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| *k != "page")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        next_query.push(("page".into(), next));
        let encoded: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&next_query)
            .finish();
        pager.push_str(&format!(
            r#"<a href="/console/orders?{}" rel="next">Older orders</a>"#,
            escape(&encoded)
        ));
    }
    let scope = if viewer.admin {
        "Every customer's orders"
    } else {
        "Your orders"
    };
    let body = format!(
        r#"<p class="muted">{scope}, newest first. Statuses change here as they happen.</p>
<form class="filters" method="get" action="/console/orders" data-tz role="search" aria-label="Filter orders">
<div><label for="status">Status</label><select id="status" name="status"><option value="">Any</option>{options}</select></div>
{customer_filter}
<div><label for="from">Created from</label><input id="from" name="from" type="date" value="{from}"></div>
<div><label for="to">Created until</label><input id="to" name="to" type="date" value="{to}"></div>
<input type="hidden" name="tzo" value="{tzo}">
<button type="submit">Filter</button>
</form>
{error}
<div class="new-orders">{new_orders}</div>
<div class="table-wrap"><table class="cards"><caption class="muted">Orders</caption><thead><tr><th scope="col">Order</th><th scope="col">Customer</th><th scope="col">Status</th><th scope="col" class="num">Total</th><th scope="col" class="num">Lines</th><th scope="col">Created</th><th scope="col">Updated</th></tr></thead><tbody{refresh}>{rows}</tbody></table></div>
<nav class="pager" aria-label="Pages">{pager}</nav>"#,
        from = escape(get("from").unwrap_or_default()),
        to = escape(get("to").unwrap_or_default()),
        rows = rows(&orders),
        new_orders = if first_page {
            r#"<button type="button" id="show-new-orders" class="secondary" hidden>Show new orders</button>"#
        } else {
            ""
        },
    );
    view::page(StatusCode::OK, Some(viewer), "orders", "Orders", &body)
}

/// `GET /console/orders/{id}`.
pub(crate) async fn detail(
    gateway: &Gateway,
    viewer: &Viewer,
    id: &str,
    notice: Option<&str>,
) -> Response {
    let order = match client(gateway)
        .get_order(viewer.call(pb::GetOrderRequest {
            order_id: id.to_owned(),
        }))
        .await
    {
        Ok(r) => r.into_inner().order.unwrap_or_default(),
        Err(status) => return view::refused(viewer, "orders", &status),
    };
    let lines: String = order
        .lines
        .iter()
        .map(|l| {
            format!(
                r#"<tr><td data-label="SKU"><code>{}</code></td><td data-label="Product">{}</td><td data-label="Quantity" class="num">{}</td><td data-label="Unit price" class="num">{}</td><td data-label="Line total" class="num">{}</td></tr>"#,
                escape(&l.sku),
                escape(&l.product_name),
                l.quantity,
                money(l.unit_price.as_ref()),
                money(l.line_total.as_ref())
            )
        })
        .collect();
    let cancellable = pb::OrderStatus::try_from(order.status) == Ok(pb::OrderStatus::Confirmed);
    let cancel = if cancellable {
        format!(
            r#"<details class="confirm"><summary>Cancel this order…</summary><form method="post" action="/console/orders/{id}/cancel"><input type="hidden" name="csrf" value="{csrf}"><p>The order is cancelled and its stock returned. This cannot be undone.</p><label for="reason">Reason</label><textarea id="reason" name="reason" rows="2" maxlength="500" required></textarea><p><button type="submit" class="danger">Yes, cancel the order</button></p></form></details>"#,
            id = escape(&order.id),
            csrf = escape(&viewer.csrf),
        )
    } else {
        String::new()
    };
    let notice = notice.map_or_else(String::new, |n| {
        format!(r#"<p class="notice" role="status">{}</p>"#, escape(n))
    });
    let live = if may_change(order.status) {
        " data-live"
    } else {
        ""
    };
    let body = format!(
        r#"{notice}<div data-order-id="{id}"{live}><dl class="facts"><dt>Order</dt><dd><code>{id}</code></dd><dt>Customer</dt><dd><code>{customer}</code></dd><dt>Status</dt><dd data-field="status">{badge}</dd><dt>Total</dt><dd>{total}</dd><dt>Prices</dt><dd>{prices}</dd></dl>
<h2>Lines</h2><div class="table-wrap"><table class="cards"><thead><tr><th scope="col">SKU</th><th scope="col">Product</th><th scope="col" class="num">Quantity</th><th scope="col" class="num">Unit price</th><th scope="col" class="num">Line total</th></tr></thead><tbody>{lines}</tbody></table></div>
<h2>Timeline</h2><ol class="timeline">{timeline}</ol><p class="muted" data-field="updated">Last change: {updated}</p></div>
{cancel}<p><a href="/console/orders">Back to orders</a></p>"#,
        id = escape(&order.id),
        customer = escape(&order.customer_id),
        badge = badge(order.status),
        total = money(order.total.as_ref()),
        updated = time(order.update_time.as_ref()),
        timeline = timeline(&order),
        prices = if order.quote_id.is_empty() {
            "as listed when it was placed".to_owned()
        } else {
            format!("held by quote <code>{}</code>", escape(&order.quote_id))
        },
    );
    view::page(
        StatusCode::OK,
        Some(viewer),
        "orders",
        &format!("Order {}", short(&order.id)),
        &body,
    )
}

/// The order's timeline: each status it reached, when, and why.
fn timeline(order: &pb::Order) -> String {
    order
        .timeline
        .iter()
        .map(|m| {
            let what = match pb::OrderStatus::try_from(m.status) {
                Ok(pb::OrderStatus::Pending) => "placed".to_owned(),
                _ => status_name(m.status).to_lowercase(),
            };
            let note = if m.note.is_empty() {
                String::new()
            } else {
                format!(" — {}", escape(&m.note))
            };
            format!(
                r#"<li>{} — {}{note}</li>"#,
                time(m.time.as_ref()),
                escape(&what)
            )
        })
        .collect()
}

/// `POST /console/orders/{id}/cancel`.
pub(crate) async fn cancel(
    gateway: &Gateway,
    viewer: &Viewer,
    id: &str,
    form: &[(String, String)],
) -> Response {
    let reason = crate::oauth2::param(form, "reason")
        .unwrap_or("cancelled in the console")
        .to_owned();
    match client(gateway)
        .cancel_order(viewer.call(pb::CancelOrderRequest {
            order_id: id.to_owned(),
            reason,
        }))
        .await
    {
        // Redirected, so reloading the page does not post again.
        Ok(_) => viewer.finish(view::redirect(&format!(
            "/console/orders/{id}?done=cancelled"
        ))),
        Err(status) => view::refused(viewer, "orders", &status),
    }
}

/// `GET /console/orders/live?ids=…`: each order's WatchOrder stream, as
/// one Server-Sent Events feed of `order` events.
pub(crate) async fn live(gateway: &Gateway, viewer: &Viewer, uri: &axum::http::Uri) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures_util::StreamExt as _;

    let q = view::query(uri);
    let ids: Vec<String> = q
        .get("ids")
        .map(|ids| {
            ids.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if ids.is_empty() || ids.len() > MAX_LIVE || ids.iter().any(|id| id.len() > 64) {
        return view::failure(&tonic::Status::invalid_argument(format!(
            "ids: 1 to {MAX_LIVE} order IDs"
        )));
    }
    let mut streams = Vec::new();
    for id in ids {
        let mut request = viewer.call(pb::WatchOrderRequest { order_id: id });
        request.set_timeout(std::time::Duration::from_secs(600));
        match client(gateway).watch_order(request).await {
            Ok(stream) => streams.push(stream.into_inner().boxed()),
            // One order the viewer may not watch (or that is gone) does
            // not stop the others.
            Err(status) => {
                tracing::debug!(code = ?status.code(), "console live feed: an order is not watched")
            }
        }
    }
    let events = futures_util::stream::select_all(streams).filter_map(|item| async move {
        let order = item.ok()?.order?;
        let data = serde_json::json!({
            "id": order.id,
            "status": status_name(order.status),
            "updateTime": order.update_time.as_ref().and_then(oms_core::time::from_timestamp).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        });
        Some(Ok::<_, std::convert::Infallible>(Event::default().event("order").data(data.to_string())))
    });
    viewer.finish(
        Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_filter_starts_at_the_viewers_midnight() {
        // UTC+2 (JavaScript's offset is -120): midnight there is 22:00 UTC
        // the day before.
        let t = day_start("2026-12-07", -120, 0).unwrap();
        let t = oms_core::time::from_timestamp(&t).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-06T22:00:00+00:00");
        let end = oms_core::time::from_timestamp(&day_start("2026-12-07", 0, 1).unwrap()).unwrap();
        assert_eq!(end.to_rfc3339(), "2026-12-08T00:00:00+00:00");
        assert!(day_start("07/12/2026", 0, 0).is_none());
    }
}
