//! The user-svc binary: configuration from env, then [`user_svc::serve`]
//! until SIGTERM or Ctrl-C.

use std::process::ExitCode;

fn main() -> ExitCode {
    kit::startup::run("user-svc", |env| async move {
        let config = user_svc::Config::from_env(&env, "DATABASE_URL")?;
        let listener = kit::server::bind(config.addr, user_svc::ADDR_VAR).await?;
        user_svc::serve(config, listener, kit::shutdown::signal()).await
    })
}
