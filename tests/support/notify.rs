//! Test helpers for the notification tests: a recording HTTP receiver on 127.0.0.1, notifier and
//! event builders, and a log capture.
#![allow(dead_code)]

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use dbstash::manifest::types::{NotifierKind, NotifyOn};
use dbstash::model::Notifier;
use dbstash::notify::{Event, EventKind};
use dbstash::secret::Secret;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Answer with the request path in the body (to check that errors do not echo it).
    pub echo_path: bool,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
            echo_path: false,
            delay: Duration::ZERO,
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    pub fn body(mut self, b: &str) -> Reply {
        self.body = b.into();
        self
    }
    pub fn echo_path(mut self) -> Reply {
        self.echo_path = true;
        self
    }
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Recorded>,
    script: VecDeque<Reply>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let reply = {
        let mut g = inner.lock().unwrap();
        g.requests.push(Recorded {
            at: Instant::now(),
            method: method.to_string(),
            path: path.clone(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_ascii_lowercase(),
                        v.to_str().unwrap_or("").to_string(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
        g.script
            .pop_front()
            .unwrap_or_else(|| Reply::status(200).body("ok"))
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = if reply.echo_path {
        format!("no such hook: {path}").into_response()
    } else {
        reply.body.clone().into_response()
    };
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (k, v) in &reply.headers {
        resp.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}

impl Receiver {
    /// Start on a free port of 127.0.0.1, on the current tokio runtime.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, inner }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queue answers, used in order; afterwards every request gets `200 ok`.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }
}

/// A port on 127.0.0.1 where nothing listens.
pub fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

pub fn notifier(name: &str, kind: NotifierKind, url: &str, on: &[NotifyOn]) -> Notifier {
    Notifier {
        name: name.into(),
        kind,
        url: Some(Secret::new(url)),
        on: on.iter().copied().collect(),
        message: None,
        timeout: Duration::from_secs(5),
        from: None,
        to: vec![],
        smtp: None,
        headers: BTreeMap::new(),
        secret: None,
    }
}

pub fn map(ns: impl IntoIterator<Item = Notifier>) -> BTreeMap<String, Notifier> {
    ns.into_iter().map(|n| (n.name.clone(), n)).collect()
}

pub fn event(kind: EventKind) -> Event {
    Event {
        kind,
        job: "app".into(),
        engine: "postgres".into(),
        database: "shop".into(),
        run_id: "run-7".into(),
        remote: "offsite".into(),
        object: Some("pg/app/shop-2026-01-01-020000.sql.zst".into()),
        size: Some(123_456),
        sha256: Some("ab".repeat(32)),
        duration: Some(Duration::from_secs(42)),
        error: match kind {
            EventKind::Failure => Some(
                "pg_dump: warning: something\npg_dump: error: connection to server at \"db\" failed: FATAL: password authentication failed for user \"app\""
                    .into(),
            ),
            _ => None,
        },
        started: Some("2026-01-01T02:00:00Z".parse().unwrap()),
        finished: Some("2026-01-01T02:00:42Z".parse().unwrap()),
        host: "backup-host-1".into(),
        warnings: Vec::new(),
    }
}

/// Capture `tracing` output (all levels) written on this thread while the guard lives.
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct BufWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for BufWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    pub fn start() -> LogCapture {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = BufWriter(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        LogCapture {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }
}
