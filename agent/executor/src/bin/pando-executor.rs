//! `pando-executor command|default`: the built-in executors as a standalone
//! binary, running the same code as `pando executor <kind>`. Integration
//! tests start it as a process.

use std::process::ExitCode;

fn main() -> ExitCode {
    let kind = match std::env::args().nth(1).as_deref() {
        Some("command") => pando_executor::Kind::Command,
        Some("default") => pando_executor::Kind::Default,
        _ => {
            eprintln!(
                "usage: pando-executor command|default (configured by the MESOS_* environment)"
            );
            return ExitCode::from(2);
        }
    };
    match pando_executor::run(kind) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(error) => {
            eprintln!("pando-executor: {error}");
            ExitCode::FAILURE
        }
    }
}
