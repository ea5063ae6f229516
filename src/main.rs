//! `cargo run --release`: the whole OMS mesh in one process on the embedded
//! default (SQLite under `./data`, tokens in process). Ctrl-C stops it.

use std::process::ExitCode;

fn main() -> ExitCode {
    kit::startup::run("oms", |env| async move {
        let mesh = oms::Mesh::bind(&env).await?;
        let addrs = mesh.addrs();
        tracing::info!(
            user_svc = %addrs.user,
            product_svc = %addrs.product,
            order_svc = %addrs.order,
            gateway = %format!("http://{}", addrs.gateway),
            "OMS mesh starting; Ctrl-C to stop"
        );
        mesh.run(kit::shutdown::signal()).await
    })
}
