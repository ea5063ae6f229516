//! `oms-bench`: see the library and BENCHMARKS.md.

use clap::Parser;

/// See [`oms_runtime::Allocator`].
#[global_allocator]
static ALLOCATOR: oms_runtime::Allocator = oms_runtime::Allocator;

fn main() -> std::process::ExitCode {
    let cli = oms_bench::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("oms-bench: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Interrupted, the run is dropped, and with it every process it
    // started (they are killed on drop): no orphaned mesh keeps running.
    let interrupted = async {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut terminate) => {
                    terminate.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
    };
    // `mesh` waits for Ctrl-C itself, and stops its mesh cleanly.
    let holds_mesh = matches!(cli.command, Some(oms_bench::cli::Command::Mesh));
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = oms_bench::run(cli) => outcome,
            () = interrupted, if !holds_mesh => {
                Err(oms_bench::BenchError::Setup("interrupted".to_owned()))
            }
        }
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oms-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
