//! `oms.product.v1.ProductService`: reads are public, writes need an admin.

use kit::FieldViolation;
use kit::auth::require_admin;
use kit::fields::AllFields as _;
use kit::money::Money;
use oms_proto::product::v1::{self as pb, product_service_server::ProductService};
use tonic::{Request, Response, Status};

use super::{State, money, to_proto_product};
use crate::catalogue::{NewProduct, ProductChanges};
use crate::error::ProductError;
use crate::input;

pub(super) struct ProductApi {
    pub(super) state: State,
}

/// The most units a product can be created with.
const MAX_INITIAL_STOCK: i64 = 1_000_000_000;

fn invalid(violations: Vec<FieldViolation>) -> Status {
    ProductError::Invalid(violations).into()
}

fn auth(e: kit::ApiError) -> Status {
    ProductError::Auth(e).into()
}

fn price(
    field: &str,
    raw: Option<&oms_proto::common::v1::Money>,
) -> Result<Money, Vec<FieldViolation>> {
    let Some(raw) = raw else {
        return Err(vec![FieldViolation::new(field, "is required")]);
    };
    Money::parse_price(field, &raw.currency_code, raw.amount_minor)
}

#[tonic::async_trait]
impl ProductService for ProductApi {
    #[tracing::instrument(skip_all, name = "CreateProduct")]
    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::CreateProductResponse>, Status> {
        let actor = require_admin(&request).map_err(auth)?;
        let Some(p) = request.into_inner().product else {
            return Err(invalid(vec![FieldViolation::new("product", "is required")]));
        };
        let sku = input::sku("product.sku", &p.sku);
        let name = input::name("product.name", &p.name);
        let description = input::description("product.description", &p.description);
        let price = price("product.price", p.price.as_ref());
        let stock = if (0..=MAX_INITIAL_STOCK).contains(&p.stock_on_hand) {
            Ok(p.stock_on_hand)
        } else {
            Err(FieldViolation::new(
                "product.stock_on_hand",
                "must be from 0 to 1000000000",
            ))
        };
        let (sku, name, description, price, stock_on_hand) = (sku, name, description, price, stock)
            .all_fields()
            .map_err(invalid)?;
        let new = NewProduct {
            sku,
            name,
            description,
            price,
            stock_on_hand,
        };
        let product = self.state.catalogue.create(new, &actor).await?;
        Ok(Response::new(pb::CreateProductResponse {
            product: Some(to_proto_product(product)),
        }))
    }

    #[tracing::instrument(skip_all, name = "GetProduct")]
    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        let id =
            input::uuid("product_id", &request.get_ref().product_id).map_err(ProductError::from)?;
        let product = self.state.catalogue.get(&id).await?;
        Ok(Response::new(pb::GetProductResponse {
            product: Some(to_proto_product(product)),
        }))
    }

    #[tracing::instrument(skip_all, name = "ListProducts")]
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let r = request.into_inner();
        let page_size = kit::paging::page_size(r.page_size);
        let cursor = kit::paging::decode_token(&r.page_token);
        let query = r.query.trim();
        let query_ok = if query.chars().count() > 200 {
            Err(FieldViolation::new(
                "query",
                "must be at most 200 characters",
            ))
        } else {
            Ok(())
        };
        let (page_size, cursor, ()) = (page_size, cursor, query_ok)
            .all_fields()
            .map_err(invalid)?;
        let query = (!query.is_empty()).then_some(query);
        let (products, next) = self
            .state
            .catalogue
            .list(query, r.include_archived, cursor.as_deref(), page_size)
            .await?;
        Ok(Response::new(pb::ListProductsResponse {
            products: products.into_iter().map(to_proto_product).collect(),
            next_page_token: next
                .as_deref()
                .map(kit::paging::encode_token)
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, name = "UpdateProduct")]
    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::UpdateProductResponse>, Status> {
        let actor = require_admin(&request).map_err(auth)?;
        let r = request.into_inner();
        let Some(p) = r.product else {
            return Err(invalid(vec![FieldViolation::new("product", "is required")]));
        };
        let mut violations = Vec::new();
        let id = input::uuid("product.id", &p.id)
            .map_err(|v| violations.push(v))
            .ok();
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            violations.push(FieldViolation::new(
                "update_mask",
                "must name the fields to change: name, description, price",
            ));
        }
        let mut changes = ProductChanges::default();
        for path in &paths {
            match path.as_str() {
                "name" => match input::name("product.name", &p.name) {
                    Ok(name) => changes.name = Some(name),
                    Err(v) => violations.push(v),
                },
                "description" => match input::description("product.description", &p.description) {
                    Ok(d) => changes.description = Some(d),
                    Err(v) => violations.push(v),
                },
                "price" => match price("product.price", p.price.as_ref()) {
                    Ok(m) => changes.price = Some(m),
                    Err(v) => violations.extend(v),
                },
                "id" | "sku" | "stock_on_hand" | "stock_reserved" | "stock_available" | "archived" | "create_time"
                | "update_time" => violations.push(FieldViolation::new(
                    "update_mask",
                    format!("{path} cannot be changed here (stock: AdjustStock; archiving: DeleteProduct)"),
                )),
                other => violations.push(FieldViolation::new("update_mask", format!("{other} is not a field of Product"))),
            }
        }
        let Some(id) = id.filter(|_| violations.is_empty()) else {
            return Err(invalid(violations));
        };
        let product = self.state.catalogue.update(&id, changes, &actor).await?;
        Ok(Response::new(pb::UpdateProductResponse {
            product: Some(to_proto_product(product)),
        }))
    }

    #[tracing::instrument(skip_all, name = "DeleteProduct")]
    async fn delete_product(
        &self,
        request: Request<pb::DeleteProductRequest>,
    ) -> Result<Response<pb::DeleteProductResponse>, Status> {
        require_admin(&request).map_err(auth)?;
        let id =
            input::uuid("product_id", &request.get_ref().product_id).map_err(ProductError::from)?;
        let product = self.state.catalogue.archive(&id).await?;
        Ok(Response::new(pb::DeleteProductResponse {
            product: Some(to_proto_product(product)),
        }))
    }

    #[tracing::instrument(skip_all, name = "ListPriceHistory")]
    async fn list_price_history(
        &self,
        request: Request<pb::ListPriceHistoryRequest>,
    ) -> Result<Response<pb::ListPriceHistoryResponse>, Status> {
        let r = request.into_inner();
        let (id, page_size, cursor) = (
            input::uuid("product_id", &r.product_id),
            kit::paging::page_size(r.page_size),
            kit::paging::decode_token(&r.page_token),
        )
            .all_fields()
            .map_err(invalid)?;
        let (prices, next) = self
            .state
            .catalogue
            .price_history(&id, cursor.as_deref(), page_size)
            .await?;
        Ok(Response::new(pb::ListPriceHistoryResponse {
            prices: prices
                .into_iter()
                .map(|p| pb::PricePoint {
                    price: money(&p.currency_code, p.amount_minor),
                    effective_time: Some(kit::time::to_timestamp(p.effective_time)),
                    changed_by: p.changed_by,
                })
                .collect(),
            next_page_token: next
                .as_deref()
                .map(kit::paging::encode_token)
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, name = "AdjustStock")]
    async fn adjust_stock(
        &self,
        request: Request<pb::AdjustStockRequest>,
    ) -> Result<Response<pb::AdjustStockResponse>, Status> {
        let actor = require_admin(&request).map_err(auth)?;
        let r = request.into_inner();
        let (id, delta, reason) = (
            input::uuid("product_id", &r.product_id),
            input::stock_delta("delta", r.delta),
            input::reason("reason", &r.reason),
        )
            .all_fields()
            .map_err(invalid)?;
        let product = self
            .state
            .catalogue
            .adjust_stock(&id, delta, &reason, &actor)
            .await?;
        Ok(Response::new(pb::AdjustStockResponse {
            product: Some(to_proto_product(product)),
        }))
    }
}
