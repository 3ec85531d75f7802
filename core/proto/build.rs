//! Generates the Rust types for the Mesos v1 protocol from our `.proto` files.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate, so a fresh machine needs
//! nothing installed beyond the Rust toolchain. Besides the prost types, the
//! build writes a `FileDescriptorSet`, which the JSON codec reads at run time:
//! Mesos emits JSON by walking descriptors (declaration order, defaults,
//! deprecation), so ours does too.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/mesos/v1/mesos.proto",
    "proto/mesos/v1/allocator/allocator.proto",
    "proto/mesos/v1/maintenance/maintenance.proto",
    "proto/mesos/v1/quota/quota.proto",
    "proto/mesos/v1/scheduler/scheduler.proto",
    "proto/mesos/v1/executor/executor.proto",
    "proto/mesos/v1/master/master.proto",
    "proto/mesos/v1/agent/agent.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let include = protoc_bin_vendored::include_path()?;
    // prost-build finds protoc through this variable; the build script is
    // single-threaded, so setting it cannot race.
    std::env::set_var("PROTOC", protoc);

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let mut config = prost_build::Config::new();
    config
        .file_descriptor_set_path(out_dir.join("mesos_descriptors.bin"))
        .enable_type_names()
        .type_name_domain(["."], "type.googleapis.com")
        .bytes(["."])
        // Big, rarely set sub-messages live behind a Box, so that the types
        // the master holds by the hundred thousand stay small: a Resource
        // was 1.2 KB inline (its DiskInfo alone about 700 bytes) and a Task
        // 1.4 KB, most of it for a container, health check and discovery
        // info that a command task does not have.
        .boxed(".mesos.v1.Resource.disk")
        .boxed(".mesos.v1.Resource.reservation")
        .boxed(".mesos.v1.Task.container")
        .boxed(".mesos.v1.Task.health_check")
        .boxed(".mesos.v1.Task.discovery");
    config.compile_protos(PROTOS, &["proto".into(), include])?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
