//! The product-svc binary: `product-svc --help` lists its commands and the variables
//! it reads; with no arguments it serves until SIGTERM or Ctrl-C.

fn main() -> std::process::ExitCode {
    oms_runtime::service::main::<product_svc::Binary>()
}
