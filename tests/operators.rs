//! Operators' issue: rotated secret files, reloads whose plans fail, `render kubernetes` of the full
//! example, shell completions from the manifest, the man page. Real binaries, real servers.

use crate::support;
use crate::support::{metric, Test};
use std::io::{Read, Write};
use std::process::Child;
use std::time::{Duration, Instant};

/// The supervisor, killed when the test ends (also when it fails).
struct Sup(Child);

impl Sup {
    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.0.id() as i32)
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Records that appear after `before` within `limit`.
fn new_record_within(t: &Test, folder: &str, before: &[String], limit: Duration) -> bool {
    support::wait_until(limit, || {
        t.records(&format!("out/{folder}"))
            .iter()
            .any(|r| !before.contains(r))
    })
}

// --- item 7: rotated `*_file` secrets ------------------------------------------------------------

/// A scram PostgreSQL and a supervisor backing it up every 2 s with `password_file: PW_PATH`.
fn rotating_setup(pw_path: &str) -> Option<(support::PgScram, Test, u16)> {
    let pg = support::PgScram::start("old-pw-1");
    if !support::require(pg.is_some(), "a scram PostgreSQL of our own (initdb)") {
        return None;
    }
    let pg = pg?;
    let port = support::free_port();
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', health: {{ listen: '127.0.0.1:{port}' }} }}\n\
         remotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  pg: {{ engine: postgres, host: 127.0.0.1, port: {}, user: postgres, \
         password_file: '{pw_path}', database: postgres, remote: l, schedule: '*/2 * * * * *' }}\n",
        pg.port
    ));
    Some((pg, t, port))
}

/// Change the role's password in the server, then rewrite the secret file in place (same inode,
/// as Kubernetes' and Vault agents' writers do for plain files).
fn rotate(pg: &mut support::PgScram, file: &std::path::Path, new: &str) {
    pg.psql("postgres", &format!("alter role postgres password '{new}'"));
    pg.password = new.to_string();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(file)
        .expect("open secret");
    writeln!(f, "{new}").expect("rewrite secret");
}

#[test]
fn a_password_file_rotated_in_place_is_used_by_the_next_run() {
    let Some((mut pg, t, port)) = rotating_setup("{dir}/secrets/pgpw") else {
        return;
    };
    std::fs::create_dir_all(t.path("secrets")).unwrap();
    std::fs::write(t.path("secrets/pgpw"), "old-pw-1\n").unwrap();
    let manifest_before = std::fs::read(t.path("dbstash.yaml")).unwrap();
    let _sup = Sup(t.spawn_logged(&["run"]));
    assert!(support::wait_port(port, Duration::from_secs(10)));
    assert!(
        new_record_within(&t, "pg", &[], Duration::from_secs(15)),
        "no backup with the first password: {}",
        t.log()
    );
    rotate(&mut pg, &t.path("secrets/pgpw"), "new-pw-2");
    // Runs that connected before the ALTER may still finish: look only at what starts later.
    std::thread::sleep(Duration::from_secs(4));
    let before = t.records("out/pg");
    assert!(
        new_record_within(&t, "pg", &before, Duration::from_secs(20)),
        "no successful backup after the password file was rotated: {}",
        t.log()
    );
    assert_eq!(
        std::fs::read(t.path("dbstash.yaml")).unwrap(),
        manifest_before,
        "the manifest text never changed"
    );
    assert!(metric(port, "dbstash_config_reloads_total{result=\"success\"}") >= 1.0);
    assert!(!t.log().contains("new-pw-2"), "the secret reached the log");
}

#[test]
fn a_rotated_secret_behind_a_symlink_is_picked_up_on_sighup() {
    // `secrets/pgpw` -> `vault/current`: writing the target changes nothing in the folder the
    // watcher sees, so only SIGHUP (or the 30 s poll, too late for this test) can notice.
    let Some((mut pg, t, port)) = rotating_setup("{dir}/secrets/pgpw") else {
        return;
    };
    std::fs::create_dir_all(t.path("secrets")).unwrap();
    std::fs::create_dir_all(t.path("vault")).unwrap();
    std::fs::write(t.path("vault/current"), "old-pw-1\n").unwrap();
    std::os::unix::fs::symlink(t.path("vault/current"), t.path("secrets/pgpw")).unwrap();
    let sup = Sup(t.spawn_logged(&["run"]));
    assert!(support::wait_port(port, Duration::from_secs(10)));
    assert!(
        new_record_within(&t, "pg", &[], Duration::from_secs(15)),
        "no backup with the first password: {}",
        t.log()
    );
    rotate(&mut pg, &t.path("vault/current"), "new-pw-3");
    nix::sys::signal::kill(sup.pid(), nix::sys::signal::Signal::SIGHUP).unwrap();
    std::thread::sleep(Duration::from_secs(4));
    let before = t.records("out/pg");
    assert!(
        new_record_within(&t, "pg", &before, Duration::from_secs(15)),
        "no successful backup after the rotation and SIGHUP: {}",
        t.log()
    );
    assert!(t.log().contains("sighup"), "{}", t.log());
}

#[test]
fn a_rotated_notifier_url_file_is_used_by_the_next_notification() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let hook = rt.block_on(support::notify::Receiver::start());
    let port = support::free_port();
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', health: {{ listen: '127.0.0.1:{port}' }} }}\n\
             remotes: {{ l: {{ path: '{{dir}}/out' }} }}\nnotifiers:\n  hook: {{ type: webhook, url_file: '{{dir}}/secrets/hook_url', on: success }}\n\
             jobs:\n  a: {{ engine: sqlite, database: '{{dir}}/app.db', remote: l, schedule: '*/1 * * * * *', notify: [hook] }}\n"
        ))
        .write("secrets/hook_url", &format!("{}\n", hook.url("/old-hook")));
    sqlite_db(&t);
    let _sup = Sup(t.spawn_logged(&["run"]));
    let heard = |path: &str| hook.requests().iter().any(|r| r.path == path);
    assert!(
        support::wait_until(Duration::from_secs(15), || heard("/old-hook")),
        "no notification to the first URL: {}",
        t.log()
    );
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(t.path("secrets/hook_url"))
        .unwrap();
    writeln!(f, "{}", hook.url("/new-hook")).unwrap();
    drop(f);
    assert!(
        support::wait_until(Duration::from_secs(15), || heard("/new-hook")),
        "notifications still go to the old URL: {}",
        t.log()
    );
}

// --- item 9: a plan that fails to build is an error of that revision ------------------------------

const SQLITE_JOBS: &str = "version: 1\nsettings: { temp_dir: '{dir}/tmp', health: { listen: '127.0.0.1:PORT' } }\n\
remotes: { l: { path: '{dir}/out' } }\njobs:\n  a: { engine: sqlite, database: '{dir}/app.db', remote: l, schedule: '*/1 * * * * *' }\n";

fn sqlite_db(t: &Test) {
    let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
    c.execute_batch("create table if not exists t(x); insert into t values (1),(2);")
        .unwrap();
}

/// `remote: []` passes validation (a list of remotes, every name declared) but leaves the plan
/// builder without a first remote: `plan::build` fails with "refers to remote ``".
const PLANLESS_JOB: &str =
    "  b: { engine: sqlite, database: '{dir}/app.db', remote: [], schedule: '*/1 * * * * *' }\n";

#[test]
fn a_reload_whose_plan_fails_keeps_the_old_manifest_and_counts_an_error() {
    let port = support::free_port();
    let base = SQLITE_JOBS.replace("PORT", &port.to_string());
    let good_b =
        "  b: { engine: sqlite, database: '{dir}/app.db', remote: l, schedule: '*/1 * * * * *' }\n";
    let t = Test::new().manifest(&format!("{base}{good_b}"));
    sqlite_db(&t);
    let _sup = Sup(t.spawn_logged(&["run"]));
    assert!(support::wait_port(port, Duration::from_secs(10)));
    assert!(new_record_within(&t, "b", &[], Duration::from_secs(10)));
    // Same jobs, but b's remote list is empty: this revision must be refused as a whole.
    let d = t.dir.path().display().to_string();
    let tmp = t.path(".next.yaml");
    std::fs::write(&tmp, format!("{base}{PLANLESS_JOB}").replace("{dir}", &d)).unwrap();
    std::fs::rename(&tmp, t.path("dbstash.yaml")).unwrap();
    assert!(
        support::wait_until(Duration::from_secs(10), || metric(
            port,
            "dbstash_config_reloads_total{result=\"error\"}"
        ) >= 1.0),
        "the reload was not counted as an error: {}",
        t.log()
    );
    assert_eq!(
        metric(port, "dbstash_config_reloads_total{result=\"success\"}"),
        0.0
    );
    let log = t.log();
    let rejected = log
        .lines()
        .find(|l| l.contains("config_rejected"))
        .unwrap_or_else(|| panic!("no config_rejected line: {log}"));
    assert!(
        rejected.contains("`b`") && rejected.contains("remote"),
        "{rejected}"
    );
    // The old revision still runs b.
    let before = t.records("out/b");
    assert!(
        new_record_within(&t, "b", &before, Duration::from_secs(6)),
        "b was dropped: {}",
        t.log()
    );
}

#[test]
fn a_manifest_whose_plan_fails_does_not_start() {
    let port = support::free_port();
    let base = SQLITE_JOBS.replace("PORT", &port.to_string());
    let t = Test::new().manifest(&format!("{base}{PLANLESS_JOB}"));
    sqlite_db(&t);
    let mut sup = Sup(t.spawn(&["run"]));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = sup.0.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(10) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    if status.is_some() {
        sup.0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
    }
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "started with a job it cannot plan"
    );
    assert!(
        err.contains("dbstash.yaml: ") && err.contains("`b`"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

// --- item 17: percent and ETA on the progress line -----------------------------------------------

/// Run `dbstash ARGS` on a pseudo-terminal (util-linux `script`): what the terminal showed.
fn on_a_terminal(t: &Test, args: &str) -> Option<String> {
    if !support::require(support::have("script"), "script (util-linux)") {
        return None;
    }
    let cmd = format!(
        "'{}' -c '{}' {args}",
        env!("CARGO_BIN_EXE_dbstash"),
        t.path("dbstash.yaml").display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(t.dir.path())
        .env_remove("DBSTASH_CONFIG")
        .output()
        .expect("script");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_progress_line_shows_percent_when_the_size_can_be_expected() {
    let t = Test::new().manifest(
        "version: 1\nsettings: { temp_dir: '{dir}/tmp' }\nremotes: { l: { path: '{dir}/out' } }\njobs:\n  \
         a: { engine: sqlite, database: '{dir}/app.db', remote: l }\n  \
         e: { engine: sqlite, database: '{dir}/app.db', remote: l, expected_size: 3MiB }\n",
    );
    sqlite_db(&t);
    // Piped: nothing but the logs, no progress line.
    let piped = t
        .run(&["backup", "a"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    assert!(
        !piped.stderr().contains('%') && !piped.stderr().contains("of ~"),
        "{}",
        piped.stderr()
    );
    // On a terminal with the previous backup's raw size: percent of it.
    let raw: u64 = t
        .records("out/a")
        .iter()
        .map(|r| {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(t.path(&format!("out/a/{r}"))).unwrap())
                    .unwrap();
            v["raw_size"].as_u64().unwrap()
        })
        .next()
        .expect("a record");
    let Some(screen) = on_a_terminal(&t, "backup a") else {
        return;
    };
    let want = format!("of ~{}", human(raw));
    assert!(
        screen.contains(&want) && screen.contains('%'),
        "no `{want}` and percent on the terminal: {screen:?}"
    );
    // `expected_size` when there is no previous backup.
    let screen = on_a_terminal(&t, "backup e").unwrap();
    assert!(
        screen.contains("of ~3.00 MiB") && screen.contains("0%"),
        "{screen:?}"
    );
}

/// indicatif's binary units, as the progress line prints them.
fn human(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        format!("{:.2} KiB", n as f64 / 1024.0)
    }
}

// --- item 18: completions from the manifest, a man page that documents every subcommand ----------

const NAMED: &str = "version: 1\nremotes: { l: { path: '{dir}/out' } }\n\
notifiers:\n  ops-hook: { type: webhook, url: 'https://example.com/h' }\n  team: { type: webhook, url: 'https://example.com/t' }\n\
jobs:\n  shop-db: { engine: sqlite, database: '{dir}/a.db', remote: l }\n  billing: { engine: sqlite, database: '{dir}/b.db', remote: l }\n";

/// Ask bash's completion for `words` (the last one is being completed) with the script that
/// `dbstash completions bash` prints; `dbstash` is found on PATH as users have it.
fn bash_complete(t: &Test, words: &[&str]) -> Vec<String> {
    let script = t
        .run(&["completions", "bash"])
        /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success()
        .stdout();
    std::fs::write(t.path("dbstash.bash"), script).unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_dbstash"))
        .parent()
        .unwrap()
        .display()
        .to_string();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let probe = format!(
        "source ./dbstash.bash\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n\
         $(complete -p dbstash | sed -E 's/.*-F ([^ ]+).*/\\1/') dbstash \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        quoted.join(" "),
        words.len() - 1
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&probe)
        .current_dir(t.dir.path())
        .env(
            "PATH",
            format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .env_remove("DBSTASH_CONFIG")
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn bash_completes_job_and_notifier_names_from_the_manifest() {
    if !support::require(support::have("bash"), "bash") {
        return;
    }
    let t = Test::new().manifest(NAMED);
    let m = t.path("dbstash.yaml").display().to_string();
    assert_eq!(
        bash_complete(&t, &["dbstash", "-c", &m, "restore", ""]),
        ["billing", "shop-db"]
    );
    assert_eq!(
        bash_complete(&t, &["dbstash", "-c", &m, "restore", "sh"]),
        ["shop-db"]
    );
    assert_eq!(
        bash_complete(&t, &["dbstash", "-c", &m, "backup", "billing", ""]),
        ["billing", "shop-db"]
    );
    assert_eq!(
        bash_complete(&t, &["dbstash", "-c", &m, "plan", "--job", ""]),
        ["billing", "shop-db"]
    );
    assert_eq!(
        bash_complete(&t, &["dbstash", "-c", &m, "notify", "test", ""]),
        ["ops-hook", "team"]
    );
    // The default manifest (./dbstash.yaml) when there is no -c; an option's value is no job.
    assert_eq!(
        bash_complete(&t, &["dbstash", "verify", "--backup", "latest", "b"]),
        ["billing"]
    );
    // Past the job argument, clap's own completion of options takes over.
    let opts = bash_complete(&t, &["dbstash", "restore", "billing", "--to-u"]);
    assert_eq!(opts, ["--to-uri-file"]);
    // The helper itself: names one per line, silent without a manifest.
    assert_eq!(
        t.run(&["__complete", "jobs"])
            .stdout_is("shop-db\nbilling\n")
            .success()
            .stdout(),
        "shop-db\nbilling\n"
    );
    let none = Test::new();
    let r = none.run(&["__complete", "jobs"]).success();
    assert_eq!((r.stdout(), r.stderr()), (String::new(), String::new()));
}

#[test]
fn the_man_page_documents_every_subcommand_and_its_options() {
    let t = Test::new();
    let roff = t
        .run(&["man"]) /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success()
        .stdout();
    // roff writes `-` as `\-`.
    let text = roff.replace("\\-", "-");
    for needle in [
        "dbstash restore",
        "--to-uri-file",
        "dbstash prune",
        "--dry-run",
        "dbstash verify",
        "--restore-to-file",
        "dbstash notify test",
        "dbstash render kubernetes",
        "--image",
    ] {
        assert!(text.contains(needle), "`{needle}` not in the man page");
    }
    assert!(
        !text.contains("dbstash-restore(1)"),
        "points to pages that do not exist"
    );
    assert!(
        !text.contains("__complete"),
        "a hidden command is documented"
    );
    if support::have("man") {
        std::fs::write(t.path("dbstash.1"), &roff).unwrap();
        let out = std::process::Command::new("man")
            .args(["-l", "dbstash.1"])
            .current_dir(t.dir.path())
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .expect("man");
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            shown.contains("--to-uri-file") && shown.contains("--dry-run"),
            "{shown}"
        );
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(!warnings.contains("warning"), "{warnings}");
    }
}

// --- item 16: `render kubernetes` of the full example ---------------------------------------------

/// The variables `examples/full.yaml` references (none is set for these tests).
const FULL_EXAMPLE_VARS: [&str; 11] = [
    "DBSTASH_SLACK_URL",
    "DISCORD_WEBHOOK_URL",
    "SMTP_PASSWORD",
    "WEBHOOK_SECRET",
    "APP_DB_PASSWORD",
    "GIS_PASSWORD",
    "MYSQL_PASSWORD",
    "MARIA_PASSWORD",
    "MONGO_PASSWORD",
    "REDIS_PASSWORD",
    "DW_PASSWORD",
];

fn render(manifest: &std::path::Path, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dbstash"));
    cmd.arg("-c")
        .arg(manifest)
        .args(["render", "kubernetes"])
        .args(extra)
        .env_remove("DBSTASH_CONFIG");
    for v in FULL_EXAMPLE_VARS {
        cmd.env_remove(v);
    }
    let out = cmd.output().expect("render");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kubernetes_validate(t: &Test, yaml: &str) {
    std::fs::write(t.path("rendered.yaml"), yaml).unwrap();
    support::repo::kubernetes_validate(&[t.path("rendered.yaml")]);
}

#[test]
fn the_full_example_renders_without_its_variables() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/full.yaml");
    // The example's secrets: in its text and in the sample `*_file`s it reads.
    let mut text = std::fs::read_to_string(&example).unwrap();
    for f in std::fs::read_dir(example.with_file_name("secrets")).unwrap() {
        text.push_str(&std::fs::read_to_string(f.unwrap().path()).unwrap());
    }
    let (code, stdout, stderr) = render(&example, &[]);
    assert_eq!(code, 0, "{stderr}");
    // The defaults in the example are secrets: not one reaches the output.
    for secret in [
        "s3cret-app-pw",
        "change-me",
        "not-a-real-secret",
        "gis-pw",
        "my-pw",
        "maria-pw",
        "mongo-pw",
        "redis-pw",
        "dw-pw",
        "XXXXXXXX",
        "webhooks/1/abc",
    ] {
        assert!(text.contains(secret), "the example changed: {secret}");
        assert!(!stdout.contains(secret), "`{secret}` rendered");
        assert!(!stderr.contains(secret), "`{secret}` in a message");
    }
    // Each default left out is named by place, with the Secret key to set.
    let notes: Vec<&str> = stderr.lines().filter(|l| l.starts_with("note:")).collect();
    let app_uri_line = std::fs::read_to_string(&example)
        .unwrap()
        .lines()
        .position(|l| l.contains("uri: \"postgresql://app:${APP_DB_PASSWORD"))
        .expect("the app job's uri")
        + 1;
    let app_uri = format!("full.yaml:{app_uri_line}:10: `jobs.app.uri`");
    for (var, place) in [
        ("APP_DB_PASSWORD", app_uri.as_str()),
        ("SMTP_PASSWORD", "`notifiers.dba.smtp.password`"),
        ("WEBHOOK_SECRET", "`notifiers.hook.secret`"),
    ] {
        assert!(
            notes
                .iter()
                .any(|n| n.contains(place) && n.contains(&format!("set {var} in the Secret"))),
            "no note for {var}: {stderr}"
        );
    }
    // What a CronJob cannot do is said too: the drill of `app`, the local folder of `nas`.
    assert!(
        stderr.contains("job `app` has a scheduled restore drill"),
        "{stderr}"
    );
    // The ConfigMap holds the manifest less the secret defaults; the CronJobs read the variables
    // from the Secret.
    assert!(
        stdout.contains("${APP_DB_PASSWORD}@db.internal"),
        "{stdout}"
    );
    assert!(stdout.contains("key: DW_PASSWORD"), "{stdout}");
    assert_eq!(stdout.matches("kind: CronJob").count(), 9, "{stdout}");
    let t = Test::new();
    kubernetes_validate(&t, &stdout);
    // That ConfigMap text is a valid manifest once the cluster's Secret provides the variables.
    let cm_text = configmap_text(&stdout);
    let mut t = t.write("cm.yaml", &cm_text);
    // The relative `*_file`s it names, beside it as beside the example.
    for folder in ["secrets", "age"] {
        for f in std::fs::read_dir(example.with_file_name(folder)).unwrap() {
            let f = f.unwrap().path();
            let name = format!("{folder}/{}", f.file_name().unwrap().to_string_lossy());
            t = t.write(&name, &std::fs::read_to_string(&f).unwrap());
        }
    }
    let mut v = std::process::Command::new(env!("CARGO_BIN_EXE_dbstash"));
    v.arg("-c").arg(t.path("cm.yaml")).arg("validate");
    for var in FULL_EXAMPLE_VARS {
        v.env(var, "from-the-secret");
    }
    v.env(
        "DBSTASH_SLACK_URL",
        "https://hooks.slack.com/services/T/B/x",
    )
    .env(
        "DISCORD_WEBHOOK_URL",
        "https://discord.com/api/webhooks/2/x",
    );
    let out = v.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `dbstash.yaml` of the rendered ConfigMap (a `|` block under `data:`).
fn configmap_text(stream: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in stream.lines() {
        if line.starts_with("  dbstash.yaml: |") {
            inside = true;
            continue;
        }
        if inside {
            if line == "---" || (!line.is_empty() && !line.starts_with("    ")) {
                break;
            }
            out.push_str(line.strip_prefix("    ").unwrap_or(line));
            out.push('\n');
        }
    }
    out
}

#[test]
fn render_fills_an_unset_url_variable_and_reports_the_real_error() {
    let base = "version: 1\nremotes: { s3: { rclone: 'r:b' } }\nnotifiers:\n  ops: { type: slack, url: \"${OPS_SLACK_URL}\" }\n\
                jobs:\n  app: { engine: postgres, uri: \"${APP_URI}\", remote: s3, schedule: '@daily', notify: [ops] }\n";
    let t = Test::new().manifest(base);
    let (code, stdout, stderr) = render(&t.path("dbstash.yaml"), &[]);
    assert_eq!(code, 0, "an unset ${{VAR}} url blocks the render: {stderr}");
    assert!(
        stderr.contains("not set here") && stderr.contains("OPS_SLACK_URL"),
        "{stderr}"
    );
    assert!(stdout.contains("key: OPS_SLACK_URL"), "{stdout}");
    // With a real mistake as well, that mistake is what is reported, not "not set".
    let t = Test::new()
        .manifest(&base.replace("schedule: '@daily'", "schedule: '@daily', compress: lzma"));
    let (code, stdout, stderr) = render(&t.path("dbstash.yaml"), &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(stderr.contains("lzma"), "the real error is lost: {stderr}");
    assert!(!stderr.contains("is not set"), "{stderr}");
}
