//! The gateway's error body, in the AIP-193 JSON form that grpc-gateway v2
//! clients expect: `{"error":{"code","status","message","details"}}`.

use axum::Json;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered by the gateway itself (no backend involved).
pub(crate) fn error_response(http: StatusCode, grpc_status: &str, message: String) -> Response {
    let body = json!({
        "error": {
            "code": http.as_u16(),
            "status": grpc_status,
            "message": message,
            "details": [],
        }
    });
    (http, Json(body)).into_response()
}

/// Any path no route matches.
pub(crate) async fn no_route(method: Method, uri: Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("no route for {method} {}", uri.path()),
    )
}
