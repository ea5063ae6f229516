//! The console's products: the list (search, available and reserved stock,
//! low stock marked), and one product: its price history as a chart, its
//! images, and for admins the forms to edit it, adjust its stock with a
//! reason, and add or remove images.

use axum::http::StatusCode;
use axum::response::Response;
use oms_proto::product::v1::{self as pb, product_service_client::ProductServiceClient};

use super::chart::{self, Point};
use super::session::Viewer;
use super::view::{self, escape, money, time};
use crate::Gateway;
use crate::backends::Service;

/// Stock available at or under this is marked low.
const LOW_STOCK: i64 = 5;

fn client(gateway: &Gateway) -> ProductServiceClient<oms_runtime::channel::Balanced> {
    ProductServiceClient::new(gateway.backends.channel(Service::Product))
}

fn stock_cell(available: i64) -> String {
    if available <= LOW_STOCK {
        format!(r#"<strong class="low">{available} <span class="tag">low</span></strong>"#)
    } else {
        available.to_string()
    }
}

/// `GET /console/products`.
pub(crate) async fn list(gateway: &Gateway, viewer: &Viewer, uri: &axum::http::Uri) -> Response {
    let q = view::query(uri);
    let search = q.get("q").map(|s| s.trim()).unwrap_or_default();
    let page = q.get("page").map(String::as_str).unwrap_or_default();
    let answer = client(gateway)
        .list_products(viewer.call(pb::ListProductsRequest {
            page_size: 25,
            page_token: page.to_owned(),
            query: search.to_owned(),
            include_archived: false,
        }))
        .await;
    let (products, next) = match answer {
        Ok(r) => {
            let r = r.into_inner();
            (r.products, r.next_page_token)
        }
        Err(status) => return view::refused(viewer, "products", &status),
    };
    let rows: String = if products.is_empty() {
        r#"<tr><td colspan="6" class="muted">No products match.</td></tr>"#.to_owned()
    } else {
        products
            .iter()
            .map(|p| {
                format!(
                    r#"<tr><td data-label="SKU"><code>{sku}</code></td><td data-label="Name"><a href="/console/products/{id}">{name}</a></td><td data-label="Price" class="num">{price}</td><td data-label="On hand" class="num">{on_hand}</td><td data-label="Reserved" class="num">{reserved}</td><td data-label="Available" class="num">{available}</td></tr>"#,
                    sku = escape(&p.sku),
                    id = escape(&p.id),
                    name = escape(&p.name),
                    price = money(p.price.as_ref()),
                    on_hand = p.stock_on_hand,
                    reserved = p.stock_reserved,
                    available = stock_cell(p.stock_available),
                )
            })
            .collect()
    };
    let pager = if next.is_empty() {
        String::new()
    } else {
        let encoded: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("q", search)
            .append_pair("page", &next)
            .finish();
        format!(
            r#"<nav class="pager" aria-label="Pages"><a href="/console/products?{}" rel="next">More products</a></nav>"#,
            escape(&encoded)
        )
    };
    let body = format!(
        r#"<form class="filters" method="get" action="/console/products" role="search" aria-label="Search products"><div><label for="q">Name or SKU contains</label><input id="q" name="q" type="search" value="{search}"></div><button type="submit">Search</button></form>
<p class="muted">Available stock of {LOW_STOCK} or less is marked <strong class="low"><span class="tag">low</span></strong>.</p>
<div class="table-wrap"><table class="cards"><thead><tr><th scope="col">SKU</th><th scope="col">Name</th><th scope="col" class="num">Price</th><th scope="col" class="num">On hand</th><th scope="col" class="num">Reserved</th><th scope="col" class="num">Available</th></tr></thead><tbody>{rows}</tbody></table></div>{pager}"#,
        search = escape(search),
    );
    view::page(StatusCode::OK, Some(viewer), "products", "Products", &body)
}

/// The price history, oldest first, for the chart (up to 200 changes).
async fn prices(
    gateway: &Gateway,
    viewer: &Viewer,
    id: &str,
) -> Result<Vec<pb::PricePoint>, tonic::Status> {
    let mut all = Vec::new();
    let mut token = String::new();
    for _ in 0..4 {
        let page = client(gateway)
            .list_price_history(viewer.call(pb::ListPriceHistoryRequest {
                product_id: id.to_owned(),
                page_size: 50,
                page_token: token,
            }))
            .await?
            .into_inner();
        all.extend(page.prices);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    all.reverse();
    Ok(all)
}

/// The most stock changes the chart shows.
const STOCK_CHANGES: i32 = 200;

/// Stock on hand after each of the newest changes, oldest first, from
/// what it was when the product was created when the history is whole.
async fn stock_points(
    gateway: &Gateway,
    viewer: &Viewer,
    product: &pb::Product,
) -> Result<Vec<Point>, tonic::Status> {
    let changes = client(gateway)
        .get_stock_history(viewer.call(pb::GetStockHistoryRequest {
            product_id: product.id.clone(),
            max_changes: STOCK_CHANGES,
        }))
        .await?
        .into_inner()
        .changes;
    let mut points: Vec<Point> = changes
        .iter()
        .rev()
        .filter_map(|c| {
            Some(Point {
                at: c.time.as_ref()?.seconds,
                value: c.stock_on_hand as f64,
            })
        })
        .collect();
    let whole = changes.len() < usize::try_from(STOCK_CHANGES).unwrap_or(usize::MAX);
    let first = changes
        .last()
        .map_or(product.stock_on_hand, |c| c.stock_on_hand - c.delta);
    if whole && let Some(created) = &product.create_time {
        points.insert(
            0,
            Point {
                at: created.seconds,
                value: first as f64,
            },
        );
    }
    Ok(points)
}

/// `GET /console/products/{id}`, with a notice after a change.
pub(crate) async fn detail(
    gateway: &Gateway,
    viewer: &Viewer,
    id: &str,
    notice: Option<&str>,
) -> Response {
    let product = match client(gateway)
        .get_product(viewer.call(pb::GetProductRequest {
            product_id: id.to_owned(),
        }))
        .await
    {
        Ok(r) => r.into_inner().product.unwrap_or_default(),
        Err(status) => return view::refused(viewer, "products", &status),
    };
    let history = match prices(gateway, viewer, id).await {
        Ok(history) => history,
        Err(status) => return view::refused(viewer, "products", &status),
    };
    let currency = product
        .price
        .as_ref()
        .map(|m| m.currency_code.clone())
        .unwrap_or_default();
    let points: Vec<Point> = history
        .iter()
        .filter_map(|p| {
            Some(Point {
                at: p.effective_time.as_ref()?.seconds,
                value: p.price.as_ref()?.amount_minor as f64 / 100.0,
            })
        })
        .collect();
    let stock_chart = if viewer.admin {
        match stock_points(gateway, viewer, &product).await {
            Ok(points) => format!(
                "<h2>Stock on hand</h2>{}",
                chart::steps("Stock on hand over time", "units", &points, |v| format!(
                    "{v:.0}"
                ))
            ),
            Err(status) => format!(
                r#"<h2>Stock on hand</h2><p class="error" role="alert">{}</p>"#,
                escape(status.message())
            ),
        }
    } else {
        String::new()
    };
    let price_chart = chart::steps("Price over time", &currency, &points, |v| format!("{v:.2}"));
    let images: String = product
        .images
        .iter()
        .map(|image| {
            let remove = if viewer.admin {
                format!(
                    r#"<form method="post" action="/console/products/{pid}/images/{iid}/delete"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" class="secondary">Remove</button></form>"#,
                    pid = escape(&product.id),
                    iid = escape(&image.id),
                    csrf = escape(&viewer.csrf),
                )
            } else {
                String::new()
            };
            let alt = if image.alt_text.is_empty() { format!("Image of {}", product.name) } else { image.alt_text.clone() };
            format!(
                r#"<li><img src="/v1/products/{pid}/images/{iid}/thumbnail" alt="{alt}" width="160" height="160" loading="lazy"><span class="muted">{w}×{h}{primary}</span>{remove}</li>"#,
                pid = escape(&product.id),
                iid = escape(&image.id),
                alt = escape(&alt),
                w = image.width,
                h = image.height,
                primary = if image.primary { " · primary" } else { "" },
            )
        })
        .collect();
    let images = if images.is_empty() {
        r#"<p class="muted">No images yet.</p><ul class="images" id="images"></ul>"#.to_owned()
    } else {
        format!(r#"<ul class="images" id="images">{images}</ul>"#)
    };
    let admin_forms = if viewer.admin {
        let price = product.price.as_ref().map_or(0, |m| m.amount_minor);
        format!(
            r#"<h2>Edit</h2><form method="post" action="/console/products/{id}/edit" class="stack"><input type="hidden" name="csrf" value="{csrf}"><label for="name">Name</label><input id="name" name="name" value="{name}" required maxlength="200"><label for="description">Description</label><textarea id="description" name="description" rows="3" maxlength="2000">{description}</textarea><label for="price">Price ({currency})</label><input id="price" name="price" inputmode="decimal" pattern="[0-9]+([.][0-9]{{1,2}})?" value="{price_major}.{price_minor:02}" required><p><button type="submit">Save</button></p></form>
<h2>Adjust stock</h2><form method="post" action="/console/products/{id}/stock" class="stack"><input type="hidden" name="csrf" value="{csrf}"><label for="delta">Change in units on hand (negative to remove)</label><input id="delta" name="delta" type="number" step="1" required><label for="stock-reason">Reason</label><input id="stock-reason" name="reason" required maxlength="500"><p><button type="submit">Adjust</button></p></form>
<h2>Add an image</h2><form id="upload" class="stack" data-product="{id}" data-csrf="{csrf}"><label for="file">Image (JPEG, PNG or WebP)</label><input id="file" name="file" type="file" accept="image/jpeg,image/png,image/webp" required><img id="upload-preview" class="preview" width="160" height="160" alt="" hidden><label for="alt">Alternative text</label><input id="alt" name="alt" maxlength="500"><p><button type="submit">Upload</button></p><progress id="upload-progress" max="100" value="0" hidden aria-label="Upload progress"></progress><p id="upload-status" role="status"></p></form>"#,
            id = escape(&product.id),
            csrf = escape(&viewer.csrf),
            name = escape(&product.name),
            description = escape(&product.description),
            currency = escape(&currency),
            price_major = price / 100,
            price_minor = price % 100,
        )
    } else {
        String::new()
    };
    let notice = notice.map_or_else(String::new, |n| {
        format!(r#"<p class="notice" role="status">{}</p>"#, escape(n))
    });
    let body = format!(
        r#"{notice}<dl class="facts"><dt>SKU</dt><dd><code>{sku}</code></dd><dt>Price</dt><dd>{price}</dd><dt>On hand</dt><dd>{on_hand}</dd><dt>Reserved</dt><dd>{reserved}</dd><dt>Available</dt><dd>{available}</dd><dt>Updated</dt><dd>{updated}</dd></dl><p>{description}</p>
<h2>Price history</h2>{price_chart}
{stock_chart}
<h2>Images</h2>{images}
{admin_forms}<p><a href="/console/products">Back to products</a></p>"#,
        sku = escape(&product.sku),
        price = money(product.price.as_ref()),
        on_hand = product.stock_on_hand,
        reserved = product.stock_reserved,
        available = stock_cell(product.stock_available),
        updated = time(product.update_time.as_ref()),
        description = escape(&product.description),
    );
    view::page(
        StatusCode::OK,
        Some(viewer),
        "products",
        &product.name,
        &body,
    )
}

/// A price typed by a person (`12`, `12.5`, `12.50`) in minor units.
fn minor_units(typed: &str) -> Option<i64> {
    let typed = typed.trim();
    let (major, minor) = typed.split_once('.').unwrap_or((typed, ""));
    if major.is_empty()
        || minor.len() > 2
        || !major
            .bytes()
            .chain(minor.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let minor: i64 = format!("{minor:0<2}").parse().ok()?;
    major
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(minor)
}

/// `POST /console/products/{id}/edit`: name, description, price.
pub(crate) async fn edit(
    gateway: &Gateway,
    viewer: &Viewer,
    id: &str,
    form: &[(String, String)],
) -> Response {
    let get = |k| crate::oauth2::param(form, k).unwrap_or_default();
    let Some(price) = minor_units(get("price")) else {
        return view::refused(
            viewer,
            "products",
            &tonic::Status::invalid_argument("price: a number such as 12.50"),
        );
    };
    let current = match client(gateway)
        .get_product(viewer.call(pb::GetProductRequest {
            product_id: id.to_owned(),
        }))
        .await
    {
        Ok(r) => r.into_inner().product.unwrap_or_default(),
        Err(status) => return view::refused(viewer, "products", &status),
    };
    let currency = current.price.map(|m| m.currency_code).unwrap_or_default();
    let update = pb::UpdateProductRequest {
        product: Some(pb::Product {
            id: id.to_owned(),
            name: get("name").to_owned(),
            description: get("description").to_owned(),
            price: Some(oms_proto::common::v1::Money {
                currency_code: currency,
                amount_minor: price,
            }),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["name".into(), "description".into(), "price".into()],
        }),
    };
    match client(gateway).update_product(viewer.call(update)).await {
        // Redirected, so reloading the page does not post again.
        Ok(_) => viewer.finish(view::redirect(&format!(
            "/console/products/{id}?done=saved"
        ))),
        Err(status) => view::refused(viewer, "products", &status),
    }
}

/// `POST /console/products/{id}/stock`: a change of stock on hand, with
/// its reason.
pub(crate) async fn adjust(
    gateway: &Gateway,
    viewer: &Viewer,
    id: &str,
    form: &[(String, String)],
) -> Response {
    let get = |k| crate::oauth2::param(form, k).unwrap_or_default();
    let Ok(delta) = get("delta").trim().parse::<i64>() else {
        return view::refused(
            viewer,
            "products",
            &tonic::Status::invalid_argument("delta: a whole number of units"),
        );
    };
    let request = pb::AdjustStockRequest {
        product_id: id.to_owned(),
        delta,
        reason: get("reason").to_owned(),
    };
    match client(gateway).adjust_stock(viewer.call(request)).await {
        Ok(_) => viewer.finish(view::redirect(&format!(
            "/console/products/{id}?done=adjusted&by={delta}"
        ))),
        Err(status) => view::refused(viewer, "products", &status),
    }
}

/// `POST /console/products/{id}/images/{image}/delete`.
pub(crate) async fn remove_image(
    gateway: &Gateway,
    viewer: &Viewer,
    id: &str,
    image: &str,
) -> Response {
    let request = pb::DeleteProductImageRequest {
        product_id: id.to_owned(),
        image_id: image.to_owned(),
    };
    match client(gateway)
        .delete_product_image(viewer.call(request))
        .await
    {
        Ok(_) => viewer.finish(view::redirect(&format!(
            "/console/products/{id}?done=image-removed"
        ))),
        Err(status) => view::refused(viewer, "products", &status),
    }
}

#[cfg(test)]
mod tests {
    use super::minor_units;

    #[test]
    fn prices_are_typed_as_people_type_them() {
        assert_eq!(minor_units("12"), Some(1200));
        assert_eq!(minor_units("12.5"), Some(1250));
        assert_eq!(minor_units(" 12.05 "), Some(1205));
        for bad in ["", "12.345", "-1", "1e3", "12,50", ".5"] {
            assert_eq!(minor_units(bad), None, "{bad}");
        }
    }
}
