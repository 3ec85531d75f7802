//! A fake agent for the executor integration tests: an HTTP server that
//! serves `/api/v1/executor` (SUBSCRIBE streams, UPDATE and friends answer
//! 202) and `/api/v1` (LAUNCH_CONTAINER, WAIT/KILL_NESTED_CONTAINER backed
//! by real child processes), recording every call. It can be stopped and started
//! again on the same port, closing every connection, to play an agent
//! restart. Tests drive executors started as real processes.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use pando_proto::codec::ContentType;
use pando_proto::json::{from_json, to_json};
use pando_proto::mesos::v1::agent;
use pando_proto::mesos::v1::executor::{call, event, Call, Event};
use pando_proto::mesos::v1::{
    framework_info, AgentId, AgentInfo, CommandInfo, ContainerId, ExecutorId, ExecutorInfo,
    FrameworkId, FrameworkInfo, TaskId, TaskInfo, TaskState, TaskStatus,
};
use pando_proto::recordio;
use tokio::net::TcpSocket;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

pub const FRAMEWORK_ID: &str = "fw-1";
pub const EXECUTOR_ID: &str = "ex-1";
pub const EXECUTOR_CONTAINER: &str = "executor-container";
/// How long any condition may take before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

type ResponseBody = BoxBody<Bytes, Infallible>;

/// A streaming body fed by a channel: the SUBSCRIBE event stream.
struct ChannelBody(mpsc::UnboundedReceiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
    }
}

/// One nested container: a real child process.
struct Nested {
    pid: u32,
    /// The raw wait status once it exited.
    exit: Option<i32>,
}

/// What the fake agent recorded and how it behaves.
#[derive(Default)]
pub struct State {
    pub calls: Mutex<Vec<Call>>,
    /// The `Authorization` header of every API request, in order.
    pub authorizations: Mutex<Vec<Option<String>>>,
    pub operator_calls: Mutex<Vec<agent::Call>>,
    stream: Mutex<Option<mpsc::UnboundedSender<Bytes>>>,
    /// The encoding the current subscription asked for.
    stream_codec: Mutex<Option<ContentType>>,
    pub auto_ack: AtomicBool,
    /// How many of the next UPDATE calls to refuse with 403.
    pub refuse_updates: std::sync::atomic::AtomicUsize,
    /// How many of the next UPDATE calls to drop: the connection closes
    /// without an answer, as when a busy agent's accept queue overflows.
    pub drop_updates: std::sync::atomic::AtomicUsize,
    /// How long to sit on the next SUBSCRIBE before answering it, as a
    /// CPU-starved agent does (milliseconds; 0: answer at once).
    pub delay_next_subscribe_ms: std::sync::atomic::AtomicU64,
    /// GET /health requests served (HTTP health checks).
    pub health_probes: std::sync::atomic::AtomicUsize,
    pub task_killing: AtomicBool,
    nested: Mutex<HashMap<String, Nested>>,
    changed: Notify,
}

pub struct FakeAgent {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    server: Option<JoinHandle<()>>,
}

impl FakeAgent {
    pub async fn start(task_killing: bool) -> FakeAgent {
        let state = Arc::new(State::default());
        state.auto_ack.store(true, Ordering::SeqCst);
        state.task_killing.store(task_killing, Ordering::SeqCst);
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut agent = FakeAgent {
            addr,
            state,
            server: None,
        };
        agent.listen().await;
        agent
    }

    async fn listen(&mut self) {
        // After a stop the old listener closes once its aborted task is
        // dropped; retry the bind until the port is free again.
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let listener = loop {
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_reuseaddr(true).unwrap();
            match socket.bind(self.addr).and_then(|()| socket.listen(64)) {
                Ok(listener) => break listener,
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::task::yield_now().await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.addr = listener.local_addr().unwrap();
        let state = self.state.clone();
        self.server = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move {
                            // None: hang up without answering.
                            handle(state, req)
                                .await
                                .ok_or_else(|| std::io::Error::other("call dropped"))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }));
    }

    /// Closes the listener and every connection, as a dying agent does.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        *self.state.stream.lock().unwrap() = None;
    }

    /// Stops and listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        self.listen().await;
    }

    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Pushes an event onto the current subscription stream.
    pub fn send(&self, event: &Event) {
        let codec = self
            .state
            .stream_codec
            .lock()
            .unwrap()
            .unwrap_or(ContentType::Json);
        let record = recordio::frame(&codec.encode(event));
        let stream = self.state.stream.lock().unwrap();
        stream
            .as_ref()
            .expect("executor subscribed")
            .send(record)
            .unwrap();
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn subscribes(&self) -> Vec<call::Subscribe> {
        self.calls()
            .into_iter()
            .filter(|c| c.r#type() == call::Type::Subscribe)
            .map(|c| c.subscribe.unwrap_or_default())
            .collect()
    }

    pub fn updates(&self) -> Vec<TaskStatus> {
        self.calls()
            .into_iter()
            .filter_map(|c| c.update.map(|u| u.status))
            .collect()
    }

    pub fn updates_of(&self, task: &str) -> Vec<TaskStatus> {
        self.updates()
            .into_iter()
            .filter(|s| s.task_id.value == task)
            .collect()
    }

    pub fn operator_calls(&self) -> Vec<agent::Call> {
        self.state.operator_calls.lock().unwrap().clone()
    }

    /// Acknowledges every update sent so far.
    pub fn ack_all(&self) {
        for status in self.updates() {
            self.send(&ack(&status));
        }
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.stop();
        for nested in self.state.nested.lock().unwrap().values() {
            if nested.exit.is_none() {
                unsafe_kill(nested.pid, libc::SIGKILL);
            }
        }
    }
}

fn unsafe_kill(pid: u32, signal: i32) {
    let _ = pando_executor::process::signal_group(pid, signal);
}

pub fn ack(status: &TaskStatus) -> Event {
    Event {
        r#type: Some(event::Type::Acknowledged as i32),
        acknowledged: Some(event::Acknowledged {
            task_id: status.task_id.clone(),
            uuid: status.uuid.clone().unwrap(),
        }),
        ..Default::default()
    }
}

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Option<Response<ResponseBody>> {
    let path = req.uri().path().to_string();
    if req.method() == hyper::Method::GET && path == "/health" {
        state.health_probes.fetch_add(1, Ordering::SeqCst);
        return Some(full(StatusCode::OK, "ok"));
    }
    let authorization = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_string());
    state.authorizations.lock().unwrap().push(authorization);
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let codec = header(hyper::header::CONTENT_TYPE)
        .and_then(|v| ContentType::from_content_type(&v))
        .unwrap_or(ContentType::Json);
    let accept = ContentType::negotiate(header(hyper::header::ACCEPT).as_deref())
        .unwrap_or(ContentType::Json);
    let body = req.into_body().collect().await.unwrap().to_bytes();
    match path.as_str() {
        "/api/v1/executor" => executor_call(state, &body, codec, accept).await,
        "/api/v1" | "/api/v1/operator" => Some(operator_call(state, &body).await),
        _ => Some(full(StatusCode::NOT_FOUND, "")),
    }
}

async fn executor_call(
    state: Arc<State>,
    body: &[u8],
    codec: ContentType,
    accept: ContentType,
) -> Option<Response<ResponseBody>> {
    let call: Call = match codec.decode(body) {
        Ok(call) => call,
        Err(e) => return Some(full(StatusCode::BAD_REQUEST, e.to_string())),
    };
    if call.r#type() == call::Type::Update
        && state
            .drop_updates
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    {
        return None;
    }
    state.calls.lock().unwrap().push(call.clone());
    state.changed.notify_waiters();
    Some(match call.r#type() {
        call::Type::Subscribe => {
            let delay = state.delay_next_subscribe_ms.swap(0, Ordering::SeqCst);
            if delay > 0 {
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            let (tx, rx) = mpsc::unbounded_channel();
            let subscribed = subscribed_event(state.task_killing.load(Ordering::SeqCst));
            tx.send(recordio::frame(&accept.encode(&subscribed)))
                .unwrap();
            *state.stream.lock().unwrap() = Some(tx);
            *state.stream_codec.lock().unwrap() = Some(accept);
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", accept.mime())
                .body(ChannelBody(rx).boxed())
                .unwrap()
        }
        call::Type::Update => {
            let refuse = state
                .refuse_updates
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if refuse {
                return Some(full(StatusCode::FORBIDDEN, "Executor is not subscribed"));
            }
            if state.auto_ack.load(Ordering::SeqCst) {
                let status = call.update.unwrap().status;
                if let Some(stream) = state.stream.lock().unwrap().as_ref() {
                    let codec = state
                        .stream_codec
                        .lock()
                        .unwrap()
                        .unwrap_or(ContentType::Json);
                    let _ = stream.send(recordio::frame(&codec.encode(&ack(&status))));
                }
            }
            full(StatusCode::ACCEPTED, "")
        }
        _ => full(StatusCode::ACCEPTED, ""),
    })
}

fn subscribed_event(task_killing: bool) -> Event {
    let capabilities = if task_killing {
        vec![framework_info::Capability {
            r#type: Some(framework_info::capability::Type::TaskKillingState as i32),
        }]
    } else {
        vec![]
    };
    Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(event::Subscribed {
            executor_info: ExecutorInfo {
                executor_id: ExecutorId {
                    value: EXECUTOR_ID.into(),
                },
                framework_id: Some(FrameworkId {
                    value: FRAMEWORK_ID.into(),
                }),
                ..Default::default()
            },
            framework_info: FrameworkInfo {
                user: "root".into(),
                name: "test".into(),
                id: Some(FrameworkId {
                    value: FRAMEWORK_ID.into(),
                }),
                capabilities,
                ..Default::default()
            },
            agent_info: AgentInfo {
                hostname: "localhost".into(),
                id: Some(AgentId {
                    value: "agent-1".into(),
                }),
                ..Default::default()
            },
            container_id: Some(ContainerId {
                value: EXECUTOR_CONTAINER.into(),
                parent: None,
            }),
        }),
        ..Default::default()
    }
}

#[allow(deprecated)]
async fn operator_call(state: Arc<State>, body: &[u8]) -> Response<ResponseBody> {
    let call: agent::Call = match from_json(body) {
        Ok(call) => call,
        Err(e) => return full(StatusCode::BAD_REQUEST, e.to_string()),
    };
    state.operator_calls.lock().unwrap().push(call.clone());
    state.changed.notify_waiters();
    match call.r#type() {
        agent::call::Type::LaunchContainer => {
            let launch = call.launch_container.unwrap();
            let command = launch.command.unwrap_or_default();
            let child = match pando_executor::process::spawn(&command, &[]) {
                Ok(child) => child,
                Err(e) => return full(StatusCode::BAD_REQUEST, e.to_string()),
            };
            let id = launch.container_id.value.clone();
            let pid = child.id().unwrap();
            state
                .nested
                .lock()
                .unwrap()
                .insert(id.clone(), Nested { pid, exit: None });
            let waiter = state.clone();
            tokio::spawn(async move {
                let mut child = child;
                let status = child.wait().await.unwrap();
                if let Some(n) = waiter.nested.lock().unwrap().get_mut(&id) {
                    n.exit = Some(status.into_raw());
                }
                waiter.changed.notify_waiters();
            });
            full(StatusCode::OK, "")
        }
        agent::call::Type::WaitNestedContainer => {
            let id = call.wait_nested_container.unwrap().container_id.value;
            loop {
                let notified = state.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let nested = state.nested.lock().unwrap();
                    let Some(container) = nested.get(&id) else {
                        return full(StatusCode::NOT_FOUND, "no such container");
                    };
                    if let Some(exit) = container.exit {
                        let response = agent::Response {
                            r#type: Some(agent::response::Type::WaitNestedContainer as i32),
                            wait_nested_container: Some(agent::response::WaitNestedContainer {
                                exit_status: Some(exit),
                                ..Default::default()
                            }),
                            ..Default::default()
                        };
                        return full(StatusCode::OK, to_json(&response));
                    }
                }
                notified.await;
            }
        }
        agent::call::Type::KillNestedContainer => {
            let kill = call.kill_nested_container.unwrap();
            let nested = state.nested.lock().unwrap();
            match nested.get(&kill.container_id.value) {
                Some(container) => {
                    unsafe_kill(container.pid, kill.signal.unwrap_or(libc::SIGKILL));
                    full(StatusCode::OK, "")
                }
                None => full(StatusCode::NOT_FOUND, "no such container"),
            }
        }
        _ => full(StatusCode::BAD_REQUEST, "unsupported"),
    }
}

/// An executor process under test.
pub struct ExecutorProcess {
    pub child: Child,
    pub sandbox: tempfile::TempDir,
}

pub struct Options {
    pub checkpoint: bool,
    pub shutdown_grace: &'static str,
    pub token: Option<&'static str>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            checkpoint: true,
            shutdown_grace: "5secs",
            token: None,
        }
    }
}

impl ExecutorProcess {
    pub fn start(kind: &str, agent: &FakeAgent, options: Options) -> ExecutorProcess {
        let sandbox = tempfile::tempdir().unwrap();
        let stdout = std::fs::File::create(sandbox.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(sandbox.path().join("stderr")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_pando-executor"));
        if let Some(token) = options.token {
            command.env("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", token);
        }
        let child = command
            .arg(kind)
            .current_dir(sandbox.path())
            .env("MESOS_FRAMEWORK_ID", FRAMEWORK_ID)
            .env("MESOS_EXECUTOR_ID", EXECUTOR_ID)
            .env("MESOS_AGENT_ENDPOINT", agent.endpoint())
            .env("MESOS_SANDBOX", sandbox.path())
            .env("MESOS_DIRECTORY", sandbox.path())
            .env("MESOS_SLAVE_ID", "agent-1")
            .env("MESOS_AGENT_ID", "agent-1")
            .env(
                "MESOS_CHECKPOINT",
                if options.checkpoint { "1" } else { "0" },
            )
            .env("MESOS_RECOVERY_TIMEOUT", "1mins")
            .env("MESOS_SUBSCRIPTION_BACKOFF_MAX", "50ms")
            .env(
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
                options.shutdown_grace,
            )
            .env("RUST_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap();
        ExecutorProcess { child, sandbox }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.sandbox.path().join(name)
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// Waits for the executor to exit; returns its exit code.
    pub async fn exit_code(&mut self) -> i32 {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "executor did not exit; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ExecutorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` until it holds or the deadline passes.
pub async fn eventually(
    what: &str,
    logs: impl Fn() -> String,
    mut condition: impl FnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; executor logs:\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn wait_file(path: &Path) -> bool {
    path.exists()
}

pub fn shell_task(id: &str, command: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: "agent-1".into(),
        },
        command: Some(CommandInfo {
            value: Some(command.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn launch(task: TaskInfo) -> Event {
    Event {
        r#type: Some(event::Type::Launch as i32),
        launch: Some(event::Launch { task }),
        ..Default::default()
    }
}

pub fn kill(task: &str, grace: Option<Duration>) -> Event {
    Event {
        r#type: Some(event::Type::Kill as i32),
        kill: Some(event::Kill {
            task_id: TaskId { value: task.into() },
            kill_policy: grace.map(|g| pando_proto::mesos::v1::KillPolicy {
                grace_period: Some(pando_proto::mesos::v1::DurationInfo {
                    nanoseconds: g.as_nanos() as i64,
                }),
            }),
        }),
        ..Default::default()
    }
}

pub fn shutdown() -> Event {
    Event {
        r#type: Some(event::Type::Shutdown as i32),
        ..Default::default()
    }
}

pub fn states(updates: &[TaskStatus]) -> Vec<TaskState> {
    updates
        .iter()
        .map(|s| TaskState::try_from(s.state).unwrap())
        .collect()
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
