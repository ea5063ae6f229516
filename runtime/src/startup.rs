//! What every binary does around its service: a runtime, one TLS crypto
//! provider, logs, and turning a start-up failure into one clear line on
//! stderr and a non-zero exit code instead of a panic backtrace.

use std::future::Future;
use std::process::ExitCode;

use oms_config::{ConfigError, Env};
use oms_core::error::report;
use oms_telemetry::TelemetryConfig;

/// Anything that stops a process from starting or keeps it from running.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A bad environment variable.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// A listener could not be opened.
    #[error(transparent)]
    Bind(#[from] crate::listen::BindError),
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] oms_store::db::DbError),
    /// The key-value store (Redis) could not be reached.
    #[error("key-value store: {0}")]
    Kv(#[from] oms_store::kv::KvError),
    /// user-svc, whose keys every token is checked against, cannot be
    /// dialled.
    #[error(transparent)]
    UserSvc(#[from] crate::auth::BadUserSvcAddr),
    /// Certificate files (`OMS_TLS_*`, `GATEWAY_TLS_*`) cannot be used.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] crate::server::ServeError),
    /// Anything else a service needs at start-up (keys, files, peers,
    /// telemetry, one of the parts of the one-process mesh).
    #[error("{what}")]
    Setup {
        /// What could not be set up, e.g. `the signing keys`.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StartupError {
    /// A [`StartupError::Setup`] about `what`, caused by `source`.
    pub fn setup(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Setup {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// Runs `body` on a multi-threaded runtime after setting up logs (and span
/// export, when configured) from `LOG_FORMAT`/`RUST_LOG`/`OTEL_*`; any
/// error ends the process with `<name>: <error>` on stderr and exit code 1
/// (2 for configuration). Buffered spans are sent before exiting.
pub fn run<F, Fut>(name: &str, body: F) -> ExitCode
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = Result<(), StartupError>>,
{
    let env = Env::process();
    let telemetry = match TelemetryConfig::from_env(&env, name) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("{name}: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // sqlx and redis may each pull a rustls crypto backend; choosing one up
    // front keeps rustls from panicking on the ambiguity.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    match env.worker_threads() {
        Ok(Some(threads)) => {
            runtime.worker_threads(threads);
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("{name}: configuration error: {e}");
            return ExitCode::from(2);
        }
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("{name}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // The span exporter's channel lives on this runtime.
        let telemetry =
            oms_telemetry::init(&telemetry).map_err(|e| StartupError::setup("telemetry", e))?;
        let result = body(env).await;
        telemetry.shutdown().await;
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ StartupError::Config(_)) => {
            eprintln!("{name}: {}", report(&e));
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{name}: {}", report(&e));
            ExitCode::FAILURE
        }
    }
}
