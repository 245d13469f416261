//! pg_dump: plain SQL by default, custom format (`-Fc -Z0`, compressed by dbstash) with `native`.
//! The password travels in PGPASSWORD on the child only; TLS options become libpq env vars.

use crate::domain::command::{CommandSpec, EnvValue};
use crate::model::{Compress, DumpFormat, Job, Mode};

/// URI query options → the libpq environment variable that carries them.
pub const LIBPQ_PARAMS: &[(&str, &str)] = &[
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("sslcrl", "PGSSLCRL"),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("application_name", "PGAPPNAME"),
    ("options", "PGOPTIONS"),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
];

/// Connection flags and env shared by pg_dump, psql and pg_restore.
pub fn connect(c: &mut CommandSpec, job: &Job) {
    let conn = &job.connection;
    c.arg("--no-password");
    if let Some(h) = &conn.host {
        c.arg(format!("--host={h}"));
    }
    if let Some(p) = conn.port {
        c.arg(format!("--port={p}"));
    }
    if let Some(u) = &conn.user {
        c.arg(format!("--username={u}"));
    }
    if let Some(pw) = &conn.password {
        c.env("PGPASSWORD", EnvValue::Secret(pw.clone()));
    }
    for (param, var) in LIBPQ_PARAMS {
        if let Some(v) = conn.params.get(*param) {
            c.env(var, EnvValue::Plain(v.clone()));
        }
    }
    if !conn.params.contains_key("connect_timeout") {
        // An unreachable server should fail the run in seconds, not hang until the job timeout.
        c.env("PGCONNECT_TIMEOUT", EnvValue::Plain("30".into()));
    }
}

pub fn dump(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new("pg_dump");
    connect(&mut c, job);
    match (job.mode, job.format) {
        (Mode::Directory | Mode::Tar, _) => {
            // pg_dump writes the folder (in parallel with `--jobs` in dump_args); it compresses
            // each file itself only with `compress: native`.
            c.arg("--format=directory");
            if job.compress != Compress::Native {
                c.arg("--compress=0");
            }
            c.arg(format!("--file={}", super::dump_dir()));
        }
        (_, DumpFormat::Custom) => {
            c.arg("--format=custom");
            c.arg("--compress=0");
        }
        _ => {
            c.arg("--format=plain");
        }
    }
    super::push_user_args(&mut c, job);
    c.arg(dbname_arg(
        job.connection.database.as_deref().unwrap_or_default(),
    ));
    c
}

/// `pg_dumpall --globals-only`: roles and tablespaces (never passwords in argv: PGPASSWORD).
pub fn globals(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new("pg_dumpall");
    connect(&mut c, job);
    c.arg("--globals-only");
    c.arg(format!(
        "--database={}",
        job.connection.database.as_deref().unwrap_or(MAINTENANCE_DB)
    ));
    c
}

/// Where a connection goes when no database is named (listing, globals).
pub const MAINTENANCE_DB: &str = "postgres";

/// Every database that accepts connections, templates excluded, one per line.
pub fn list_databases(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new("psql");
    connect(&mut c, job);
    for flag in ["-X", "--no-align", "--tuples-only", "--set=ON_ERROR_STOP=1"] {
        c.arg(flag);
    }
    c.arg("--command=SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1");
    c.arg(dbname_arg(MAINTENANCE_DB));
    c
}

/// `--dbname=` value: the bare name, or a quoted conninfo string when the name would otherwise be
/// read as one (libpq expands a dbname containing `=` or starting with a URI prefix).
pub fn dbname_arg(name: &str) -> String {
    let needs_conninfo = name.contains('=')
        || name.starts_with("postgresql://")
        || name.starts_with("postgres://")
        || name.is_empty();
    if needs_conninfo {
        let escaped = name.replace('\\', "\\\\").replace('\'', "\\'");
        format!("--dbname=dbname='{escaped}'")
    } else {
        format!("--dbname={name}")
    }
}

/// Whether a restore recreates the backup's owners and privileges (GRANT/REVOKE, default
/// privileges, large-object ACLs), as a plain-format restore always does, or leaves everything
/// owned by the restoring role (`--no-owner`: for servers that do not have the backup's roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Owners {
    #[default]
    Keep,
    Skip,
}

/// Restore into `job`'s database (already retargeted by the caller): plain SQL through
/// `psql --single-transaction`, custom format through `pg_restore --single-transaction`.
/// The dump arrives on stdin; the password travels in PGPASSWORD as on the dump side.
/// `owners` applies to pg_restore only: plain SQL sets its owners in statements of its own.
pub fn restore(job: &Job, format: DumpFormat, owners: Owners) -> CommandSpec {
    let db = job.connection.database.clone().unwrap_or_default();
    let mut c = match format {
        DumpFormat::Custom => {
            let mut c = CommandSpec::new("pg_restore");
            connect(&mut c, job);
            if owners == Owners::Skip {
                c.arg("--no-owner").arg("--no-acl");
            }
            for flag in [
                "--clean",
                "--if-exists",
                "--single-transaction",
                "--exit-on-error",
            ] {
                c.arg(flag);
            }
            c
        }
        _ => {
            let mut c = CommandSpec::new("psql");
            connect(&mut c, job);
            for flag in [
                "-X",
                "--quiet",
                "--set=ON_ERROR_STOP=1",
                "--single-transaction",
            ] {
                c.arg(flag);
            }
            c
        }
    };
    for a in &job.restore_args {
        c.arg(a.clone());
    }
    c.arg(dbname_arg(&db));
    c
}

/// `pg_restore` reading an archive without a server: its table of contents (`--list`), or with
/// `use_list` the SQL of the entries that list selects (`--file=-`). `archive` is a custom-format
/// file or a directory-format folder; none means stdin.
pub fn archive_text(archive: Option<&str>, use_list: Option<&str>) -> CommandSpec {
    let mut c = CommandSpec::new("pg_restore");
    match use_list {
        None => c.arg("--list"),
        Some(l) => c.arg(format!("--use-list={l}")).arg("--file=-"),
    };
    if let Some(a) = archive {
        c.arg(a);
    }
    c
}

/// Every role of the server, for comparing with the roles a backup names.
pub const ROLES_SQL: &str = "SELECT rolname FROM pg_catalog.pg_roles ORDER BY 1;\n";

/// What a restore asks the target server before anything else, in one round trip: whether
/// `db` exists (`d` and the count) and every role (`r` and the name), one record each.
pub fn probe_sql(db: &str) -> String {
    format!(
        "SELECT 'd' || count(*) FROM pg_catalog.pg_database WHERE datname = {} UNION ALL SELECT 'r' || rolname FROM pg_catalog.pg_roles;\n",
        pg_text(db)
    )
}

/// The records of an [`admin`] psql's output.
pub fn records(out: &str) -> impl Iterator<Item = &str> {
    out.split('\u{1e}').map(|r| r.trim_end_matches('\n'))
}

/// psql for short administrative SQL read from stdin (unaligned, tuples only), connected to
/// `database` with the job's connection — or, for postgis, as `user` when given.
pub fn admin(job: &Job, database: &str, user: Option<&str>) -> CommandSpec {
    let mut j = job.clone();
    if let Some(u) = user {
        if j.connection.user.as_deref() != Some(u) {
            // Another role: its password is not ours to send (libpq's .pgpass or trust decide).
            j.connection.password = None;
        }
        j.connection.user = Some(u.to_string());
    }
    let mut c = CommandSpec::new("psql");
    connect(&mut c, &j);
    for flag in [
        "-X",
        "--quiet",
        "--no-align",
        "--tuples-only",
        "--set=ON_ERROR_STOP=1",
        "--field-separator=\u{1f}",
        "--record-separator=\u{1e}",
    ] {
        c.arg(flag);
    }
    c.arg(dbname_arg(database));
    c
}

/// A PostgreSQL identifier, double-quoted.
pub fn quote_pg_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL text value without any quoting rules to get wrong.
pub fn pg_text(value: &str) -> String {
    format!(
        "convert_from(decode('{}', 'hex'), 'UTF8')",
        hex::encode(value)
    )
}

/// Every user table's row count, as `schema.table` US rows RS (psql's admin field and record
/// separators), for drills.
pub const COUNTS_SQL: &str = "SELECT n.nspname || '.' || c.relname, \
     (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', n.nspname, c.relname), false, true, '')))[1]::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' \
     ORDER BY 1;\n";

/// [`COUNTS_SQL`]'s answer as `(schema.table, rows)`.
pub fn parse_counts(out: &str) -> Vec<(String, u64)> {
    out.split('\u{1e}')
        .filter_map(|rec| {
            let (name, rows) = rec.trim_matches('\n').split_once('\u{1f}')?;
            Some((name.to_string(), rows.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::load_str;

    #[test]
    fn pg_restore_keeps_owners_and_acls_unless_asked_not_to() {
        let text = "version: 1\nremotes: { l: { path: /tmp/x } }\njobs:\n  j: { remote: l, engine: postgres, uri: 'postgresql://u@h/db' }\n";
        let m = load_str(std::path::Path::new("t.yaml"), text, &|_| None, &|_| {
            Err(std::io::Error::other("no files"))
        })
        .unwrap_or_else(|e| panic!("{:?}", e.diagnostics()));
        let job = &m.jobs["j"];
        let skips = |c: &CommandSpec| {
            ["--no-owner", "--no-acl"]
                .iter()
                .filter(|f| c.args.iter().any(|a| a == *f))
                .count()
        };
        assert_eq!(skips(&restore(job, DumpFormat::Custom, Owners::Keep)), 0);
        assert_eq!(skips(&restore(job, DumpFormat::Custom, Owners::Skip)), 2);
        assert_eq!(skips(&restore(job, DumpFormat::Plain, Owners::Skip)), 0);
    }
}

/// Point-in-time recovery: the base backup and the WAL stream.
pub mod pitr {
    use super::connect;
    use crate::domain::command::{CommandSpec, RUN_DIR};
    use crate::model::Job;

    /// `pg_basebackup` of the whole cluster as one tar on stdout. `--wal-method=none`: the WAL it
    /// needs comes from the archive the stream keeps; more tablespaces than one make
    /// pg_basebackup refuse to write to stdout (its own clear error).
    pub fn base_backup(job: &Job) -> CommandSpec {
        let mut c = CommandSpec::new("pg_basebackup");
        connect(&mut c, job);
        for a in [
            "--format=tar",
            "--wal-method=none",
            "--pgdata=-",
            "--checkpoint=fast",
            "--label=dbstash",
        ] {
            c.arg(a);
        }
        c
    }

    /// `pg_verifybackup` on a restored data directory, checked against its `backup_manifest`.
    /// `parse_wal`: the WAL the backup needs is in its `pg_wal` (a restore `--at`); without it
    /// (`--no-parse-wal`) only the files are checked. Debian keeps the tool off `PATH`, in
    /// `/usr/lib/postgresql/N/bin`: the newest found there serves when `PATH` has none.
    pub fn verify_backup(dir: &std::path::Path, parse_wal: bool) -> Option<CommandSpec> {
        let program = tool_path("pg_verifybackup")?;
        let mut c = CommandSpec::new(program);
        if !parse_wal {
            c.arg("--no-parse-wal");
        }
        c.arg("--quiet");
        c.arg(dir.display().to_string());
        Some(c)
    }

    /// A PostgreSQL program on `PATH`, or in the newest `/usr/lib/postgresql/N/bin`.
    pub fn tool_path(name: &str) -> Option<String> {
        if let Some(paths) = std::env::var_os("PATH") {
            if let Some(p) = std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
            {
                return Some(p.display().to_string());
            }
        }
        let mut found: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                let p = e.path().join("bin").join(name);
                p.is_file().then_some((v, p))
            })
            .collect();
        found.sort();
        found.pop().map(|(_, p)| p.display().to_string())
    }

    /// `IDENTIFY_SYSTEM` over a physical replication connection: what `pg_receivewal` needs
    /// (a role with REPLICATION, a `replication` line in pg_hba.conf), checked without creating
    /// anything. Prints `systemid|timeline|xlogpos|dbname`.
    pub fn identify_system(job: &Job) -> CommandSpec {
        let mut c = CommandSpec::new("psql");
        connect(&mut c, job);
        for flag in [
            "-X",
            "--no-align",
            "--tuples-only",
            "--command=IDENTIFY_SYSTEM",
        ] {
            c.arg(flag);
        }
        let db = job
            .connection
            .database
            .as_deref()
            .unwrap_or(super::MAINTENANCE_DB);
        let escaped = db.replace('\\', "\\\\").replace('\'', "\\'");
        c.arg(format!("--dbname=dbname='{escaped}' replication=true"));
        c
    }

    /// Create the physical slot the stream reads from, if it is missing.
    pub fn create_slot(job: &Job, slot: &str) -> CommandSpec {
        let mut c = CommandSpec::new("pg_receivewal");
        connect(&mut c, job);
        c.arg(format!("--slot={slot}"));
        c.arg("--create-slot");
        c.arg("--if-not-exists");
        c
    }

    /// Stream WAL from `slot` into the stream's private folder (`{run_dir}`). `--no-loop`: a lost
    /// connection ends the process, and dbstash restarts it with its own bounded backoff.
    pub fn receive(job: &Job, slot: &str) -> CommandSpec {
        let mut c = CommandSpec::new("pg_receivewal");
        connect(&mut c, job);
        c.arg(format!("--slot={slot}"));
        c.arg(format!("--directory={RUN_DIR}"));
        c.arg("--no-loop");
        c
    }
}

/// What a base backup says about its WAL: read from `backup_label` and `backup_manifest` as
/// pg_basebackup's tar passes through the relay (nothing of the tar is kept but these two
/// members' useful bytes), recorded with the backup so `restore --at` and `verify` need not
/// unpack it to know where it starts and ends.
pub mod base {
    use jiff::Timestamp;
    use serde::{Deserialize, Serialize};

    /// The base backup's WAL range, in the backup's record (`base_wal`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct BaseWal {
        /// `START WAL LOCATION` of backup_label, e.g. `0/2000028`.
        pub start_lsn: String,
        /// The first WAL segment the backup needs.
        pub start_segment: String,
        /// The manifest's `End-LSN`: recovery must replay at least this far to be consistent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub stop_lsn: Option<String>,
        /// `START TIMELINE` of backup_label.
        pub timeline: u32,
        /// `START TIME` of backup_label, as the server wrote it (in its log_timezone).
        pub start_time: String,
        /// When the backup's end reached dbstash (the manifest follows the server's stop).
        pub stop_time: Timestamp,
        /// The tar holds `backup_manifest`: `pg_verifybackup` can check a restored folder.
        pub manifest: bool,
    }

    /// How much of `backup_label` is kept (it is a few hundred bytes).
    const LABEL_MAX: usize = 64 * 1024;
    /// How much of the end of `backup_manifest` is kept: its `WAL-Ranges` and checksum.
    const MANIFEST_TAIL: usize = 16 * 1024;
    const BLOCK: usize = 512;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Member {
        Label,
        Manifest,
        Other,
    }

    /// A tar reader that sees every byte once and keeps only `backup_label` and the end of
    /// `backup_manifest`: bounded memory whatever the cluster's size.
    #[derive(Debug, Default)]
    pub struct TarScan {
        header: Vec<u8>,
        /// Bytes of the current member's data (and padding) still to come.
        remaining: u64,
        /// Bytes of that which are data (the rest is padding to 512).
        data_left: u64,
        member: Option<Member>,
        label: Vec<u8>,
        manifest: Vec<u8>,
        has_manifest: bool,
        stop_time: Option<Timestamp>,
        broken: bool,
    }

    fn octal(field: &[u8]) -> Option<u64> {
        if field.first().is_some_and(|b| b & 0x80 != 0) {
            // GNU base-256 size: big-endian in the remaining bytes.
            return Some(
                field[1..]
                    .iter()
                    .fold(0u64, |n, b| n.wrapping_shl(8) | u64::from(*b)),
            );
        }
        let s = std::str::from_utf8(field).ok()?;
        let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
        if s.is_empty() {
            return Some(0);
        }
        u64::from_str_radix(s, 8).ok()
    }

    fn name(h: &[u8]) -> &[u8] {
        let n = &h[..100];
        &n[..n.iter().position(|b| *b == 0).unwrap_or(n.len())]
    }

    impl TarScan {
        pub fn new() -> Self {
            Self::default()
        }

        /// The next bytes of the tar, in order.
        pub fn feed(&mut self, mut buf: &[u8]) {
            while !buf.is_empty() && !self.broken {
                if self.remaining > 0 {
                    let n = buf.len().min(self.remaining as usize);
                    let data = n.min(self.data_left as usize);
                    self.take(&buf[..data]);
                    self.data_left -= data as u64;
                    self.remaining -= n as u64;
                    buf = &buf[n..];
                    continue;
                }
                let need = BLOCK - self.header.len();
                let n = need.min(buf.len());
                self.header.extend_from_slice(&buf[..n]);
                buf = &buf[n..];
                if self.header.len() == BLOCK {
                    self.header_done();
                }
            }
        }

        fn take(&mut self, data: &[u8]) {
            match self.member {
                Some(Member::Label) => {
                    let room = LABEL_MAX.saturating_sub(self.label.len());
                    self.label.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(Member::Manifest) => {
                    self.manifest.extend_from_slice(data);
                    if self.manifest.len() > 2 * MANIFEST_TAIL {
                        let cut = self.manifest.len() - MANIFEST_TAIL;
                        self.manifest.drain(..cut);
                    }
                }
                _ => {}
            }
        }

        fn header_done(&mut self) {
            let h = std::mem::take(&mut self.header);
            if h.iter().all(|b| *b == 0) {
                // End-of-archive blocks: the backup's stream is over.
                self.member = None;
                self.stop_time.get_or_insert_with(Timestamp::now);
                return;
            }
            let Some(size) = octal(&h[124..136]) else {
                self.broken = true;
                return;
            };
            let kind = h[156];
            let member = match (kind, name(&h)) {
                (b'0' | 0, b"backup_label") => Member::Label,
                (b'0' | 0, b"backup_manifest") => {
                    self.has_manifest = true;
                    // The server sends the manifest after it has stopped the backup.
                    self.stop_time = Some(Timestamp::now());
                    Member::Manifest
                }
                _ => Member::Other,
            };
            self.member = Some(member);
            self.data_left = size;
            self.remaining = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        }

        /// What the tar said, when it held a readable `backup_label`.
        pub fn finish(self) -> Option<BaseWal> {
            let label = String::from_utf8_lossy(&self.label);
            let field = |key: &str| {
                label
                    .lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(|v| v.trim().to_string())
            };
            let start = field("START WAL LOCATION:")?;
            let (start_lsn, file) = start.split_once(" (file ")?;
            let start_segment = file.trim_end_matches(')').trim().to_string();
            let manifest = String::from_utf8_lossy(&self.manifest);
            Some(BaseWal {
                start_lsn: start_lsn.trim().to_string(),
                start_segment,
                stop_lsn: self
                    .has_manifest
                    .then(|| json_field(&manifest, "End-LSN"))
                    .flatten(),
                timeline: field("START TIMELINE:")?.parse().ok()?,
                start_time: field("START TIME:").unwrap_or_default(),
                stop_time: self.stop_time.unwrap_or_else(Timestamp::now),
                manifest: self.has_manifest,
            })
        }
    }

    /// The last `"KEY": "VALUE"` of a manifest's text (its WAL-Ranges come last).
    fn json_field(text: &str, key: &str) -> Option<String> {
        let at = text.rfind(&format!("\"{key}\""))?;
        let rest = &text[at + key.len() + 2..];
        let rest = rest.trim_start().strip_prefix(':')?.trim_start();
        let rest = rest.strip_prefix('"')?;
        Some(rest[..rest.find('"')?].to_string())
    }

    /// An LSN (`X/Y`) as a number.
    pub fn lsn(text: &str) -> Option<u64> {
        let (hi, lo) = text.split_once('/')?;
        Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
    }

    /// The segment holding byte `lsn` of timeline `tli`, for segments of `seg_size` bytes.
    pub fn segment_of(tli: u32, lsn: u64, seg_size: u64) -> String {
        let seg = lsn / seg_size;
        let per_log = 0x1_0000_0000 / seg_size;
        format!("{tli:08X}{:08X}{:08X}", seg / per_log, seg % per_log)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn member(name: &str, body: &[u8]) -> Vec<u8> {
            let mut h = tar::Header::new_ustar();
            h.set_path(name).unwrap();
            h.set_size(body.len() as u64);
            h.set_mode(0o600);
            h.set_cksum();
            let mut out = h.as_bytes().to_vec();
            out.extend_from_slice(body);
            out.resize(out.len().div_ceil(512) * 512, 0);
            out
        }

        #[test]
        fn label_and_manifest_are_read_from_a_tar_fed_in_odd_pieces() {
            let label = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\nBACKUP FROM: primary\nSTART TIME: 2026-12-07 04:10:00 UTC\nLABEL: dbstash\nSTART TIMELINE: 1\n";
            let filler = vec![7u8; 100_000];
            let manifest = format!(
                "{{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [{}],\n\"WAL-Ranges\": [\n{{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000138\" }}\n],\n\"Manifest-Checksum\": \"abc\"}}\n",
                "{ \"Path\": \"x\" },".repeat(5000)
            );
            let mut tar = member("backup_label", label.as_bytes());
            tar.extend(member("base/1/1259", &filler));
            tar.extend(member("backup_manifest", manifest.as_bytes()));
            tar.extend(vec![0u8; 1024]);
            let mut scan = TarScan::new();
            for piece in tar.chunks(333) {
                scan.feed(piece);
            }
            assert!(scan.manifest.len() <= 2 * MANIFEST_TAIL);
            let w = scan.finish().expect("label");
            assert_eq!(w.start_lsn, "0/2000028");
            assert_eq!(w.start_segment, "000000010000000000000002");
            assert_eq!(w.stop_lsn.as_deref(), Some("0/2000138"));
            assert_eq!(w.timeline, 1);
            assert_eq!(w.start_time, "2026-12-07 04:10:00 UTC");
            assert!(w.manifest);
        }

        #[test]
        fn no_label_no_range() {
            let mut scan = TarScan::new();
            scan.feed(&member("PG_VERSION", b"15\n"));
            assert_eq!(scan.finish(), None);
        }

        #[test]
        fn segments_of_any_size() {
            let l = lsn("1/2000028").unwrap();
            assert_eq!(segment_of(1, l, 16 << 20), "000000010000000100000002");
            assert_eq!(
                segment_of(2, lsn("0/3FFFFF").unwrap(), 1 << 20),
                "000000020000000000000003"
            );
            assert_eq!(segment_of(1, l, 1 << 20), "000000010000000100000020");
        }
    }
}
