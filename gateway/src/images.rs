//! Product images over HTTP, where JSON does not fit: `PUT
//! /v1/products/{product_id}/images` streams the raw body into the
//! client-streaming UploadProductImage (never holding the whole image),
//! and `GET /v1/products/{product_id}/images/{image_id}` (and
//! `…/thumbnail`) streams DownloadProductImage's bytes with an ETag,
//! immutable caching and 304s, or redirects to a presigned URL.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use futures_util::stream;
use oms_proto::product::v1 as pb;
use oms_proto::product::v1::product_service_client::ProductServiceClient;

use crate::Gateway;
use crate::backends::Service;
use crate::error;

/// The largest upload the gateway passes on.
pub(crate) const UPLOAD_MAX: usize = oms_core::uploads::MAX_UPLOAD;
/// Bytes per upload message, as product-svc takes them.
const CHUNK: usize = oms_core::uploads::MAX_CHUNK;
/// How long an upload or download may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(120);
fn with_metadata<T>(
    gateway: &Gateway,
    message: T,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    crate::proxy::forward(gateway, &mut request, headers, peer);
    request.set_timeout(TRANSFER_TIMEOUT);
    request
}

fn client(gateway: &Gateway) -> ProductServiceClient<oms_runtime::channel::Balanced> {
    ProductServiceClient::new(gateway.backends.channel(Service::Product))
}

/// `PUT /v1/products/{product_id}/images?altText=…` with the image as the
/// body and its type as `Content-Type`.
pub(crate) async fn upload(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(product_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let start = pb::UploadProductImageRequest {
        part: Some(pb::upload_product_image_request::Part::Start(
            pb::ImageUploadStart {
                product_id,
                content_type,
                alt_text: query.get("altText").cloned().unwrap_or_default(),
            },
        )),
    };
    // The body as it arrives, in messages of at most CHUNK bytes. A body
    // that breaks off never ends the stream: product-svc must not take a
    // cut image for a whole one, so the call ends by cancellation instead.
    let chunks = body.into_data_stream().flat_map(|frame| match frame {
        Ok(bytes) => stream::iter(split(bytes)).left_stream(),
        Err(_) => stream::pending().right_stream(),
    });
    let messages = stream::once(async { start }).chain(chunks);
    match client(&gateway)
        .upload_product_image(with_metadata(&gateway, messages, &headers, peer))
        .await
    {
        Ok(answer) => match crate::transcode::message_json(
            &gateway.descriptors,
            "oms.product.v1.UploadProductImageResponse",
            answer.get_ref(),
        ) {
            Ok(json) => (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/json")],
                json,
            )
                .into_response(),
            Err(e) => error::from_status(&tonic::Status::internal(e)),
        },
        Err(status) => error::from_call_failure(&status),
    }
}

fn split(bytes: Bytes) -> Vec<pb::UploadProductImageRequest> {
    let mut parts = Vec::with_capacity(bytes.len() / CHUNK + 1);
    let mut rest = bytes;
    while !rest.is_empty() {
        let piece = rest.split_to(rest.len().min(CHUNK));
        parts.push(pb::UploadProductImageRequest {
            part: Some(pb::upload_product_image_request::Part::Chunk(
                piece.to_vec(),
            )),
        });
    }
    parts
}

/// `GET /v1/products/{product_id}/images/{image_id}`.
pub(crate) async fn download(
    state: State<Arc<Gateway>>,
    peer: ConnectInfo<SocketAddr>,
    Path((product_id, image_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve(
        state,
        peer,
        product_id,
        image_id,
        pb::ImageVariant::Original,
        headers,
    )
    .await
}

/// `GET /v1/products/{product_id}/images/{image_id}/thumbnail`.
pub(crate) async fn thumbnail(
    state: State<Arc<Gateway>>,
    peer: ConnectInfo<SocketAddr>,
    Path((product_id, image_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    serve(
        state,
        peer,
        product_id,
        image_id,
        pb::ImageVariant::Thumbnail,
        headers,
    )
    .await
}

async fn serve(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    product_id: String,
    image_id: String,
    variant: pb::ImageVariant,
    headers: HeaderMap,
) -> Response {
    // The ETag decides a 304 in product-svc, before any byte is read.
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request = pb::DownloadProductImageRequest {
        product_id,
        image_id,
        variant: variant.into(),
        if_none_match,
    };
    let mut messages = match client(&gateway)
        .download_product_image(with_metadata(&gateway, request, &headers, peer))
        .await
    {
        Ok(answer) => answer.into_inner(),
        Err(status) => return error::from_call_failure(&status),
    };
    use pb::download_product_image_response::Part;
    let info = match messages.message().await {
        Ok(Some(pb::DownloadProductImageResponse {
            part: Some(Part::Info(info)),
        })) => info,
        Ok(_) => {
            return error::from_status(&tonic::Status::internal(
                "a download that did not start with its info",
            ));
        }
        Err(status) => return error::from_call_failure(&status),
    };
    // The bytes of one image never change (its key is their hash), so a
    // client may keep them for good.
    let etag = format!("\"{}\"", info.sha256);
    let cache = [
        (header::ETAG, etag.clone()),
        (
            header::CACHE_CONTROL,
            "public, max-age=31536000, immutable".to_owned(),
        ),
    ];
    if !info.presigned_url.is_empty() {
        return match HeaderValue::from_str(&info.presigned_url) {
            Ok(location) => (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
                .into_response(),
            Err(_) => error::from_status(&tonic::Status::internal("an unusable presigned URL")),
        };
    }
    if info.not_modified {
        return nosniff((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let bytes = messages.filter_map(|message| async move {
        match message {
            Ok(pb::DownloadProductImageResponse {
                part: Some(Part::Chunk(chunk)),
            }) => Some(Ok(Bytes::from(chunk))),
            Ok(_) => None,
            // Mid-body the status is sent: the connection ends short of
            // Content-Length, which a client sees as a failed download.
            Err(status) => Some(Err(std::io::Error::other(status.message().to_owned()))),
        }
    });
    let mut response = (StatusCode::OK, cache, Body::from_stream(bytes)).into_response();
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&info.content_type) {
        response_headers.insert(header::CONTENT_TYPE, value);
    }
    response_headers.insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(info.byte_size.max(0) as u64),
    );
    nosniff(response)
}

/// Image bytes are served with the type they were checked to be: a
/// browser must not sniff them into something else (HTML, say).
fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Any method but GET on a thumbnail: 405 in the JSON error form, like
/// every other route.
pub(crate) async fn thumbnail_other_methods(method: axum::http::Method) -> Response {
    let mut response = error::body(
        StatusCode::METHOD_NOT_ALLOWED,
        tonic::Code::Unimplemented,
        &format!("{method} is not allowed on this path (see Allow)"),
        Vec::new(),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    response
}
