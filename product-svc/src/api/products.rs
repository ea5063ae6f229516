//! `oms.product.v1.ProductService`: reads are public, writes need an admin.

use oms_proto::product::v1::{self as pb, product_service_server::ProductService};
use oms_runtime::FieldViolation;
use oms_runtime::auth::require_admin;
use tonic::{Request, Response, Status};

use super::images::{self, to_proto_image};
use super::{State, money, to_proto_product};
use crate::catalogue::NewProduct;
use crate::error::ProductError;
use crate::input::{self, PriceHistoryQuery, ProductQuery, ProductUpdate, StockAdjustment};

pub(super) struct ProductApi {
    pub(super) state: State,
}

fn invalid(violations: Vec<FieldViolation>) -> Status {
    ProductError::Invalid(violations).into()
}

fn auth(e: oms_runtime::ApiError) -> Status {
    ProductError::Auth(e).into()
}

#[tonic::async_trait]
impl ProductService for ProductApi {
    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> Result<Response<pb::CreateProductResponse>, Status> {
        let actor = require_admin(&request).map_err(auth)?;
        let new = NewProduct::try_from(request.into_inner()).map_err(invalid)?;
        let product = self.state.catalogue.create(new, &actor).await?;
        Ok(Response::new(pb::CreateProductResponse {
            product: Some(to_proto_product(product)),
        }))
    }

    async fn get_product(
        &self,
        request: Request<pb::GetProductRequest>,
    ) -> Result<Response<pb::GetProductResponse>, Status> {
        let id =
            input::uuid("product_id", &request.get_ref().product_id).map_err(ProductError::from)?;
        let (product, images) = self.state.catalogue.get(&id).await?;
        let mut product = to_proto_product(product);
        product.images = images.into_iter().map(to_proto_image).collect();
        Ok(Response::new(pb::GetProductResponse {
            product: Some(product),
        }))
    }

    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let query = ProductQuery::try_from(request.into_inner()).map_err(invalid)?;
        let (products, next) = self
            .state
            .catalogue
            .list(
                query.query.as_deref(),
                query.include_archived,
                query.cursor.as_deref(),
                query.page_size,
            )
            .await?;
        let ids: Vec<String> = products.iter().map(|p| p.id.clone()).collect();
        let mut images = self.state.images.list_many(&ids).await?;
        let products = products
            .into_iter()
            .map(|p| {
                let mut product = to_proto_product(p);
                product.images = images
                    .extract_if(.., |i| i.product_id == product.id)
                    .map(to_proto_image)
                    .collect();
                product
            })
            .collect();
        Ok(Response::new(pb::ListProductsResponse {
            products,
            next_page_token: next
                .as_deref()
                .map(oms_core::paging::encode_token)
                .unwrap_or_default(),
        }))
    }

    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> Result<Response<pb::UpdateProductResponse>, Status> {
        let actor = require_admin(&request).map_err(auth)?;
        let ProductUpdate { id, changes } =
            ProductUpdate::try_from(request.into_inner()).map_err(invalid)?;
        let product = self.state.catalogue.update(&id, changes, &actor).await?;
        Ok(Response::new(pb::UpdateProductResponse {
            product: Some(to_proto_product(product)),
        }))
    }

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

    async fn get_stock_history(
        &self,
        request: Request<pb::GetStockHistoryRequest>,
    ) -> Result<Response<pb::GetStockHistoryResponse>, Status> {
        require_admin(&request).map_err(auth)?;
        let r = request.into_inner();
        let (product_id, limit) = input::stock_history(&r).map_err(invalid)?;
        let changes = self
            .state
            .catalogue
            .stock_history(&product_id, limit)
            .await?;
        Ok(Response::new(pb::GetStockHistoryResponse {
            changes: changes
                .into_iter()
                .map(|c| pb::StockChange {
                    time: Some(oms_core::time::to_timestamp(c.time)),
                    kind: match c.kind {
                        crate::model::StockChangeKind::Adjustment => {
                            pb::stock_change::Kind::Adjustment
                        }
                        crate::model::StockChangeKind::Sold => pb::stock_change::Kind::Sold,
                        crate::model::StockChangeKind::Returned => pb::stock_change::Kind::Returned,
                    }
                    .into(),
                    delta: c.delta,
                    stock_on_hand: c.on_hand_after,
                    reason: c.reason,
                })
                .collect(),
        }))
    }

    async fn list_price_history(
        &self,
        request: Request<pb::ListPriceHistoryRequest>,
    ) -> Result<Response<pb::ListPriceHistoryResponse>, Status> {
        let query = PriceHistoryQuery::try_from(request.into_inner()).map_err(invalid)?;
        let (prices, next) = self
            .state
            .catalogue
            .price_history(&query.product_id, query.cursor.as_deref(), query.page_size)
            .await?;
        Ok(Response::new(pb::ListPriceHistoryResponse {
            prices: prices
                .into_iter()
                .map(|p| pb::PricePoint {
                    price: money(&p.currency_code, p.amount_minor),
                    effective_time: Some(oms_core::time::to_timestamp(p.effective_time)),
                    changed_by: p.changed_by,
                })
                .collect(),
            next_page_token: next
                .as_deref()
                .map(oms_core::paging::encode_token)
                .unwrap_or_default(),
        }))
    }

    async fn adjust_stock(
        &self,
        request: Request<pb::AdjustStockRequest>,
    ) -> Result<Response<pb::AdjustStockResponse>, Status> {
        let actor = require_admin(&request).map_err(auth)?;
        let adjustment = StockAdjustment::try_from(request.into_inner()).map_err(invalid)?;
        let product = self
            .state
            .catalogue
            .adjust_stock(
                &adjustment.product_id,
                adjustment.delta,
                &adjustment.reason,
                &actor,
            )
            .await?;
        Ok(Response::new(pb::AdjustStockResponse {
            product: Some(to_proto_product(product)),
        }))
    }

    async fn upload_product_image(
        &self,
        request: Request<tonic::Streaming<pb::UploadProductImageRequest>>,
    ) -> Result<Response<pb::UploadProductImageResponse>, Status> {
        images::upload(&self.state, request).await
    }

    async fn list_product_images(
        &self,
        request: Request<pb::ListProductImagesRequest>,
    ) -> Result<Response<pb::ListProductImagesResponse>, Status> {
        images::list(&self.state, request).await
    }

    async fn download_product_image(
        &self,
        request: Request<pb::DownloadProductImageRequest>,
    ) -> Result<Response<images::DownloadStream>, Status> {
        images::download(&self.state, request).await
    }

    async fn delete_product_image(
        &self,
        request: Request<pb::DeleteProductImageRequest>,
    ) -> Result<Response<pb::DeleteProductImageResponse>, Status> {
        images::delete(&self.state, request).await
    }

    async fn set_primary_image(
        &self,
        request: Request<pb::SetPrimaryImageRequest>,
    ) -> Result<Response<pb::SetPrimaryImageResponse>, Status> {
        images::set_primary(&self.state, request).await
    }
}
