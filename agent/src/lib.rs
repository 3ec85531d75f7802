//! The Pando agent: it runs on every machine, advertises that machine's
//! resources to the master, and runs tasks inside cgroup-isolated
//! containers, with Mesos's guarantees: a task gets the cpu and memory it
//! was given, its output is in a known sandbox, no status update is lost,
//! and restarting the agent does not kill checkpointed tasks.
//!
//! ```text
//!            master (AgentLink gRPC stream)
//!                 ▲ │
//!          link.rs│ │RunTask, KillTask, acks...
//!                 │ ▼
//!   http.rs ──► agent.rs (State, status update manager) ──► containerizer.rs
//!  /api/v1/executor  │                                        ├─ fetcher.rs (URIs)
//!  /api/v1 (operator.rs)                                      └─ cgroups.rs (isolation)
//!  /state, /files/*  └─► checkpoint.rs (work_dir/meta)
//! ```
//!
//! [`run`] wires them: validate the flags ([`flags`]), bind the HTTP port,
//! recover checkpoints, then keep a session with the master until it says
//! ShutdownAgent.

pub mod agent;
pub mod cgroups;
pub mod checkpoint;
pub mod containerizer;
pub mod detect;
pub mod fetcher;
pub mod flags;
pub mod http;
pub mod link;
pub mod operator;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pando_proto::mesos::v1 as pb;

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A flag was invalid.
    #[error(transparent)]
    Flags(#[from] flags::FlagsError),
    /// The HTTP port could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Recovery failed.
    #[error("recovery failed: {0}")]
    Recovery(#[from] agent::AgentError),
    /// The master shut the agent down.
    #[error(transparent)]
    Link(#[from] link::LinkError),
}

/// A started agent: its address and state, for tests and embedding, and
/// the loops that serve it, which [`Started::shutdown`] stops and awaits.
#[derive(Debug)]
pub struct Started {
    /// The agent.
    pub agent: Arc<agent::Agent>,
    /// The HTTP address it listens on.
    pub addr: SocketAddr,
    loops: Loops,
}

/// The agent's long-running tasks and the signal that stops them.
#[derive(Debug)]
struct Loops {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Loops {
    fn new() -> Loops {
        Loops {
            stop: tokio::sync::watch::Sender::new(false),
            tasks: tokio::task::JoinSet::new(),
        }
    }

    /// Runs `work` until it ends or the agent stops.
    fn spawn(&mut self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut stop = self.stop.subscribe();
        self.tasks.spawn(async move {
            tokio::select! {
                () = work => {}
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }
}

impl Started {
    /// Stops the HTTP server and the agent's loops, and waits for them.
    /// Containers are left alone (see `Agent::kill_everything`).
    pub async fn shutdown(mut self) {
        let _ = self.loops.stop.send(true);
        while let Some(ended) = self.loops.tasks.join_next().await {
            if let Err(e) = ended {
                tracing::warn!("an agent loop ended abnormally: {e}");
            }
        }
    }
}

/// Validates the flags, binds the port, recovers, and starts serving HTTP
/// and the update retry loop. The master session is started by [`run`].
pub async fn start(flags: &flags::AgentFlags) -> Result<Started, RunError> {
    let config = flags.validate()?;
    std::fs::create_dir_all(&config.flags.work_dir).map_err(|source| RunError::Bind {
        addr: SocketAddr::new(config.bind_ip, config.flags.port),
        source,
    })?;
    let bind = SocketAddr::new(config.bind_ip, config.flags.port);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| RunError::Bind { addr: bind, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| RunError::Bind { addr: bind, source })?;
    let endpoint = SocketAddr::new(
        config.advertise_ip,
        config.flags.advertise_port.unwrap_or(local.port()),
    );
    let info = pb::AgentInfo {
        hostname: config.hostname.clone(),
        port: Some(i32::from(endpoint.port())),
        resources: config.resources.to_proto(),
        attributes: config.attributes.clone(),
        ..Default::default()
    };
    let agent = agent::Agent::new(config, endpoint, info);
    tracing::info!(
        "agent listening on {local}; isolation {:?}",
        agent.isolator.mode()
    );
    let mut loops = Loops::new();
    let app = http::router(Arc::clone(&agent));
    loops.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("HTTP server stopped: {e}");
        }
    });
    // Recovery happens with the executor API already up, so re-attached
    // executors can subscribe again while the agent re-registers.
    if let Err(e) = agent.recover().await {
        Started {
            agent,
            addr: endpoint,
            loops,
        }
        .shutdown()
        .await;
        return Err(e.into());
    }
    loops.spawn(Arc::clone(&agent).retry_loop());
    // Sandboxes left from before this start are collected once they are
    // older than --gc_delay, then checked again every hour.
    let collector = Arc::clone(&agent);
    loops.spawn(async move {
        let period = collector
            .config
            .gc_delay
            .clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let mut tick = tokio::time::interval(period);
        loop {
            tick.tick().await;
            let agent = Arc::clone(&collector);
            let removed = tokio::task::spawn_blocking(move || agent.gc_sandboxes())
                .await
                .unwrap_or(0);
            if removed > 0 {
                tracing::info!("removed {removed} old sandboxes");
            }
        }
    });
    // Executors hear a HEARTBEAT every 30 minutes, as from a Mesos agent.
    let heartbeats = Arc::clone(&agent);
    loops.spawn(async move {
        let period = Duration::from_secs(30 * 60);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tick.tick().await;
            heartbeats.heartbeat_executors();
        }
    });
    Ok(Started {
        agent,
        addr: endpoint,
        loops,
    })
}

/// Runs `pando agent` until the master shuts it down (an error, as the
/// agent then exits non-zero).
pub async fn run(flags: flags::AgentFlags) -> Result<(), RunError> {
    let started = start(&flags).await?;
    let reason = link::run(Arc::clone(&started.agent)).await;
    if let link::LinkError::Shutdown(_) = &reason {
        started.agent.kill_everything().await;
        // A shut-down agent comes back as a new one, as in Mesos.
        let _ = std::fs::remove_file(started.agent.meta.latest());
    }
    started.shutdown().await;
    Err(reason.into())
}

/// Runs the agent on its own multi-threaded tokio runtime, for `pando
/// agent`, so the binary needs no runtime of its own.
pub fn run_blocking(flags: flags::AgentFlags) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| RunError::Bind {
            addr: SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), flags.port),
            source,
        })?;
    runtime.block_on(run(flags))
}
