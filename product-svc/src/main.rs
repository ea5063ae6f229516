//! The product-svc binary: configuration from env, then
//! [`product_svc::serve`] until SIGTERM or Ctrl-C; `product-svc healthcheck` exits
//! 0 if the server on `PRODUCT_SVC_ADDR` reports SERVING (container health checks); `product-svc env-vars` lists the
//! environment variables it reads; `product-svc migrate` brings the schema up to
//! date and exits (a deployment's one-off job).

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("migrate") => kit::startup::run("product-svc", |env| async move {
            let config = product_svc::Config::from_env(&env, "DATABASE_URL")?;
            kit::db::connect_and_migrate::<product_svc::migration::Migrator>(
                &config.database_url,
                Default::default(),
            )
            .await?;
            tracing::info!(service = "product-svc", "the schema is up to date");
            Ok(())
        }),
        Some("env-vars") => kit::startup::list_env_vars(|env| {
            product_svc::Config::from_env(env, "DATABASE_URL").map(drop)
        }),
        Some("healthcheck") => {
            kit::healthcheck::run("product-svc", kit::healthcheck::Probe::Grpc, |env| {
                product_svc::Config::from_env(env, "DATABASE_URL").map(|c| c.addr)
            })
        }
        Some(other) => {
            eprintln!(
                "product-svc: unknown subcommand {other:?} (expected migrate, healthcheck or env-vars, or none to serve)"
            );
            ExitCode::from(2)
        }
        None => kit::startup::run("product-svc", |env| async move {
            let config = product_svc::Config::from_env(&env, "DATABASE_URL")?;
            let listener = kit::server::bind(config.addr, product_svc::ADDR_VAR).await?;
            product_svc::serve(config, listener, kit::shutdown::signal()).await
        }),
    }
}
