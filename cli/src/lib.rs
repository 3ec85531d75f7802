//! The `pando` command line's user-facing commands: `pando local` (a whole
//! cluster in one command) and the operator CLI, in the manner of
//! `mesos-execute` and the Mesos CLI.
//!
//! ```text
//!  src/main.rs ──► Command ──► run ──┬─► local.rs     master + N agents, in process
//!                                    ├─► execute.rs   one task via /api/v1/scheduler
//!                                    └─► operator.rs  /master/state → tables or --json;
//!                                                     task log via the agent's /files/read
//!  pando_scheduler: the driver and the HTTP client · ports.rs: who holds a port
//!  table.rs: aligned columns · progress.rs: a spinner on a TTY only
//! ```
//!
//! Every command talks to Pando only through its public HTTP APIs (except
//! `local`, which embeds the master and agents), exactly as an outside tool
//! would, so what works here works for any Mesos client.

pub mod execute;
pub mod local;
pub mod operator;
pub mod ports;
pub mod progress;
pub mod table;

use std::time::Duration;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `pando local` failed.
    #[error(transparent)]
    Local(#[from] local::LocalError),
    /// `pando execute` failed.
    #[error(transparent)]
    Execute(#[from] execute::ExecuteError),
    /// An operator command failed.
    #[error(transparent)]
    Operator(#[from] operator::OperatorError),
    /// The tokio runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

/// The commands this crate implements, flattened into `pando`'s own.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Run a whole cluster on this machine: a master and `--agents` agents
    /// on loopback, until Ctrl-C.
    Local(local::LocalFlags),
    /// Run one command as a task through the scheduler API, print its state
    /// transitions and sandbox, and exit with its exit status.
    Execute(execute::ExecuteFlags),
    /// Tasks: `list`, `log`.
    Task {
        /// What to do.
        #[command(subcommand)]
        command: operator::TaskCommand,
    },
    /// Frameworks: `list`.
    Framework {
        /// What to do.
        #[command(subcommand)]
        command: operator::FrameworkCommand,
    },
    /// The cluster: `status`.
    Cluster {
        /// What to do.
        #[command(subcommand)]
        command: operator::ClusterCommand,
    },
    /// List the agents (`pando agent list`).
    #[command(
        name = "agent-list",
        hide = true,
        override_usage = "pando agent list [OPTIONS]"
    )]
    AgentList(operator::ListFlags),
}

impl Command {
    /// Whether the command runs Pando's own servers, and so wants their
    /// logs on stderr.
    pub fn runs_servers(&self) -> bool {
        matches!(self, Command::Local(_))
    }
}

/// Rewrites `pando agent list ...` to the hidden `agent-list` command, as
/// `pando agent` itself runs an agent.
pub fn rewrite_args(mut args: Vec<String>) -> Vec<String> {
    if args.get(1).is_some_and(|a| a == "agent") && args.get(2).is_some_and(|a| a == "list") {
        args.remove(2);
        args[1] = "agent-list".into();
    }
    args
}

/// Runs a command to its end and returns the process's exit status.
pub fn run(command: Command) -> Result<i32, CliError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let result = runtime.block_on(async move {
        match command {
            Command::Local(flags) => local::run(flags).await?,
            Command::Execute(flags) => return Ok(execute::run(flags).await?),
            Command::Task { command } => match command {
                operator::TaskCommand::List(flags) => operator::task_list(&flags).await?,
                operator::TaskCommand::Log(flags) => operator::task_log(&flags).await?,
            },
            Command::Framework { command } => match command {
                operator::FrameworkCommand::List(flags) => operator::framework_list(&flags).await?,
            },
            Command::Cluster { command } => match command {
                operator::ClusterCommand::Status(flags) => operator::cluster_status(&flags).await?,
                operator::ClusterCommand::Masters(flags) => {
                    operator::cluster_masters(&flags).await?
                }
                operator::ClusterCommand::AddMaster(flags) => {
                    operator::change_master(&flags, true).await?
                }
                operator::ClusterCommand::RemoveMaster(flags) => {
                    operator::change_master(&flags, false).await?
                }
            },
            Command::AgentList(flags) => operator::agent_list(&flags).await?,
        }
        Ok::<i32, CliError>(0)
    });
    // Blocking tasks (a cgroup being destroyed, a stuck read) must not hold
    // the process up once the command is done.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        // A reader that closed the pipe (`pando task log t | head`) wanted
        // no more: not an error.
        Err(CliError::Operator(operator::OperatorError::Output(e)))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(0)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_list_is_routed_but_agent_is_not() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            rewrite_args(args(&["pando", "agent", "list", "--json"])),
            args(&["pando", "agent-list", "--json"])
        );
        let agent = args(&["pando", "agent", "--master=m:5050"]);
        assert_eq!(rewrite_args(agent.clone()), agent);
    }
}
