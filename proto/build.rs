//! Compiles `proto/` once, with protox (no system `protoc`), into Rust types,
//! tonic servers and clients, and an encoded descriptor set for reflection
//! and the gateway.

use std::path::PathBuf;

/// Every file of the contract; imports (google/api, well-known types) follow.
const CONTRACT: &[&str] = &[
    "oms/common/v1/common.proto",
    "oms/common/v1/access.proto",
    "oms/user/v1/user.proto",
    "oms/user/v1/auth.proto",
    "oms/user/v1/oauth.proto",
    "oms/product/v1/product.proto",
    "oms/product/v1/inventory.proto",
    "oms/product/v1/quote.proto",
    "oms/order/v1/order.proto",
    "oms/order/v1/events.proto",
    "oms/product/v1/events.proto",
    // Not imported by the contract, but the type of every error's details:
    // in the set so reflection clients can decode them.
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed=oms");
    println!("cargo:rerun-if-changed=google");

    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(CONTRACT)?;

    // The encoded set keeps custom options such as `google.api.http`, which
    // the gateway routes by; `file_descriptor_set()` would drop them.
    std::fs::write(
        out_dir.join("oms_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    // Type names (`prost::Name`): an event's CloudEvents `type` is its
    // message's full name, from the contract rather than typed by hand.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Until an issue implements an RPC it answers UNIMPLEMENTED rather
        // than pretending to work.
        .generate_default_stubs(true)
        .compile_fds_with_config(compiler.file_descriptor_set(), config)?;
    Ok(())
}
