//! `dbstash health [--url U]`: ask a running supervisor's `/healthz`, for container health checks
//! (the images carry no curl). Exit 0 on `200`, else one line saying why and exit 1.
//!
//! Without `--url` the address comes from the manifest's `settings.health.listen`. Only that one
//! value is read (with `${VAR}` expansion): a health check must not fail because a secret file is
//! being rotated or because an edit the supervisor rejected (it keeps the old manifest) is on disk.

use super::{CliError, ExitCode};
use crate::error::exit;
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

/// Why the endpoint is not healthy, or cannot be asked (printed as `dbstash health: …`).
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("{}: cannot read the manifest: {source}", .config.display())]
    Read {
        config: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{col}: {problem}", .config.display())]
    At {
        config: PathBuf,
        line: usize,
        col: usize,
        problem: ListenProblem,
    },
    #[error("{}: the health endpoint is off: set settings.health.listen (e.g. \"0.0.0.0:8080\") or pass --url", .config.display())]
    Off { config: PathBuf },
    #[error("cannot start the HTTP client: {0}")]
    Client(String),
    #[error("{url}: no answer within {}s", TIMEOUT.as_secs())]
    Timeout { url: String },
    #[error("`{url}` is not a usable URL")]
    BadUrl { url: String },
    #[error("cannot connect to {url}: {cause}")]
    Connect { url: String, cause: String },
    #[error("{url}: {cause}")]
    Request { url: String, cause: String },
    #[error("{url} answered {status}{}", if .first.is_empty() { String::new() } else { format!(": {}", .first) })]
    Status {
        url: String,
        status: reqwest::StatusCode,
        first: String,
    },
}

/// What is wrong with `settings.health.listen` (at its place in the manifest).
#[derive(Debug, thiserror::Error)]
pub enum ListenProblem {
    #[error("{0}")]
    Syntax(String),
    #[error("settings.health.listen must be a string like \"0.0.0.0:8080\"")]
    NotAString,
    #[error("{0}")]
    Expand(String),
    #[error("settings.health.listen `{0}` is not HOST:PORT")]
    NotHostPort(String),
}

pub fn run(config: &Path, url: Option<&str>) -> Result<ExitCode, CliError> {
    let url = match url {
        Some(u) => u.to_string(),
        None => url_from_manifest(config)?,
    };
    check(&url)?;
    Ok(exit::OK)
}

/// `http://<listen>/healthz`, with a wildcard bind address replaced by loopback.
fn url_from_manifest(config: &Path) -> Result<String, HealthError> {
    let text =
        crate::manifest::limits::read_manifest(config).map_err(|source| HealthError::Read {
            config: config.to_path_buf(),
            source,
        })?;
    let at = |line: usize, col: usize, problem: ListenProblem| HealthError::At {
        config: config.to_path_buf(),
        line,
        col,
        problem,
    };
    let root = crate::manifest::yaml::parse(&text)
        .map_err(|e| at(e.loc.line, e.loc.col, ListenProblem::Syntax(e.message)))?;
    let node = root
        .get("settings")
        .and_then(|s| s.get("health"))
        .and_then(|h| h.get("listen"));
    let Some(node) = node else {
        return Err(HealthError::Off {
            config: config.to_path_buf(),
        });
    };
    let (line, col) = (node.loc.line, node.loc.col);
    let raw = node
        .as_str()
        .ok_or_else(|| at(line, col, ListenProblem::NotAString))?;
    let listen = crate::manifest::interp::expand(raw, &|k| std::env::var(k).ok())
        .map_err(|e| at(line, col, ListenProblem::Expand(e)))?;
    let target = connect_address(&listen)
        .ok_or_else(|| at(line, col, ListenProblem::NotHostPort(listen.clone())))?;
    Ok(format!("http://{target}/healthz"))
}

/// The address to connect to for a listen address: `0.0.0.0`/empty → `127.0.0.1`, `[::]` → `[::1]`.
pub(crate) fn connect_address(listen: &str) -> Option<String> {
    let (host, port) = listen.trim().rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = match host {
        "" | "0.0.0.0" | "*" => "127.0.0.1",
        "[::]" | "::" => "[::1]",
        h if h.contains(':') && !h.starts_with('[') => return Some(format!("[{h}]:{port}")),
        h => h,
    };
    Some(format!("{host}:{port}"))
}

fn check(url: &str) -> Result<(), HealthError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| HealthError::Client(e.to_string()))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // The supervisor is local: an HTTP(S)_PROXY in the container's environment must not route
            // the check elsewhere, and a redirect is not a healthy answer.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HealthError::Client(e.to_string()))?;
        let resp = client
            .get(url)
            .send()
            .await
            .map_err(|e| describe(url, &e))?;
        let status = resp.status();
        if status == reqwest::StatusCode::OK {
            return Ok(());
        }
        // The supervisor's body says which job is unhealthy; show its first line, briefly.
        let body = tokio::time::timeout(TIMEOUT, resp.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let first: String = body
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        Err(HealthError::Status {
            url: url.to_string(),
            status,
            first,
        })
    })
}

fn describe(url: &str, e: &reqwest::Error) -> HealthError {
    let url = url.to_string();
    if e.is_timeout() {
        return HealthError::Timeout { url };
    }
    if e.is_builder() {
        return HealthError::BadUrl { url };
    }
    // reqwest's top-level message is generic; the innermost cause says what happened.
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let cause = cause.to_string();
    if e.is_connect() {
        HealthError::Connect { url, cause }
    } else {
        HealthError::Request { url, cause }
    }
}

#[cfg(test)]
mod tests {
    use super::connect_address;

    #[test]
    fn wildcard_binds_become_loopback() {
        assert_eq!(
            connect_address("0.0.0.0:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(connect_address(":9000").as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(connect_address("[::]:8080").as_deref(), Some("[::1]:8080"));
        assert_eq!(
            connect_address("127.0.0.1:81").as_deref(),
            Some("127.0.0.1:81")
        );
        assert_eq!(
            connect_address("localhost:81").as_deref(),
            Some("localhost:81")
        );
        assert_eq!(connect_address("8080"), None);
        assert_eq!(connect_address("host:http"), None);
    }
}
