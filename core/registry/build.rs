//! Generates the registry's messages (`proto/pando/registry.proto`) and the
//! Raft RPC between masters (`proto/pando/raft.proto`).
//!
//! The registry holds Mesos types (AgentInfo, Resource, quota and
//! maintenance messages); `protoc` reads their `.proto` files from
//! `pando-proto`'s directory and `extern_path` points the generated code at
//! `pando_proto::mesos::v1`, so they are not generated twice. `protoc`
//! comes from `protoc-bin-vendored`, as for `pando-proto`.

use std::path::PathBuf;

/// The registry the masters replicate, and the Raft RPC between them.
const REGISTRY: &str = "proto/pando/registry.proto";
const RAFT: &str = "proto/pando/raft.proto";

/// Where the Mesos `.proto` files that registry.proto imports live.
const MESOS_PROTOS: &str = "../proto/proto";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // prost-build finds protoc through this variable; the build script is
    // single-threaded, so setting it cannot race.
    std::env::set_var("PROTOC", protoc);

    tonic_prost_build::configure()
        .extern_path(".mesos.v1", "::pando_proto::mesos::v1")
        .bytes(".")
        .compile_protos(
            &[PathBuf::from(REGISTRY), PathBuf::from(RAFT)],
            &[PathBuf::from("proto"), PathBuf::from(MESOS_PROTOS), include],
        )?;
    println!("cargo:rerun-if-changed={REGISTRY}");
    println!("cargo:rerun-if-changed={RAFT}");
    Ok(())
}
