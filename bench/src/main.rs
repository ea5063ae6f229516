//! `oms-bench`: see the library and BENCHMARKS.md.

use clap::Parser;

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
    match runtime.block_on(oms_bench::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("oms-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
