//! The quickstart path end to end: SQLite → local folder, record written, list shows it.

use crate::support;
use crate::support::Test;

#[test]
fn sqlite_to_local_folder_writes_object_and_record() {
    let t = Test::new().manifest(
        "version: 1\nsettings: { temp_dir: '{dir}/tmp' }\nremotes: { local: { path: '{dir}/out' } }\njobs:\n  demo: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: gzip }\n",
    );
    let conn = rusqlite::Connection::open(t.path("app.db")).unwrap();
    conn.execute_batch("create table t(x); insert into t values (1),(2),(3);")
        .unwrap();
    drop(conn);
    t.run(&["backup", "demo"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let files = t.files("out");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].starts_with("demo/app-") && files[0].ends_with(".sqlite3.gz"),
        "{files:?}"
    );
    assert_eq!(files[1], format!("{}.dbstash.json", files[0]));
    let listed = t
        .run(&["list", "--format", "json"])
        /* stdout holds run-specific names, times or sizes */
        .ignore_stdout()
        .success()
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["job"], "demo");
    // the stored bytes are what the record says
    let data = std::fs::read(t.path("out").join(&files[0])).unwrap();
    use sha2::Digest;
    assert_eq!(v[0]["sha256"], hex::encode(sha2::Sha256::digest(&data)));
    assert_eq!(v[0]["size"], data.len());
}

/// A stream upload sizes its S3 chunks from the folder's listing alone: the largest object that has
/// a record (here a sparse 30 GiB one), +25 %, leaves 2x headroom under rclone's 10,000 parts —
/// without reading any record (one rclone start fewer per run). A bigger file without a record is
/// not a backup and is not counted.
#[test]
fn stream_upload_sizes_s3_chunks_from_the_listing_without_reading_records() {
    if !support::require(support::have("rclone"), "rclone") {
        return;
    }
    let real = support::path_of("rclone");
    let t = Test::new()
        .write_executable(
            "rclone-logged",
            &format!("#!/bin/sh\necho \"$*\" >> {{dir}}/rclone.argv\nexec {real} \"$@\"\n"),
        )
        .manifest(
            "version: 1\nsettings: { temp_dir: '{dir}/tmp', rclone: { binary: '{dir}/bin/rclone-logged' } }\nremotes: { r: { rclone: 'l:{dir}/r' } }\njobs:\n  demo: { engine: sqlite, database: '{dir}/app.db', remote: r }\n",
        )
        .env("RCLONE_CONFIG_L_TYPE", "local")
        .write("r/demo/app-20200101T000000Z.sqlite3.dbstash.json", "{}");
    let big = |name: &str, gib: u64| {
        let f = std::fs::File::create(t.path("r/demo").join(name)).unwrap();
        f.set_len(gib << 30).unwrap();
    };
    big("app-20200101T000000Z.sqlite3", 30);
    big("stray.bin", 40);
    let conn = rusqlite::Connection::open(t.path("app.db")).unwrap();
    conn.execute_batch("create table t(x); insert into t values (1);")
        .unwrap();
    drop(conn);
    t.run(&["backup", "demo"]) /* stderr holds run-specific names, times or sizes */
        .ignore_stderr()
        .success();
    let argv = std::fs::read_to_string(t.path("rclone.argv")).unwrap();
    // 30 GiB * 1.25 * 2 / 10,000 parts = 7.7 MiB
    let rcat: Vec<&str> = argv
        .lines()
        // the backup itself, not its record or its intent marker
        .filter(|l| {
            l.starts_with("rcat") && !l.contains(".dbstash.json") && !l.contains(".dbstash-intent")
        })
        .collect();
    assert_eq!(rcat.len(), 1, "{argv}");
    assert!(rcat[0].contains("--s3-chunk-size=8Mi"), "{argv}");
    assert!(
        !argv.lines().any(|l| l.starts_with("cat")),
        "no record read: {argv}"
    );
}
