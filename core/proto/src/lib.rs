//! The Mesos v1 protocol, as Pando speaks it.
//!
//! This crate is the bottom of Pando's dependency graph: the master, the
//! agent, the bridges and the CLI all talk through these types, so it holds
//! nothing but the protocol itself.
//!
//! * [`mesos`] holds the types that prost generates from our own `.proto`
//!   files under `proto/mesos/v1/`. Their field numbers, names, defaults and
//!   declaration order follow Mesos 1.11 exactly, which is what lets real
//!   frameworks (pymesos, the Mesos Java bindings) talk to Pando unchanged.
//! * [`json`] writes and reads those types as Mesos JSON, byte for byte.
//! * [`recordio`] frames the event streams of the scheduler, executor and
//!   operator APIs.
//! * [`codec`] chooses between JSON and protobuf from HTTP media types, so a
//!   transport only has to hand over bytes and a `Content-Type`.
//! * [`jsonp`] wraps a JSON answer for `?jsonp=callback`.
//! * [`stout`] reads and writes durations (`5secs`) and byte sizes (`512MB`)
//!   in Mesos's text forms.
//! * [`task_state`] says which task states are terminal, and
//!   [`MESOS_VERSION`] is the Mesos version the APIs report.
//!
//! Data moves one way through the layers: bytes → [`recordio`] records →
//! [`codec`] → typed messages, and back.

pub mod codec;
pub mod json;
pub mod jsonp;
pub mod recordio;
pub mod stout;
pub mod task_state;

use std::sync::OnceLock;

use prost_reflect::DescriptorPool;

/// The Mesos version whose APIs Pando speaks, reported by `/version`,
/// `GET_VERSION` and `/state`.
pub const MESOS_VERSION: &str = "1.11.0";

/// Generated Mesos types, one module per protobuf package.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod mesos {
    /// The `mesos.v1` packages.
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/mesos.v1.rs"));

        /// `mesos.v1.scheduler`: the scheduler API's Call and Event.
        pub mod scheduler {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.scheduler.rs"));
        }
        /// `mesos.v1.executor`: the executor API's Call and Event.
        pub mod executor {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.executor.rs"));
        }
        /// `mesos.v1.master`: the master's operator API.
        pub mod master {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.master.rs"));
        }
        /// `mesos.v1.agent`: the agent's operator API.
        pub mod agent {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.agent.rs"));
        }
        /// `mesos.v1.quota`: quota configuration.
        pub mod quota {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.quota.rs"));
        }
        /// `mesos.v1.maintenance`: maintenance schedules and status.
        pub mod maintenance {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.maintenance.rs"));
        }
        /// `mesos.v1.allocator`: inverse-offer status and offer constraints.
        pub mod allocator {
            include!(concat!(env!("OUT_DIR"), "/mesos.v1.allocator.rs"));
        }
    }
}

/// The compiled descriptors of every message above, written by build.rs.
static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mesos_descriptors.bin"));

/// The descriptor pool for all Mesos v1 types, built once on first use.
pub fn descriptor_pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(DESCRIPTOR_SET)
            .expect("build.rs writes a valid descriptor set for the protos it compiled")
    })
}
