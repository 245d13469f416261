//! The quickstart path end to end: SQLite → local folder, record written, list shows it.

mod support;
use support::Test;

#[test]
fn sqlite_to_local_folder_writes_object_and_record() {
    let t = Test::new().manifest(
        "version: 1\nsettings: { temp_dir: '{dir}/tmp' }\nremotes: { local: { path: '{dir}/out' } }\njobs:\n  demo: { engine: sqlite, database: '{dir}/app.db', remote: local, compress: gzip }\n",
    );
    let conn = rusqlite::Connection::open(t.path("app.db")).unwrap();
    conn.execute_batch("create table t(x); insert into t values (1),(2),(3);")
        .unwrap();
    drop(conn);
    t.run(&["backup", "demo"]).success();
    let files = t.files("out");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(
        files[0].starts_with("demo/app-") && files[0].ends_with(".sqlite3.gz"),
        "{files:?}"
    );
    assert_eq!(files[1], format!("{}.dbstash.json", files[0]));
    let listed = t.run(&["list", "--format", "json"]).success().stdout();
    let v: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["job"], "demo");
    // the stored bytes are what the record says
    let data = std::fs::read(t.path("out").join(&files[0])).unwrap();
    use sha2::Digest;
    assert_eq!(v[0]["sha256"], hex::encode(sha2::Sha256::digest(&data)));
    assert_eq!(v[0]["size"], data.len());
}
