//! The order-svc binary: configuration from env, then [`order_svc::serve`]
//! until SIGTERM or Ctrl-C.

use std::process::ExitCode;

fn main() -> ExitCode {
    kit::startup::run("order-svc", |env| async move {
        let config = order_svc::Config::from_env(&env, "DATABASE_URL")?;
        let listener = kit::server::bind(config.addr, order_svc::ADDR_VAR).await?;
        order_svc::serve(config, listener, kit::shutdown::signal()).await
    })
}
