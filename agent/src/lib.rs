//! The Pando agent: it runs on every machine, advertises that machine's
//! resources to the master, and runs tasks inside cgroup-isolated containers.
//!
//! So far the crate holds [`detect`], which works out what a machine offers
//! when the operator gives no `--resources` flag. The containerizer, the
//! executors and the executor API join it as the agent issue lands.

pub mod detect;
