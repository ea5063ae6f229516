//! gRPC server bootstrap shared by every service: binding with a clear
//! error, reflection (v1 and v1alpha), `grpc.health.v1`, and graceful
//! shutdown (report NOT_SERVING, drain in-flight calls, exit).

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic_health::ServingStatus;

/// The largest header list (all metadata of one call) a gRPC server takes;
/// the gateway forwards at most [`MAX_FORWARDED_HEADERS`] so it never
/// sends a call a service would refuse.
pub const MAX_HEADER_LIST: u32 = 16 * 1024;

/// What the gateway may forward of one request's headers (and the most it
/// reads of them).
pub const MAX_FORWARDED_HEADERS: usize = 8 * 1024;

/// How long in-flight calls may take to finish after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of request messages not yet whole, over every call of a listener.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;

/// The largest request message (tonic's default).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

pub use crate::info::ServiceInfo;
pub use crate::listen::{BindError, announce, bind, bind_optional};
pub use oms_config::GrpcLimits;

/// Where a gRPC server listens.
#[derive(Debug)]
pub struct Listeners {
    /// The gRPC listener.
    pub grpc: TcpListener,
    /// Its TLS, when this process has a server certificate.
    pub tls: Option<crate::tls::Tls>,
    /// `/metrics`, when configured.
    pub metrics: Option<TcpListener>,
}

/// Why a gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The descriptor set could not be loaded into the reflection service.
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `routes` plus reflection and health on `listeners.grpc` (over
/// TLS when `listeners.tls` holds a server certificate), with every
/// bearer token checked by `auth` and every call observed (span, log
/// event, metrics), and `/metrics` on `listeners.metrics` if given, until
/// `shutdown` resolves, then reports NOT_SERVING, stops accepting, and
/// waits (bounded) for in-flight calls.
pub async fn serve_grpc(
    info: ServiceInfo,
    limits: GrpcLimits,
    routes: Routes,
    auth: crate::auth::AuthLayer,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let Listeners {
        grpc: listener,
        tls,
        metrics: metrics_listener,
    } = listeners;
    if let Ok(addr) = listener.local_addr() {
        announce(info.name, "grpc", addr);
    }
    let (reporter, health_service) = tonic_health::server::health_reporter();
    for name in info.grpc_services {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }

    let routes = routes
        .add_service(health_service)
        .add_service(reflection(info).build_v1()?)
        .add_service(reflection(info).build_v1alpha()?);

    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let metrics_server = metrics_listener.map(|listener| {
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            let stopped = async move {
                let _ = stopping.wait_for(|stopping| *stopping).await;
            };
            if let Err(e) = crate::admin::serve_admin(listener, info.name, stopped).await {
                tracing::error!(service = info.name, error = %e, "the /metrics listener failed");
            }
        })
    });

    let (drain_started_tx, drain_started_rx) = tokio::sync::oneshot::channel::<()>();
    let announce = {
        let reporter = reporter.clone();
        async move {
            shutdown.await;
            // Tell health watchers first, so load balancers stop sending
            // new calls before the listener closes.
            reporter
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for name in info.grpc_services {
                reporter
                    .set_service_status(*name, ServingStatus::NotServing)
                    .await;
            }
            tracing::info!(service = info.name, "draining in-flight calls");
            let _ = stopping_tx.send(true);
            let _ = drain_started_tx.send(());
        }
    };

    let refusals = std::sync::Arc::new(crate::refusals::Refusals::new(
        info.name,
        &[
            "connections",
            "calls",
            "pending_bytes",
            crate::tls::accept::REFUSAL,
        ],
    ));
    let server = Server::builder()
        .http2_max_header_list_size(MAX_HEADER_LIST)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(limits.max_calls)
        .timeout(limits.max_call_time)
        // Aged connections are replaced by the client, so replicas added
        // later get a share even from clients that never re-resolve.
        .max_connection_age(limits.max_connection_age)
        .max_connection_age_grace(limits.max_call_time)
        // The first layer is the outermost: calls refused by `auth` or by
        // the limits are observed too.
        .layer(crate::observe::ObserveLayer::new(info))
        .layer(crate::call_limits::CallLimitLayer::new(
            usize::try_from(limits.max_calls).unwrap_or(usize::MAX),
            MAX_PENDING_BYTES,
            MAX_MESSAGE,
            std::sync::Arc::clone(&refusals),
        ))
        .layer(auth)
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            crate::tls::accept::serve_over(
                crate::connections::accept_capped(
                    listener,
                    limits.max_connections,
                    std::sync::Arc::clone(&refusals),
                ),
                tls,
                refusals,
            ),
            announce,
        );

    let drain_deadline = async {
        if drain_started_rx.await.is_ok() {
            tokio::time::sleep(DRAIN_TIMEOUT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };

    tokio::select! {
        result = server => result?,
        () = drain_deadline => {
            tracing::warn!(service = info.name, "calls still running after {DRAIN_TIMEOUT:?}; exiting anyway");
        }
    }
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    tracing::info!(service = info.name, "stopped");
    Ok(())
}

/// A reflection builder that advertises exactly this service's APIs plus
/// health and reflection, so `grpcurl list` shows what this port serves.
fn reflection(info: ServiceInfo) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(info.descriptors)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        // Registered above, once; the builder would add its own copy again.
        .include_reflection_service(false)
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .with_service_name("grpc.reflection.v1alpha.ServerReflection");
    for name in info.grpc_services {
        builder = builder.with_service_name(*name);
    }
    builder
}
