//! LIST_FILES and READ_FILE on the master: reads from agents' sandboxes.
//!
//! A sandbox path names its agent: `<work_dir>/slaves/<agent id>/frameworks/
//! <framework>/executors/<executor>/runs/<container>/...`. The master finds
//! that agent, forwards the call to the agent's own operator API (which
//! confines reads to its sandboxes), and hands the agent's answer back in
//! the encoding the client asked for. Paths that name no registered agent
//! are 404.

use std::time::Duration;

use bytes::Bytes;
use pando_proto::codec::ContentType;
use pando_proto::mesos::v1::agent as agent_api;
use pando_proto::mesos::v1::master as operator;
use pando_scheduler::client::Client;
use prost::Message;

use crate::master::state::{Master, MasterError};

/// How long the master waits for an agent's files API.
const AGENT_TIMEOUT: Duration = Duration::from_secs(15);

/// The agent id a sandbox path names, if any.
pub fn agent_of_path(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    while let Some(part) = parts.next() {
        if part == "slaves" {
            return parts.next().filter(|id| !id.is_empty());
        }
    }
    None
}

/// The endpoint of the agent whose sandbox `path` is in.
pub fn endpoint_for(master: &Master, path: &str) -> Result<String, MasterError> {
    let not_found =
        || MasterError::NotFound(format!("No file or directory found at path '{path}'"));
    let agent_id = agent_of_path(path).ok_or_else(not_found)?;
    master
        .agents
        .get(agent_id)
        .map(|a| a.endpoint())
        .ok_or_else(not_found)
}

/// Forwards LIST_FILES or READ_FILE to the agent and converts its answer.
pub async fn forward(
    endpoint: &str,
    call: &operator::Call,
) -> Result<operator::Response, MasterError> {
    let kind = call.r#type.unwrap_or_default();
    let agent_call = agent_api::Call {
        r#type: Some(if kind == operator::call::Type::ReadFile as i32 {
            agent_api::call::Type::ReadFile as i32
        } else {
            agent_api::call::Type::ListFiles as i32
        }),
        list_files: call
            .list_files
            .as_ref()
            .map(|l| agent_api::call::ListFiles {
                path: l.path.clone(),
            }),
        read_file: call.read_file.as_ref().map(|r| agent_api::call::ReadFile {
            path: r.path.clone(),
            offset: r.offset,
            length: r.length,
        }),
        ..Default::default()
    };
    let unreachable = |e| MasterError::Unavailable(format!("cannot reach agent {endpoint}: {e}"));
    let reply = Client::new(endpoint, AGENT_TIMEOUT)
        .map_err(unreachable)?
        .post(
            "/api/v1",
            ContentType::Protobuf,
            &[],
            Bytes::from(agent_call.encode_to_vec()),
        )
        .await
        .map_err(unreachable)?;
    let (status, body) = (reply.status, reply.body);
    match status {
        200 => {}
        404 => {
            return Err(MasterError::NotFound(
                String::from_utf8_lossy(&body).into_owned(),
            ))
        }
        400..=499 => {
            return Err(MasterError::BadRequest(
                String::from_utf8_lossy(&body).into_owned(),
            ))
        }
        _ => {
            return Err(MasterError::Unavailable(format!(
                "agent {endpoint} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )))
        }
    }
    let answer: agent_api::Response = ContentType::Protobuf.decode(&body).map_err(|e| {
        MasterError::Unavailable(format!("agent {endpoint} sent a bad answer: {e}"))
    })?;
    // The Response's type enum is numbered apart from the Call's (it has
    // no SET_LOGGING_LEVEL): LIST_FILES is 7 in a Call and 6 in a Response.
    let answered = if kind == operator::call::Type::ReadFile as i32 {
        operator::response::Type::ReadFile
    } else {
        operator::response::Type::ListFiles
    };
    let mut response = operator::Response {
        r#type: Some(answered as i32),
        ..Default::default()
    };
    if let Some(list) = answer.list_files {
        response.list_files = Some(operator::response::ListFiles {
            file_infos: list.file_infos,
        });
    }
    if let Some(read) = answer.read_file {
        response.read_file = Some(operator::response::ReadFile {
            size: read.size,
            data: read.data,
        });
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sandbox_paths_name_their_agent() {
        assert_eq!(
            agent_of_path("/var/lib/pando/slaves/abc-S0/frameworks/f/executors/e/runs/c/stdout"),
            Some("abc-S0")
        );
        assert_eq!(agent_of_path("/etc/passwd"), None);
        assert_eq!(agent_of_path("/slaves/"), None);
    }
}
