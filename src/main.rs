//! `cargo run --release`: the whole OMS mesh in one process on the embedded
//! default (SQLite under `./data`, tokens in process). Ctrl-C stops it;
//! `oms --help` lists what it reads.

use std::process::ExitCode;

use oms_runtime::cli::{Command, Program};

/// See [`oms_runtime::Allocator`].
#[global_allocator]
static ALLOCATOR: oms_runtime::Allocator = oms_runtime::Allocator;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    Program {
        name: "oms",
        summary: "the whole OMS mesh in one process: user-svc, product-svc, order-svc and the gateway",
        commands: vec![
            Command::new("serve", "run the mesh until SIGTERM or Ctrl-C", serve),
            Command::new(
                "env-vars",
                "list the environment variables it reads, one per line",
                || oms_runtime::cli::print_env_vars(oms::read_config),
            ),
        ],
        default_command: "serve",
        env_vars: oms::read_config,
    }
    .run(&args)
}

fn serve() -> ExitCode {
    oms_runtime::startup::run("oms", |env| async move {
        let mesh = oms::Mesh::build(&env).await?;
        let addrs = mesh.addrs();
        tracing::info!(
            user_svc = %addrs.user,
            product_svc = %addrs.product,
            order_svc = %addrs.order,
            gateway = %format!("http://{}", addrs.gateway),
            "OMS mesh starting; Ctrl-C to stop"
        );
        mesh.run_until_stopped(oms_runtime::shutdown::signal())
            .await
    })
}
