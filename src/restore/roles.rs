//! PostgreSQL owners and privileges on restore: before anything is restored, the roles an
//! archive-format backup (custom, directory, tar) names — object owners, grantees, grantors and
//! the roles of default privileges — are compared with the target server's, and a restore that
//! would fail half-way on a missing role is refused up front, naming the roles.
//!
//! The roles come from the archive's own table of contents: `pg_restore --list`, then the SQL of
//! every entry that carries no data (`--use-list`), whose `-- Name: …; Owner: X` headers name the
//! owners and whose ACL entries hold the GRANT/REVOKE statements. Only the head of a custom-format
//! stream is read for this (pg_restore stops after the table of contents), only `toc.dat` of a
//! directory backup; a tar is read until its `toc.dat`. What is read here is never restored: the
//! restore itself reads the backup again through the checked pipeline.
//!
//! A plain SQL backup is not scanned (that would mean reading all of it twice): psql runs it in
//! one transaction with ON_ERROR_STOP, so a missing role fails it with nothing committed, and a
//! database the restore created is dropped again.

use super::layout::Payload;
use super::pipeline::{self, Source};
use super::run_dir::{self, RunDir};
use super::target::{self, Target};
use super::{BackupProblem, CheckError, RestoreError, TargetProblem, UsageError};
use crate::engine::postgres::{self, Owners};
use crate::proc::ProcGroup;
use crate::secret::Secret;
use crate::storage::Storage;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncReadExt;

/// What to tell people who hit missing roles: how they choose a restore without owners.
#[derive(Debug, Clone, Copy)]
pub enum Hint<'a> {
    /// `dbstash restore JOB`.
    Restore(&'a str),
    /// A drill of JOB (`verify --restore-to`, `verify.restore_to`).
    Drill(&'a str),
}

impl Hint<'_> {
    fn text(self) -> String {
        match self {
            Hint::Restore(job) => format!(
                "create them first, or restore without the backup's owners and privileges: `dbstash restore {job} --no-owner` (custom, directory and tar backups)"
            ),
            Hint::Drill(job) => format!(
                "create them there, or let drills of job `{job}` restore without owners and privileges: `verify: {{ no_owner: true }}`"
            ),
        }
    }
}

/// Refuse, before the target is touched, a restore whose backup names roles the target server
/// does not have (or `--no-owner` for a plain SQL backup, which cannot honour it).
pub async fn check(
    target: &Target,
    src: &Source<'_>,
    base: &Path,
    hint: Hint<'_>,
) -> Result<(), RestoreError> {
    if !applies(target, src.layout.payload)? {
        return Ok(());
    }
    let needed = needed_roles(src, base).await?;
    let missing = missing_on(target, &needed, base).await?;
    refuse_missing(target, &src.backup.id, missing, hint)
}

/// Does a restore of `payload` into `target` need the roles check? An error for `--no-owner`
/// with a plain SQL backup, which cannot honour it.
pub fn applies(target: &Target, payload: Payload) -> Result<bool, RestoreError> {
    if !crate::engine::restore::names_roles(target.job.engine) {
        return Ok(false);
    }
    let plain = payload == Payload::Sql;
    if target.owners == Owners::Skip {
        if plain {
            return Err(UsageError::NoOwnerPlainSql.into());
        }
        return Ok(false);
    }
    Ok(!plain && !skipped_by_restore_args(&target.job.restore_args))
}

/// The refusal naming the `missing` roles, if any.
pub fn refuse_missing(
    target: &Target,
    backup: &str,
    missing: Vec<String>,
    hint: Hint<'_>,
) -> Result<(), RestoreError> {
    if missing.is_empty() {
        return Ok(());
    }
    Err(TargetProblem::MissingRoles {
        backup: backup.to_string(),
        server: server_of(target),
        missing,
        hint: hint.text().to_string(),
    }
    .into())
}

/// The roles of `needed` that are not in `have`.
pub fn missing(needed: &BTreeSet<String>, have: &BTreeSet<String>) -> Vec<String> {
    needed.difference(have).cloned().collect()
}

/// A job whose `restore_args` already leave owners and privileges out (as dbstash itself did
/// before `--no-owner` became a choice) needs none of the backup's roles.
fn skipped_by_restore_args(args: &[String]) -> bool {
    let has = |flags: &[&str]| args.iter().any(|a| flags.contains(&a.as_str()));
    has(&["--no-owner", "-O"]) && has(&["--no-acl", "--no-privileges", "-x"])
}

/// The target's server, for messages (`user@host:port`: no engine, no database).
fn server_of(t: &Target) -> String {
    let db = t.database();
    let label = t.label.strip_suffix(&format!("/{db}")).unwrap_or(&t.label);
    label
        .split_once(' ')
        .map_or(label, |(_, server)| server)
        .to_string()
}

/// A restore tool's `role "X" does not exist` (a plain SQL backup, which is not checked up
/// front, or a role used where the check does not look, such as a policy) with what to do.
pub fn explain(e: RestoreError, hint: Hint<'_>) -> RestoreError {
    match e {
        RestoreError::Tool {
            program,
            status,
            tail,
        } if tail.contains("role \"") && tail.contains("\" does not exist") => {
            RestoreError::Tool {
                program,
                status,
                tail: format!(
                    "{tail} (nothing was restored: the backup names a role that the target server does not have; {})",
                    hint.text()
                ),
            }
        }
        e => e,
    }
}

/// The roles `needed` minus those the target server has.
async fn missing_on(
    t: &Target,
    needed: &BTreeSet<String>,
    base: &Path,
) -> Result<Vec<String>, RestoreError> {
    if needed.is_empty() {
        return Ok(Vec::new());
    }
    let spec = postgres::admin(&t.job, postgres::MAINTENANCE_DB, None);
    let out = target::admin_sql(&spec, postgres::ROLES_SQL, &t.secrets(), base).await?;
    let have: BTreeSet<String> = postgres::records(&out).map(str::to_string).collect();
    Ok(missing(needed, &have))
}

/// Every role the backup's owners and privileges name.
async fn needed_roles(src: &Source<'_>, base: &Path) -> Result<BTreeSet<String>, RestoreError> {
    if src.layout.payload == Payload::PgCustom {
        return stream_roles(src, base).await;
    }
    let work = RunDir::create(base)?;
    let (archive, list) = match src.layout.payload {
        Payload::Directory => {
            let dir = directory_toc(src, work.path()).await?;
            let list = tool_text(&postgres::archive_text(Some(&dir), None), base).await?;
            (dir, list)
        }
        _ => {
            let dir = tar_toc(src, work.path()).await?;
            let list = tool_text(&postgres::archive_text(Some(&dir), None), base).await?;
            (dir, list)
        }
    };
    roles_of(&archive, &list, work.path(), base).await
}

/// The roles named by the entries of `list` (the archive's table of contents) that carry no data,
/// printed as SQL from `archive` (a head file, or a folder with `toc.dat`).
async fn roles_of(
    archive: &str,
    list: &str,
    work: &Path,
    base: &Path,
) -> Result<BTreeSet<String>, RestoreError> {
    let list_file = work.join("schema.list");
    write_private(&list_file, schema_entries(list).as_bytes())?;
    let spec = postgres::archive_text(Some(archive), Some(&path_str(&list_file)));
    let sql = tool_text(&spec, base).await?;
    Ok(roles_named(&sql))
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> RestoreError {
    move |source| RestoreError::Io { what, source }
}

fn write_private(path: &Path, data: &[u8]) -> Result<(), RestoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(data))
        .map_err(io(format!("cannot write {}", path.display())))
}

/// A pg_restore that needs no server; its stdout.
async fn tool_text(
    spec: &crate::domain::command::CommandSpec,
    base: &Path,
) -> Result<String, RestoreError> {
    target::admin_sql(spec, "", &[] as &[Secret], base).await
}

/// The table-of-contents lines of entries that carry no data: their SQL (owners, ACLs) can be
/// printed from the table of contents alone.
fn schema_entries(list: &str) -> String {
    const DATA: &[&str] = &[
        "TABLE DATA ",
        "BLOBS ",
        "LARGE OBJECTS ",
        "SEQUENCE SET ",
        "MATERIALIZED VIEW DATA ",
    ];
    let mut out = String::new();
    for line in list.lines() {
        if line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        // `ID; TABLEOID OID DESC NAMESPACE TAG OWNER`
        let desc = line
            .split_once("; ")
            .map(|(_, rest)| rest.splitn(3, ' ').nth(2).unwrap_or(""))
            .unwrap_or("");
        if DATA.iter().any(|d| desc.starts_with(d)) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Writes to two places: the head file and pg_restore's stdin. When pg_restore has read its
/// table of contents it exits, the pipe breaks, and the transfer stops (the download killed).
struct Tee {
    file: File,
    pipe: File,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all(buf)?;
        self.pipe.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// `pg_restore --list` reading a custom-format stream's head on its stdin, with the private
/// folder whose `head.dump` keeps the same bytes (the caller writes both: [`Tee`], or the
/// restore's [`super::gate`]).
pub struct Listing {
    work: RunDir,
    head: PathBuf,
    tool: run_dir::Started,
}

/// Start the listing. Returns it, the head file (read-write, new, 0600) and the tool's stdin.
pub fn start_listing(base: &Path) -> Result<(Listing, File, File), RestoreError> {
    let work = RunDir::create(base)?;
    let head = work.path().join("head.dump");
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&head)
            .map_err(io(format!("cannot create {}", head.display())))?
    };
    let spec = postgres::archive_text(None, None);
    let mut tool = run_dir::start(&spec, base, Stdio::piped(), "restore-roles")?;
    let pipe = tool
        .child
        .stdin
        .take()
        .ok_or_else(|| io("pg_restore stdin".into())(std::io::Error::other("no stdin")))
        .and_then(|s| {
            s.into_owned_fd()
                .map(File::from)
                .map_err(io("pg_restore stdin".into()))
        });
    match pipe {
        Ok(p) => Ok((Listing { work, head, tool }, file, p)),
        Err(e) => {
            tool.group.kill();
            Err(e)
        }
    }
}

impl Listing {
    /// pg_restore's table of contents, once it has read it (or its complaint).
    async fn list(&mut self) -> Result<String, RestoreError> {
        let t = &mut self.tool;
        let mut stdout = t.child.stdout.take();
        let read = async {
            let mut out = Vec::new();
            if let Some(o) = stdout.as_mut() {
                o.read_to_end(&mut out).await?;
            }
            t.child.wait().await.map(|s| (s, out))
        };
        let listed = read.await;
        t.group.kill();
        let tail = t.tail.finish().await;
        let (status, out) = listed.map_err(io("pg_restore --list".into()))?;
        if !status.success() {
            return Err(RestoreError::Tool {
                program: "pg_restore --list".into(),
                status: super::error::ToolEnd::of(status),
                tail: pipeline::or_silent(tail),
            });
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Every role the archive's owners and privileges name, from its head.
    pub async fn roles(mut self, base: &Path) -> Result<BTreeSet<String>, RestoreError> {
        let list = self.list().await?;
        self.roles_in(&list, base).await
    }

    async fn roles_in(&self, list: &str, base: &Path) -> Result<BTreeSet<String>, RestoreError> {
        roles_of(&path_str(&self.head), list, self.work.path(), base).await
    }
}

/// A custom-format stream's roles: `pg_restore --list` reads its head from stdin while the same
/// bytes go to a file, which then holds the whole table of contents.
async fn stream_roles(src: &Source<'_>, base: &Path) -> Result<BTreeSet<String>, RestoreError> {
    let (mut listing, file, pipe) = start_listing(base)?;
    let download = ProcGroup::new();
    let (sent, listed) = tokio::join!(
        pipeline::transfer(src, &download, Tee { file, pipe }),
        listing.list()
    );
    download.kill();
    // pg_restore's complaint explains a failed transfer better (or the transfer's does).
    // A transfer that ended early is expected: pg_restore stopped reading after the listing.
    let list = listed.map_err(|e| sent.err().unwrap_or(e))?;
    listing.roles_in(&list, base).await
}

/// A directory backup: its `toc.dat` alone, checked against the record, in `dir/toc/`.
async fn directory_toc(src: &Source<'_>, dir: &Path) -> Result<String, RestoreError> {
    use sha2::{Digest, Sha256};
    let key = format!("{}/toc.dat", src.backup.key.trim_end_matches('/'));
    let expected = src.backup.record.files.iter().find(|f| f.path == "toc.dat");
    let data = src
        .store
        .read_small(&key)
        .await
        .map_err(|e| RestoreError::Download {
            key: key.clone(),
            source: e,
        })?;
    let sha = hex::encode(Sha256::digest(&data));
    if expected.is_none_or(|f| f.sha256 != sha || f.size != data.len() as u64) {
        return Err(CheckError::backup(&key, BackupProblem::Mismatch).into());
    }
    let out = toc_dir(dir)?;
    write_private(&out.join("toc.dat"), &data)?;
    Ok(path_str(&out))
}

fn toc_dir(dir: &Path) -> Result<PathBuf, RestoreError> {
    let out = dir.join("toc");
    std::fs::create_dir(&out).map_err(io(format!("cannot create {}", out.display())))?;
    Ok(out)
}

/// A tar backup: read until its `toc.dat`, which is kept in `dir/toc/`.
async fn tar_toc(src: &Source<'_>, dir: &Path) -> Result<String, RestoreError> {
    let out = toc_dir(dir)?;
    let (r, w) = crate::proc::pipe().map_err(io("pipe".into()))?;
    let dest = out.join("toc.dat");
    let find = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
        let mut a = tar::Archive::new(File::from(r));
        for entry in a.entries()? {
            let mut e = entry?;
            if e.path()?.file_name().is_some_and(|n| n == "toc.dat") {
                let mut f = File::create(&dest)?;
                std::io::copy(&mut e, &mut f)?;
                // Dropping the reader now stops the download.
                return Ok(true);
            }
        }
        Ok(false)
    });
    let download = ProcGroup::new();
    let sent = pipeline::transfer(src, &download, File::from(w)).await;
    download.kill();
    let found = find
        .await
        .map_err(|e| io("tar task".into())(std::io::Error::other(e)))?;
    match found {
        Ok(true) => Ok(path_str(&out)),
        Ok(false) => Err(CheckError::backup(&src.backup.key, BackupProblem::NoToc).into()),
        Err(e) => Err(sent.err().unwrap_or_else(|| io("read the tar".into())(e))),
    }
}

/// The roles that pg_restore's SQL output names: every entry's owner (`-- Name: …; Owner: X`
/// headers) and, in ACL and DEFAULT ACL entries, the grantees, grantors and `FOR ROLE` roles.
pub fn roles_named(sql: &str) -> BTreeSet<String> {
    let mut roles = BTreeSet::new();
    let mut in_acl = false;
    for line in sql.lines() {
        if let Some(header) = line.strip_prefix("-- Name: ") {
            in_acl = header.contains("; Type: ACL; ") || header.contains("; Type: DEFAULT ACL; ");
            if let Some((_, owner)) = header.rsplit_once("; Owner: ") {
                let owner = owner.split("; Tablespace: ").next().unwrap_or("");
                if !owner.is_empty() && owner != "-" {
                    roles.insert(owner.to_string());
                }
            }
            continue;
        }
        if in_acl {
            roles.extend(acl_roles(line));
        }
    }
    roles
}

/// The roles of one ACL statement as pg_dump writes them: `GRANT … TO r [WITH GRANT OPTION];`,
/// `REVOKE … FROM r [CASCADE];`, `ALTER DEFAULT PRIVILEGES FOR ROLE r … TO|FROM r2;`,
/// `SET SESSION AUTHORIZATION r;`. PUBLIC is not a role.
fn acl_roles(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let Some(stmt) = line.trim_end().strip_suffix(';') else {
        return out;
    };
    if let Some(rest) = stmt.strip_prefix("SET SESSION AUTHORIZATION ") {
        out.extend(leading_ident(rest).map(|(r, _)| r));
        return out;
    }
    let mut body = stmt;
    if let Some(rest) = stmt.strip_prefix("ALTER DEFAULT PRIVILEGES FOR ROLE ") {
        if let Some((r, after)) = leading_ident(rest) {
            out.push(r);
            body = after;
        }
    } else if !(stmt.starts_with("GRANT ") || stmt.starts_with("REVOKE ")) {
        return out;
    }
    let body = body
        .strip_suffix(" WITH GRANT OPTION")
        .or_else(|| body.strip_suffix(" CASCADE"))
        .unwrap_or(body);
    if let Some((r, before)) = trailing_ident(body) {
        if before.ends_with(" TO ") || before.ends_with(" FROM ") {
            out.extend(r);
        }
    }
    out
}

/// An identifier at the start of `s` (quoted or bare) and what follows it.
fn leading_ident(s: &str) -> Option<(String, &str)> {
    if let Some(q) = s.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = q.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().is_some_and(|(_, n)| *n == '"') {
                    chars.next();
                    name.push('"');
                    continue;
                }
                return Some((name, &q[i + 1..]));
            }
            name.push(c);
        }
        return None;
    }
    let end = s.find([' ', ';', ',']).unwrap_or(s.len());
    (end > 0).then(|| (s[..end].to_string(), &s[end..]))
}

/// The identifier at the end of `s` (None for PUBLIC) and what precedes it.
fn trailing_ident(s: &str) -> Option<(Option<String>, &str)> {
    if s.ends_with('"') {
        // Find the opening quote: quotes inside the name come doubled.
        let b = s.as_bytes();
        let mut i = b.len() - 1;
        loop {
            let j = s[..i].rfind('"')?;
            if j > 0 && b[j - 1] == b'"' {
                i = j - 1;
                continue;
            }
            let name = s[j + 1..s.len() - 1].replace("\"\"", "\"");
            return Some((Some(name), &s[..j]));
        }
    }
    let start = s.rfind(' ')? + 1;
    let word = &s[start..];
    let role = (!word.eq_ignore_ascii_case("PUBLIC")).then(|| word.to_string());
    Some((role, &s[..start]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_grantees_and_default_privilege_roles_are_found() {
        let sql = r#"
--
-- Name: s1; Type: SCHEMA; Schema: -; Owner: app_owner
--
CREATE SCHEMA s1;
ALTER SCHEMA s1 OWNER TO app_owner;
GRANT SELECT ON TABLE not_an_acl_section TO nobody_here;
--
-- Name: t; Type: TABLE; Schema: s1; Owner: Weird "Owner"; Tablespace: fast
--
--
-- Name: SCHEMA s1; Type: ACL; Schema: -; Owner: app_owner
--
REVOKE ALL ON SCHEMA s1 FROM PUBLIC;
GRANT USAGE ON SCHEMA s1 TO reader;
GRANT SELECT ON TABLE "a TO b" TO "we""ird role" WITH GRANT OPTION;
SET SESSION AUTHORIZATION grantor;
GRANT SELECT ON LARGE OBJECT 16404 TO lo_reader;
RESET SESSION AUTHORIZATION;
--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: s1; Owner: app_owner
--
ALTER DEFAULT PRIVILEGES FOR ROLE "def owner" IN SCHEMA s1 GRANT SELECT ON TABLES  TO reader2;
ALTER DEFAULT PRIVILEGES FOR ROLE app_owner REVOKE ALL ON FUNCTIONS  FROM PUBLIC;
"#;
        let got: Vec<String> = roles_named(sql).into_iter().collect();
        assert_eq!(
            got,
            [
                "Weird \"Owner\"",
                "app_owner",
                "def owner",
                "grantor",
                "lo_reader",
                "reader",
                "reader2",
                "we\"ird role"
            ]
        );
    }

    #[test]
    fn restore_args_that_leave_out_owners_and_acls_need_no_roles() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(skipped_by_restore_args(&v(&["--no-owner", "--no-acl"])));
        assert!(skipped_by_restore_args(&v(&["-O", "-x", "--jobs=2"])));
        assert!(!skipped_by_restore_args(&v(&["--no-owner"])));
        assert!(!skipped_by_restore_args(&v(&[])));
    }

    #[test]
    fn data_entries_are_left_out_of_the_schema_list() {
        let list = ";\n; Archive created at x\n7; 2615 16390 SCHEMA - s1 o\n3348; 0 16392 TABLE DATA s1 t o\n3350; 0 0 BLOBS - BLOBS \n3349; 2613 16404 BLOB - 16404 o\n3359; 0 0 ACL - LARGE OBJECT 16404 o\n1; 0 0 SEQUENCE SET s1 q o\n";
        assert_eq!(
            schema_entries(list),
            "7; 2615 16390 SCHEMA - s1 o\n3349; 2613 16404 BLOB - 16404 o\n3359; 0 0 ACL - LARGE OBJECT 16404 o\n"
        );
    }
}
