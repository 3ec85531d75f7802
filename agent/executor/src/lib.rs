//! Pando's built-in Mesos executors.
//!
//! The agent starts an executor as a process inside the executor's
//! container, with the sandbox as its working directory and the Mesos
//! executor environment (`MESOS_FRAMEWORK_ID`, `MESOS_EXECUTOR_ID`,
//! `MESOS_AGENT_ENDPOINT`, ...). The executor then speaks the v1 executor
//! HTTP API to `http://$MESOS_AGENT_ENDPOINT/api/v1/executor`, exactly as
//! Mesos's own executors do, so the agent needs no special case for them.
//!
//! ```text
//!  env ──▶ ExecutorEnv ──▶ Driver ◀──SUBSCRIBE / UPDATE──▶ agent /api/v1/executor
//!                            │ Incoming (events)
//!              ┌─────────────┴──────────────┐
//!       command_executor              default_executor ──LAUNCH_CONTAINER, WAIT/KILL_NESTED_CONTAINER──▶ agent /api/v1
//!   (one task, a child process)     (a task group, nested containers)
//! ```
//!
//! * [`command_executor`] runs a single `TaskInfo.command` as a child
//!   process, with kill policies and health checks.
//! * [`default_executor`] runs a LAUNCH_GROUP's tasks as nested containers
//!   through the agent's operator API and kills the whole group when one
//!   task fails or is killed.
//! * [`driver`] is the executor library: subscription, re-subscription
//!   with unacknowledged updates, ordered calls.
//!
//! Glossary: an *executor* is the process that runs tasks for a framework
//! on an agent; a *container* is the isolated environment (cgroups,
//! sandbox) the agent gives it; a *nested container* is a container inside
//! the executor's, one per task of a task group.

pub mod check;
pub mod command_executor;
pub mod default_executor;
pub mod driver;
pub mod env;
pub mod health;
pub mod http;
pub mod probe;
pub mod process;
pub mod status;

/// Which executor to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The command executor, for a task with a `command`.
    Command,
    /// The default executor, for task groups.
    Default,
}

/// Why an executor could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The Mesos executor environment is incomplete.
    #[error(transparent)]
    Env(#[from] env::EnvError),
    /// The async runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The command executor failed.
    #[error(transparent)]
    Command(#[from] command_executor::CommandExecutorError),
    /// The default executor failed.
    #[error(transparent)]
    Default(#[from] default_executor::DefaultExecutorError),
}

/// Runs the executor of `kind`, configured from the process environment,
/// until it is done; returns the process exit code.
pub fn run(kind: Kind) -> Result<i32, ExecutorError> {
    init_logging();
    let env = env::ExecutorEnv::from_env()?;
    // Read once, then hidden from tasks, as Mesos does. No other thread
    // exists yet, so changing the environment is safe.
    std::env::remove_var(env::AUTHENTICATION_TOKEN_VAR);
    tracing::info!(
        executor = %env.executor_id.value,
        framework = %env.framework_id.value,
        agent = %env.agent_endpoint,
        checkpoint = env.checkpoint,
        "starting the {} executor",
        match kind {
            Kind::Command => "command",
            Kind::Default => "default",
        }
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ExecutorError::Runtime)?;
    let code = runtime.block_on(async move {
        match kind {
            Kind::Command => command_executor::run(env)
                .await
                .map_err(ExecutorError::from),
            Kind::Default => default_executor::run(env)
                .await
                .map_err(ExecutorError::from),
        }
    })?;
    // Detached tasks (waiters, the driver) must not keep the process alive.
    runtime.shutdown_background();
    Ok(code)
}

/// Logs to stderr (the sandbox's `stderr` file), filtered by `RUST_LOG`.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}
