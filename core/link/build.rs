//! Generates the master↔agent link (`proto/pando/agent_link.proto`): the
//! tonic `AgentLink` service and its messages.
//!
//! The messages carry Mesos types (AgentInfo, TaskInfo, TaskStatus...),
//! which `pando-proto` already generates; `protoc` reads their `.proto`
//! files from that crate's directory, and `extern_path` points the
//! generated code at `pando_proto::mesos::v1` instead of generating them a
//! second time. `protoc` comes from `protoc-bin-vendored`, as for
//! `pando-proto`.

use std::path::PathBuf;

const AGENT_LINK: &str = "proto/pando/agent_link.proto";

/// Where the Mesos `.proto` files that agent_link.proto imports live.
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
            &[PathBuf::from(AGENT_LINK)],
            &[PathBuf::from("proto"), PathBuf::from(MESOS_PROTOS), include],
        )?;
    println!("cargo:rerun-if-changed={AGENT_LINK}");
    Ok(())
}
