//! The image RPCs of `oms.product.v1.ProductService`: uploads and changes
//! by admins, reads by anyone. The handlers live here, the trait impl in
//! `products.rs` forwards to them.

use std::pin::Pin;

use bytes::Bytes;
use futures_util::stream::{Stream, StreamExt as _};
use oms_proto::product::v1 as pb;
use oms_runtime::auth::require_admin;
use tonic::{Request, Response, Status, Streaming};

use super::State;
use crate::error::ProductError;
use crate::images::{DownloadBody, MAX_CHUNK, Variant};
use crate::input;
pub(super) use crate::wire::to_proto_image;

/// DownloadProductImage's answer.
pub(super) type DownloadStream =
    Pin<Box<dyn Stream<Item = Result<pb::DownloadProductImageResponse, Status>> + Send>>;

fn invalid(violations: Vec<oms_runtime::FieldViolation>) -> Status {
    ProductError::Invalid(violations).into()
}

pub(super) async fn upload(
    state: &State,
    request: Request<Streaming<pb::UploadProductImageRequest>>,
) -> Result<Response<pb::UploadProductImageResponse>, Status> {
    require_admin(&request).map_err(|e| Status::from(ProductError::Auth(e)))?;
    let mut messages = request.into_inner();
    use pb::upload_product_image_request::Part;
    let start = match messages.message().await? {
        Some(pb::UploadProductImageRequest {
            part: Some(Part::Start(start)),
        }) => input::upload_start(&start).map_err(invalid)?,
        _ => {
            return Err(invalid(vec![oms_runtime::FieldViolation::new(
                "start",
                "the first message must hold `start`",
            )]));
        }
    };
    let chunks = messages.map(|message| match message {
        Ok(pb::UploadProductImageRequest {
            part: Some(Part::Chunk(bytes)),
        }) => Ok(Bytes::from(bytes)),
        Ok(_) => Err(ProductError::from(oms_runtime::FieldViolation::new(
            "chunk",
            "every message after the first must hold `chunk`",
        ))),
        Err(status) => Err(ProductError::UploadInterrupted(status.message().to_owned())),
    });
    let image = state.images.upload(start, Box::pin(chunks)).await?;
    Ok(Response::new(pb::UploadProductImageResponse {
        image: Some(to_proto_image(image)),
    }))
}

pub(super) async fn list(
    state: &State,
    request: Request<pb::ListProductImagesRequest>,
) -> Result<Response<pb::ListProductImagesResponse>, Status> {
    let id =
        input::uuid("product_id", &request.get_ref().product_id).map_err(ProductError::from)?;
    // An unknown product is NOT_FOUND, not an empty list; the images come
    // with the (cached) product.
    let (_, images) = state.catalogue.get(&id).await?;
    Ok(Response::new(pb::ListProductImagesResponse {
        images: images.into_iter().map(to_proto_image).collect(),
    }))
}

pub(super) async fn download(
    state: &State,
    request: Request<pb::DownloadProductImageRequest>,
) -> Result<Response<DownloadStream>, Status> {
    let r = request.get_ref();
    let (product_id, image_id) = input::image_ref(&r.product_id, &r.image_id).map_err(invalid)?;
    let variant = match r.variant() {
        pb::ImageVariant::Thumbnail => Variant::Thumbnail,
        pb::ImageVariant::Unspecified | pb::ImageVariant::Original => Variant::Original,
    };
    let download = state
        .images
        .download(&product_id, &image_id, variant, &r.if_none_match)
        .await?;
    let mut info = pb::ImageDownloadInfo {
        content_type: download.content_type.to_owned(),
        byte_size: download.byte_size,
        sha256: download.sha256,
        presigned_url: String::new(),
        not_modified: false,
    };
    use pb::download_product_image_response::Part;
    let first = |info| {
        futures_util::stream::once(async move {
            Ok(pb::DownloadProductImageResponse {
                part: Some(Part::Info(info)),
            })
        })
    };
    let stream: DownloadStream = match download.body {
        DownloadBody::Presigned(url) => {
            info.presigned_url = url;
            Box::pin(first(info))
        }
        DownloadBody::NotModified => {
            info.not_modified = true;
            Box::pin(first(info))
        }
        DownloadBody::Bytes(bytes) => {
            let chunks = bytes.flat_map(|read| {
                let parts: Vec<Result<pb::DownloadProductImageResponse, Status>> = match read {
                    // The store's reads may be larger than a message.
                    Ok(bytes) => bytes
                        .chunks(MAX_CHUNK)
                        .map(|chunk| {
                            Ok(pb::DownloadProductImageResponse {
                                part: Some(Part::Chunk(chunk.to_vec())),
                            })
                        })
                        .collect(),
                    Err(e) => vec![Err(Status::from(ProductError::from(e)))],
                };
                futures_util::stream::iter(parts)
            });
            Box::pin(first(info).chain(chunks))
        }
    };
    Ok(Response::new(stream))
}

pub(super) async fn delete(
    state: &State,
    request: Request<pb::DeleteProductImageRequest>,
) -> Result<Response<pb::DeleteProductImageResponse>, Status> {
    require_admin(&request).map_err(|e| Status::from(ProductError::Auth(e)))?;
    let r = request.get_ref();
    let (product_id, image_id) = input::image_ref(&r.product_id, &r.image_id).map_err(invalid)?;
    state.images.delete(&product_id, &image_id).await?;
    Ok(Response::new(pb::DeleteProductImageResponse {}))
}

pub(super) async fn set_primary(
    state: &State,
    request: Request<pb::SetPrimaryImageRequest>,
) -> Result<Response<pb::SetPrimaryImageResponse>, Status> {
    require_admin(&request).map_err(|e| Status::from(ProductError::Auth(e)))?;
    let r = request.get_ref();
    let (product_id, image_id) = input::image_ref(&r.product_id, &r.image_id).map_err(invalid)?;
    let images = state.images.set_primary(&product_id, &image_id).await?;
    Ok(Response::new(pb::SetPrimaryImageResponse {
        images: images.into_iter().map(to_proto_image).collect(),
    }))
}
