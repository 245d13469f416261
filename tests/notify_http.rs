//! Notifications over HTTP against a recording receiver on 127.0.0.1: payload shapes, retries,
//! Retry-After, `on:` filters, failures, and secrets kept out of errors, logs and CLI output.

use crate::support::notify::*;
use dbstash::manifest::types::{NotifierKind as K, NotifyOn as On};
use dbstash::notify::{Dispatcher, EventKind, NotifyError};
use hmac::{Hmac, KeyInit, Mac};
use std::time::{Duration, Instant};

/// Looks like a real webhook token; must never be shown.
const TOKEN: &str = "Zq7hT0kenS3cretXYZ0987";

fn dispatcher(ns: impl IntoIterator<Item = dbstash::model::Notifier>) -> Dispatcher {
    Dispatcher::new(map(ns))
        .unwrap()
        .with_backoff(Duration::from_millis(20))
}

fn one(ds: &[dbstash::notify::Delivery]) -> &dbstash::notify::Delivery {
    assert_eq!(ds.len(), 1, "{ds:?}");
    &ds[0]
}

#[tokio::test]
async fn slack_payload_has_text_and_blocks() {
    let rx = Receiver::start().await;
    let path = format!("/services/T000/B000/{TOKEN}");
    let d = dispatcher([notifier("ops", K::Slack, &rx.url(&path), &[On::Failure])]);
    let ds = d.send(&["ops".into()], &event(EventKind::Failure)).await;
    let del = one(&ds);
    assert!(del.ok, "{del:?}");
    assert_eq!(del.attempts, 1);
    assert_eq!(del.notifier, "ops");

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, path);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    let text = body["text"].as_str().unwrap();
    for needle in [
        "app: backup failed",
        "postgres",
        "shop",
        "offsite",
        "pg/app/shop-2026-01-01-020000.sql.zst",
        "120.6 KiB",
        "42s",
        &"ab".repeat(32),
        "backup-host-1",
        "password authentication failed",
    ] {
        assert!(text.contains(needle), "slack text lacks {needle:?}: {text}");
    }
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert!(blocks[0]["text"]["text"]
        .as_str()
        .unwrap()
        .contains("app: backup failed"));
    let all = serde_json::to_string(blocks).unwrap();
    assert!(all.contains("*Database*\\nshop"), "{all}");
    assert!(all.contains("password authentication failed"), "{all}");
    // Every block is one of Slack's types with its text within limits.
    for b in blocks {
        assert!(["header", "section", "context"].contains(&b["type"].as_str().unwrap()));
        if let Some(f) = b["fields"].as_array() {
            assert!(f.len() <= 10);
        }
    }
}

#[tokio::test]
async fn discord_payload_has_content_and_a_coloured_embed() {
    let rx = Receiver::start().await;
    let path = format!("/api/webhooks/123/{TOKEN}");
    let d = dispatcher([notifier("team", K::Discord, &rx.url(&path), &[On::Always])]);

    let f = one(&d.send(&["team".into()], &event(EventKind::Failure)).await).clone();
    assert!(f.ok, "{f:?}");
    let s = one(&d.send(&["team".into()], &event(EventKind::Success)).await).clone();
    assert!(s.ok, "{s:?}");

    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path, path);
    let fail = reqs[0].json();
    assert!(fail["content"]
        .as_str()
        .unwrap()
        .contains("app: backup failed"));
    let embed = &fail["embeds"][0];
    assert_eq!(embed["title"], "app: backup failed");
    assert_eq!(embed["color"], 0xE01E5A, "failure is red");
    assert!(embed["description"]
        .as_str()
        .unwrap()
        .contains("password authentication failed"));
    let fields = embed["fields"].as_array().unwrap();
    let field = |name: &str| {
        fields
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no field {name}: {fields:?}"))["value"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(field("Job"), "app");
    assert_eq!(field("Database"), "shop");
    assert_eq!(field("Status"), "failure");
    assert!(field("Size").starts_with("120.6 KiB"));

    let ok = reqs[1].json();
    assert_eq!(ok["embeds"][0]["color"], 0x2EB67D, "success is green");
    assert_eq!(ok["embeds"][0]["title"], "app: backup succeeded");
}

#[tokio::test]
async fn webhook_posts_the_context_with_headers_and_a_verifiable_signature() {
    let rx = Receiver::start().await;
    let mut n = notifier(
        "hook",
        K::Webhook,
        &rx.url(&format!("/hook?token={TOKEN}")),
        &[On::Always],
    );
    n.headers.insert("X-Team".into(), "db-ops".into());
    n.secret = Some(dbstash::secret::Secret::new("hmac-key-123"));
    let d = dispatcher([n]);
    let del = one(&d.send(&["hook".into()], &event(EventKind::Success)).await).clone();
    assert!(del.ok, "{del:?}");

    let r = &rx.requests()[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, format!("/hook?token={TOKEN}"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-team"), Some("db-ops"));
    assert_eq!(r.header("x-dbstash-event"), Some("success"));

    // The signature is HMAC-SHA256 over the exact bytes received.
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hmac-key-123").unwrap();
    mac.update(&r.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(r.header("x-dbstash-signature"), Some(expected.as_str()));
    // ... and not over something else.
    let mut other = Hmac::<sha2::Sha256>::new_from_slice(b"wrong-key").unwrap();
    other.update(&r.body);
    assert_ne!(
        r.header("x-dbstash-signature"),
        Some(format!("sha256={}", hex::encode(other.finalize().into_bytes())).as_str())
    );

    let b = r.json();
    assert_eq!(b["event"], "success");
    assert_eq!(b["status"], "success");
    assert_eq!(b["job"], "app");
    assert_eq!(b["engine"], "postgres");
    assert_eq!(b["database"], "shop");
    assert_eq!(b["remote"], "offsite");
    assert_eq!(b["object"], "pg/app/shop-2026-01-01-020000.sql.zst");
    assert_eq!(b["size"], 123_456);
    assert_eq!(b["duration_seconds"], 42.0);
    assert_eq!(b["sha256"], "ab".repeat(32));
    assert_eq!(b["host"], "backup-host-1");
    assert_eq!(b["run_id"], "run-7");
    assert_eq!(b["started"], "2026-01-01T02:00:00Z");
    assert_eq!(b["notifier"], "hook");
    assert_eq!(b["test"], false);
    // Every template variable is in the body.
    for k in dbstash::notify::template::sample_context()
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(b.get(k).is_some(), "webhook body lacks {k}");
    }
    // The HMAC key is not sent.
    assert!(!r.text().contains("hmac-key-123"));
}

#[tokio::test]
async fn webhook_without_secret_has_no_signature() {
    let rx = Receiver::start().await;
    let d = dispatcher([notifier("hook", K::Webhook, &rx.url("/h"), &[On::Failure])]);
    assert!(one(&d.send(&["hook".into()], &event(EventKind::Failure)).await).ok);
    let r = &rx.requests()[0];
    assert_eq!(r.header("x-dbstash-signature"), None);
    assert_eq!(r.json()["event"], "failure");
    assert!(r.json()["error"]
        .as_str()
        .unwrap()
        .contains("password authentication failed"));
}

#[tokio::test]
async fn healthchecks_follows_the_start_success_fail_convention() {
    let rx = Receiver::start().await;
    let base = format!("/ping/{TOKEN}");
    let d = dispatcher([notifier(
        "hc",
        K::Healthchecks,
        &rx.url(&base),
        &[On::Start, On::Success, On::Failure, On::ConfigError],
    )]);
    let names = ["hc".to_string()];
    for kind in [EventKind::Start, EventKind::Success, EventKind::Failure] {
        assert!(one(&d.send(&names, &event(kind)).await).ok);
    }
    let cfg = dbstash::notify::Event::config_error("notifiers.ops: unknown key `urll`".into());
    assert!(one(&d.send(&names, &cfg).await).ok);
    let test = d
        .send_one("hc", &dbstash::notify::Event::test("hc"))
        .await
        .unwrap();
    assert!(test.ok);

    let reqs = rx.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("{base}/start"),
            base.clone(),
            format!("{base}/fail"),
            format!("{base}/fail"),
            format!("{base}/log"),
        ]
    );
    assert!(reqs.iter().all(|r| r.method == "POST"));
    // The failure ping carries the error tail; the config error its message.
    assert!(
        reqs[2].text().contains("password authentication failed"),
        "{}",
        reqs[2].text()
    );
    assert!(
        reqs[3].text().contains("unknown key `urll`"),
        "{}",
        reqs[3].text()
    );
}

#[tokio::test]
async fn healthchecks_sends_a_uuid_run_id_as_rid() {
    let rx = Receiver::start().await;
    let d = dispatcher([notifier(
        "hc",
        K::Healthchecks,
        &rx.url("/p/abc"),
        &[On::Start],
    )]);
    let mut e = event(EventKind::Start);
    e.run_id = "0b6e4c1e-8d3a-4b8e-9f4e-2a7d5c9e1f00".into();
    assert!(one(&d.send(&["hc".into()], &e).await).ok);
    assert_eq!(
        rx.requests()[0].path,
        "/p/abc/start?rid=0b6e4c1e-8d3a-4b8e-9f4e-2a7d5c9e1f00"
    );
}

#[tokio::test]
async fn a_500_is_retried_then_succeeds() {
    let rx = Receiver::start().await;
    rx.script([Reply::status(500).body("boom")]);
    let d = dispatcher([notifier("ops", K::Slack, &rx.url("/s"), &[On::Failure])]);
    let del = one(&d.send(&["ops".into()], &event(EventKind::Failure)).await).clone();
    assert!(del.ok, "{del:?}");
    assert_eq!(del.attempts, 2);
    assert_eq!(del.error, None);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    // Same payload both times.
    assert_eq!(reqs[0].body, reqs[1].body);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let rx = Receiver::start().await;
    rx.script([Reply::status(429).header("Retry-After", "1")]);
    // Backoff alone would wait 20ms; the server asked for a second.
    let d = dispatcher([notifier("team", K::Discord, &rx.url("/d"), &[On::Failure])]);
    let del = one(&d.send(&["team".into()], &event(EventKind::Failure)).await).clone();
    assert!(del.ok, "{del:?}");
    assert_eq!(del.attempts, 2);
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(
        gap >= Duration::from_secs(1),
        "second attempt after {gap:?}"
    );
    assert!(gap < Duration::from_secs(3), "second attempt after {gap:?}");
}

#[tokio::test]
async fn retry_after_is_capped() {
    let rx = Receiver::start().await;
    rx.script([Reply::status(503).header("Retry-After", "3600")]);
    let d = dispatcher([notifier("ops", K::Slack, &rx.url("/s"), &[On::Failure])])
        .with_max_retry_after(Duration::from_millis(200));
    let t = Instant::now();
    let del = one(&d.send(&["ops".into()], &event(EventKind::Failure)).await).clone();
    assert!(del.ok, "{del:?}");
    assert_eq!(del.attempts, 2);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_three_retries_with_growing_backoff() {
    let rx = Receiver::start().await;
    rx.script((0..10).map(|_| Reply::status(502)));
    let d = Dispatcher::new(map([notifier(
        "ops",
        K::Slack,
        &rx.url("/s"),
        &[On::Failure],
    )]))
    .unwrap()
    .with_backoff(Duration::from_millis(100));
    let del = one(&d.send(&["ops".into()], &event(EventKind::Failure)).await).clone();
    assert!(!del.ok);
    assert_eq!(del.attempts, 4);
    assert!(
        del.error.as_deref().unwrap().contains("HTTP 502"),
        "{del:?}"
    );
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 4);
    let gaps: Vec<Duration> = reqs.windows(2).map(|w| w[1].at - w[0].at).collect();
    // 100ms, 200ms, 400ms.
    assert!(gaps[0] >= Duration::from_millis(100), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(200), "{gaps:?}");
    assert!(gaps[2] >= Duration::from_millis(400), "{gaps:?}");
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let rx = Receiver::start().await;
    rx.script([Reply::status(404).body("no_service")]);
    let d = dispatcher([notifier("ops", K::Slack, &rx.url("/s"), &[On::Failure])]);
    let del = one(&d.send(&["ops".into()], &event(EventKind::Failure)).await).clone();
    assert!(!del.ok);
    assert_eq!(del.attempts, 1);
    assert_eq!(del.error.as_deref(), Some("HTTP 404: no_service"));
    assert_eq!(rx.requests().len(), 1);
}

#[tokio::test]
async fn on_filters_decide_who_hears_what() {
    let rx = Receiver::start().await;
    let d = dispatcher([
        notifier(
            "fail-only",
            K::Webhook,
            &rx.url("/fail-only"),
            &[On::Failure],
        ),
        notifier("always", K::Webhook, &rx.url("/always"), &[On::Always]),
        notifier("starts", K::Webhook, &rx.url("/starts"), &[On::Start]),
    ]);
    let all: Vec<String> = ["fail-only", "always", "starts"].map(String::from).to_vec();

    // Success: only `always`.
    let ds = d.send(&all, &event(EventKind::Success)).await;
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(ds[0].notifier, "always");
    // Start: only `starts` (`always` means success + failure).
    let ds = d.send(&all, &event(EventKind::Start)).await;
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(ds[0].notifier, "starts");
    // Failure: `fail-only` and `always`, in name order.
    let ds = d.send(&all, &event(EventKind::Failure)).await;
    let names: Vec<&str> = ds.iter().map(|d| d.notifier.as_str()).collect();
    assert_eq!(names, ["always", "fail-only"]);
    assert!(ds.iter().all(|d| d.ok));
    // A notifier not named is not told.
    let ds = d.send(&["always".into()], &event(EventKind::Failure)).await;
    assert_eq!(ds.len(), 1);

    tokio::time::sleep(Duration::from_millis(100)).await;
    let paths: Vec<String> = rx.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths.iter().filter(|p| *p == "/fail-only").count(),
        1,
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| *p == "/always").count(),
        3,
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| *p == "/starts").count(),
        1,
        "{paths:?}"
    );
}

#[tokio::test]
async fn on_failure_stays_quiet_on_success() {
    let rx = Receiver::start().await;
    let d = dispatcher([notifier("ops", K::Slack, &rx.url("/s"), &[On::Failure])]);
    let ds = d.send(&["ops".into()], &event(EventKind::Success)).await;
    assert!(ds.is_empty(), "{ds:?}");
    let ds = d.send_all(&event(EventKind::Start)).await;
    assert!(ds.is_empty(), "{ds:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(rx.requests().is_empty());
}

#[tokio::test]
async fn delivery_is_concurrent() {
    let rx = Receiver::start().await;
    let slow = Duration::from_millis(700);
    rx.script([
        Reply::status(200).delay(slow),
        Reply::status(200).delay(slow),
    ]);
    let d = dispatcher([
        notifier("a", K::Webhook, &rx.url("/a"), &[On::Failure]),
        notifier("b", K::Webhook, &rx.url("/b"), &[On::Failure]),
    ]);
    let t = Instant::now();
    let ds = d
        .send(&["a".into(), "b".into()], &event(EventKind::Failure))
        .await;
    assert!(ds.iter().all(|d| d.ok), "{ds:?}");
    assert_eq!(ds.len(), 2);
    assert!(t.elapsed() < slow * 2, "took {:?}", t.elapsed());
}

#[tokio::test]
async fn each_attempt_is_bounded_by_the_notifier_timeout() {
    let rx = Receiver::start().await;
    rx.script([Reply::status(200).delay(Duration::from_secs(5))]);
    let mut n = notifier("ops", K::Slack, &rx.url("/s"), &[On::Failure]);
    n.timeout = Duration::from_millis(300);
    let d = dispatcher([n]).with_retries(0);
    let t = Instant::now();
    let del = one(&d.send(&["ops".into()], &event(EventKind::Failure)).await).clone();
    assert!(!del.ok);
    assert_eq!(del.attempts, 1);
    assert!(
        del.error.as_deref().unwrap().contains("timed out"),
        "{del:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[tokio::test]
async fn connection_refused_is_a_failed_delivery_without_the_token() {
    let logs = LogCapture::start();
    let url = format!("http://127.0.0.1:{}/services/T1/B1/{TOKEN}", dead_port());
    let d = dispatcher([notifier("ops", K::Slack, &url, &[On::Failure])]);
    let del = one(&d.send(&["ops".into()], &event(EventKind::Failure)).await).clone();
    assert!(!del.ok);
    assert_eq!(del.attempts, 4, "connection errors are retried 3 times");
    let err = del.error.clone().unwrap();
    assert!(err.contains("request failed"), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    assert!(!err.contains("127.0.0.1:"), "no URL in the error: {err}");
    let log = logs.text();
    assert!(log.contains("notification failed"), "{log}");
    assert!(
        log.contains("notifier=ops") || log.contains("notifier=\"ops\""),
        "{log}"
    );
    assert!(log.contains("event=failure"), "{log}");
    assert!(!log.contains(TOKEN), "{log}");
}

#[tokio::test]
async fn an_error_body_echoing_the_token_is_redacted() {
    let logs = LogCapture::start();
    let rx = Receiver::start().await;
    rx.script([Reply::status(404).echo_path()]);
    let d = dispatcher([notifier(
        "team",
        K::Discord,
        &rx.url(&format!("/api/webhooks/1/{TOKEN}")),
        &[On::Failure],
    )]);
    let del = one(&d.send(&["team".into()], &event(EventKind::Failure)).await).clone();
    assert!(!del.ok);
    let err = del.error.unwrap();
    assert!(err.starts_with("HTTP 404: no such hook: "), "{err}");
    assert!(!err.contains(TOKEN), "{err}");
    assert!(!logs.text().contains(TOKEN), "{}", logs.text());
}

#[tokio::test]
async fn a_message_template_replaces_the_text() {
    let rx = Receiver::start().await;
    let mut slack = notifier("ops", K::Slack, &rx.url("/s"), &[On::Failure]);
    slack.message = Some("{{job}} on {{host}}: {{status}} ({{size_human}})".into());
    let mut hook = notifier("hook", K::Webhook, &rx.url("/w"), &[On::Failure]);
    hook.message = Some("custom {{database}}".into());
    let d = dispatcher([slack, hook]);
    let ds = d
        .send(&["ops".into(), "hook".into()], &event(EventKind::Failure))
        .await;
    assert!(ds.iter().all(|d| d.ok), "{ds:?}");
    let reqs = rx.requests();
    let s = reqs.iter().find(|r| r.path == "/s").unwrap().json();
    assert_eq!(s["text"], "app on backup-host-1: failure (120.6 KiB)");
    assert_eq!(
        s["blocks"][0]["text"]["text"],
        "app on backup-host-1: failure (120.6 KiB)"
    );
    let w = reqs.iter().find(|r| r.path == "/w").unwrap().json();
    assert_eq!(w["text"], "custom shop");
}

#[tokio::test]
async fn unknown_names_fail_without_attempts_and_send_one_ignores_on() {
    let rx = Receiver::start().await;
    let d = dispatcher([notifier("ops", K::Slack, &rx.url("/s"), &[On::Failure])]);
    let ds = d.send(&["nope".into()], &event(EventKind::Failure)).await;
    let del = one(&ds);
    assert!(!del.ok);
    assert_eq!(del.attempts, 0);
    assert!(matches!(
        d.send_one("nope", &event(EventKind::Failure)).await,
        Err(NotifyError::UnknownNotifier(_))
    ));
    // `on: failure`, but a direct send (the CLI test) goes through anyway.
    let del = d.send_one("ops", &event(EventKind::Success)).await.unwrap();
    assert!(del.ok);
    assert_eq!(rx.requests().len(), 1);
}

#[tokio::test]
async fn a_broken_template_falls_back_to_the_default_text() {
    let rx = Receiver::start().await;
    let mut n = notifier("ops", K::Slack, &rx.url("/s"), &[On::Failure]);
    // `validate` would reject this; if it slips through, the message still goes out.
    n.message = Some("{{nope}}".into());
    let d = dispatcher([n]);
    let del = one(&d.send(&["ops".into()], &event(EventKind::Failure)).await).clone();
    assert!(del.ok, "{del:?}");
    let text = rx.requests()[0].json()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("app: backup failed"), "{text}");
}

#[tokio::test]
async fn an_observer_sees_every_delivery() {
    use std::sync::{Arc, Mutex};
    let rx = Receiver::start().await;
    rx.script([Reply::status(400)]);
    type Seen = Vec<(String, bool, u32, EventKind)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s2 = seen.clone();
    let d = dispatcher([
        notifier("a", K::Webhook, &rx.url("/a"), &[On::Start]),
        notifier("b", K::Webhook, &rx.url("/b"), &[On::Failure]),
    ])
    .with_observer(move |del, kind| {
        s2.lock()
            .unwrap()
            .push((del.notifier.clone(), del.ok, del.attempts, kind))
    });
    // Fire and forget, as the supervisor does for starts: the observer still hears of it.
    let d2 = d.clone();
    tokio::spawn(async move { d2.send(&["a".into()], &event(EventKind::Start)).await })
        .await
        .unwrap();
    d.send_one("b", &event(EventKind::Failure)).await.unwrap();
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        seen,
        [
            ("a".to_string(), false, 1, EventKind::Start),
            ("b".to_string(), true, 1, EventKind::Failure)
        ]
    );
}

// ---- through the binary -------------------------------------------------------------------

fn write_manifest(dir: &std::path::Path, notifiers: &str) -> std::path::PathBuf {
    let p = dir.join("dbstash.yaml");
    std::fs::write(
        &p,
        format!("version: 1\nsettings: {{ log: {{ level: debug, format: text }} }}\nnotifiers:\n{notifiers}jobs: {{}}\n"),
    )
    .unwrap();
    p
}

async fn run_cli(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("dbstash")
            .unwrap()
            .args(&args)
            .env_remove("DBSTASH_LOG")
            .timeout(Duration::from_secs(30))
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn cli_notify_test_sends_and_reports() {
    let rx = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = rx.url(&format!("/hook/{TOKEN}"));
    let m = write_manifest(
        dir.path(),
        &format!("  hook: {{ type: webhook, url: \"{url}\", on: failure }}\n"),
    );
    let out = run_cli(vec![
        "-c".into(),
        m.display().to_string(),
        "notify".into(),
        "test".into(),
        "hook".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.trim(), "notifier hook: sent (1 attempt)");
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "{stdout}\n{stderr}"
    );
    // `on: failure` did not stop the test message; it says it is a test.
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 1);
    let b = reqs[0].json();
    assert_eq!(b["test"], true);
    assert!(b["text"]
        .as_str()
        .unwrap()
        .contains("dbstash notify test hook"));
}

#[tokio::test]
async fn cli_notify_test_failure_never_shows_the_token() {
    let rx = Receiver::start().await;
    rx.script([
        Reply::status(500).echo_path(),
        Reply::status(404).echo_path(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let url = rx.url(&format!("/api/webhooks/42/{TOKEN}"));
    let m = write_manifest(
        dir.path(),
        &format!("  team: {{ type: discord, url: \"{url}\" }}\n"),
    );
    let out = run_cli(vec![
        "-c".into(),
        m.display().to_string(),
        "notify".into(),
        "test".into(),
        "team".into(),
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert_eq!(rx.requests().len(), 2, "500 retried, 404 final");
    assert!(
        stderr.contains("notifier team: failed after 2 attempts: HTTP 404: no such hook: "),
        "{stderr}"
    );
    // Debug logs were on (retries logged), and neither they nor the error show the token.
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(!stdout.contains(TOKEN), "{stdout}");
    assert!(!stderr.contains(TOKEN), "{stderr}");
}

#[tokio::test]
async fn cli_notify_test_unknown_notifier() {
    let dir = tempfile::tempdir().unwrap();
    let m = write_manifest(
        dir.path(),
        "  ops: { type: slack, url: \"http://127.0.0.1:9/x\" }\n",
    );
    let out = run_cli(vec![
        "-c".into(),
        m.display().to_string(),
        "notify".into(),
        "test".into(),
        "opz".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One line (after any manifest warnings).
    let ours: Vec<&str> = stderr.lines().filter(|l| !l.contains("warning:")).collect();
    assert_eq!(
        ours,
        ["dbstash: unknown notifier `opz` (known: ops)"],
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn validate_and_plan_never_show_notifier_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let smtp_password = "Sm7pPassw0rd-Never-Shown";
    let hmac_key = "HmacKey-Never-Shown-42";
    std::fs::write(dir.path().join("smtp_pw"), smtp_password).unwrap();
    let m = dir.path().join("dbstash.yaml");
    let yaml = format!(
        r#"version: 1
remotes:
  nas: {{ path: "{root}/backups" }}
notifiers:
  hook: {{ type: webhook, url: "https://hooks.example.com/h/{TOKEN}", secret: "{hmac_key}", on: always }}
  ops: {{ type: slack, url: "https://hooks.slack.com/services/T1/B1/{TOKEN}" }}
  hc: {{ type: healthchecks, url: "https://hc-ping.com/{TOKEN}" }}
  dba: {{ type: email, from: a@example.com, to: [b@example.com],
         smtp: {{ host: smtp.example.com, username: u, password_file: "{root}/smtp_pw" }} }}
defaults:
  notify: [hook, ops, hc, dba]
jobs:
  app: {{ engine: sqlite, uri: "{root}/app.db", remote: nas, schedule: "0 2 * * *" }}
"#,
        root = dir.path().display()
    );
    std::fs::write(&m, &yaml).unwrap();
    let check = |args: &[&str]| {
        let out = assert_cmd::Command::cargo_bin("dbstash")
            .unwrap()
            .arg("-c")
            .arg(&m)
            .args(args)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for s in [TOKEN, smtp_password, hmac_key] {
            assert!(
                !all.contains(s),
                "`dbstash {}` shows a secret:\n{all}",
                args.join(" ")
            );
        }
        (out.status.code(), all)
    };
    let (code, out) = check(&["validate"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = check(&["validate", "--format", "json"]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = check(&["plan", "--offline"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("hook"), "plan names the notifiers: {out}");
    let (code, out) = check(&["plan", "--offline", "--format", "json"]);
    assert_eq!(code, Some(0), "{out}");

    // An invalid manifest's errors do not quote the secret values either.
    std::fs::write(
        &m,
        yaml.replace("https://hooks.example.com", "ftp://hooks.example.com")
            .replace("on: always", "on: sometimes"),
    )
    .unwrap();
    let (code, out) = check(&["validate"]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("must start with http"), "{out}");
}
