//! The endpoints tools have polled since Mesos 0.x: `/master/state`,
//! `/master/state-summary`, `/master/frameworks`, `/master/slaves`,
//! `/master/tasks`, `/master/roles`, `/master/weights`, `/master/quota`,
//! `/master/flags`, `/master/health`, `/master/redirect`,
//! `/master/teardown`, `/master/reserve`, `/master/unreserve`,
//! `/master/maintenance/{schedule,status}`, `/version`, `/metrics/snapshot`
//! and a Prometheus `/metrics`.
//!
//! Field names and nesting follow Mesos's `/master/state` so that Mesos-DNS,
//! UIs and monitoring parse it unchanged. Resources appear twice, as Mesos
//! shows them: a summary object (`{"cpus": 1.0, "mem": 128.0, "ports":
//! "[31000-31005]"}`, [`Resources::summary_json`]) and, in `*_full`
//! fields, the Resource list. Every endpoint also answers under `.json`,
//! and `?jsonp=f` wraps the body in `f(...)` ([`jsonp::wrap`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use pando_proto::json::to_json;
use pando_proto::jsonp;
use pando_proto::mesos::v1 as pb;
use pando_proto::task_state::is_terminal;
use pando_resources::{ResourceFormat, Resources};
use serde_json::{json, Map, Value};

use super::auth::Realm;
use super::{error_response, text, AppState};
use crate::master::operator::version_info;
use crate::master::reservation;
use crate::master::state::{Agent, Framework, Master};

/// The legacy routes, each with its `.json` alias.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    type View = fn(&Master) -> Value;
    let reads: [(&str, View); 10] = [
        ("/state", state),
        ("/master/state", state),
        ("/master/agents", slaves),
        ("/master/state-summary", state_summary),
        ("/master/frameworks", frameworks),
        ("/master/slaves", slaves),
        ("/master/roles", roles),
        ("/master/weights", weights),
        ("/master/quota", quota),
        ("/master/flags", flags),
    ];
    for (path, view) in reads {
        let handler =
            move |State(app): State<AppState>,
                  Query(q): Query<BTreeMap<String, String>>,
                  headers: HeaderMap| async move { read_view(&app, &q, &headers, view) };
        router = router
            .route(path, get(handler))
            .route(&format!("{path}.json"), get(handler));
    }
    router
        .route("/master/tasks", get(tasks_endpoint))
        .route("/master/tasks.json", get(tasks_endpoint))
        .route("/master/health", get(|| async { StatusCode::OK }))
        .route("/master/redirect", get(redirect))
        .route("/registrar(1)/registry", get(registry_view))
        .route("/master/masters", get(masters_view))
        .route("/master/masters/add", any(add_master))
        .route("/master/masters/remove", any(remove_master))
        .route("/version", get(version))
        .route("/version.json", get(version))
        .route("/metrics/snapshot", get(metrics_snapshot))
        .route("/metrics", get(prometheus))
        .route(
            "/master/maintenance/schedule",
            get(maintenance_schedule).post(update_maintenance_schedule),
        )
        .route("/master/maintenance/status", get(maintenance_status))
        .route("/master/teardown", any(teardown))
        .route("/master/reserve", any(reserve))
        .route("/master/unreserve", any(unreserve))
}

fn read_view(
    app: &AppState,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    view: fn(&Master) -> Value,
) -> Response {
    let master = match app.lock() {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = app.credentials.authenticate(
        headers,
        master.flags.authenticate_http_readonly,
        Realm::ReadOnly,
    ) {
        return r;
    }
    let value = view(&master);
    drop(master);
    json_response(value, query.get("jsonp").map(String::as_str))
}

/// A JSON body, wrapped as JSONP when a valid callback is given (plain
/// JSON otherwise, as before).
fn json_response(value: Value, callback: Option<&str>) -> Response {
    let body = value.to_string();
    let wrapped = callback.and_then(|c| jsonp::wrap(c, body.as_bytes()).ok());
    let (content_type, body) = match wrapped {
        Some(wrapped) => (jsonp::CONTENT_TYPE, wrapped),
        None => ("application/json", body.into_bytes()),
    };
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A Mesos JSON rendering of a protobuf message as a serde value.
fn proto_value<M: prost::Message + prost::Name>(m: &M) -> Value {
    serde_json::from_str(&to_json(m)).unwrap_or(Value::Null)
}

fn resources_full(r: &Resources) -> Value {
    let list = r
        .to_proto_in(ResourceFormat::Endpoint)
        .unwrap_or_else(|_| r.to_proto());
    Value::Array(list.iter().map(proto_value).collect())
}

fn task_json(task: &pb::Task, role: &str) -> Value {
    let resources = Resources::from_proto(&task.resources).unwrap_or_default();
    let mut v = json!({
        "id": task.task_id.value,
        "name": task.name,
        "framework_id": task.framework_id.value,
        "executor_id": task.executor_id.as_ref().map_or("", |e| e.value.as_str()),
        "slave_id": task.agent_id.value,
        "agent_id": task.agent_id.value,
        "state": pb::TaskState::try_from(task.state).map_or("TASK_STAGING", |s| s.as_str_name()),
        "resources": resources.unallocate().summary_json(),
        "role": role,
        "statuses": task.statuses.iter().map(|s| {
            let mut status = json!({
                "state": pb::TaskState::try_from(s.state).map_or("TASK_STAGING", |x| x.as_str_name()),
                "timestamp": s.timestamp.unwrap_or(0.0),
            });
            if let Some(cs) = &s.container_status {
                // Mesos's state model writes a ContainerStatus without its
                // executor_pid (as in ../shared/fixtures/mesos-1.12/
                // master_state_running.json); the UPDATE events carry it.
                let mut container = proto_value(cs);
                if let Some(fields) = container.as_object_mut() {
                    fields.remove("executor_pid");
                }
                status["container_status"] = container;
            }
            if let Some(h) = s.healthy {
                status["healthy"] = json!(h);
            }
            status
        }).collect::<Vec<_>>(),
    });
    if let Some(labels) = &task.labels {
        v["labels"] = proto_value(labels)["labels"].clone();
    }
    if let Some(d) = &task.discovery {
        v["discovery"] = proto_value(d.as_ref());
    }
    if let Some(c) = &task.container {
        v["container"] = proto_value(c.as_ref());
    }
    if let Some(user) = &task.user {
        v["user"] = json!(user);
    }
    v
}

fn framework_json(master: &Master, fw: &Framework) -> Value {
    let info = &fw.info;
    let role = info.role.clone().unwrap_or_else(|| "*".into());
    let used = master.used_by(fw).unallocate();
    let offered = master.offered_to(fw).unallocate();
    let capabilities: Vec<&str> = info
        .capabilities
        .iter()
        .filter_map(|c| c.r#type)
        .filter_map(|t| pb::framework_info::capability::Type::try_from(t).ok())
        .map(|t| t.as_str_name())
        .collect();
    let (live, done): (Vec<&pb::Task>, Vec<&pb::Task>) =
        fw.tasks.values().partition(|t| !is_terminal(t.state));
    let mut completed: Vec<Value> = fw
        .completed_tasks
        .iter()
        .map(|t| task_json(&t.task(), &role))
        .collect();
    completed.extend(done.iter().map(|t| task_json(t, &role)));
    json!({
        "id": fw.id(),
        "name": info.name,
        "pid": Value::Null,
        "used_resources": used.summary_json(),
        "offered_resources": offered.summary_json(),
        "capabilities": capabilities,
        "hostname": info.hostname.clone().unwrap_or_default(),
        "webui_url": info.webui_url.clone().unwrap_or_default(),
        "active": fw.active,
        "connected": fw.connected(),
        "recovered": fw.recovered,
        "user": info.user,
        "failover_timeout": info.failover_timeout.unwrap_or(0.0),
        "checkpoint": info.checkpoint.unwrap_or(false),
        "registered_time": fw.registered_time.unwrap_or(0.0),
        "unregistered_time": fw.unregistered_time.unwrap_or(0.0),
        "reregistered_time": fw.reregistered_time,
        "principal": info.principal,
        "resources": used.summary_json(),
        "role": role,
        "roles": fw.roles().into_iter().collect::<Vec<_>>(),
        "tasks": live.iter().map(|t| task_json(t, &role)).collect::<Vec<_>>(),
        "unreachable_tasks": fw.unreachable_tasks.values().map(|t| task_json(t, &role)).collect::<Vec<_>>(),
        "completed_tasks": completed,
        "offers": fw.offers.iter().filter_map(|n| master.offers.get(n)).map(|o| {
            let r = Resources::from_proto(&o.offer.resources).unwrap_or_default();
            json!({
                "id": o.offer.id.value,
                "framework_id": o.framework,
                "slave_id": o.agent,
                "resources": r.unallocate().summary_json(),
            })
        }).collect::<Vec<_>>(),
        "executors": fw.executors.iter().map(|((agent, _), e)| {
            let mut v = proto_value(e);
            v["slave_id"] = json!(agent);
            v
        }).collect::<Vec<_>>(),
        "completed_executors": Vec::<Value>::new(),
    })
}

fn slave_json(master: &Master, agent: &Agent) -> Value {
    let total = agent.total.clone();
    let free = master
        .allocator
        .free(agent.id())
        .cloned()
        .unwrap_or_default();
    let offered = master.offered_on(agent.id()).unallocate();
    let allocated = total.checked_sub(&free).unwrap_or_default();
    let used = allocated.checked_sub(&offered).unwrap_or(allocated);
    let mut reserved = Map::new();
    for (role, r) in total.reservations() {
        reserved.insert(role, r.summary_json());
    }
    let attributes: Map<String, Value> = agent
        .info
        .attributes
        .iter()
        .map(|a| {
            let v = if let Some(s) = &a.scalar {
                json!(s.value)
            } else if let Some(t) = &a.text {
                json!(t.value)
            } else if let Some(r) = &a.ranges {
                json!(r
                    .range
                    .iter()
                    .map(|x| format!("[{}-{}]", x.begin, x.end))
                    .collect::<Vec<_>>()
                    .join(","))
            } else if let Some(s) = &a.set {
                json!(format!("{{{}}}", s.item.join(",")))
            } else {
                Value::Null
            };
            (a.name.clone(), v)
        })
        .collect();
    let capabilities: Vec<&str> = agent
        .capabilities
        .iter()
        .filter_map(|c| c.r#type)
        .filter_map(|t| pb::agent_info::capability::Type::try_from(t).ok())
        .map(|t| t.as_str_name())
        .collect();
    let mut v = json!({
        "id": agent.id(),
        "pid": format!("slave(1)@{}", agent.endpoint()),
        "hostname": agent.info.hostname,
        "port": agent.info.port.unwrap_or(5051),
        "registered_time": agent.registered_time,
        "reregistered_time": agent.reregistered_time,
        "resources": total.summary_json(),
        "used_resources": used.unallocate().summary_json(),
        "offered_resources": offered.summary_json(),
        "reserved_resources": Value::Object(reserved),
        "unreserved_resources": total.unreserved().summary_json(),
        "attributes": Value::Object(attributes),
        "active": agent.connected() && !agent.deactivated && agent.drain_info.is_none(),
        "deactivated": agent.deactivated,
        "version": agent.version,
        "capabilities": capabilities,
        "reserved_resources_full": total.reservations().into_iter().map(|(role, r)| (role, resources_full(&r))).collect::<Map<_, _>>(),
        "unreserved_resources_full": resources_full(&total.unreserved()),
        "used_resources_full": resources_full(&used.unallocate()),
        "offered_resources_full": resources_full(&offered),
        "domain": agent.info.domain.as_ref().map(proto_value),
    });
    if let Some(drain) = &agent.drain_info {
        v["drain_info"] = proto_value(drain);
    }
    v
}

fn state(master: &Master) -> Value {
    let v = version_info();
    let activated = master
        .agents
        .values()
        .filter(|a| a.connected() && !a.deactivated)
        .count();
    let mut s = json!({
        "version": v.version,
        "git_tag": v.git_tag,
        "build_date": v.build_date,
        "build_time": v.build_time,
        "build_user": v.build_user,
        "start_time": master.start_time,
        "elected_time": master.elected_time,
        "id": master.info.id,
        "pid": master.info.pid,
        "hostname": master.info.hostname,
        "capabilities": ["AGENT_UPDATE"],
        "activated_slaves": activated,
        "deactivated_slaves": master.agents.len() - activated,
        "unreachable_slaves": master.unreachable_agents.len(),
        "leader": master.leader.as_ref().and_then(|l| l.pid.clone()),
        "leader_info": master.leader.as_ref().map(proto_value),
        "log_dir": Value::Null,
        "flags": flags(master),
        "slaves": master.agents.values().map(|a| slave_json(master, a)).collect::<Vec<_>>(),
        "recovered_slaves": master.recovered_agents.values().map(|a| proto_value(&a.info)).collect::<Vec<_>>(),
        "frameworks": master.frameworks.values().map(|f| framework_json(master, f)).collect::<Vec<_>>(),
        "completed_frameworks": master.completed_frameworks.iter().map(|f| framework_json(master, f)).collect::<Vec<_>>(),
        "orphan_tasks": Vec::<Value>::new(),
        "unregistered_frameworks": Vec::<Value>::new(),
    });
    if let Some(cluster) = &master.flags.cluster {
        s["cluster"] = json!(cluster);
    }
    // Mesos leaves out what a standby master does not know.
    if let Some(object) = s.as_object_mut() {
        for key in ["elected_time", "leader", "leader_info"] {
            if object.get(key).is_some_and(Value::is_null) {
                object.remove(key);
            }
        }
    }
    s
}

/// The task states `/master/state-summary` counts, as Mesos writes them.
const SUMMARY_STATES: [pb::TaskState; 11] = [
    pb::TaskState::TaskStaging,
    pb::TaskState::TaskStarting,
    pb::TaskState::TaskRunning,
    pb::TaskState::TaskKilling,
    pb::TaskState::TaskFinished,
    pb::TaskState::TaskKilled,
    pb::TaskState::TaskFailed,
    pb::TaskState::TaskLost,
    pb::TaskState::TaskError,
    pb::TaskState::TaskUnreachable,
    pb::TaskState::TaskDropped,
];

/// Task counts by state for the tasks `keep(framework_id, agent_id)`
/// selects, every state written.
fn task_counts(master: &Master, keep: impl Fn(&str, &str) -> bool) -> Map<String, Value> {
    let mut counts: BTreeMap<i32, u64> = BTreeMap::new();
    for fw in master.frameworks.values() {
        let known = fw
            .tasks
            .values()
            .chain(fw.unreachable_tasks.values())
            .map(|t| (t.agent_id.value.as_str(), t.state));
        let completed = fw.completed_tasks.iter().map(|t| (t.agent_id(), t.state()));
        for (agent_id, state) in known.chain(completed) {
            if keep(fw.id(), agent_id) {
                *counts.entry(state).or_default() += 1;
            }
        }
    }
    SUMMARY_STATES
        .iter()
        .map(|s| {
            (
                s.as_str_name().to_string(),
                json!(counts.get(&(*s as i32)).copied().unwrap_or(0)),
            )
        })
        .collect()
}

/// `/master/state-summary`: agents and frameworks with task counts by
/// state and who runs where, without the task lists.
fn state_summary(master: &Master) -> Value {
    let slaves: Vec<Value> = master
        .agents
        .values()
        .map(|agent| {
            let mut v = slave_json(master, agent);
            let id = agent.id().to_string();
            if let Some(obj) = v.as_object_mut() {
                obj.extend(task_counts(master, |_, agent_id| agent_id == id));
                let framework_ids: std::collections::BTreeSet<String> =
                    agent.tasks.iter().map(|(fw, _)| fw.clone()).collect();
                obj.insert("framework_ids".into(), json!(framework_ids));
            }
            v
        })
        .collect();
    let frameworks: Vec<Value> = master
        .frameworks
        .values()
        .map(|fw| {
            let full = framework_json(master, fw);
            let mut v = json!({
                "id": full["id"], "name": full["name"], "pid": full["pid"],
                "used_resources": full["used_resources"],
                "offered_resources": full["offered_resources"],
                "capabilities": full["capabilities"], "hostname": full["hostname"],
                "webui_url": full["webui_url"], "active": full["active"],
                "connected": full["connected"], "recovered": full["recovered"],
            });
            let id = fw.id().to_string();
            if let Some(obj) = v.as_object_mut() {
                obj.extend(task_counts(master, |framework_id, _| framework_id == id));
                let slave_ids: std::collections::BTreeSet<String> = fw
                    .tasks
                    .values()
                    .map(|t| t.agent_id.value.clone())
                    .collect();
                obj.insert("slave_ids".into(), json!(slave_ids));
            }
            v
        })
        .collect();
    json!({
        "hostname": master.info.hostname,
        "cluster": master.flags.cluster,
        "slaves": slaves,
        "frameworks": frameworks,
    })
}

fn frameworks(master: &Master) -> Value {
    json!({
        "frameworks": master.frameworks.values().map(|f| framework_json(master, f)).collect::<Vec<_>>(),
        "completed_frameworks": master.completed_frameworks.iter().map(|f| framework_json(master, f)).collect::<Vec<_>>(),
        "unregistered_frameworks": Vec::<Value>::new(),
    })
}

fn slaves(master: &Master) -> Value {
    json!({
        "slaves": master.agents.values().map(|a| slave_json(master, a)).collect::<Vec<_>>(),
        "recovered_slaves": Vec::<Value>::new(),
    })
}

/// `/master/tasks`: `framework_id` and `task_id` select, `order`
/// (`asc` by default, or `desc`) sorts by start time, `offset` and `limit`
/// (default 100) page, as Mesos's handler does.
async fn tasks_endpoint(
    State(app): State<AppState>,
    Query(q): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let master = match app.lock() {
        Ok(m) => m,
        Err(r) => return r,
    };
    if let Err(r) = app.credentials.authenticate(
        &headers,
        master.flags.authenticate_http_readonly,
        Realm::ReadOnly,
    ) {
        return r;
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let descending = q.get("order").is_some_and(|o| o == "desc");
    let mut list: Vec<(f64, Value)> = Vec::new();
    for fw in master
        .frameworks
        .values()
        .chain(master.completed_frameworks.iter())
    {
        if q.get("framework_id").is_some_and(|id| id != fw.id()) {
            continue;
        }
        let role = fw.info.role.clone().unwrap_or_else(|| "*".into());
        let wanted = |task_id: &str| q.get("task_id").is_none_or(|id| id == task_id);
        let known = fw
            .tasks
            .values()
            .chain(fw.unreachable_tasks.values())
            .filter(|t| wanted(&t.task_id.value))
            .map(Cow::Borrowed);
        let completed = fw
            .completed_tasks
            .iter()
            .filter(|t| wanted(t.task_id()))
            .map(|t| Cow::Owned(t.task()));
        for t in known.chain(completed) {
            let started = t.statuses.first().and_then(|s| s.timestamp).unwrap_or(0.0);
            list.push((started, task_json(&t, &role)));
        }
    }
    list.sort_by(|a, b| a.0.total_cmp(&b.0));
    if descending {
        list.reverse();
    }
    let page: Vec<Value> = list
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|(_, v)| v)
        .collect();
    drop(master);
    json_response(json!({ "tasks": page }), q.get("jsonp").map(String::as_str))
}

fn roles(master: &Master) -> Value {
    let roles = master.get_roles();
    json!({
        "roles": roles.roles.iter().map(|r| {
            let resources = Resources::from_proto(&r.resources).unwrap_or_default();
            json!({
                "name": r.name,
                "weight": r.weight,
                "frameworks": r.frameworks.iter().map(|f| f.value.clone()).collect::<Vec<_>>(),
                "resources": resources.summary_json(),
            })
        }).collect::<Vec<_>>()
    })
}

fn weights(master: &Master) -> Value {
    Value::Array(
        master
            .weights
            .iter()
            .map(|(r, w)| json!({"role": r, "weight": w}))
            .collect(),
    )
}

fn quota(master: &Master) -> Value {
    proto_value(&master.get_quota().status)
}

fn flags(master: &Master) -> Value {
    let map: Map<String, Value> = master
        .flags
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    json!({ "flags": map })["flags"].clone()
}

/// `/registrar(1)/registry`: the registry as this master holds it (a
/// standby's replica included), as JSON.
async fn registry_view(State(app): State<AppState>) -> Response {
    let registry = match &app.registry {
        Some(replicated) => replicated.read().await,
        None => {
            let local = match app.lock() {
                Ok(m) => m.local_registry.clone(),
                Err(r) => return r,
            };
            match local.and_then(|r| r.lock().ok().map(|r| r.clone())) {
                Some(r) => r,
                None => return text(StatusCode::SERVICE_UNAVAILABLE, "no registry"),
            }
        }
    };
    json_response(registry_json(&registry), None)
}

/// `/master/masters`: the masters of the registry as this master knows
/// them (voters, and learners being added), and the leader.
async fn masters_view(State(app): State<AppState>) -> Response {
    let Some(registry) = &app.registry else {
        let master = match app.lock() {
            Ok(m) => m,
            Err(r) => return r,
        };
        let address = format!("{}:{}", master.flags.ip, master.flags.port);
        return json_response(
            json!({
                "registry": "in_memory",
                "leader": address,
                "masters": [{"address": address, "raft": address, "role": "voter"}],
            }),
            None,
        );
    };
    let leader = registry.leadership().borrow().leader.clone();
    let masters: Vec<Value> = registry
        .members()
        .into_iter()
        .map(|(m, role)| {
            json!({
                "address": m.http,
                "raft": m.raft,
                "role": match role {
                    pando_registry::MemberRole::Voter => "voter",
                    pando_registry::MemberRole::Learner => "learner",
                },
            })
        })
        .collect();
    json_response(
        json!({
            "registry": "replicated_log",
            "leader": leader.map(|l| l.http),
            "masters": masters,
        }),
        None,
    )
}

/// The master a membership change names: `{"address": "host:port"}`, with
/// `"raft": "host:port"` when its Raft port differs.
fn member_of(body: &[u8]) -> Result<pando_registry::MasterAddress, Response> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        text(
            StatusCode::BAD_REQUEST,
            format!("Expecting a JSON body {{\"address\": \"host:port\"}}: {e}"),
        )
    })?;
    let valid = |a: &str| {
        a.rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p != 0))
    };
    let Some(address) = value["address"].as_str().filter(|a| valid(a)) else {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Expecting 'address' to be host:port",
        ));
    };
    let raft = match value.get("raft") {
        None | Some(Value::Null) => address.to_string(),
        Some(Value::String(r)) if valid(r) => r.clone(),
        Some(_) => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Expecting 'raft' to be host:port",
            ))
        }
    };
    Ok(pando_registry::MasterAddress {
        http: address.to_string(),
        raft,
    })
}

/// `/master/masters/add` and `/master/masters/remove`: a membership change
/// by Raft joint consensus, answered once it is committed.
async fn change_membership(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    adding: bool,
) -> Response {
    if let Err(r) = write_guard(app, headers, method) {
        return r;
    }
    let Some(registry) = &app.registry else {
        return text(
            StatusCode::BAD_REQUEST,
            "Masters can be added or removed only with --registry=replicated_log",
        );
    };
    let member = match member_of(body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let known = registry
        .members()
        .iter()
        .any(|(m, _)| m.raft == member.raft);
    if adding && known {
        return text(
            StatusCode::CONFLICT,
            format!("{} is already a master", member.http),
        );
    }
    if !adding && !known {
        return text(
            StatusCode::NOT_FOUND,
            format!("{} is not a master", member.http),
        );
    }
    let changed = if adding {
        registry.add_master(member).await
    } else {
        registry.remove_master(member).await
    };
    match changed {
        Ok(()) => StatusCode::OK.into_response(),
        Err(pando_registry::WriteError::NotLeader { .. }) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "This master stopped leading before the change committed; ask the leader",
        ),
        Err(pando_registry::WriteError::Membership(why)) => text(StatusCode::CONFLICT, why),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn add_master(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change_membership(&app, &method, &headers, &body, true).await
}

async fn remove_master(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    change_membership(&app, &method, &headers, &body, false).await
}

fn registry_json(r: &pando_registry::Registry) -> Value {
    let time = |t: &pb::TimeInfo| json!({ "nanoseconds": t.nanoseconds });
    json!({
        "master": r.master.as_ref().map(proto_value),
        "slaves": r.agents.iter().map(|a| json!({
            "info": proto_value(&a.info),
            "drain_info": a.drain_info.as_ref().map(proto_value),
            "deactivated": a.deactivated.unwrap_or(false),
            "checkpointed_resources": a.checkpointed_resources.iter().map(proto_value).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "unreachable": r.unreachable.iter().map(|a| json!({
            "id": proto_value(&a.id),
            "timestamp": time(&a.timestamp),
        })).collect::<Vec<_>>(),
        "gone": r.gone.iter().map(|a| json!({
            "id": proto_value(&a.id),
            "timestamp": time(&a.timestamp),
        })).collect::<Vec<_>>(),
        "frameworks": r.frameworks.iter().map(|f| proto_value(&f.info)).collect::<Vec<_>>(),
        "completed_frameworks": r.completed_frameworks.iter().map(proto_value).collect::<Vec<_>>(),
        "schedules": r.schedules.iter().map(proto_value).collect::<Vec<_>>(),
        "down_machines": r.down_machines.iter().map(proto_value).collect::<Vec<_>>(),
        "quota_configs": r.quota_configs.iter().map(proto_value).collect::<Vec<_>>(),
        "weights": r.weights.iter().map(|w| json!({"role": w.role, "weight": w.weight})).collect::<Vec<_>>(),
        // Adapter records by name and version only: their values (token
        // master keys, say) are not for an unauthenticated endpoint.
        "records": r.records.iter().map(|rec| json!({
            "namespace": rec.namespace,
            "key": rec.key,
            "version": rec.version,
            "size": rec.value.len(),
        })).collect::<Vec<_>>(),
    })
}

/// `/master/redirect`: 307 to the leading master's base URL (itself when
/// it leads), 503 while no master leads.
async fn redirect(State(app): State<AppState>) -> Response {
    let master = match app.lock() {
        Ok(m) => m,
        Err(r) => return r,
    };
    super::redirect_to_leader(&master, "")
}

async fn version(Query(q): Query<BTreeMap<String, String>>) -> Response {
    let v = version_info();
    json_response(
        json!({
            "version": v.version,
            "git_tag": v.git_tag,
            "build_date": v.build_date,
            "build_time": v.build_time,
            "build_user": v.build_user,
        }),
        q.get("jsonp").map(String::as_str),
    )
}

async fn metrics_snapshot(
    State(app): State<AppState>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let snapshot = match app.lock() {
        Ok(m) => m.metrics_snapshot(),
        Err(r) => return r,
    };
    let map: Map<String, Value> = snapshot.into_iter().map(|(k, v)| (k, json!(v))).collect();
    json_response(Value::Object(map), q.get("jsonp").map(String::as_str))
}

/// The same figures in the Prometheus text format: `master/cpus_total`
/// becomes `mesos_master_cpus_total`.
async fn prometheus(State(app): State<AppState>) -> Response {
    let snapshot = match app.lock() {
        Ok(m) => m.metrics_snapshot(),
        Err(r) => return r,
    };
    let mut out = String::new();
    for (name, value) in snapshot {
        let metric: String = format!("mesos_{name}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        out.push_str(&format!("# TYPE {metric} gauge\n{metric} {value}\n"));
    }
    let mut r = out.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

async fn maintenance_schedule(State(app): State<AppState>) -> Response {
    match app.lock() {
        Ok(m) => json_response(proto_value(&m.maintenance), None),
        Err(r) => r,
    }
}

/// POST `/master/maintenance/schedule`: the body is a Schedule in JSON.
async fn update_maintenance_schedule(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = write_guard(&app, &headers, &Method::POST) {
        return r;
    }
    let schedule: pando_proto::mesos::v1::maintenance::Schedule =
        match pando_proto::json::from_json(&body) {
            Ok(s) => s,
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("Failed to parse the maintenance schedule: {e}"),
                )
            }
        };
    let (result, barrier) = match app.lock() {
        Ok(mut master) => (
            master.update_maintenance_schedule(schedule),
            master.registrar.barrier(),
        ),
        Err(r) => return r,
    };
    if let Err(r) = super::registered(barrier).await {
        return r;
    }
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error_response(&e),
    }
}

async fn maintenance_status(State(app): State<AppState>) -> Response {
    match app.lock() {
        Ok(m) => json_response(proto_value(&m.maintenance_status()), None),
        Err(r) => r,
    }
}

/// Reads `key=value&...` form bodies, as the legacy write endpoints take.
fn form(body: &[u8]) -> BTreeMap<String, String> {
    url_decode_pairs(&String::from_utf8_lossy(body))
}

fn url_decode_pairs(s: &str) -> BTreeMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn write_guard(
    app: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Option<String>, Response> {
    if method != Method::POST {
        return Err(text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting one of {{ 'POST' }}, but received '{method}'"),
        ));
    }
    let required = app.lock()?.flags.authenticate_http_readwrite;
    app.credentials
        .authenticate(headers, required, Realm::ReadWrite)
}

async fn teardown(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = write_guard(&app, &headers, &method) {
        return r;
    }
    let params = form(&body);
    let Some(id) = params.get("frameworkId") else {
        return text(
            StatusCode::BAD_REQUEST,
            "Missing 'frameworkId' query parameter in the request body",
        );
    };
    let (result, barrier) = match app.lock() {
        Ok(mut master) => (master.operator_teardown(id), master.registrar.barrier()),
        Err(r) => return r,
    };
    if let Err(r) = super::registered(barrier).await {
        return r;
    }
    match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => error_response(&e),
    }
}

fn parse_resources_param(
    params: &BTreeMap<String, String>,
) -> Result<(String, Vec<pb::Resource>), Response> {
    let Some(agent) = params.get("slaveId") else {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Missing 'slaveId' query parameter in the request body",
        ));
    };
    let Some(resources) = params.get("resources") else {
        return Err(text(
            StatusCode::BAD_REQUEST,
            "Missing 'resources' query parameter in the request body",
        ));
    };
    let parsed: Vec<pb::Resource> = match serde_json::from_str::<Value>(resources) {
        Ok(Value::Array(items)) => {
            let mut out = Vec::new();
            for item in items {
                match pando_proto::json::from_json::<pb::Resource>(item.to_string().as_bytes()) {
                    Ok(r) => out.push(r),
                    Err(e) => {
                        return Err(text(
                            StatusCode::BAD_REQUEST,
                            format!("Error in parsing 'resources' query parameter: {e}"),
                        ))
                    }
                }
            }
            out
        }
        _ => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                "Error in parsing 'resources' query parameter: expected a JSON array of Resource objects",
            ))
        }
    };
    Ok((agent.clone(), parsed))
}

async fn reserve(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    convert_endpoint(&app, &method, &headers, &body, true).await
}

async fn unreserve(
    State(app): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    convert_endpoint(&app, &method, &headers, &body, false).await
}

/// `/master/reserve` and `/master/unreserve`: `slaveId` and `resources`
/// (a JSON array) in a form body; 202 when the change is applied.
async fn convert_endpoint(
    app: &AppState,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    reserving: bool,
) -> Response {
    let principal = match write_guard(app, headers, method) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (agent, resources) = match parse_resources_param(&form(body)) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let conversion = if reserving {
        reservation::reserve(&resources, principal.as_deref())
    } else {
        reservation::unreserve(&resources)
    };
    let conversion = match conversion {
        Ok(c) => c,
        Err(e) => return error_response(&e.into()),
    };
    let (result, barrier) = match app.lock() {
        Ok(mut master) => (
            master.operator_convert(&agent, conversion),
            master.registrar.barrier(),
        ),
        Err(r) => return r,
    };
    if let Err(r) = super::registered(barrier).await {
        return r;
    }
    match result {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(e) => error_response(&e),
    }
}
