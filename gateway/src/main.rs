//! The gateway binary: configuration from env, then
//! [`gateway::serve`] until SIGTERM or Ctrl-C; `gateway healthcheck` exits
//! 0 if the server on `GATEWAY_ADDR` answers `/readyz` with 200 (every backend serving) (container health checks); `gateway env-vars` lists the
//! environment variables it reads.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("env-vars") => {
            kit::startup::list_env_vars(|env| gateway::Config::from_env(env).map(drop))
        }
        Some("healthcheck") => {
            kit::healthcheck::run("gateway", kit::healthcheck::Probe::Http("/readyz"), |env| {
                gateway::Config::from_env(env).map(|c| c.addr)
            })
        }
        Some(other) => {
            eprintln!(
                "gateway: unknown subcommand {other:?} (expected healthcheck or env-vars, or none to serve)"
            );
            ExitCode::from(2)
        }
        None => kit::startup::run("gateway", |env| async move {
            let config = gateway::Config::from_env(&env)?;
            let listener = kit::server::bind(config.addr, gateway::ADDR_VAR).await?;
            gateway::serve(config, listener, kit::shutdown::signal()).await
        }),
    }
}
