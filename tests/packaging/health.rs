//! `dbstash health` against a small HTTP server.

use crate::support::repo::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A tiny HTTP server answering `n` requests with `status` (or never answering when `status` is 0).
fn http_server(
    status: u16,
    body: &'static str,
    n: usize,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let mut requests = Vec::new();
        for _ in 0..n {
            let Ok((mut s, _)) = l.accept() else { break };
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            requests.push(
                String::from_utf8_lossy(&buf)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            );
            if status == 0 {
                std::thread::sleep(Duration::from_secs(12));
                continue;
            }
            let reason = if status == 200 {
                "OK"
            } else {
                "Service Unavailable"
            };
            let resp = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
        requests
    });
    (port, h)
}

#[test]
fn health_ok_on_200() {
    let (port, h) = http_server(200, "ok\n", 1);
    let out = dbstash()
        .args(["-c", "/nonexistent/dbstash.yaml", "health", "--url"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.join().expect("server"), ["GET /healthz HTTP/1.1"]);
}

#[test]
fn health_fails_on_503_with_one_line() {
    let (port, h) = http_server(
        503,
        "job app: no success for 9h (stale_after 8h)\nmore\n",
        1,
    );
    let out = dbstash()
        .args(["health", "--url"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("503") && err.contains("job app: no success"),
        "{err}"
    );
    h.join().expect("server");
}

#[test]
fn health_reads_the_listen_address_from_the_manifest() {
    let (port, h) = http_server(200, "ok", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("dbstash.yaml");
    // Only settings.health.listen is read: the secret file need not exist for a health check.
    std::fs::write(
        &f,
        "version: 1\nsettings:\n  health: { listen: \"0.0.0.0:${HEALTH_PORT}\" }\njobs:\n  a: { engine: postgres, uri_file: /nonexistent/secret }\n",
    )
    .expect("write");
    let out = dbstash()
        .arg("-c")
        .arg(&f)
        .arg("health")
        .env("HEALTH_PORT", port.to_string())
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.join().expect("server"), ["GET /healthz HTTP/1.1"]);
}

#[test]
fn health_fails_when_off_unreachable_or_silent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("dbstash.yaml");
    std::fs::write(&f, "version: 1\njobs: {}\n").expect("write");
    let out = dbstash()
        .arg("-c")
        .arg(&f)
        .arg("health")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("settings.health.listen"));

    // Nobody listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let out = dbstash()
        .args(["health", "--url"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot connect"), "{err}");

    // Accepts but never answers: the 3 s timeout.
    let (port, h) = http_server(0, "", 1);
    let t = Instant::now();
    let out = dbstash()
        .args(["health", "--url"])
        .arg(format!("http://127.0.0.1:{port}/healthz"))
        .output()
        .expect("run");
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(9),
        "{took:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("no answer within 3s"));
    drop(h); // the silent server sleeps on; it ends with the test process

    let out = dbstash()
        .args(["health", "--url", "not a url"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}
