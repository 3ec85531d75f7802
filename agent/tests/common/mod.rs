//! Test harness: a small AgentLink master written with tonic, an agent
//! started in-process on its own runtime (so a test can "crash" it by
//! dropping the runtime), and the Python test executor as the launcher.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::type_complexity)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pando_agent::flags::AgentFlags;
use pando_link as link;
use pando_link::agent_link_server::{AgentLink, AgentLinkServer};
use pando_link::agent_message::Message as Up;
use pando_link::master_message::Message as Down;
use pando_proto::mesos::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tokio_stream::{Stream, StreamExt};

type SessionStream = Pin<Box<dyn Stream<Item = Result<link::MasterMessage, tonic::Status>> + Send>>;

#[derive(Clone)]
struct Master {
    down: Arc<Mutex<Option<mpsc::UnboundedSender<Result<link::MasterMessage, tonic::Status>>>>>,
    up: mpsc::UnboundedSender<link::AgentMessage>,
    ping: f64,
}

#[tonic::async_trait]
impl AgentLink for Master {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: tonic::Request<tonic::Streaming<link::AgentMessage>>,
    ) -> Result<tonic::Response<SessionStream>, tonic::Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::unbounded_channel();
        *self.down.lock().unwrap() = Some(tx.clone());
        let up = self.up.clone();
        let ping = self.ping;
        tokio::spawn(async move {
            while let Some(Ok(message)) = inbound.next().await {
                let reply = match &message.message {
                    Some(Up::Register(_)) => Some(Down::Registered(link::AgentRegistered {
                        agent_id: pb::AgentId {
                            value: "agent-1".into(),
                        },
                        ping_interval_seconds: ping,
                        max_ping_timeouts: 5,
                        master_info: None,
                    })),
                    Some(Up::Reregister(r)) => Some(Down::Reregistered(link::AgentReregistered {
                        agent_id: r.agent_info.id.clone().unwrap_or_default(),
                        ping_interval_seconds: ping,
                        max_ping_timeouts: 5,
                        master_info: None,
                        completed_frameworks: Vec::new(),
                    })),
                    _ => None,
                };
                if let Some(reply) = reply {
                    let _ = tx.send(Ok(link::MasterMessage {
                        message: Some(reply),
                    }));
                }
                if up.send(message).is_err() {
                    break;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(
            UnboundedReceiverStream::new(rx),
        )))
    }
}

/// The fake master: what the agent sent, and a way to talk back.
pub struct FakeMaster {
    pub addr: SocketAddr,
    down: Arc<Mutex<Option<mpsc::UnboundedSender<Result<link::MasterMessage, tonic::Status>>>>>,
    up: mpsc::UnboundedReceiver<link::AgentMessage>,
    /// Messages received while waiting for another; `expect` looks here
    /// first, so no message is lost to a test that waits out of order.
    backlog: std::collections::VecDeque<link::AgentMessage>,
}

impl FakeMaster {
    pub async fn start() -> FakeMaster {
        FakeMaster::start_with_ping(30.0).await
    }

    /// A master that promises pings every `ping` seconds (and never sends
    /// one).
    pub async fn start_with_ping(ping: f64) -> FakeMaster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up_tx, up) = mpsc::unbounded_channel();
        let master = Master {
            down: Arc::new(Mutex::new(None)),
            up: up_tx,
            ping,
        };
        let down = Arc::clone(&master.down);
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(AgentLinkServer::new(master))
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        FakeMaster {
            addr,
            down,
            up,
            backlog: Default::default(),
        }
    }

    /// Waits for the agent's RegisterAgent.
    pub async fn registered(&mut self) -> pb::AgentInfo {
        self.expect("registration", |m| match m {
            Up::Register(r) => Some(r.agent_info.clone()),
            _ => None,
        })
        .await
    }

    /// Sends a message to the agent on the current session.
    pub fn send(&self, message: Down) {
        let down = self.down.lock().unwrap();
        down.as_ref()
            .expect("an agent session is open")
            .send(Ok(link::MasterMessage {
                message: Some(message),
            }))
            .unwrap();
    }

    /// Breaks the current session.
    pub fn break_session(&self) {
        let down = self.down.lock().unwrap();
        if let Some(tx) = down.as_ref() {
            let _ = tx.send(Err(tonic::Status::unavailable("test broke the link")));
        }
    }

    /// The next message the agent sends that `pick` accepts, within 30 s.
    pub async fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(&Up) -> Option<T>) -> T {
        let found = self
            .backlog
            .iter()
            .position(|m| m.message.as_ref().is_some_and(|m| pick(m).is_some()));
        if let Some(index) = found {
            let message = self.backlog.remove(index).unwrap();
            return pick(message.message.as_ref().unwrap()).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = tokio::time::timeout(left, self.up.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("master channel open");
            if let Some(m) = &message.message {
                if let Some(found) = pick(m) {
                    return found;
                }
            }
            self.backlog.push_back(message);
        }
    }

    /// Everything the agent sent that no test took yet, without waiting.
    pub fn pending_messages(&mut self) -> Vec<link::AgentMessage> {
        let mut all: Vec<_> = self.backlog.drain(..).collect();
        while let Ok(message) = self.up.try_recv() {
            all.push(message);
        }
        all
    }

    /// The next status update for `task`.
    pub async fn update_for(&mut self, task: &str) -> link::StatusUpdate {
        self.expect(&format!("an update for {task}"), |m| match m {
            Up::StatusUpdate(u) if u.status.task_id.value == task => Some(u.clone()),
            _ => None,
        })
        .await
    }

    /// Acknowledges an update.
    pub fn ack(&self, update: &link::StatusUpdate) {
        self.send(Down::Acknowledgement(link::StatusUpdateAcknowledgement {
            agent_id: update.agent_id.clone().unwrap_or_default(),
            framework_id: update.framework_id.clone(),
            task_id: update.status.task_id.clone(),
            uuid: update.status.uuid.clone().unwrap(),
        }));
    }
}

/// A launcher dir whose `pando` is the Python test executor.
pub fn launcher_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/test_executor.py");
    // The system Python, when there is one, so that tasks run as another
    // user find an interpreter they may execute.
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("python3");
    let wrapper = dir.path().join("pando");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {python} {} \"$@\"\n", script.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

pub fn flags(master: SocketAddr, work_dir: &Path, launcher: &Path, port: u16) -> AgentFlags {
    AgentFlags {
        master: master.to_string(),
        ip: Some("127.0.0.1".parse().unwrap()),
        port,
        hostname: Some("localhost".into()),
        work_dir: work_dir.to_path_buf(),
        resources: Some("cpus:4;mem:4096;disk:1000;ports:[31000-32000]".into()),
        attributes: Some("rack:r1".into()),
        isolation: "cgroups/cpu,cgroups/mem,cgroups/pids".into(),
        cgroups_root: cgroups_root(),
        recover: "reconnect".into(),
        executor_shutdown_grace_period: "2secs".into(),
        executor_registration_timeout: "20secs".into(),
        executor_reregistration_timeout: "10secs".into(),
        recovery_timeout: "1mins".into(),
        registration_backoff_factor: "100ms".into(),
        strict: true,
        no_strict: false,
        launcher_dir: Some(launcher.to_path_buf()),
        advertise_ip: None,
        advertise_port: None,
        gc_delay: "1weeks".into(),
        executor_environment_variables: None,
    }
}

/// The cgroup root of this test process's agents.
pub fn cgroups_root() -> String {
    format!("pando-test-{}", std::process::id())
}

/// An agent on its own runtime; dropping it is a crash (SIGKILL): no
/// cleanup runs and executors keep running.
pub struct RunningAgent {
    pub addr: SocketAddr,
    pub agent: Arc<pando_agent::agent::Agent>,
    /// Owns the agent's HTTP server and loops; dropping it stops them.
    _started: pando_agent::Started,
    runtime: Option<tokio::runtime::Runtime>,
}

impl RunningAgent {
    pub fn start(flags: AgentFlags) -> RunningAgent {
        // Built on another thread: a test's own runtime cannot block_on.
        let (runtime, started) = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            // A crashed agent's runtime lets go of its port in the
            // background; a restart on the same port may have to wait.
            let deadline = Instant::now() + Duration::from_secs(10);
            let started = loop {
                match runtime.block_on(pando_agent::start(&flags)) {
                    Ok(started) => break started,
                    Err(pando_agent::RunError::Bind { .. }) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Err(e) => panic!("agent failed to start: {e}"),
                }
            };
            (runtime, started)
        })
        .join()
        .unwrap();
        runtime.spawn(pando_agent::link::run(Arc::clone(&started.agent)));
        RunningAgent {
            addr: started.addr,
            agent: Arc::clone(&started.agent),
            _started: started,
            runtime: Some(runtime),
        }
    }

    pub fn crash(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for RunningAgent {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            let agent = Arc::clone(&self.agent);
            let _ = std::thread::spawn(move || {
                rt.block_on(agent.kill_everything());
                rt.shutdown_background();
            })
            .join();
        }
        // The last test out removes the shared cgroup root.
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.filter_map(Result::ok) {
                let _ = std::fs::remove_dir(h.path().join(cgroups_root()));
            }
        }
    }
}

pub fn framework(id: &str, checkpoint: bool) -> pb::FrameworkInfo {
    pb::FrameworkInfo {
        user: "root".into(),
        name: "test".into(),
        id: Some(pb::FrameworkId { value: id.into() }),
        checkpoint: Some(checkpoint),
        ..Default::default()
    }
}

pub fn command_task(id: &str, command: &str, cpus: f64, mem: f64) -> pb::TaskInfo {
    pb::TaskInfo {
        name: id.into(),
        task_id: pb::TaskId { value: id.into() },
        agent_id: pb::AgentId {
            value: "agent-1".into(),
        },
        resources: pando_resources::Resources::parse(&format!("cpus:{cpus};mem:{mem}"))
            .unwrap()
            .to_proto(),
        command: Some(pb::CommandInfo {
            value: Some(command.into()),
            shell: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A custom-executor task: the executor is the test executor itself.
pub fn executor_task(id: &str, command: &str, launcher: &Path) -> pb::TaskInfo {
    let mut task = command_task(id, command, 0.5, 64.0);
    task.executor = Some(pb::ExecutorInfo {
        executor_id: pb::ExecutorId {
            value: format!("exec-{id}"),
        },
        command: Some(pb::CommandInfo {
            value: Some(launcher.join("pando").display().to_string()),
            shell: Some(true),
            ..Default::default()
        }),
        resources: pando_resources::Resources::parse("cpus:0.1;mem:32")
            .unwrap()
            .to_proto(),
        ..Default::default()
    });
    task
}

pub fn state_name(update: &link::StatusUpdate) -> &'static str {
    pb::TaskState::try_from(update.status.state)
        .unwrap()
        .as_str_name()
}

/// Polls `check` until it is true or 30 s pass.
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

pub fn sandbox_of(agent: &pando_agent::agent::Agent, fw: &str, exec: &str) -> Option<PathBuf> {
    let state = agent.lock();
    let f = state.frameworks.get(fw).or_else(|| {
        state
            .completed_frameworks
            .iter()
            .find(|f| f.info.id.as_ref().map(|i| i.value.as_str()) == Some(fw))
    })?;
    f.executors
        .get(exec)
        .or_else(|| {
            f.completed_executors
                .iter()
                .find(|e| e.info.executor_id.value == exec)
        })
        .map(|e| e.directory.clone())
}

/// Posts `body` to the executor API; returns the status and the raw
/// stream, positioned after the headers.
pub fn post_executor(
    addr: std::net::SocketAddr,
    content_type: &str,
    body: &[u8],
) -> (u16, std::io::BufReader<std::net::TcpStream>) {
    use std::io::{BufRead, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "POST /api/v1/executor HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nAccept: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let code = status[9..12].parse().unwrap();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    (code, reader)
}

/// Reads HTTP chunks into a RecordIO decoder until `count` records came.
pub fn read_records(
    reader: &mut std::io::BufReader<std::net::TcpStream>,
    count: usize,
) -> Vec<bytes::Bytes> {
    use std::io::{BufRead, Read};
    let mut decoder = pando_proto::recordio::Decoder::default();
    let mut records = Vec::new();
    while records.len() < count {
        let mut size = String::new();
        reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).unwrap();
        records.extend(decoder.decode(&chunk[..size]).unwrap());
    }
    records
}

/// Skips a test that cannot run on this machine, saying why. Under CI
/// (`CI=true`) a skip is a failure: CI runs as root with everything
/// installed, so a skip there would hide a test that silently stopped
/// running.
pub fn skip(why: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "under CI this test must run: {why}"
    );
    eprintln!("SKIPPED: {why}");
}
