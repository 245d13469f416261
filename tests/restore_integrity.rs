//! A corrupted object, a truncated object and a download killed mid-way: `verify` fails, `restore`
//! exits non-zero and the target database is unchanged — for plain-SQL and custom-format
//! PostgreSQL. The cuts are placed where the restore tool, had it seen end-of-file, would have
//! committed part of the data (right after a complete COPY block), and the flips keep the SQL
//! valid, so only dbstash's checks stand between the damage and the target.

use crate::support;
use crate::support::{pg_drop, psql, require, Test, S3};
use std::os::unix::fs::PermissionsExt;

fn real_rclone() -> String {
    let out = support::sh("pyenv which rclone 2>/dev/null || command -v rclone");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("rclone")
        .to_string()
}

/// An rclone wrapper: passes through, except that while `{dir}/cut` exists a `cat` of a backup
/// object delivers only that many bytes and then dies by SIGKILL.
fn wrapper(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("rclone-wrap");
    let script = format!(
        "#!/bin/sh\nREAL='{real}'\ncase \"$*\" in *.dbstash.json*) exec \"$REAL\" \"$@\";; esac\nif [ \"$1\" = cat ] && [ -f '{d}/cut' ]; then\n  \"$REAL\" \"$@\" | head -c $(cat '{d}/cut')\n  kill -9 $$\nfi\nexec \"$REAL\" \"$@\"\n",
        real = real_rclone(),
        d = dir.display()
    );
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

trait RunWith {
    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> support::Run;
}

impl RunWith for Test {
    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> support::Run {
        let mut c = self.command(args);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run dbstash");
        support::Run::new(out)
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn unchanged(db: &str) {
    assert_eq!(
        psql(db, "select string_agg(x::text, ',' order by x) from keep"),
        "1,2,3",
        "target's own data changed"
    );
    assert_eq!(
        psql(
            db,
            "select to_regclass('public.t') is null and to_regclass('public.u') is null"
        ),
        "t",
        "a partial restore reached the target"
    );
}

fn scenario(custom: bool) {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432")
        || !require(support::have("rclone"), "rclone")
    {
        return;
    }
    let Some(s3) = S3::start() else {
        require(false, "rclone serve s3");
        return;
    };
    let src = support::pg_fixture("integ_src", 3000);
    psql(&src, "create table u(id int primary key, w text not null); insert into u select g, repeat(md5(g::text), 2) from generate_series(1,3000) g");
    let target = support::pg_fixture("integ_dst", 0);
    psql(
        &target,
        "drop table t; create table keep(x int); insert into keep values (1),(2),(3)",
    );
    let format = if custom { "format: custom, " } else { "" };
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', log: {{ format: text }}, rclone: {{ binary: '{{dir}}/rclone-wrap' }} }}\nremotes: {{ s3: {{ rclone: 't:bucket' }} }}\njobs:\n  app: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: s3, {format}compress: none }}\n"
        ))
        .envs(&s3.env());
    wrapper(t.dir.path());
    t.run(&["backup", "app"]) /* stderr differs between runs of this line */
        .ignore_stderr()
        .success();
    let objects: Vec<String> = s3
        .objects()
        .into_iter()
        .filter(|o| !o.ends_with(".dbstash.json"))
        .collect();
    assert_eq!(objects.len(), 1, "{objects:?}");
    let object = s3.root.path().join("bucket").join(&objects[0]);
    let pristine = std::fs::read(&object).unwrap();
    assert!(
        pristine.len() > 200_000,
        "the dump is too small for the test: {}",
        pristine.len()
    );
    t.run(&["verify", "app"])
        .stdout_matches(&support::verified_line("none"))
        // log lines carry timestamps
        .stderr_contains("event=\"verify_succeeded\"")
        .success();

    // Where to hurt it. A row in the middle of t's data: flip one hex digit of its md5 (still valid).
    let row = find(&pristine, b"1500\t", 0).expect("row 1500 in the dump");
    let flip_at = row + 5 + 7;
    // The cut: right after t's complete data (plain: its COPY terminator), well before the end.
    let cut = if custom {
        find(&pristine, b"2999\t", 0).expect("row 2999") + 40
    } else {
        let copy_t = find(&pristine, b"COPY public.t ", 0).expect("COPY public.t");
        find(&pristine, b"\n\\.\n", copy_t).expect("end of COPY t") + 4
    };
    assert!(cut < pristine.len() - 100_000);

    let mut flipped = pristine.clone();
    flipped[flip_at] = if flipped[flip_at] == b'0' { b'1' } else { b'0' };
    let truncated = pristine[..cut].to_vec();
    let kinds: [(&str, Option<Vec<u8>>, &str); 3] = [
        ("corrupted", Some(flipped), "sha256"),
        ("truncated", Some(truncated), "bytes"),
        ("download killed", None, "download"),
    ];
    for (kind, bytes, reason) in kinds {
        match &bytes {
            Some(b) => std::fs::write(&object, b).unwrap(),
            None => std::fs::write(t.path("cut"), cut.to_string()).unwrap(),
        }
        let verdict = match kind {
            "corrupted" => {
                r"the object's sha256 [0-9a-f]{64} does not match its record's [0-9a-f]{64} \(corrupted or replaced\)\n\z"
            }
            "truncated" => {
                r"the object has [0-9]+ bytes, its record says [0-9]+ \(truncated or replaced\)\n\z"
            }
            _ => r"download of app/\S+ failed: rclone cat app/\S+ failed \(killed by signal 9\)",
        };
        // A download cut short is a `cat` killed mid-stream: small objects are read through the
        // shared daemon unless it is off (a daemon's short answer is the unit tests' of
        // storage::rcd_download).
        let daemon: &[(&str, &str)] = if bytes.is_none() {
            &[("DBSTASH_RCLONE_RCD", "0")]
        } else {
            &[]
        };
        let v = t
            .run_with(&["verify", "app", "--backup", "all"], daemon)
            .stdout_matches(&format!(r"\AFAILED  \S+: (app/\S+: )?{verdict}"))
            // log lines carry timestamps; the summary line is stable
            .stderr_contains("event=\"verify_failed\"")
            .stderr_contains("dbstash: 1 of 1 backup(s) of job app failed verification\n")
            .failure(1);
        assert!(v.stdout().contains("FAILED"), "{kind}: {}", v.stdout());
        // Give the tool a full second between dbstash's verdict and its kill: were the stream's
        // end (or EOF) already in its hands, it would commit in that time.
        let r = t.run_with(
            &["restore", "app", "--to", &target, "--yes"],
            &[&[("DBSTASH_TEST_KILL_DELAY_MS", "1000")][..], daemon].concat(),
        );
        assert_ne!(r.code(), 0, "{kind}: restore succeeded\n{}", r.stdout());
        assert!(
            r.stderr().contains(reason),
            "{kind}: the reason should mention `{reason}`: {}",
            r.stderr()
        );
        unchanged(&target);
        std::fs::write(&object, &pristine).unwrap();
        let _ = std::fs::remove_file(t.path("cut"));
    }

    // The same object undamaged does restore into that very target: the checks above could fail.
    t.run(&["verify", "app"])
        .stdout_matches(&support::verified_line("none"))
        // log lines carry timestamps
        .stderr_contains("event=\"verify_succeeded\"")
        .success();
    t.run(&["restore", "app", "--to", &target, "--yes"])
        .stdout_matches(&support::restored_line(
            "app",
            &format!("postgres postgres@127.0.0.1:5432/{target}"),
        ))
        // log lines carry timestamps; the outcome event is what is stable
        .stderr_contains("event=\"restore_succeeded\"")
        .success();
    assert_eq!(psql(&target, "select count(*) from t"), "3000");
    assert_eq!(
        psql(&target, "select md5(string_agg(w, ',' order by id)) from u"),
        psql(&src, "select md5(string_agg(w, ',' order by id)) from u")
    );
    pg_drop(&src);
    pg_drop(&target);
}

#[test]
fn plain_sql_damage_never_reaches_the_target() {
    scenario(false);
}

#[test]
fn custom_format_damage_never_reaches_the_target() {
    scenario(true);
}

#[test]
fn a_failing_restore_tool_rolls_back_and_fails_the_restore() {
    if !require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let src = support::pg_fixture("integ_tool", 100);
    // The target already has a `t` with other rows: the plain dump's CREATE TABLE t fails there.
    let target = support::pg_fixture("integ_tool_dst", 5);
    let t = Test::new().manifest(&format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp', log: {{ format: text }} }}\nremotes: {{ local: {{ path: '{{dir}}/out' }} }}\njobs:\n  app: {{ engine: postgres, uri: 'postgresql://postgres@127.0.0.1:5432/{src}', remote: local, compress: gzip }}\n"
    ));
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let r = t
        .run(&["restore", "app", "--to", &target, "--yes"])
        /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(r.stderr().contains("psql failed"), "{}", r.stderr());
    assert!(r.stderr().contains("already exists"), "{}", r.stderr());
    assert_eq!(psql(&target, "select count(*) from t"), "5");
    pg_drop(&src);
    pg_drop(&target);
}
