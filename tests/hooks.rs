//! Pre/post hooks: a failing pre-hook fails the run, the post-hook always runs with the outcome in
//! its environment, and no database secret reaches a hook's environment.

use crate::support;
use crate::support::Test;

fn manifest(pre: &str) -> String {
    format!(
        "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  app: {{ engine: sqlite, database: '{{dir}}/app.db', remote: l,\n         hooks: {{ pre: \"{pre}\", post: 'env | grep ^DBSTASH_ | sort > {{dir}}/post.env' }} }}\n"
    )
}

fn db(t: &Test) {
    let c = rusqlite::Connection::open(t.path("app.db")).unwrap();
    c.execute_batch("create table t(x); insert into t values (1);")
        .unwrap();
}

fn post_env(t: &Test) -> String {
    std::fs::read_to_string(t.path("post.env")).unwrap_or_default()
}

#[test]
fn post_hook_sees_success_and_the_object() {
    let t = Test::new().manifest(&manifest("echo pre-ran > {dir}/pre.txt"));
    db(&t);
    t.run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    assert!(t.path("pre.txt").exists());
    let env = post_env(&t);
    assert!(env.contains("DBSTASH_JOB=app"), "{env}");
    assert!(env.contains("DBSTASH_STATUS=success"), "{env}");
    assert!(env.contains("DBSTASH_FILE=app/app-"), "{env}");
    let size_line = env
        .lines()
        .find(|l| l.starts_with("DBSTASH_SIZE="))
        .unwrap_or_default();
    assert!(
        size_line
            .trim_start_matches("DBSTASH_SIZE=")
            .parse::<u64>()
            .unwrap_or(0)
            > 0,
        "{env}"
    );
}

#[test]
fn failing_pre_hook_fails_the_run_and_the_post_hook_still_runs() {
    let t = Test::new().manifest(&manifest("echo nope >&2; exit 3"));
    db(&t);
    let r = t
        .run(&["backup", "app"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .failure(1);
    assert!(
        r.stderr().contains("pre hook failed (exit 3)"),
        "{}",
        r.stderr()
    );
    assert!(t.files("out").is_empty(), "{:?}", t.files("out"));
    let env = post_env(&t);
    assert!(env.contains("DBSTASH_STATUS=failure"), "{env}");
    assert!(env.contains("DBSTASH_ERROR=pre hook failed"), "{env}");
}

#[test]
fn hooks_do_not_get_the_database_password() {
    if !support::require(support::pg_available(), "PostgreSQL on 127.0.0.1:5432") {
        return;
    }
    let db = support::pg_fixture("dbstash_hooks", 10);
    let secret = "hook-must-not-see-this-9f3a";
    let t = Test::new()
        .manifest(&format!(
            "version: 1\nsettings: {{ temp_dir: '{{dir}}/tmp' }}\nremotes: {{ l: {{ path: '{{dir}}/out' }} }}\njobs:\n  pg: {{ engine: postgres, host: 127.0.0.1, user: postgres, password: '${{APP_PW}}', database: {db}, remote: l,\n        hooks: {{ pre: 'env > {{dir}}/pre.env', post: 'env > {{dir}}/post.env' }} }}\n"
        ))
        .env("APP_PW", secret);
    t.run(&["backup", "pg"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    for f in ["pre.env", "post.env"] {
        let env = std::fs::read_to_string(t.path(f)).unwrap();
        assert!(env.contains("DBSTASH_JOB=pg"), "{f}: {env}");
        assert!(!env.contains(secret), "{f} leaked the password");
    }
    support::pg_drop(&db);
}
