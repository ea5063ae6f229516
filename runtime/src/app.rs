//! A service built, then run: [`Application`] is the shape `oms`, the
//! binaries and the tests share; a gRPC service says how it builds its
//! [`GrpcParts`] ([`GrpcService`]) and [`GrpcApp`] is it built;
//! [`Owned`] is the background work an app keeps until it stops.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;

use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::StartupError;
use crate::auth::AuthLayer;
use crate::info::ServiceInfo;
use oms_config::{GrpcLimits, ServiceBase};

/// The future that tells an app to stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A service that is built (listeners bound, storage opened, background
/// work started), then run until told to stop. Building does everything
/// that can fail at start-up, so a caller holding an app knows it will
/// serve; dropping an app unrun stops what it started.
pub trait Application: Sized + Send + 'static {
    /// Its configuration, read once at start-up.
    type Config: Send + 'static;

    /// The variable holding its listen address (named when binding fails).
    const ADDR_VAR: &'static str;

    /// Where the configuration says to listen.
    fn listen_addr(config: &Self::Config) -> SocketAddr;

    /// Builds it on a listener the caller bound (a test's `127.0.0.1:0`,
    /// or one of the listeners `oms` binds all at once before building).
    fn build_on(
        config: Self::Config,
        listener: TcpListener,
    ) -> impl Future<Output = Result<Self, StartupError>> + Send;

    /// Binds the configured address, then builds on it.
    fn build(config: Self::Config) -> impl Future<Output = Result<Self, StartupError>> + Send {
        async move {
            let listener = crate::listen::bind(Self::listen_addr(&config), Self::ADDR_VAR).await?;
            Self::build_on(config, listener).await
        }
    }

    /// Where it listens.
    fn addr(&self) -> SocketAddr;

    /// Serves until `shutdown` resolves, then drains and stops everything
    /// it owns.
    fn run_until_stopped(
        self,
        shutdown: Shutdown,
    ) -> impl Future<Output = Result<(), StartupError>> + Send;
}

/// What an app keeps running beside its server (loops, relays, consumers,
/// metric samplers, a worker thread's handle): each is a guard that stops
/// its work when dropped, and all are dropped when the app stops.
#[derive(Default)]
pub struct Owned(Vec<Box<dyn Any + Send>>);

impl Owned {
    /// Keeps `part` until the app stops.
    pub fn hold(&mut self, part: impl Any + Send) {
        self.0.push(Box::new(part));
    }
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Owned({} parts)", self.0.len())
    }
}

/// What a gRPC service builds: its routes and auth, its listeners, and
/// the background work that lives as long as the server.
#[derive(Debug)]
pub struct GrpcParts {
    /// The service's own routes (health and reflection are added).
    pub routes: Routes,
    /// Checks every bearer token.
    pub auth: AuthLayer,
    /// The gRPC listener.
    pub listener: TcpListener,
    /// Its TLS, when `OMS_TLS_CERT` is set (the same as its channels dial
    /// with: [`crate::tls::Tls::mesh`]).
    pub tls: Option<crate::tls::Tls>,
    /// `/metrics`, when configured.
    pub metrics_listener: Option<TcpListener>,
    /// Background work, stopped after the server drains.
    pub owned: Owned,
}

/// What a gRPC service says about itself to be built as a [`GrpcApp`]
/// (and migrated by its binary's `migrate`, [`crate::service::migrate`]).
pub trait GrpcService: Send + 'static {
    /// Its configuration.
    type Config: Send + 'static;
    /// Its schema's migrations.
    type Migrator: sea_orm_migration::MigratorTrait;
    /// What reflection and health advertise; its name is the service's.
    const INFO: ServiceInfo;
    /// The variable holding its listen address.
    const ADDR_VAR: &'static str;
    /// What it reads alike with every service: listen address, database,
    /// gRPC limits.
    fn base(config: &Self::Config) -> &ServiceBase;
    /// Opens what it needs and starts its background work, on `listener`.
    fn build(
        config: Self::Config,
        listener: TcpListener,
    ) -> impl Future<Output = Result<GrpcParts, StartupError>> + Send;
}

/// A gRPC service `S`, built and ready to serve.
#[derive(Debug)]
pub struct GrpcApp<S> {
    parts: GrpcParts,
    limits: GrpcLimits,
    service: PhantomData<fn() -> S>,
}

impl<S: GrpcService> GrpcApp<S> {
    /// The app of parts built another way than [`GrpcService::build`]
    /// (a test's own collaborator in place of a real one), served within
    /// `limits`.
    pub fn from_parts(limits: GrpcLimits, parts: GrpcParts) -> Self {
        Self {
            parts,
            limits,
            service: PhantomData,
        }
    }
}

impl<S: GrpcService> Application for GrpcApp<S> {
    type Config = S::Config;
    const ADDR_VAR: &'static str = S::ADDR_VAR;

    fn listen_addr(config: &S::Config) -> SocketAddr {
        S::base(config).addr
    }

    async fn build_on(config: S::Config, listener: TcpListener) -> Result<Self, StartupError> {
        let limits = S::base(&config).grpc_limits;
        // Boxed: a service's build is a deep future, and a caller awaiting
        // several (oms, a test) would otherwise nest them all in one type
        // too deep for the compiler's layout queries.
        Ok(Self::from_parts(
            limits,
            Box::pin(S::build(config, listener)).await?,
        ))
    }

    fn addr(&self) -> SocketAddr {
        // A bound listener has an address; the fallback is never reached.
        self.parts
            .listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// Serves until `shutdown`, then stops the background work: a sweeper
    /// or relay outlives no server.
    async fn run_until_stopped(self, shutdown: Shutdown) -> Result<(), StartupError> {
        let GrpcParts {
            routes,
            auth,
            listener,
            tls,
            metrics_listener,
            owned,
        } = self.parts;
        let served = crate::server::serve_grpc(
            S::INFO,
            self.limits,
            routes,
            auth,
            crate::server::Listeners {
                grpc: listener,
                tls,
                metrics: metrics_listener,
            },
            shutdown,
        )
        .await;
        drop(owned);
        served?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    struct Flag(Arc<AtomicBool>);

    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn what_an_app_owns_stops_with_it() {
        let stopped = Arc::new(AtomicBool::new(false));
        let mut owned = Owned::default();
        owned.hold(Flag(Arc::clone(&stopped)));
        owned.hold(42_u32);
        assert!(!stopped.load(Ordering::SeqCst));
        assert_eq!(format!("{owned:?}"), "Owned(2 parts)");
        drop(owned);
        assert!(stopped.load(Ordering::SeqCst));
    }
}
