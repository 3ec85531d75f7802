//! Who holds a TCP port: the listening socket's inode from
//! `/proc/net/tcp{,6}`, then the process whose `/proc/<pid>/fd` links to
//! `socket:[inode]`, named by its command line.
//!
//! `pando local` uses it to say what is in the way when its ports are
//! taken, instead of a bare "address in use".

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// Why a port cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    /// Something else listens on the port.
    #[error(
        "port {port} is in use by {holder}; stop it or pick other ports (--port, --agent_port)"
    )]
    InUse {
        /// The port.
        port: u16,
        /// Who holds it, as well as /proc tells.
        holder: String,
    },
    /// The port cannot be bound for another reason.
    #[error("cannot listen on port {port}: {reason}")]
    Bind {
        /// The port.
        port: u16,
        /// The OS's reason.
        reason: String,
    },
}

/// Checks that `port` can be bound on loopback; if not, says who holds it.
pub fn check_free(port: u16) -> Result<(), PortsError> {
    match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(PortsError::InUse {
            port,
            holder: holder(port).unwrap_or_else(|| "another process".into()),
        }),
        Err(e) => Err(PortsError::Bind {
            port,
            reason: e.to_string(),
        }),
    }
}

/// A port free on loopback right now.
pub fn pick_free() -> Result<u16, PortsError> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| PortsError::Bind {
            port: 0,
            reason: e.to_string(),
        })
}

/// `pid N (command line)` of the process listening on `port`, if /proc
/// shows it.
pub fn holder(port: u16) -> Option<String> {
    let inodes: Vec<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|text| listening_inodes(&text, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let targets: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if targets.iter().any(|t| link.as_os_str() == t.as_str()) {
                return Some(format!("pid {pid} ({})", command_line(pid)));
            }
        }
    }
    Some("a process this user cannot see".into())
}

/// The inodes of sockets in LISTEN state (`0A`) on `port` in one
/// `/proc/net/tcp` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?.parse::<u64>().ok()?;
            let hex_port = local.rsplit_once(':')?.1;
            let p = u16::from_str_radix(hex_port, 16).ok()?;
            (p == port && *state == "0A" && inode != 0).then_some(inode)
        })
        .collect()
}

/// A process's command line, spaces between the arguments.
fn command_line(pid: &str) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if text.is_empty() {
        "unknown command".into()
    } else {
        text.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_socket_is_found_in_the_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:13BA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n   1: 0100007F:13BA 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1\n";
        assert_eq!(listening_inodes(table, 5050), vec![4242]);
        assert!(listening_inodes(table, 5051).is_empty());
    }

    #[test]
    fn a_held_port_names_this_process() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = check_free(port).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("port {port} is in use by")),
            "{text}"
        );
        assert!(text.contains(&std::process::id().to_string()), "{text}");
    }
}
