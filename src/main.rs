//! `pando`: one binary for every Pando role.
//!
//! This file is wiring only: clap parses the command line and hands each
//! subcommand to the crate that implements it. Later issues add `master`,
//! `agent`, `local`, `execute` and the operator commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Pando: a cluster manager that speaks the Mesos v1 APIs.
#[derive(Debug, Parser)]
#[command(name = "pando", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the Mesos version Pando answers as, and Pando's own version.
    Version,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("pando: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!(
                "pando {} (Mesos API {})",
                env!("CARGO_PKG_VERSION"),
                MESOS_VERSION
            );
            Ok(())
        }
    }
}

/// The Mesos release whose API Pando implements.
const MESOS_VERSION: &str = "1.11.0";
