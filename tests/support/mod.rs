//! Shared test harness: a fluent builder that writes a manifest into a temp folder and runs the
//! real `dbstash` binary, plus real servers started per test (a scram PostgreSQL, `rclone serve
//! s3`) and fake tools on PATH (only for MongoDB, which cannot be installed here).
//!
//! Under `CI=true` or `DBSTASH_REQUIRE_SERVERS=1`, a missing server or tool fails the test.
#![allow(dead_code)]

pub mod notify;
pub mod pitr;
pub mod repo;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn strict() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("DBSTASH_REQUIRE_SERVERS").is_ok()
}

/// Skip (or, in CI, fail) when a prerequisite is missing.
pub fn require(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if strict() {
        panic!("required for this test but missing: {what}");
    }
    eprintln!("SKIP: {what} is not available");
    false
}

/// Where `cmd` is on PATH (for wrappers that log and then exec the real tool).
pub fn path_of(cmd: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .expect("sh");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub fn wait_port(port: u16, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

pub fn sh(script: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh")
}

/// The regex for the one stdout line of a successful `restore` of `job` into `into` (the target as
/// printed, e.g. `postgres postgres@127.0.0.1:5432/db (created)`): backup name, sizes, digest and
/// time vary between runs; the shape, the job, the target and the verified digest do not.
pub fn restored_line(job: &str, into: &str) -> String {
    restored_line_re(job, &regex::escape(into))
}

/// `restored_line` with the target given as a regex (for targets the test does not spell out).
pub fn restored_line_re(job: &str, into: &str) -> String {
    format!(
        r"\Arestored backup \S+ of job {} into {into}: [0-9.]+ [KMGT]?i?B read \(sha256 [0-9a-f]{{64}} matches its record\), [0-9.]+ [KMGT]?i?B restored, in [0-9.]+s\n\z",
        regex::escape(job)
    )
}

/// The regex for log event `name` on stderr, in the text or the JSON log format.
pub fn logged(name: &str) -> String {
    format!(r#"event(=|":)"{}""#, regex::escape(name))
}

/// The regex for the one stdout line of `verify` finding one backup sound, stored with
/// `compression` (a regex: `none`, `gzip`, `zstd`, `\w+`): name, sizes and digest vary between runs.
pub fn verified_line(compression: &str) -> String {
    format!(
        r"\Aok +\S+ +[0-9.]+ [KMGT]?i?B +sha256 [0-9a-f]{{64}} +\({compression}, [0-9.]+ [KMGT]?i?B decompressed\)\n\z"
    )
}

/// A unique, SQL-safe name for a test database.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{}", t % 0xfffff, N.fetch_add(1, Ordering::Relaxed))
}

/// A test workspace: temp dir, manifest, env, extra PATH entries.
pub struct Test {
    pub dir: tempfile::TempDir,
    env: BTreeMap<String, String>,
    path_prefix: Vec<PathBuf>,
}

impl Default for Test {
    fn default() -> Self {
        Self::new()
    }
}

impl Test {
    pub fn new() -> Self {
        Test {
            dir: tempfile::tempdir().expect("tempdir"),
            env: BTreeMap::new(),
            path_prefix: Vec::new(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write `dbstash.yaml`; `{dir}` in the text becomes the test folder.
    pub fn manifest(self, yaml: &str) -> Self {
        self.write("dbstash.yaml", yaml)
    }

    pub fn write(self, rel: &str, text: &str) -> Self {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        let text = text.replace("{dir}", &self.dir.path().display().to_string());
        std::fs::write(&p, text).expect("write");
        self
    }

    /// A fake tool on PATH (a shell script), e.g. `mongodump`.
    pub fn write_executable(mut self, name: &str, script: &str) -> Self {
        let bin = self.path("bin");
        std::fs::create_dir_all(&bin).expect("mkdir bin");
        let p = bin.join(name);
        let script = script.replace("{dir}", &self.dir.path().display().to_string());
        std::fs::write(&p, script).expect("write tool");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        if !self.path_prefix.contains(&bin) {
            self.path_prefix.push(bin);
        }
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }

    pub fn envs(mut self, vars: &[(String, String)]) -> Self {
        for (k, v) in vars {
            self.env.insert(k.clone(), v.clone());
        }
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_dbstash"));
        c.arg("-c")
            .arg(self.path("dbstash.yaml"))
            .args(args)
            .current_dir(self.dir.path());
        let mut path = self
            .path_prefix
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>();
        path.push(std::env::var("PATH").unwrap_or_default());
        c.env("PATH", path.join(":"));
        c.env_remove("DBSTASH_CONFIG");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Run dbstash to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run dbstash");
        Run::in_dir(out, self.dir.path())
    }

    /// Start dbstash in the background (e.g. the supervisor).
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dbstash")
    }

    /// Start a long-running dbstash (the supervisor) whose stderr goes to `dbstash.log` in the test
    /// folder: a pipe nobody reads would fill up and block it.
    pub fn spawn_logged(&self, args: &[&str]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("dbstash.log"))
            .expect("log file");
        self.command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dbstash")
    }

    /// What a spawned dbstash has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("dbstash.log")).unwrap_or_default()
    }

    /// Files under `rel`, recursively, relative names sorted.
    pub fn files(&self, rel: &str) -> Vec<String> {
        let root = self.path(rel);
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        out.sort();
        out
    }

    /// Record files (`*.dbstash.json`) under `rel` of the test folder, sorted.
    pub fn records(&self, rel: &str) -> Vec<String> {
        self.files(rel)
            .into_iter()
            .filter(|f| f.ends_with(".dbstash.json"))
            .collect()
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.display().to_string());
        }
    }
}

/// A finished dbstash run. `success()` / `failure(code)` check the exit code *and* the output:
/// stdout and stderr are expected to be empty unless a test says what they hold — exactly
/// (`stdout_is`, `stderr_is`, where `{dir}` stands for the test folder) or, where the text is not
/// deterministic, with a named weaker check (`*_contains`, `*_matches`, `ignore_*`; say why at
/// the call). A mismatch fails with a diff. (As casey/just's `Test` builder.)
pub struct Run {
    pub out: Output,
    /// The test folder, written `{dir}` in expectations.
    dir: Option<PathBuf>,
    expect_stdout: Expect,
    expect_stderr: Expect,
}

/// What one output stream must hold.
enum Expect {
    Exact(String),
    /// Every fragment/pattern must occur (the rest of the text is not checked).
    Partial {
        contains: Vec<String>,
        matches: Vec<regex::Regex>,
    },
    /// Not checked at all.
    Ignored,
}

impl Expect {
    fn partial(&mut self) -> (&mut Vec<String>, &mut Vec<regex::Regex>) {
        if !matches!(self, Expect::Partial { .. }) {
            *self = Expect::Partial {
                contains: Vec::new(),
                matches: Vec::new(),
            };
        }
        match self {
            Expect::Partial { contains, matches } => (contains, matches),
            _ => unreachable!("just set"),
        }
    }

    /// The failures of `actual` against this expectation, for the message.
    fn check(&self, stream: &str, actual: &str) -> Option<String> {
        match self {
            Expect::Ignored => None,
            Expect::Exact(want) if want.as_str() == actual => None,
            Expect::Exact(want) => Some(format!(
                "{stream} differs (- expected, + actual):\n{}",
                similar::TextDiff::from_lines(want.as_str(), actual)
                    .unified_diff()
                    .context_radius(3)
            )),
            Expect::Partial { contains, matches } => {
                let mut missing: Vec<String> = contains
                    .iter()
                    .filter(|c| !actual.contains(c.as_str()))
                    .map(|c| format!("  does not contain {c:?}"))
                    .collect();
                missing.extend(
                    matches
                        .iter()
                        .filter(|r| !r.is_match(actual))
                        .map(|r| format!("  does not match /{r}/")),
                );
                (!missing.is_empty()).then(|| format!("{stream}:\n{}", missing.join("\n")))
            }
        }
    }
}

impl Run {
    pub fn new(out: Output) -> Run {
        Run {
            out,
            dir: None,
            expect_stdout: Expect::Exact(String::new()),
            expect_stderr: Expect::Exact(String::new()),
        }
    }

    /// A run in `dir`: `{dir}` in expectations stands for it.
    pub fn in_dir(out: Output, dir: &Path) -> Run {
        Run {
            dir: Some(dir.to_path_buf()),
            ..Run::new(out)
        }
    }

    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }

    fn expand(&self, text: &str) -> String {
        match &self.dir {
            Some(d) => text.replace("{dir}", &d.display().to_string()),
            None => text.to_string(),
        }
    }

    /// stdout is exactly `text` (`{dir}` = the test folder).
    pub fn stdout_is(mut self, text: &str) -> Self {
        self.expect_stdout = Expect::Exact(self.expand(text));
        self
    }
    /// stderr is exactly `text` (`{dir}` = the test folder).
    pub fn stderr_is(mut self, text: &str) -> Self {
        self.expect_stderr = Expect::Exact(self.expand(text));
        self
    }
    /// stdout contains `text` (`{dir}` = the test folder); the rest is not checked.
    pub fn stdout_contains(mut self, text: &str) -> Self {
        let text = self.expand(text);
        self.expect_stdout.partial().0.push(text);
        self
    }
    /// stderr contains `text` (`{dir}` = the test folder); the rest is not checked.
    pub fn stderr_contains(mut self, text: &str) -> Self {
        let text = self.expand(text);
        self.expect_stderr.partial().0.push(text);
        self
    }
    /// stdout matches the regex `re` somewhere; the rest is not checked.
    pub fn stdout_matches(mut self, re: &str) -> Self {
        let re = regex::Regex::new(re).expect("a valid regex");
        self.expect_stdout.partial().1.push(re);
        self
    }
    /// stderr matches the regex `re` somewhere; the rest is not checked.
    pub fn stderr_matches(mut self, re: &str) -> Self {
        let re = regex::Regex::new(re).expect("a valid regex");
        self.expect_stderr.partial().1.push(re);
        self
    }
    /// stdout is not checked (say why at the call).
    pub fn ignore_stdout(mut self) -> Self {
        self.expect_stdout = Expect::Ignored;
        self
    }
    /// stderr is not checked (say why at the call).
    pub fn ignore_stderr(mut self) -> Self {
        self.expect_stderr = Expect::Ignored;
        self
    }
    #[track_caller]
    pub fn success(self) -> Self {
        self.status(0)
    }
    #[track_caller]
    pub fn failure(self, code: i32) -> Self {
        self.status(code)
    }

    /// With `DBSTASH_TEST_RECORD_OUTPUT=<file>`, a call that checks no output appends where it is
    /// and what the run printed (one JSON line, the test folder written `{dir}`): the material for
    /// turning a call that ignores both streams into exact expectations.
    #[track_caller]
    fn record_unchecked(&self, stdout: &str, stderr: &str) {
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let Some(file) = std::env::var_os("DBSTASH_TEST_RECORD_OUTPUT") else {
            return;
        };
        let at = std::panic::Location::caller();
        let unexpand = |t: &str| match &self.dir {
            Some(d) => t.replace(&d.display().to_string(), "{dir}"),
            None => t.to_string(),
        };
        let line = serde_json::json!({
            "file": at.file(), "line": at.line(), "col": at.column(), "code": self.code(),
            "stdout": unexpand(stdout), "stderr": unexpand(stderr),
        });
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .expect("DBSTASH_TEST_RECORD_OUTPUT");
        use std::io::Write;
        writeln!(f, "{line}").expect("record");
    }

    /// Exit code `code`, and stdout/stderr as expected; one message with every mismatch.
    #[track_caller]
    pub fn status(self, code: i32) -> Self {
        let (stdout, stderr) = (self.stdout(), self.stderr());
        if matches!(
            (&self.expect_stdout, &self.expect_stderr),
            (Expect::Ignored, Expect::Ignored)
        ) {
            self.record_unchecked(&stdout, &stderr);
        }
        let mut problems = Vec::new();
        if self.code() != code {
            problems.push(format!("exit code {} (expected {code})", self.code()));
        }
        problems.extend(self.expect_stdout.check("stdout", &stdout));
        problems.extend(self.expect_stderr.check("stderr", &stderr));
        assert!(
            problems.is_empty(),
            "{}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}",
            problems.join("\n")
        );
        self
    }
}

/// `psql` against the shared trust server on 127.0.0.1:5432.
pub fn psql(db: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// PostgreSQL on 127.0.0.1:5432, or a skip (a failure under CI).
pub fn pg_ready() -> bool {
    require(pg_available(), "PostgreSQL on 127.0.0.1:5432")
}

/// Whether database `db` exists on the shared PostgreSQL.
pub fn pg_exists(db: &str) -> bool {
    psql(
        "postgres",
        &format!(
            "select count(*) from pg_database where datname = '{}'",
            db.replace('\'', "''")
        ),
    ) == "1"
}

/// Permission bits of `p` (e.g. 0o600).
pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

pub fn pg_available() -> bool {
    Command::new("pg_isready")
        .args(["-h", "127.0.0.1", "-p", "5432", "-q"])
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh database on the shared server with `rows` rows of random-ish text in table `t`.
pub fn pg_fixture(prefix: &str, rows: u32) -> String {
    let db = unique(prefix);
    psql("postgres", &format!("create database {db}"));
    psql(&db, &format!("create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,{rows}) g"));
    db
}

pub fn pg_drop(db: &str) {
    let _ = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-c",
            &format!("drop database if exists {db} with (force)"),
        ])
        .output();
}

pub fn mariadb(sql: &str) -> String {
    let out = Command::new("mariadb")
        .args(["-N", "-B", "-e", sql])
        .output()
        .expect("mariadb");
    assert!(
        out.status.success(),
        "mariadb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn mariadb_available() -> bool {
    Command::new("mariadb")
        .args(["-e", "select 1"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A PostgreSQL instance of our own with scram-sha-256 password auth (see shared/TESTING.md).
pub struct PgScram {
    pub dir: PathBuf,
    pub port: u16,
    pub password: String,
}

impl PgScram {
    pub fn start(password: &str) -> Option<PgScram> {
        Self::start_with(password, "")
    }

    /// `start`, with more `initdb` options (e.g. `--wal-segsize=1`).
    pub fn start_with(password: &str, initdb_options: &str) -> Option<PgScram> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())?;
        let dir = PathBuf::from(format!("/tmp/dbstash-pgscram-{}", unique("pg")));
        std::fs::create_dir_all(&dir).ok()?;
        let port = free_port();
        let d = dir.display();
        let script = format!(
            "chown postgres {d} && echo '{password}' > {d}/pw && chown postgres {d}/pw && \
             su postgres -c \"{b}/initdb -D {d}/data -U postgres --auth=scram-sha-256 --pwfile={d}/pw {initdb_options}\" >/dev/null && \
             su postgres -c \"{b}/pg_ctl -D {d}/data -o '-p {port} -k {d} -c listen_addresses=127.0.0.1' -l {d}/log -w start\" >/dev/null",
            b = bin.display()
        );
        let out = sh(&script);
        if !out.status.success() {
            eprintln!("PgScram: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        Some(PgScram {
            dir,
            port,
            password: password.into(),
        })
    }

    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", &self.password)
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for PgScram {
    fn drop(&mut self) {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|rd| {
                rd.flatten()
                    .map(|e| e.path().join("bin"))
                    .find(|p| p.join("pg_ctl").exists())
            });
        if let Some(b) = bin {
            let _ = sh(&format!(
                "su postgres -c \"{}/pg_ctl -D {}/data -m immediate stop\" >/dev/null 2>&1",
                b.display(),
                self.dir.display()
            ));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `rclone serve s3` on a free loopback port, with a bucket; env vars define remote `t:`.
pub struct S3 {
    child: Child,
    pub root: tempfile::TempDir,
    pub port: u16,
}

pub const S3_KEY: &str = "AKIATESTTESTTEST";
pub const S3_SECRET: &str = "SECRETTESTTESTTEST123";

impl S3 {
    pub fn start() -> Option<S3> {
        if !have("rclone") {
            return None;
        }
        let root = tempfile::tempdir().ok()?;
        std::fs::create_dir_all(root.path().join("bucket")).ok()?;
        let port = free_port();
        let child = Command::new("rclone")
            .args([
                "serve",
                "s3",
                "--addr",
                &format!("127.0.0.1:{port}"),
                "--auth-key",
                &format!("{S3_KEY},{S3_SECRET}"),
            ])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let s3 = S3 { child, root, port };
        if !wait_port(port, Duration::from_secs(15)) {
            return None;
        }
        Some(s3)
    }

    /// Env vars that define rclone remote `t:` pointing here.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("RCLONE_CONFIG_T_TYPE", "s3".to_string()),
            ("RCLONE_CONFIG_T_PROVIDER", "Rclone".to_string()),
            (
                "RCLONE_CONFIG_T_ENDPOINT",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("RCLONE_CONFIG_T_ACCESS_KEY_ID", S3_KEY.to_string()),
            ("RCLONE_CONFIG_T_SECRET_ACCESS_KEY", S3_SECRET.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Objects stored in the bucket (relative paths).
    pub fn objects(&self) -> Vec<String> {
        let mut out = Vec::new();
        let b = self.root.path().join("bucket");
        walk(&b, &b, &mut out);
        out.sort();
        out
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Processes whose argv contains `needle` (from /proc), excluding ourselves.
/// PIDs of the rclone `rcat`s that upload a backup's data for `job`: not its record's upload and
/// not the claim's intent marker (a short `rcat` of its own that runs first, and under load may
/// still be running when the data upload starts).
pub fn data_uploads(job: &str) -> Vec<String> {
    processes_with(job)
        .iter()
        .filter(|p| {
            p.contains(" rcat ") && !p.contains(".dbstash.json") && !p.contains(".dbstash-intent")
        })
        .filter_map(|l| l.split(':').next().map(|p| p.trim().to_string()))
        .collect()
}

/// Wait (up to `limit`) until one data upload of `job` has run for `running` without a second
/// one appearing, and return its PID; `Err` with the processes seen otherwise.
pub fn one_data_upload(
    job: &str,
    limit: std::time::Duration,
    running: std::time::Duration,
) -> Result<String, Vec<String>> {
    let start = std::time::Instant::now();
    let mut since: Option<(String, std::time::Instant)> = None;
    while start.elapsed() < limit {
        let now = data_uploads(job);
        match (now.as_slice(), &since) {
            ([pid], Some((seen, at))) if pid == seen => {
                if at.elapsed() >= running {
                    return Ok(pid.clone());
                }
            }
            ([pid], _) => since = Some((pid.clone(), std::time::Instant::now())),
            _ => since = None,
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Err(processes_with(job))
}

pub fn processes_with(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
                continue;
            }
            if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
                let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
                if cmd.contains(needle) {
                    out.push(format!("{name}: {cmd}"));
                }
            }
        }
    }
    out
}

// ---- added for the backup pipeline suites (tests/backup_*.rs, storage_contract, secrets, retention)

impl S3 {
    /// An rclone config file defining remote `t:` for this server (for tests that call the
    /// storage layer directly instead of going through dbstash's environment).
    pub fn write_rclone_conf(&self, path: &Path) -> PathBuf {
        let text = format!(
            "[t]\ntype = s3\nprovider = Rclone\nendpoint = http://127.0.0.1:{}\naccess_key_id = {S3_KEY}\nsecret_access_key = {S3_SECRET}\n",
            self.port
        );
        std::fs::write(path, text).expect("write rclone.conf");
        path.to_path_buf()
    }

    /// Stop the server now (e.g. to make the remote unreachable mid-test).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll `f` every 50 ms until it is true or `limit` passes.
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait for `child` at most `limit`; a child still running then is SIGKILLed (so a hung dbstash
/// fails the test instead of hanging it) and `None` is returned.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Everything left to read from a child's pipe (e.g. `child.stderr.take()`).
pub fn read_all(r: Option<impl std::io::Read>) -> String {
    let mut s = String::new();
    if let Some(mut r) = r {
        let _ = r.read_to_string(&mut s);
    }
    s
}

/// PIDs of processes whose argv contains `needle` (see `processes_with`).
pub fn pids_with(needle: &str) -> Vec<i32> {
    processes_with(needle)
        .iter()
        .filter_map(|l| l.split(':').next().and_then(|p| p.trim().parse().ok()))
        .collect()
}

/// A redis-server of our own on a free loopback port, optionally with `--requirepass`.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub password: Option<String>,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// The configuration (and so the password) goes in a file, never on redis-server's argv.
    pub fn start(password: Option<&str>) -> Option<RedisServer> {
        if !have("redis-server") || !have("redis-cli") {
            return None;
        }
        let dir = tempfile::tempdir().ok()?;
        let port = free_port();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\nenable-debug-command local\ndir {}\n",
            dir.path().display()
        );
        if let Some(pw) = password {
            conf.push_str(&format!("requirepass \"{pw}\"\n"));
        }
        let conf_path = dir.path().join("redis.conf");
        std::fs::write(&conf_path, conf).ok()?;
        let child = Command::new("redis-server")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let r = RedisServer {
            child,
            port,
            password: password.map(str::to_string),
            _dir: dir,
        };
        if !wait_port(port, Duration::from_secs(10)) {
            return None;
        }
        Some(r)
    }

    pub fn cli(&self, args: &[&str]) -> String {
        let mut c = Command::new("redis-cli");
        c.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args);
        if let Some(pw) = &self.password {
            c.env("REDISCLI_AUTH", pw);
        }
        let out = c.output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drops a database on the shared PostgreSQL when it goes out of scope (a failing test too).
pub struct PgDropGuard(pub String);

impl Drop for PgDropGuard {
    fn drop(&mut self) {
        pg_drop(&self.0);
    }
}

/// GET `path` from a loopback HTTP server: (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// The value of the first `/metrics` line starting with `line_prefix` (exact labels), or 0.
pub fn metric(port: u16, line_prefix: &str) -> f64 {
    http_get(port, "/metrics")
        .and_then(|(_, body)| {
            body.lines()
                .find(|l| l.starts_with(line_prefix))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0)
}

/// Highest number of dumps running at the same time, from a start/end log of
/// `start|end NAME NANOS` lines (fake dump tools write one).
pub fn max_concurrency(spans: &str) -> usize {
    let mut events: Vec<(u128, i32)> = spans
        .lines()
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            let kind = p.next()?;
            let _db = p.next()?;
            let t: u128 = p.next()?.parse().ok()?;
            Some((t, if kind == "start" { 1 } else { -1 }))
        })
        .collect();
    // ends before starts at the same instant
    events.sort();
    let (mut cur, mut max) = (0i32, 0i32);
    for (_, d) in events {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

/// Wait (5 s at most) until no process has `needle` in its command line; fail naming those left.
#[track_caller]
pub fn assert_no_process_with(needle: &str) {
    assert!(
        wait_until(Duration::from_secs(5), || processes_with(needle).is_empty()),
        "{:?}",
        processes_with(needle)
    );
}

/// The names in folder `dir` (none when it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}
