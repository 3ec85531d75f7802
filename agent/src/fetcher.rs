//! The fetcher: brings a CommandInfo's URIs into the sandbox before the
//! container starts, as the Mesos fetcher does.
//!
//! Local paths (plain or `file://`) are copied; `http`, `https` and `ftp`
//! URLs are downloaded with curl. With `extract`, archives (`.tar`, `.tgz`,
//! `.tar.gz`, `.tbz2`, `.tar.bz2`, `.txz`, `.tar.xz`, `.zip`, `.gz`) are
//! unpacked into the sandbox; with `executable`, the file gets mode 0755 and
//! is never extracted. `output_file` renames the fetched file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pando_proto::mesos::v1 as pb;

/// Why a URI could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    /// The URI names nothing usable.
    #[error("Failed to fetch '{uri}': {reason}")]
    Fetch {
        /// The URI.
        uri: String,
        /// What failed.
        reason: String,
    },
}

fn fail(uri: &str, reason: impl Into<String>) -> FetcherError {
    FetcherError::Fetch {
        uri: uri.to_string(),
        reason: reason.into(),
    }
}

/// Fetches every URI into `sandbox`, in order; the first failure stops it.
pub async fn fetch_all(uris: &[pb::command_info::Uri], sandbox: &Path) -> Result<(), FetcherError> {
    for uri in uris {
        fetch_one(uri, sandbox).await?;
    }
    Ok(())
}

async fn fetch_one(uri: &pb::command_info::Uri, sandbox: &Path) -> Result<(), FetcherError> {
    let value = uri.value.trim();
    let base = value
        .rsplit('/')
        .next()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| fail(value, "the URI has no file name"))?;
    let base = base.split(['?', '#']).next().unwrap_or(base);
    let name = uri.output_file.clone().unwrap_or_else(|| base.to_string());
    if name.contains("..") || name.starts_with('/') {
        return Err(fail(
            value,
            format!("output file '{name}' leaves the sandbox"),
        ));
    }
    let target = sandbox.join(&name);
    let scheme = value.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        None | Some("file") => {
            let source = PathBuf::from(value.trim_start_matches("file://"));
            if !source.is_absolute() {
                return Err(fail(value, "a local URI must be an absolute path"));
            }
            tokio::fs::copy(&source, &target)
                .await
                .map_err(|e| fail(value, e.to_string()))?;
        }
        Some("http") | Some("https") | Some("ftp") | Some("ftps") => {
            let output = tokio::process::Command::new("curl")
                .args(["-sSfL", "--retry", "2", "-o"])
                .arg(&target)
                .arg(value)
                .output()
                .await
                .map_err(|e| fail(value, format!("cannot run curl: {e}")))?;
            if !output.status.success() {
                let _ = tokio::fs::remove_file(&target).await;
                return Err(fail(
                    value,
                    String::from_utf8_lossy(&output.stderr).trim().to_string(),
                ));
            }
        }
        Some(other) => return Err(fail(value, format!("unsupported scheme '{other}'"))),
    }
    if uri.executable.unwrap_or(false) {
        let perms = std::fs::Permissions::from_mode(0o755);
        tokio::fs::set_permissions(&target, perms)
            .await
            .map_err(|e| fail(value, e.to_string()))?;
    } else if uri.extract.unwrap_or(true) {
        extract(&target, sandbox)
            .await
            .map_err(|reason| fail(value, reason))?;
    }
    Ok(())
}

/// Unpacks `archive` into `dir` if its name says it is an archive.
async fn extract(archive: &Path, dir: &Path) -> Result<(), String> {
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let tar = [
        ".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz",
    ];
    let mut command = if tar.iter().any(|s| name.ends_with(s)) {
        let mut c = tokio::process::Command::new("tar");
        c.arg("-C").arg(dir).arg("-xf").arg(archive);
        c
    } else if name.ends_with(".zip") {
        let mut c = tokio::process::Command::new("unzip");
        c.arg("-o").arg("-q").arg(archive).arg("-d").arg(dir);
        c
    } else if name.ends_with(".gz") {
        let mut c = tokio::process::Command::new("gzip");
        c.arg("-d").arg("-f").arg(archive);
        c
    } else {
        return Ok(());
    };
    let output = command
        .output()
        .await
        .map_err(|e| format!("cannot run the extractor: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "failed to extract: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(value: &str) -> pb::command_info::Uri {
        pb::command_info::Uri {
            value: value.into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn local_files_are_copied_and_made_executable() {
        let src = tempfile::tempdir().unwrap();
        let sandbox = tempfile::tempdir().unwrap();
        let file = src.path().join("run.sh");
        std::fs::write(&file, "#!/bin/sh\necho hi\n").unwrap();
        let mut u = uri(file.to_str().unwrap());
        u.executable = Some(true);
        fetch_all(&[u], sandbox.path()).await.unwrap();
        let mode = std::fs::metadata(sandbox.path().join("run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[tokio::test]
    async fn archives_are_extracted() {
        let src = tempfile::tempdir().unwrap();
        let sandbox = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("inner.txt"), "payload").unwrap();
        let archive = src.path().join("bundle.tar.gz");
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(src.path())
            .arg("-czf")
            .arg(&archive)
            .arg("inner.txt")
            .status()
            .unwrap();
        assert!(status.success());
        fetch_all(&[uri(archive.to_str().unwrap())], sandbox.path())
            .await
            .unwrap();
        let text = std::fs::read_to_string(sandbox.path().join("inner.txt")).unwrap();
        assert_eq!(text, "payload");
    }

    /// Serves `body` once over HTTP on a loopback port; a path other than
    /// `/file.txt` gets 404.
    fn serve_once(body: &'static str) -> std::net::SocketAddr {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(2) {
                let mut stream = stream.unwrap();
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                reader.read_line(&mut request).unwrap();
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let reply = if request.starts_with("GET /file.txt ") {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                };
                stream.write_all(reply.as_bytes()).unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn http_uris_are_downloaded_and_a_404_fails_the_fetch() {
        let addr = serve_once("over http");
        let sandbox = tempfile::tempdir().unwrap();
        let mut u = uri(&format!("http://{addr}/file.txt"));
        u.output_file = Some("renamed.txt".into());
        fetch_all(&[u], sandbox.path()).await.unwrap();
        let text = std::fs::read_to_string(sandbox.path().join("renamed.txt")).unwrap();
        assert_eq!(text, "over http");
        let missing = format!("http://{addr}/missing.txt");
        let err = fetch_all(&[uri(&missing)], sandbox.path())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(&missing), "{err}");
        assert!(!sandbox.path().join("missing.txt").exists());
    }

    #[tokio::test]
    async fn a_missing_uri_names_itself_in_the_error() {
        let sandbox = tempfile::tempdir().unwrap();
        let err = fetch_all(&[uri("/nonexistent/pando-missing.tar")], sandbox.path())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/pando-missing.tar"),
            "{err}"
        );
    }
}
