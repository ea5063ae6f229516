//! The order-svc binary: configuration from env, then
//! [`order_svc::serve`] until SIGTERM or Ctrl-C; `order-svc healthcheck` exits
//! 0 if the server on `ORDER_SVC_ADDR` reports SERVING (container health checks); `order-svc env-vars` lists the
//! environment variables it reads; `order-svc migrate` brings the schema up to
//! date and exits (a deployment's one-off job).

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("migrate") => kit::startup::run("order-svc", |env| async move {
            let config = order_svc::Config::from_env(&env, "DATABASE_URL")?;
            kit::db::connect_and_migrate::<order_svc::migration::Migrator>(
                &config.database_url,
                Default::default(),
            )
            .await?;
            tracing::info!(service = "order-svc", "the schema is up to date");
            Ok(())
        }),
        Some("env-vars") => kit::startup::list_env_vars(|env| {
            order_svc::Config::from_env(env, "DATABASE_URL").map(drop)
        }),
        Some("healthcheck") => {
            kit::healthcheck::run("order-svc", kit::healthcheck::Probe::Grpc, |env| {
                order_svc::Config::from_env(env, "DATABASE_URL").map(|c| c.addr)
            })
        }
        Some(other) => {
            eprintln!(
                "order-svc: unknown subcommand {other:?} (expected migrate, healthcheck or env-vars, or none to serve)"
            );
            ExitCode::from(2)
        }
        None => kit::startup::run("order-svc", |env| async move {
            let config = order_svc::Config::from_env(&env, "DATABASE_URL")?;
            let listener = kit::server::bind(config.addr, order_svc::ADDR_VAR).await?;
            order_svc::serve(config, listener, kit::shutdown::signal()).await
        }),
    }
}
