//! `dbstash health [--url U]`: ask a running supervisor's `/healthz`, for container health checks
//! (the images carry no curl). Exit 0 on `200`, else one line saying why and exit 1.
//!
//! Without `--url` the address comes from the manifest's `settings.health.listen`. Only that one
//! value is read (with `${VAR}` expansion): a health check must not fail because a secret file is
//! being rotated or because an edit the supervisor rejected (it keeps the old manifest) is on disk.

use std::path::Path;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

pub fn run(config: &Path, url: Option<&str>) -> i32 {
    let url = match url {
        Some(u) => u.to_string(),
        None => match url_from_manifest(config) {
            Ok(u) => u,
            Err(e) => {
                eprintln!("dbstash health: {e}");
                return 1;
            }
        },
    };
    match check(&url) {
        Ok(()) => 0,
        Err(reason) => {
            eprintln!("dbstash health: {reason}");
            1
        }
    }
}

/// `http://<listen>/healthz`, with a wildcard bind address replaced by loopback.
fn url_from_manifest(config: &Path) -> Result<String, String> {
    let text = crate::manifest::limits::read_manifest(config)
        .map_err(|e| format!("{}: cannot read the manifest: {e}", config.display()))?;
    let root = crate::manifest::yaml::parse(&text).map_err(|e| {
        format!(
            "{}:{}:{}: {}",
            config.display(),
            e.loc.line,
            e.loc.col,
            e.message
        )
    })?;
    let node = root
        .get("settings")
        .and_then(|s| s.get("health"))
        .and_then(|h| h.get("listen"));
    let Some(node) = node else {
        return Err(format!(
            "{}: the health endpoint is off: set settings.health.listen (e.g. \"0.0.0.0:8080\") or pass --url",
            config.display()
        ));
    };
    let raw = node.as_str().ok_or_else(|| {
        format!(
            "{}:{}:{}: settings.health.listen must be a string like \"0.0.0.0:8080\"",
            config.display(),
            node.loc.line,
            node.loc.col
        )
    })?;
    let listen = crate::manifest::interp::expand(raw, &|k| std::env::var(k).ok()).map_err(|e| {
        format!(
            "{}:{}:{}: {e}",
            config.display(),
            node.loc.line,
            node.loc.col
        )
    })?;
    let target = connect_address(&listen).ok_or_else(|| {
        format!(
            "{}:{}:{}: settings.health.listen `{listen}` is not HOST:PORT",
            config.display(),
            node.loc.line,
            node.loc.col
        )
    })?;
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

fn check(url: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // The supervisor is local: an HTTP(S)_PROXY in the container's environment must not route
            // the check elsewhere, and a redirect is not a healthy answer.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot start the HTTP client: {e}"))?;
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
        if first.is_empty() {
            Err(format!("{url} answered {status}"))
        } else {
            Err(format!("{url} answered {status}: {first}"))
        }
    })
}

fn describe(url: &str, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("{url}: no answer within {}s", TIMEOUT.as_secs());
    }
    if e.is_builder() {
        return format!("`{url}` is not a usable URL");
    }
    // reqwest's top-level message is generic; the innermost cause says what happened.
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if e.is_connect() {
        format!("cannot connect to {url}: {cause}")
    } else {
        format!("{url}: {cause}")
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
