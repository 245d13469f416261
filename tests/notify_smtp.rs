//! Email notifications against a real SMTP server on 127.0.0.1 (Python's aiosmtpd): plain SMTP
//! with two recipients, AUTH with a password, STARTTLS and implicit TLS with a self-signed
//! certificate trusted through `ca_file`, and the password kept out of every output.
//!
//! Needs `python3` with `aiosmtpd` (`pip install aiosmtpd`) and `openssl`. Without them the tests
//! print a note and pass, unless `CI` or `DBSTASH_REQUIRE_SERVERS` is set, where they fail.

use crate::support;
use crate::support::notify::event;
use dbstash::manifest::types::{NotifierKind, NotifyOn, SmtpSecurity};
use dbstash::model::{Notifier, Smtp};
use dbstash::notify::{Dispatcher, EventKind};
use dbstash::secret::Secret;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const USER: &str = "mailer";
const PASSWORD: &str = "Sm7pPassw0rd-Never-Shown";

const SERVER_PY: &str = r#"
import email, email.policy, json, logging, os, ssl, sys, warnings
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)  # expected aborted handshakes would print tracebacks
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, outdir, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cert, key, user, password = (sys.argv[4:8] + [None] * 4)[:4]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "date": str(msg["Date"]),
            "content_type": msg.get_content_type(),
            "body": body.get_content() if body is not None else "",
            "raw": envelope.original_content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
        }
        n = len([f for f in os.listdir(outdir) if f.endswith(".json")])
        tmp = os.path.join(outdir, "%03d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(outdir, "%03d.json" % n))
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == user.encode() and auth_data.password == password.encode())
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

kw = {}
if user:
    kw.update(authenticator=authenticator, auth_required=True)
if mode in ("auth", "tls"):
    # aiosmtpd only counts STARTTLS as TLS for AUTH; implicit TLS is encrypted too.
    kw.update(auth_require_tls=False)
if mode in ("starttls", "tls"):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if mode == "starttls":
        kw.update(tls_context=ctx, require_starttls=True)
    else:
        kw.update(ssl_context=ctx)
c = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
c.start()
print("READY", flush=True)
sys.stdin.read()
c.stop()
"#;

/// Can the servers run here? If not: fail under CI / DBSTASH_REQUIRE_SERVERS, else skip.
fn servers_available() -> bool {
    let python = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let openssl = Command::new("openssl")
        .arg("version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if python && openssl {
        return true;
    }
    let what = "python3 with aiosmtpd (pip install aiosmtpd) and openssl";
    if std::env::var_os("CI").is_some() || std::env::var_os("DBSTASH_REQUIRE_SERVERS").is_some() {
        panic!("SMTP tests need {what}");
    }
    eprintln!("note: skipping SMTP test: needs {what}");
    false
}

struct SmtpServer {
    port: u16,
    out: PathBuf,
    child: Child,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Plain,
    Auth,
    Starttls,
    Tls,
}

struct Certs {
    cert: PathBuf,
    key: PathBuf,
}

fn make_cert(dir: &Path) -> Certs {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-days",
            "1",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Certs { cert, key }
}

impl SmtpServer {
    /// Start aiosmtpd on a free port; `with_auth` requires AUTH as USER/PASSWORD.
    fn start(dir: &Path, mode: Mode, certs: Option<&Certs>, with_auth: bool) -> SmtpServer {
        let script = dir.join("smtp_server.py");
        std::fs::write(&script, SERVER_PY).unwrap();
        let port = support::notify::dead_port();
        let out = dir.join(format!("mail-{port}"));
        std::fs::create_dir_all(&out).unwrap();
        let mode_s = match mode {
            Mode::Plain => "plain",
            Mode::Auth => "auth",
            Mode::Starttls => "starttls",
            Mode::Tls => "tls",
        };
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(port.to_string()).arg(&out).arg(mode_s);
        match certs {
            Some(c) => cmd.arg(&c.cert).arg(&c.key),
            None => cmd.arg("").arg(""),
        };
        if with_auth {
            cmd.args([USER, PASSWORD]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(15)).unwrap_or_default();
        let server = SmtpServer { port, out, child };
        assert_eq!(line.trim(), "READY", "aiosmtpd did not start");
        server
    }

    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// The messages once `n` have arrived (delivery is acknowledged after the handler ran, so
    /// they are normally there already).
    fn wait_messages(&self, n: usize) -> Vec<Value> {
        let t = Instant::now();
        loop {
            let m = self.messages();
            if m.len() >= n || t.elapsed() > Duration::from_secs(5) {
                return m;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn email_notifier(
    port: u16,
    host: &str,
    security: SmtpSecurity,
    auth: Option<&str>,
    ca_file: Option<&Path>,
) -> Notifier {
    Notifier {
        name: "dba".into(),
        kind: NotifierKind::Email,
        url: None,
        on: [NotifyOn::Failure].into(),
        message: None,
        timeout: Duration::from_secs(5),
        from: Some("dbstash <dbstash@example.com>".into()),
        to: vec![
            "dba@example.com".into(),
            "Oncall <oncall@example.org>".into(),
        ],
        smtp: Some(Smtp {
            host: host.into(),
            port,
            security,
            username: auth.map(|_| USER.to_string()),
            password: auth.map(Secret::new),
            ca_file: ca_file.map(Path::to_path_buf),
        }),
        headers: Default::default(),
        secret: None,
    }
}

fn dispatcher(n: Notifier) -> Dispatcher {
    Dispatcher::new(support::notify::map([n]))
        .unwrap()
        .with_backoff(Duration::from_millis(20))
}

#[tokio::test]
async fn plain_smtp_reaches_both_recipients_with_headers_and_body() {
    if !servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path(), Mode::Plain, None, false);
    let d = dispatcher(email_notifier(
        server.port,
        "127.0.0.1",
        SmtpSecurity::None,
        None,
        None,
    ));
    let ds = d.send(&["dba".into()], &event(EventKind::Failure)).await;
    assert_eq!(ds.len(), 1);
    assert!(ds[0].ok, "{ds:?}");
    assert_eq!(ds[0].attempts, 1);

    let msgs = server.wait_messages(1);
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m["mail_from"], "dbstash@example.com");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["dba@example.com", "oncall@example.org"])
    );
    assert_eq!(m["from"], "dbstash <dbstash@example.com>");
    let to = m["to"].as_str().unwrap();
    assert!(
        to.contains("dba@example.com") && to.contains("Oncall <oncall@example.org>"),
        "{to}"
    );
    assert_eq!(m["subject"], "[dbstash] app: backup failed");
    assert_eq!(m["content_type"], "text/plain");
    assert!(!m["date"].as_str().unwrap().is_empty());
    let body = m["body"].as_str().unwrap();
    for needle in [
        "app: backup failed",
        "Engine: postgres",
        "Database: shop",
        "Status: failure",
        "Remote: offsite",
        "Object: pg/app/shop-2026-01-01-020000.sql.zst",
        "Size: 120.6 KiB (123456 bytes)",
        "Duration: 42s",
        &"ab".repeat(32),
        "Host: backup-host-1",
        "password authentication failed for user \"app\"",
    ] {
        assert!(body.contains(needle), "body lacks {needle:?}:\n{body}");
    }
    assert_eq!(m["tls"], false);
}

#[tokio::test]
async fn success_subject_and_message_template() {
    if !servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path(), Mode::Plain, None, false);
    let mut n = email_notifier(server.port, "127.0.0.1", SmtpSecurity::None, None, None);
    n.message = Some("{{job}}/{{database}} {{status}} in {{duration}}, sha {{sha256}}".into());
    let d = dispatcher(n);
    let del = d.send_one("dba", &event(EventKind::Success)).await.unwrap();
    assert!(del.ok, "{del:?}");
    let m = &server.wait_messages(1)[0];
    assert_eq!(m["subject"], "[dbstash] app: backup succeeded");
    assert_eq!(
        m["body"].as_str().unwrap().trim_end(),
        format!("app/shop success in 42s, sha {}", "ab".repeat(32))
    );
}

#[tokio::test]
async fn auth_with_password_and_a_wrong_password_fails_without_showing_it() {
    if !servers_available() {
        return;
    }
    let logs = support::notify::LogCapture::start();
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path(), Mode::Auth, None, true);

    let good = dispatcher(email_notifier(
        server.port,
        "127.0.0.1",
        SmtpSecurity::None,
        Some(PASSWORD),
        None,
    ));
    let del = good
        .send_one("dba", &event(EventKind::Failure))
        .await
        .unwrap();
    assert!(del.ok, "{del:?}");
    let msgs = server.wait_messages(1);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["authenticated"], true);
    assert_eq!(msgs[0]["login"], USER);

    let wrong_password = "Wr0ng-Passw0rd-Also-Secret";
    let bad = dispatcher(email_notifier(
        server.port,
        "127.0.0.1",
        SmtpSecurity::None,
        Some(wrong_password),
        None,
    ));
    let del = bad
        .send_one("dba", &event(EventKind::Failure))
        .await
        .unwrap();
    assert!(!del.ok);
    assert_eq!(
        del.attempts, 1,
        "an authentication failure (5xx) is not retried"
    );
    let err = del.error.unwrap();
    assert!(err.starts_with("smtp: "), "{err}");
    assert!(err.contains("535"), "{err}");
    assert!(
        !err.contains(wrong_password) && !err.contains(PASSWORD),
        "{err}"
    );
    let log = logs.text();
    assert!(log.contains("notification failed"), "{log}");
    assert!(
        !log.contains(wrong_password) && !log.contains(PASSWORD),
        "{log}"
    );
    // Nothing more was delivered.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn starttls_with_a_self_signed_certificate_from_ca_file() {
    if !servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = make_cert(dir.path());
    let server = SmtpServer::start(dir.path(), Mode::Starttls, Some(&certs), true);

    let d = dispatcher(email_notifier(
        server.port,
        "localhost",
        SmtpSecurity::Starttls,
        Some(PASSWORD),
        Some(&certs.cert),
    ));
    let del = d.send_one("dba", &event(EventKind::Failure)).await.unwrap();
    assert!(del.ok, "{del:?}");
    let m = &server.wait_messages(1)[0];
    assert_eq!(m["tls"], true, "the message came over STARTTLS");
    assert_eq!(m["authenticated"], true);
    assert_eq!(m["subject"], "[dbstash] app: backup failed");
    assert_eq!(m["rcpt_tos"].as_array().unwrap().len(), 2);

    // Without the CA the self-signed certificate is refused: TLS is really verified.
    let d = dispatcher(email_notifier(
        server.port,
        "localhost",
        SmtpSecurity::Starttls,
        Some(PASSWORD),
        None,
    ));
    let del = d.send_one("dba", &event(EventKind::Failure)).await.unwrap();
    assert!(!del.ok, "{del:?}");
    let err = del.error.unwrap();
    assert!(!err.contains(PASSWORD), "{err}");
    assert_eq!(server.messages().len(), 1);
}

#[tokio::test]
async fn starttls_required_but_not_offered_fails() {
    if !servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path(), Mode::Plain, None, false);
    let d = dispatcher(email_notifier(
        server.port,
        "127.0.0.1",
        SmtpSecurity::Starttls,
        None,
        None,
    ))
    .with_retries(0);
    let del = d.send_one("dba", &event(EventKind::Failure)).await.unwrap();
    assert!(!del.ok, "{del:?}");
    assert_eq!(server.messages().len(), 0, "no plaintext fallback");
}

#[tokio::test]
async fn implicit_tls() {
    if !servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = make_cert(dir.path());
    let server = SmtpServer::start(dir.path(), Mode::Tls, Some(&certs), true);
    let d = dispatcher(email_notifier(
        server.port,
        "localhost",
        SmtpSecurity::Tls,
        Some(PASSWORD),
        Some(&certs.cert),
    ));
    let del = d.send_one("dba", &event(EventKind::Failure)).await.unwrap();
    assert!(del.ok, "{del:?}");
    let m = &server.wait_messages(1)[0];
    assert_eq!(m["authenticated"], true);
    assert_eq!(m["subject"], "[dbstash] app: backup failed");
}

// ---- through the binary -------------------------------------------------------------------

fn manifest(dir: &Path, port: u16, password_file: &Path, ca: &Path) -> PathBuf {
    let p = dir.join("dbstash.yaml");
    std::fs::write(
        &p,
        format!(
            r#"version: 1
settings: {{ log: {{ level: debug, format: json }} }}
notifiers:
  dba:
    type: email
    on: failure
    from: "dbstash <dbstash@example.com>"
    to: [dba@example.com, oncall@example.org]
    smtp: {{ host: localhost, port: {port}, security: starttls, username: {USER}, password_file: "{}", ca_file: "{}" }}
jobs: {{}}
"#,
            password_file.display(),
            ca.display()
        ),
    )
    .unwrap();
    p
}

fn notify_test(config: &Path) -> std::process::Output {
    assert_cmd::Command::cargo_bin("dbstash")
        .unwrap()
        .args(["-c"])
        .arg(config)
        .args(["notify", "test", "dba"])
        .env_remove("DBSTASH_LOG")
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap()
}

#[test]
fn cli_notify_test_over_starttls_never_prints_the_password() {
    if !servers_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = make_cert(dir.path());
    let server = SmtpServer::start(dir.path(), Mode::Starttls, Some(&certs), true);
    let pw = dir.path().join("smtp_password");

    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let out = notify_test(&manifest(dir.path(), server.port, &pw, &certs.cert));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "notifier dba: sent (1 attempt)");
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stdout}\n{stderr}"
    );
    let m = &server.wait_messages(1)[0];
    assert_eq!(m["subject"], "[dbstash] test message from notifier dba");
    assert_eq!(m["tls"], true);
    assert!(m["body"]
        .as_str()
        .unwrap()
        .contains("dbstash notify test dba"));
    assert!(!m["raw"].as_str().unwrap().contains(PASSWORD));

    // A wrong password: exit 1, one clear line, and still no password anywhere.
    let wrong = "An0ther-Wr0ng-Secret";
    std::fs::write(&pw, wrong).unwrap();
    let out = notify_test(&manifest(dir.path(), server.port, &pw, &certs.cert));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("notifier dba: failed after 1 attempt: smtp: "),
        "{stderr}"
    );
    for s in [wrong, PASSWORD] {
        assert!(
            !stdout.contains(s) && !stderr.contains(s),
            "{stdout}\n{stderr}"
        );
    }
    assert_eq!(server.messages().len(), 1);
}
