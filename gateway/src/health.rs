//! `/healthz` says the process is up; `/readyz` says every backend answers
//! `grpc.health.v1` SERVING, and names the ones that don't.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use futures_util::future::join_all;
use serde_json::{Value, json};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use std::sync::Arc;

use crate::Gateway;
use crate::backends::Service;

/// How long `/readyz` waits for each backend.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Liveness: answers while the process runs.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 when every backend is SERVING, else 503 naming the rest.
pub(crate) async fn readyz(State(gateway): State<Arc<Gateway>>) -> (StatusCode, Json<Value>) {
    // Checked together, so a slow backend costs one timeout, not three.
    let serving =
        join_all(Service::ALL.map(|service| check(gateway.backends.channel(service)))).await;
    let not_ready: Vec<&str> = Service::ALL
        .iter()
        .zip(serving)
        .filter(|(_, serving)| !serving)
        .map(|(service, _)| service.name())
        .collect();
    if not_ready.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "notReady": not_ready})),
        )
    }
}

pub(crate) async fn check(channel: oms_runtime::channel::Balanced) -> bool {
    let mut client = HealthClient::new(channel);
    let call = client.check(HealthCheckRequest {
        service: String::new(),
    });
    matches!(
        tokio::time::timeout(CHECK_TIMEOUT, call).await,
        Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving
    )
}
