//! The gateway binary: configuration from env, then [`gateway::serve`]
//! until SIGTERM or Ctrl-C.

use std::process::ExitCode;

fn main() -> ExitCode {
    kit::startup::run("gateway", |env| async move {
        let config = gateway::Config::from_env(&env)?;
        let listener = kit::server::bind(config.addr, gateway::ADDR_VAR).await?;
        gateway::serve(config, listener, kit::shutdown::signal()).await
    })
}
