//! Running a master: binding the port, the timers, and shutdown.
//!
//! One TCP port serves both faces of the master: HTTP/1.1 for the Mesos
//! APIs and HTTP/2 (gRPC) for the agent link. Beside the server run four
//! small loops, each locking master state briefly:
//!
//! * allocation: a cycle every `--allocation_interval`, or sooner when an
//!   event (a new agent, a decline, a revive...) wakes it;
//! * pings: every `--agent_ping_timeout`, see `agent.rs`;
//! * housekeeping: once a second, frameworks whose failover timeout ran out
//!   are removed;
//! * disconnects: scheduler streams that closed are reported to the master.
//!
//! All of them stop when the shutdown future completes.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pando_link::agent_link_server::AgentLinkServer;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::flags::MasterFlags;
use super::handle::{MasterHandle, TenureAnnouncer};
use super::http::auth::Credentials;
use super::http::{self, AppState, Disconnect};
use super::leader::{LeaderService, LeaderServices};
use super::link::AgentLinkService;
use super::state::{Master, StartError};
use pando_registry::ReplicatedRegistry;

/// Why the master could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The flags or state could not be set up.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The credentials file could not be read.
    #[error(transparent)]
    Flags(#[from] super::flags::FlagsError),
    /// The port could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("server error: {0}")]
    Serve(std::io::Error),
    /// The replicated registry could not start, or stopped on an error.
    #[error(transparent)]
    Ha(#[from] super::ha::HaError),
}

/// A master bound to its port, ready to run.
pub struct BoundMaster {
    listener: TcpListener,
    registry: Option<ReplicatedRegistry>,
    raft_listener: Option<TcpListener>,
    flags: MasterFlags,
    state: Arc<Mutex<Master>>,
    handle: MasterHandle,
    tenure: TenureAnnouncer,
    app: AppState,
    disconnects: mpsc::UnboundedReceiver<Disconnect>,
    body_limit: usize,
    services: Vec<Arc<dyn LeaderService>>,
}

impl std::fmt::Debug for BoundMaster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundMaster").finish_non_exhaustive()
    }
}

impl BoundMaster {
    /// Binds `--ip:--port` (port 0 picks a free one) and builds the state.
    pub async fn bind(mut flags: MasterFlags) -> Result<BoundMaster, ServeError> {
        let credentials = match &flags.credentials {
            Some(path) => Credentials::load(path)?,
            None => Credentials::default(),
        };
        let addr = SocketAddr::new(flags.ip, flags.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        if let Ok(local) = listener.local_addr() {
            flags.port = local.port();
        }
        let body_limit = flags.max_request_body_bytes;
        let heartbeat = flags.heartbeat_interval;
        let (registry, raft_listener) = match flags.registry.as_str() {
            "in_memory" => (None, None),
            "replicated_log" => {
                let config = super::ha::registry_config(&flags)?;
                let registry = ReplicatedRegistry::open(config)
                    .await
                    .map_err(|e| super::ha::HaError::Registry(e.to_string()))?;
                let raft_listener = match flags.raft_port {
                    Some(port) => {
                        let addr = SocketAddr::new(flags.ip, port);
                        Some(
                            TcpListener::bind(addr)
                                .await
                                .map_err(|source| ServeError::Bind { addr, source })?,
                        )
                    }
                    None => None,
                };
                (Some(registry), raft_listener)
            }
            other => return Err(StartError::Registry(other.to_string()).into()),
        };
        let master = match registry {
            Some(_) => Master::standby(flags.clone(), None)?,
            None => Master::new(flags.clone())?,
        };
        let leading = master.elected;
        let state = Arc::new(Mutex::new(master));
        let (disconnect_tx, disconnects) = mpsc::unbounded_channel();
        let (handle, tenure) = MasterHandle::new(state.clone(), disconnect_tx, leading);
        let app = AppState {
            handle: handle.clone(),
            credentials: Arc::new(credentials),
            heartbeat,
            registry: registry.clone(),
        };
        Ok(BoundMaster {
            listener,
            registry,
            raft_listener,
            flags,
            state,
            handle,
            tenure,
            app,
            disconnects,
            body_limit,
            services: Vec::new(),
        })
    }

    /// A handle on the master, for in-process frameworks and services.
    pub fn handle(&self) -> MasterHandle {
        self.handle.clone()
    }

    /// Adds a service that runs only while this master leads (see
    /// `leader.rs`). Services added after [`BoundMaster::run`] starts are
    /// not possible: add them before.
    pub fn add_leader_service(&mut self, service: Arc<dyn LeaderService>) {
        self.services.push(service);
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let BoundMaster {
            listener,
            registry,
            raft_listener,
            flags,
            state,
            handle,
            tenure,
            app,
            mut disconnects,
            body_limit,
            services,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let (allocation_interval, ping_interval, wake, header_timeout) = {
            let m = state
                .lock()
                .map_err(|_| ServeError::Serve(std::io::Error::other("poisoned")))?;
            (
                m.flags.allocation_interval,
                m.flags.agent_ping_timeout,
                m.wake_allocator.clone(),
                m.flags.http_header_read_timeout,
            )
        };
        let wake_for_ha = wake.clone();

        let mut loops = tokio::task::JoinSet::new();
        {
            let state = state.clone();
            let mut stop = stop_rx.clone();
            loops.spawn(async move {
                let mut tick =
                    tokio::time::interval(allocation_interval.max(Duration::from_millis(1)));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = wake.notified() => {
                            // Let a burst of events land before the cycle.
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        _ = stop.changed() => break,
                    }
                    let Ok(mut m) = state.lock() else { break };
                    m.run_allocation();
                }
            });
        }
        {
            let state = state.clone();
            let mut stop = stop_rx.clone();
            loops.spawn(async move {
                let start = tokio::time::Instant::now() + ping_interval;
                let mut tick =
                    tokio::time::interval_at(start, ping_interval.max(Duration::from_millis(10)));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.changed() => break,
                    }
                    let Ok(mut m) = state.lock() else { break };
                    m.ping_agents();
                }
            });
        }
        {
            let state = state.clone();
            let mut stop = stop_rx.clone();
            loops.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(250));
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.changed() => break,
                    }
                    let Ok(mut m) = state.lock() else { break };
                    m.expire_failover_timeouts(Instant::now());
                    m.expire_recovered_agents(Instant::now());
                    if m.elected {
                        m.prune_registry(Instant::now());
                    }
                }
            });
        }
        {
            let state = state.clone();
            let mut stop = stop_rx.clone();
            loops.spawn(async move {
                loop {
                    let next = tokio::select! {
                        next = disconnects.recv() => next,
                        _ = stop.changed() => None,
                    };
                    let Some((framework_id, stream_id)) = next else {
                        break;
                    };
                    let Ok(mut m) = state.lock() else { break };
                    m.framework_disconnected(&framework_id, &stream_id);
                }
            });
        }

        let mut routes =
            tonic::service::Routes::new(AgentLinkServer::new(AgentLinkService::new(state.clone())));
        // A fatal registry error ends the server like a shutdown, then is
        // returned.
        let (fatal_tx, mut fatal_rx) = watch::channel(None::<super::ha::HaError>);
        let raft = registry.clone();
        if let Some(registry) = registry {
            match raft_listener {
                None => routes = routes.add_service(registry.service()),
                Some(raft_listener) => {
                    let service = registry.service();
                    let incoming = tokio_stream::wrappers::TcpListenerStream::new(raft_listener);
                    let mut stop = stop_rx.clone();
                    loops.spawn(async move {
                        let served = tonic::transport::Server::builder()
                            .add_service(service)
                            .serve_with_incoming_shutdown(incoming, async move {
                                let _ = stop.changed().await;
                            })
                            .await;
                        if let Err(e) = served {
                            tracing::error!("raft server failed: {e}");
                        }
                    });
                }
            }
            let fatal = fatal_tx.clone();
            let joining = registry.clone();
            let supervised = (flags, state.clone(), tenure, wake_for_ha, stop_rx.clone());
            loops.spawn(async move {
                if let Err(e) = joining.start().await {
                    let _ = fatal.send(Some(super::ha::HaError::Registry(e.to_string())));
                    return;
                }
                let (flags, state, tenure, wake, stop) = supervised;
                if let Err(e) =
                    super::ha::supervise(joining, flags, state, tenure, wake, stop).await
                {
                    let _ = fatal.send(Some(e));
                }
            });
        }
        let router = http::router(app, body_limit).merge(routes.prepare().into_axum_router());
        let stopping = async move {
            tokio::select! {
                () = shutdown => {}
                _ = fatal_rx.wait_for(Option::is_some) => {}
            }
        };
        if !services.is_empty() {
            let leader_services = LeaderServices::new(handle, services);
            let stop = stop_rx.clone();
            loops.spawn(async move { leader_services.run(stop).await });
        }
        let served = serve_connections(listener, router, header_timeout, stopping).await;
        // Every loop watches `stop`; shutdown waits for each to finish.
        let _ = stop_tx.send(true);
        while let Some(ended) = loops.join_next().await {
            if let Err(e) = ended {
                tracing::warn!("a master loop ended abnormally: {e}");
            }
        }
        // Raft runs tasks of its own; they end with the master.
        if let Some(raft) = raft {
            raft.shutdown().await;
        }
        if let Some(e) = fatal_tx.send_replace(None) {
            return Err(ServeError::Ha(e));
        }
        served.map_err(ServeError::Serve)
    }
}

/// Accepts connections until `shutdown`, serving each with HTTP/1.1 (the
/// Mesos APIs) or HTTP/2 (the agent link), whichever the client speaks.
/// A client that takes longer than `header_timeout` to send a request's
/// headers (slow-loris, or an idle keep-alive connection) is disconnected.
async fn serve_connections(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(20)));
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    // The connections belong to the server: finished ones are reaped as
    // they end, and the rest are dropped (closed) when it stops.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next() => continue,
            _ = &mut shutdown => return Ok(()),
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or a reset before accept: keep serving.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        connections.spawn(async move {
            // A connection that sends nothing at all is closed like a slow
            // one (hyper's header timeout starts with the first byte).
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}

/// Runs `pando master` until Ctrl-C or SIGTERM.
pub async fn run(flags: MasterFlags) -> Result<(), ServeError> {
    let bound = BoundMaster::bind(flags).await?;
    if let Some(addr) = bound.local_addr() {
        tracing::info!(%addr, "pando master listening");
        println!("pando master listening on {addr}");
    }
    bound.run(shutdown_signal()).await
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
