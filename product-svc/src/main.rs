//! The product-svc binary: `product-svc --help` lists its commands and the variables
//! it reads; with no arguments it serves until SIGTERM or Ctrl-C.

/// See [`oms_runtime::Allocator`].
#[global_allocator]
static ALLOCATOR: oms_runtime::Allocator = oms_runtime::Allocator;

fn main() -> std::process::ExitCode {
    oms_runtime::service::main::<product_svc::Binary>()
}
