//! What a PostgreSQL restore starts before its stream: the target server is asked once (does the
//! database exist, which roles it has) instead of once per question; a custom-format archive is
//! downloaded once (the roles check reads its head from the restore's own stream); and the
//! download starts before the target is created, not after. psql, pg_restore and rclone are the
//! real ones behind wrappers that log each start.

use crate::support::{self, Test, S3};
use std::path::Path;

/// The newest Debian PostgreSQL binary `name` (the Perl wrapper skipped), else the one on PATH.
fn real(name: &str) -> String {
    let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    bins.sort();
    bins.pop()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| support::path_of(name))
}

/// Wrappers that log `NAME ARGS` to `log` and run the real tool. The psql that creates a
/// database first waits (up to 10 s) for the restore's download to have started, and logs
/// whether it had: `create after cat` or `create before cat`.
fn wrap(t: Test, log: &Path) -> Test {
    let log = log.display();
    let psql = format!(
        "#!/bin/sh\necho \"psql $*\" >> '{log}'\n\
         case \"$*\" in *--single-transaction*) exec '{real}' \"$@\";; esac\n\
         sql=$(cat)\n\
         case \"$sql\" in *'CREATE DATABASE'*)\n\
           i=0; while [ $i -lt 100 ] && ! grep -q '^rclone .*cat ' '{log}'; do sleep 0.1; i=$((i+1)); done\n\
           if grep -q '^rclone .*cat ' '{log}'; then echo 'create after cat' >> '{log}'; else echo 'create before cat' >> '{log}'; fi;;\n\
         esac\n\
         printf '%s\\n' \"$sql\" | '{real}' \"$@\"\n",
        real = real("psql")
    );
    let logged = |name: &str, real: String| {
        format!("#!/bin/sh\necho \"{name} $*\" >> '{log}'\nexec '{real}' \"$@\"\n")
    };
    t.write_executable("psql", &psql)
        .write_executable("pg_restore", &logged("pg_restore", real("pg_restore")))
        .write_executable("rclone", &logged("rclone", support::path_of("rclone")))
}

/// The logged starts of one restore.
struct Starts(Vec<String>);

impl Starts {
    /// Where the restore tool started.
    fn tool(&self) -> usize {
        self.0
            .iter()
            .position(|l| l.contains("--single-transaction"))
            .unwrap_or_else(|| panic!("no restore tool: {:#?}", self.0))
    }
    fn before_tool(&self, prefix: &str) -> usize {
        self.0[..self.tool()]
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
    fn downloads(&self) -> usize {
        self.0
            .iter()
            .filter(|l| {
                l.starts_with("rclone ") && l.contains(" cat ") && !l.contains(".dbstash.json")
            })
            .count()
    }
    fn has(&self, line: &str) -> bool {
        self.0.iter().any(|l| l == line)
    }
}

#[test]
fn a_restore_asks_the_server_once_downloads_once_and_downloads_before_it_creates() {
    if !support::require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let s3 = S3::start();
    if !support::require(s3.is_some(), "rclone serve s3") {
        return;
    }
    let s3 = s3.unwrap();
    let src = support::pg_fixture("rstarts", 20_000);
    let _src = support::PgDropGuard(src.clone());
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ s3: {{ rclone: 't:bucket' }} }}\n\
             defaults: {{ engine: postgres, host: 127.0.0.1, port: 5432, user: postgres, database: {src}, remote: s3 }}\n\
             jobs:\n  plain: {{ compress: zstd }}\n  custom: {{ format: custom, compress: zstd }}\n"
        ))
        .envs(&s3.env());
    let log = t.path("starts.log");
    let t = wrap(t, &log);
    t.run(&["backup", "plain", "custom"])
        .ignore_stdout()
        .ignore_stderr()
        .success();
    // Through the shared rclone daemon (the default), and with one rclone per call.
    for (job, per_call) in [
        ("plain", false),
        ("custom", false),
        ("plain", true),
        ("custom", true),
    ] {
        let dst = support::unique(&format!("rstarts_{job}"));
        let _dst = support::PgDropGuard(dst.clone());
        std::fs::write(&log, "").unwrap();
        let uri = format!("postgresql://postgres@127.0.0.1:5432/{dst}");
        let mut c = t.command(&["restore", job, "--to", &uri, "--yes"]);
        if per_call {
            c.env("DBSTASH_RCLONE_RCD", "0");
        }
        support::Run::new(c.stdin(std::process::Stdio::null()).output().unwrap())
            .stdout_matches(&support::restored_line(
                job,
                &format!("postgres postgres@127.0.0.1:5432/{dst} (created)"),
            ))
            .ignore_stderr()
            .success();
        assert_eq!(support::psql(&dst, "select count(*) from t"), "20000");
        let starts = Starts(
            std::fs::read_to_string(&log)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect(),
        );
        // One psql asks whether the target exists and which roles the server has, one creates
        // it. Before: one each for the roles, the existence and the creation.
        assert_eq!(starts.before_tool("psql "), 2, "{job}: {:#?}", starts.0);
        if per_call {
            // The archive is downloaded once; before, a custom-format backup's head was
            // downloaded for the roles check, then the whole archive again.
            assert_eq!(starts.downloads(), 1, "{job}: {:#?}", starts.0);
            // The download was under way while the target was created; before, it started
            // after.
            assert!(starts.has("create after cat"), "{job}: {:#?}", starts.0);
        } else {
            // A small backup is read through the daemon: no rclone starts but the daemon.
            // Before: an `rclone cat` of its own.
            assert_eq!(starts.downloads(), 0, "{job}: {:#?}", starts.0);
            let rclones: Vec<&String> = starts
                .0
                .iter()
                .filter(|l| l.starts_with("rclone "))
                .collect();
            assert!(
                rclones.len() == 1 && rclones[0].contains(" rcd "),
                "{job}: {rclones:#?}"
            );
        }
        if job == "custom" {
            // The roles check still ran: the listing and the schema's SQL from the head.
            assert_eq!(starts.before_tool("pg_restore "), 2, "{:#?}", starts.0);
        }
    }
}
