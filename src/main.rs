//! `pando`: one binary for every Pando role.
//!
//! This file is wiring only: clap parses the command line and hands each
//! subcommand to the crate that implements it. Later issues add `master`,
//! `agent`, `local`, `execute`, `simulate` and the operator commands.

use std::path::PathBuf;
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
    /// Check an agent's resources: parse `--resources` (Mesos text or JSON
    /// form), fill in what this machine has, and print the result as Mesos
    /// JSON.
    Resources {
        /// Resources in Mesos syntax, e.g. `cpus:4;mem:8192;ports:[31000-32000]`,
        /// or a JSON array of Resource objects.
        #[arg(long)]
        resources: Option<String>,
        /// The directory whose file system supplies `disk`.
        #[arg(long, default_value = "/tmp")]
        work_dir: PathBuf,
    },
    /// Run a built-in executor. The agent starts it inside the executor's
    /// container; it is configured only by the Mesos executor environment
    /// (MESOS_FRAMEWORK_ID, MESOS_EXECUTOR_ID, MESOS_AGENT_ENDPOINT, ...).
    Executor {
        #[command(subcommand)]
        kind: ExecutorKind,
    },
    /// Run a master: the Mesos v1 scheduler and operator APIs, the legacy
    /// state endpoints and the agent link, all on `--port`.
    Master(pando_core::master::MasterFlags),
    /// Run an agent: register with the master, run tasks in cgroup-isolated
    /// containers, serve the executor and agent APIs on `--port`.
    /// (`pando agent list` lists the cluster's agents instead.)
    Agent(pando_agent::flags::AgentFlags),
    /// Load a master with simulated agents and frameworks and measure it:
    /// registration time, task launches/s, offer-to-launch latency,
    /// allocation cycle time, master CPU and RSS (pando-sim).
    Simulate(pando_sim::SimulateFlags),
    /// `local`, `execute` and the operator commands (pando-cli).
    #[command(flatten)]
    Cli(pando_cli::Command),
}

/// The built-in executors.
#[derive(Debug, Clone, Copy, Subcommand)]
enum ExecutorKind {
    /// The command executor: runs one task's CommandInfo.
    Command,
    /// The default executor: runs a task group as nested containers.
    Default,
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "master") {
        args = pando_core::master::flags::rewrite_negations(args);
    }
    let args = pando_cli::rewrite_args(args);
    let cli = Cli::parse_from(args);
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
        Command::Master(flags) => {
            init_logging();
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(pando_core::master::run(flags))?;
            Ok(())
        }
        Command::Agent(flags) => {
            init_logging();
            pando_agent::run_blocking(flags)?;
            Ok(())
        }
        Command::Executor { kind } => {
            let kind = match kind {
                ExecutorKind::Command => pando_executor::Kind::Command,
                ExecutorKind::Default => pando_executor::Kind::Default,
            };
            let code = pando_executor::run(kind)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Cli(command) => {
            if command.runs_servers() {
                init_logging();
            }
            let code = pando_cli::run(command)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Simulate(flags) => {
            let code = pando_sim::run_blocking(flags)?;
            if code != 0 {
                std::process::exit(code);
            }
            Ok(())
        }
        Command::Version => {
            println!(
                "pando {} (Mesos API {})",
                env!("CARGO_PKG_VERSION"),
                pando_proto::MESOS_VERSION
            );
            Ok(())
        }
        Command::Resources {
            resources,
            work_dir,
        } => {
            let given = match resources {
                Some(text) => pando_resources::Resources::parse(&text)?,
                None => pando_resources::Resources::default(),
            };
            let totals = pando_agent::detect::MachineTotals::measure(&work_dir)?;
            let all = pando_agent::detect::with_detected(&given, &totals)?;
            let protos = all.to_proto();
            let json: Vec<String> = protos.iter().map(pando_proto::json::to_json).collect();
            println!("[{}]", json.join(","));
            Ok(())
        }
    }
}

/// Logs to stderr at `info`, or as `RUST_LOG` says.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
