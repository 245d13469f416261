//! The one integration-test binary (`cargo test --test integration`): one module per topic, one
//! shared harness in `support`. A single binary because every test binary links the whole crate,
//! and linking was most of CI's time with one binary per file.
//!
//! Adding a topic: create `tests/<topic>.rs` (or `tests/<topic>/mod.rs`), declare it below with
//! `mod <topic>;` (sorted), and `use crate::support;` for the harness. Cargo's automatic test
//! discovery is off (`autotests = false`), so `every_test_file_is_a_module` fails a file that is
//! not declared here instead of leaving it silently unbuilt.
//!
//! All modules share one process and run side by side (before, only tests of the same file did):
//! a test must not change process-wide state (environment, umask, current directory, signal
//! dispositions) — set it on the child instead (`Test::env`, `Command::env`, `pre_exec` for the
//! umask, `unshare` for PID 1), and name what it creates on a shared server with
//! `support::unique` (never a fixed name, nor the process id alone: every module has the same one).

mod backup_faults;
mod backup_parallel;
mod backup_roundtrip;
mod backup_smoke;
mod cancel_copies;
mod fidelity_pg;
mod fidelity_sqlite;
mod hooks;
mod manifest_errors;
mod manifest_fuzz;
mod manifest_yaml;
mod modes_fanout;
mod notify_http;
mod notify_smtp;
mod operators;
mod operators_logs;
mod packaging;
mod parallel_databases;
mod pitr_mysql;
mod pitr_pg;
mod plan_snapshots;
mod prometheus;
mod rclone_rcd;
mod restore_integrity;
mod restore_roundtrip;
mod restore_starts;
mod retention_prune;
mod safety_drills;
mod safety_input;
mod safety_names;
mod safety_restore;
mod safety_runtime;
mod schedule_dst;
mod schema;
mod secrets_argv;
mod storage_contract;
mod supervisor;
mod support;
mod verify_drill;

#[test]
fn every_test_file_is_a_module() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let lib = std::fs::read_to_string(root.join("lib.rs")).expect("tests/lib.rs");
    let declared: std::collections::BTreeSet<String> = lib
        .lines()
        .filter_map(|l| {
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&root).expect("tests/").flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let module = match name.strip_suffix(".rs") {
            Some(m) if m != "lib" => m.to_string(),
            Some(_) => continue,
            None if path.join("mod.rs").is_file() => name,
            None => continue,
        };
        if !declared.contains(&module) {
            missing.push(module);
        }
    }
    missing.sort();
    assert_eq!(
        missing,
        Vec::<String>::new(),
        "add `mod <name>;` to tests/lib.rs"
    );
}
