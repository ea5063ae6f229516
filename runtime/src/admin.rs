//! A service's admin listener: Prometheus `/metrics`, for any axum router
//! or on a port of its own.

use oms_telemetry::metrics::{CONTENT_TYPE, render};
use tokio::net::TcpListener;

/// The `/metrics` handler, for any axum router.
pub async fn handler() -> impl axum::response::IntoResponse {
    (
        [(http::header::CONTENT_TYPE, CONTENT_TYPE)],
        tokio::task::spawn_blocking(render)
            .await
            .unwrap_or_default(),
    )
}

/// Serves `GET /metrics` on `listener` (a service's admin port) until
/// `shutdown` resolves.
pub async fn serve_admin(
    listener: TcpListener,
    service: &'static str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        crate::listen::announce(service, "metrics", addr);
    }
    let app = axum::Router::new().route("/metrics", axum::routing::get(handler));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use oms_telemetry::metrics::{CONTENT_TYPE, install, on_scrape, render};
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn the_admin_listener_serves_what_was_recorded_and_sampled() {
        install();
        metrics::counter!("admin_test_events_total", "kind" => "admin").increment(3);
        let depth = Arc::new(std::sync::atomic::AtomicU64::new(7));
        let sampled = depth.clone();
        let guard = on_scrape(move || {
            #[allow(clippy::cast_precision_loss)] // a small test value
            metrics::gauge!("admin_test_queue_depth").set(sampled.load(Ordering::Relaxed) as f64);
        });

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_admin(listener, "admin-test", async {
            let _ = stopped.await;
        }));

        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains(CONTENT_TYPE), "{reply}");
        assert!(
            reply.contains("admin_test_events_total{kind=\"admin\"} 3"),
            "{reply}"
        );
        assert!(reply.contains("admin_test_queue_depth 7"), "{reply}");

        // A dropped guard stops sampling: the gauge keeps its last value.
        drop(guard);
        depth.store(9, Ordering::Relaxed);
        assert!(render().contains("admin_test_queue_depth 7"));

        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
