//! The product-svc binary: configuration from env, then
//! [`product_svc::serve`] until SIGTERM or Ctrl-C.

use std::process::ExitCode;

fn main() -> ExitCode {
    kit::startup::run("product-svc", |env| async move {
        let config = product_svc::Config::from_env(&env, "DATABASE_URL")?;
        let listener = kit::server::bind(config.addr, product_svc::ADDR_VAR).await?;
        product_svc::serve(config, listener, kit::shutdown::signal()).await
    })
}
