//! Debian's `pg_wrapper` (postgresql-common): `/usr/bin/pg_dump`, `psql`, `pg_restore`, … are
//! links to one Perl script that picks a PostgreSQL version and then execs
//! `/usr/lib/postgresql/<version>/bin/<program>`. Starting Perl costs 50–300 ms of CPU per
//! command, more than a tiny database's whole dump, so dbstash runs the real binary itself — but
//! only where the wrapper's choice is certain:
//!
//! - the command names its server (`--host`), so the wrapper ignores `PGCLUSTER`, the cluster
//!   map and the port lookup, and takes the newest installed version that has the program;
//! - no `--cluster` argument (the wrapper would pick that cluster's version).
//!
//! `pg_dump --version` (for the record) asks the binary the dump itself runs: see [`direct_as`].
//!
//! The wrapper also defaults `PGSYSCONFDIR` to `/etc/postgresql-common` (where libpq reads
//! `pg_service.conf`): so does the direct command. Anything else goes through the wrapper as
//! before.

use crate::domain::command::{CommandSpec, EnvValue};
use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Where Debian installs each version's programs.
const BIN_ROOT: &str = "/usr/lib/postgresql";
const SYSCONFDIR: &str = "/etc/postgresql-common";

/// The command as dbstash starts it: the wrapper skipped where its choice of binary is certain,
/// else `spec` itself. The program is looked up on the command's own `PATH`, else dbstash's.
pub fn direct(spec: &CommandSpec) -> Cow<'_, CommandSpec> {
    let path = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v.expose()))
        .or_else(|| std::env::var_os("PATH"));
    match bypass(spec, path.as_deref()) {
        Some(d) => Cow::Owned(d),
        None => Cow::Borrowed(spec),
    }
}

/// `spec` (e.g. `pg_dump --version`) run by the binary that `like` (the dump) runs: the real one
/// when the dump skips the wrapper, else `spec` as it is.
pub fn direct_as<'a>(spec: &'a CommandSpec, like: &CommandSpec) -> Cow<'a, CommandSpec> {
    match direct(like) {
        Cow::Owned(real) if real.program != like.program && spec.program == like.program => {
            let mut s = spec.clone();
            s.program = real.program;
            s.env.extend(
                real.env
                    .into_iter()
                    .filter(|(k, _)| k == "PGSYSCONFDIR" && !spec.env.iter().any(|(j, _)| j == k)),
            );
            Cow::Owned(s)
        }
        _ => Cow::Borrowed(spec),
    }
}

/// `spec` with the wrapper taken out: the real program, and the wrapper's `PGSYSCONFDIR`
/// default. `None` when `spec.program` is not the wrapper on `path` or its choice is not certain.
pub fn bypass(spec: &CommandSpec, path: Option<&OsStr>) -> Option<CommandSpec> {
    bypass_in(spec, path, Path::new(BIN_ROOT))
}

fn bypass_in(spec: &CommandSpec, path: Option<&OsStr>, bin_root: &Path) -> Option<CommandSpec> {
    if !names_its_host(&spec.args) && !reads_an_archive(spec) {
        return None;
    }
    let found = on_path(&spec.program, path)?;
    let target = std::fs::canonicalize(&found).ok()?;
    if target.file_name()? != "pg_wrapper" {
        return None;
    }
    let name = found.file_name()?.to_str()?;
    let real = newest(bin_root, name)?;
    let mut direct = spec.clone();
    direct.program = real.to_str()?.to_string();
    let set_here = direct.env.iter().any(|(k, _)| k == "PGSYSCONFDIR");
    if !set_here && std::env::var_os("PGSYSCONFDIR").is_none() {
        direct
            .env
            .push(("PGSYSCONFDIR".into(), EnvValue::Plain(SYSCONFDIR.into())));
    }
    Some(direct)
}

/// `pg_restore` reading an archive without a server (`--list`, or SQL to `--file`): the newest
/// version reads every older archive, where the wrapper's pick (a local cluster's version, if
/// any) may be too old for it.
fn reads_an_archive(spec: &CommandSpec) -> bool {
    let connects = |a: &String| {
        [
            "--host",
            "--port",
            "--dbname",
            "--cluster",
            "-d",
            "-h",
            "-p",
        ]
        .iter()
        .any(|f| a == f || a.starts_with(&format!("{f}=")) || (f.len() == 2 && a.starts_with(f)))
    };
    spec.program == "pg_restore"
        && spec
            .args
            .iter()
            .any(|a| a == "--list" || a.starts_with("--file="))
        && !spec.args.iter().any(connects)
}

/// An explicit `--host`, and no `--cluster` (which the wrapper honours before anything else).
fn names_its_host(args: &[String]) -> bool {
    let before_end = args.iter().take_while(|a| *a != "--");
    let mut host = false;
    for a in before_end {
        if a.starts_with("--cluster") {
            return false;
        }
        host |= a == "--host" || a.starts_with("--host=");
    }
    host
}

/// The first executable `program` on `path` (as `execvp` finds it), or `program` itself when it
/// has a slash.
fn on_path(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(path?)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(program))
        .find(|p| executable(p))
}

/// `<bin_root>/<newest version>/bin/<name>`, among the versions that have it (the wrapper's
/// `get_newest_version`).
fn newest(bin_root: &Path, name: &str) -> Option<PathBuf> {
    std::fs::read_dir(bin_root)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = version_key(e.file_name().to_str()?)?;
            let bin = e.path().join("bin").join(name);
            bin.is_file().then_some((v, bin))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, p)| p)
}

/// `15` → [15], `9.6` → [9, 6]; anything else is not a version folder.
fn version_key(dir: &str) -> Option<Vec<u32>> {
    dir.split('.').map(|p| p.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn exe(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A fake Debian layout: `bin/pg_dump -> common/pg_wrapper`, versions 9.6, 15 and 16 (16
    /// without pg_dump), and `bin/other` that is not the wrapper.
    fn layout() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("lib");
        exe(&d.path().join("common/pg_wrapper"));
        std::fs::create_dir_all(d.path().join("bin")).unwrap();
        symlink(
            d.path().join("common/pg_wrapper"),
            d.path().join("bin/pg_dump"),
        )
        .unwrap();
        exe(&d.path().join("bin/other"));
        exe(&root.join("9.6/bin/pg_dump"));
        exe(&root.join("15/bin/pg_dump"));
        exe(&root.join("16/bin/psql"));
        let bin = d.path().join("bin");
        (d, root, bin)
    }

    fn spec(program: &str, args: &[&str]) -> CommandSpec {
        let mut c = CommandSpec::new(program);
        args.iter().for_each(|a| {
            c.arg(*a);
        });
        c
    }

    #[test]
    fn the_wrapper_with_a_host_becomes_the_newest_real_binary() {
        let (_d, root, bin) = layout();
        let s = spec("pg_dump", &["--host=db", "--dbname=x"]);
        let direct = bypass_in(&s, Some(bin.as_os_str()), &root).expect("bypassed");
        assert_eq!(
            direct.program,
            root.join("15/bin/pg_dump").to_str().unwrap()
        );
        assert_eq!(direct.args, s.args, "arguments unchanged");
        if std::env::var_os("PGSYSCONFDIR").is_none() {
            assert!(direct
                .env
                .iter()
                .any(|(k, v)| k == "PGSYSCONFDIR" && v.expose() == SYSCONFDIR));
        }
    }

    #[test]
    fn anything_uncertain_stays_with_the_wrapper() {
        let (_d, root, bin) = layout();
        let path = Some(bin.as_os_str());
        // pg_restore reading an archive, without a server: the newest that has it
        let toc = spec("pg_restore", &["--list"]);
        assert!(
            bypass_in(&toc, path, &root).is_none(),
            "no pg_restore in the layout"
        );
        exe(&root.join("15/bin/pg_restore"));
        symlink(root.join("../common/pg_wrapper"), bin.join("pg_restore")).unwrap();
        let direct = bypass_in(&toc, path, &root).expect("archive reader");
        assert_eq!(
            direct.program,
            root.join("15/bin/pg_restore").to_str().unwrap()
        );
        let into_db = spec("pg_restore", &["--list", "--dbname=x"]);
        assert!(bypass_in(&into_db, path, &root).is_none());
        // no host: the wrapper consults PGCLUSTER and the cluster map
        assert!(bypass_in(&spec("pg_dump", &["--dbname=x"]), path, &root).is_none());
        // an explicit cluster wins in the wrapper
        let s = spec("pg_dump", &["--host=db", "--cluster=13/main"]);
        assert!(bypass_in(&s, path, &root).is_none());
        // `--host` after `--` is not an option
        assert!(bypass_in(&spec("pg_dump", &["--", "--host=db"]), path, &root).is_none());
        // not the wrapper
        assert!(bypass_in(&spec("other", &["--host=db"]), path, &root).is_none());
        // not on PATH
        assert!(bypass_in(&spec("pg_basebackup", &["--host=db"]), path, &root).is_none());
    }

    #[test]
    fn versions_compare_as_numbers() {
        assert!(version_key("10").unwrap() > version_key("9.6").unwrap());
        assert_eq!(version_key("main"), None);
    }
}
