//! Point-in-time recovery for MariaDB/MySQL: the binlog position a dump records, the binlog
//! stream (`mariadb-binlog --read-from-remote-server --raw --stop-never`), binlog file names, and
//! the replay of archived binlog files into a restored database.

use super::mysql::{admin, connect, program};
use crate::domain::command::{CommandSpec, EnvValue, RUN_DIR};
use crate::model::{Engine, Job};
use serde::{Deserialize, Serialize};

/// The dump flag that writes the snapshot's binlog position as a comment in the dump's first
/// lines (`-- CHANGE MASTER TO MASTER_LOG_FILE='…', MASTER_LOG_POS=…;`). The plan holds this
/// one; a MySQL 8.0.26+ `mysqldump` gets [`SOURCE_DATA_FLAG`] instead at run time
/// ([`position_flag`]).
pub const POSITION_FLAG: &str = "--master-data=2";
/// MySQL 8.0.26+'s name of [`POSITION_FLAG`] (`--master-data` is deprecated there), writing
/// `-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='…', SOURCE_LOG_POS=…;`.
pub const SOURCE_DATA_FLAG: &str = "--source-data=2";

/// A dump client's `--version` line: whether it is MariaDB's, and its version numbers.
/// `mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)` → (false, 8.0.36);
/// `mysqldump  Ver 10.19 Distrib 10.11.6-MariaDB, for debian-linux-gnu` → (true, 10.11.6);
/// `mysqldump  Ver 10.13 Distrib 5.7.44, for Linux` → (false, 5.7.44).
pub fn client_version(line: &str) -> Option<(bool, Vec<u32>)> {
    let mariadb = line.contains("MariaDB");
    let mut words = line.split_whitespace();
    let after = |words: &mut std::str::SplitWhitespace, key: &str| {
        words.find(|w| *w == key)?;
        words.next().map(str::to_string)
    };
    let raw = if line.contains(" Distrib ") {
        after(&mut words, "Distrib")?
    } else {
        after(&mut words, "Ver")?
    };
    let numbers: Vec<u32> = raw
        .trim_end_matches(',')
        .split(['.', '-'])
        .map_while(|p| p.parse().ok())
        .collect();
    (numbers.len() >= 2).then_some((mariadb, numbers))
}

/// The position flag for the dump client that said `version` (its `--version` line):
/// `--source-data=2` for MySQL's own `mysqldump` 8.0.26 and later, `--master-data=2` for every
/// other (MariaDB's, older MySQL's, or a client that did not say).
pub fn position_flag(version: Option<&str>) -> &'static str {
    match version.and_then(client_version) {
        Some((false, v)) if v.as_slice() >= [8, 0, 26].as_slice() => SOURCE_DATA_FLAG,
        _ => POSITION_FLAG,
    }
}

/// `dump` with [`position_flag`]'s choice for the client that said `version`; unchanged when it
/// keeps `--master-data=2` (or has no position flag: not a pitr job).
pub fn with_position_flag<'a>(
    dump: &'a CommandSpec,
    version: Option<&str>,
) -> std::borrow::Cow<'a, CommandSpec> {
    let flag = position_flag(version);
    if flag == POSITION_FLAG || !dump.args.iter().any(|a| a == POSITION_FLAG) {
        return std::borrow::Cow::Borrowed(dump);
    }
    let mut d = dump.clone();
    for a in &mut d.args {
        if a == POSITION_FLAG {
            *a = flag.to_string();
        }
    }
    std::borrow::Cow::Owned(d)
}

/// Placeholder in the stream command for the binlog file it starts from (known only at start).
pub const FIRST_FILE: &str = "{binlog_file}";

/// Where the binlog of the server stood at a dump's snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub position: u64,
    /// MariaDB: `gtid_slave_pos` matching the position (`-- SET GLOBAL gtid_slave_pos='…';`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
}

/// `-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000002', MASTER_LOG_POS=1146;` (also the
/// `SOURCE_LOG_FILE`/`SOURCE_LOG_POS` spelling of MySQL 8.0.23+).
pub fn parse_position(line: &str) -> Option<(String, u64)> {
    let rest = line
        .trim()
        .strip_prefix("-- CHANGE MASTER TO ")
        .or_else(|| line.trim().strip_prefix("-- CHANGE REPLICATION SOURCE TO "))?;
    let mut file = None;
    let mut pos = None;
    for part in rest.trim_end_matches(';').split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "MASTER_LOG_FILE" | "SOURCE_LOG_FILE" => {
                let v = v.trim();
                let name = v.strip_prefix('\'')?.strip_suffix('\'')?;
                file = Some(name.to_string());
            }
            "MASTER_LOG_POS" | "SOURCE_LOG_POS" => pos = v.trim().parse().ok(),
            _ => {}
        }
    }
    let file = file.filter(|f| is_binlog_name(f))?;
    Some((file, pos?))
}

/// `-- SET GLOBAL gtid_slave_pos='0-1-5';`
pub fn parse_gtid(line: &str) -> Option<String> {
    let v = line
        .trim()
        .strip_prefix("-- SET GLOBAL gtid_slave_pos='")?
        .strip_suffix("';")?;
    v.chars()
        .all(|c| c.is_ascii_digit() || c == '-' || c == ',')
        .then(|| v.to_string())
}

/// Reads a dump as it passes and keeps the binlog position (and GTID) it states. The position
/// comes in the first few KiB (the head is scanned up to [`Self::LIMIT`] bytes, never further);
/// MariaDB writes the matching GTID near the end, so the last [`Self::TAIL`] bytes are kept and
/// read at the end ([`Self::finish`]).
#[derive(Debug, Default)]
pub struct PositionSniffer {
    seen: usize,
    line: Vec<u8>,
    found: Option<(String, u64)>,
    gtid: Option<String>,
    done: bool,
    tail: Vec<u8>,
}

impl PositionSniffer {
    pub const LIMIT: usize = 256 * 1024;
    pub const TAIL: usize = 64 * 1024;

    pub fn feed(&mut self, bytes: &[u8]) {
        self.keep_tail(bytes);
        if self.done {
            return;
        }
        for &b in bytes {
            self.seen += 1;
            if b == b'\n' {
                let line = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                if self.found.is_none() {
                    self.found = parse_position(&line);
                } else if let Some(g) = parse_gtid(&line) {
                    self.gtid = Some(g);
                    self.done = true;
                    return;
                }
                // The first table's data: no position comment comes after it.
                if line.starts_with("-- Dumping data for table") {
                    self.done = true;
                    return;
                }
            } else if self.line.len() < 4096 {
                self.line.push(b);
            }
            if self.seen >= Self::LIMIT {
                self.done = true;
                return;
            }
        }
    }

    fn keep_tail(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(Self::TAIL)..];
        self.tail.extend_from_slice(bytes);
        if self.tail.len() > 2 * Self::TAIL {
            let cut = self.tail.len() - Self::TAIL;
            self.tail.drain(..cut);
        }
    }

    /// The dump ended: read the GTID from its tail (when the head did not state one).
    pub fn finish(&mut self) {
        if self.gtid.is_none() {
            let text = String::from_utf8_lossy(&self.tail);
            self.gtid = text.lines().rev().find_map(parse_gtid);
        }
        self.tail = Vec::new();
    }

    pub fn position(&self) -> Option<BinlogPosition> {
        self.found.as_ref().map(|(file, position)| BinlogPosition {
            file: file.clone(),
            position: *position,
            gtid: self.gtid.clone(),
        })
    }
}

/// `BASE.NNNNNN`: a binlog file as the server names it (and as `--raw` writes it).
pub fn is_binlog_name(name: &str) -> bool {
    binlog_number(name).is_some()
}

/// The sequence number of a binlog file name (`binlog.000012` → 12).
pub fn binlog_number(name: &str) -> Option<u64> {
    let (base, n) = name.rsplit_once('.')?;
    let base_ok = !base.is_empty()
        && !base.starts_with('.')
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (base_ok && n.len() >= 6 && n.bytes().all(|b| b.is_ascii_digit()))
        .then(|| n.parse().ok())
        .flatten()
}

/// Sort key of binlog file names: base name, then number (not text: `.999999` < `.1000000`).
pub fn order_key(name: &str) -> (String, u64) {
    let base = name.rsplit_once('.').map_or(name, |(b, _)| b).to_string();
    (base, binlog_number(name).unwrap_or(0))
}

/// MySQL 8.2+'s name of `SHOW MASTER STATUS`, which MySQL 8.4 removed.
pub const BINARY_LOG_STATUS: &str = "SHOW BINARY LOG STATUS";
/// Every MariaDB's and every MySQL's before 8.4.
pub const MASTER_STATUS: &str = "SHOW MASTER STATUS";

/// The statement asked first: MySQL's new name (a server before 8.2 refuses it as a syntax
/// error, and [`status_fallback`] asks again the old way); MariaDB knows only the old one.
pub fn status_statement(engine: Engine) -> &'static str {
    match engine {
        Engine::Mysql => BINARY_LOG_STATUS,
        _ => MASTER_STATUS,
    }
}

/// [`status_statement`]: the server's current binlog file and position; refused without
/// `REPLICATION CLIENT` (MariaDB: `BINLOG MONITOR`), empty when the server has no binlog.
pub fn master_status(job: &Job) -> CommandSpec {
    let mut c = admin(job);
    c.arg(format!("--execute={}", status_statement(job.engine)));
    c
}

/// The same query as `SHOW MASTER STATUS`, when the server refused `SHOW BINARY LOG STATUS` as a
/// syntax error (`ERROR 1064`: MySQL before 8.2, or a MariaDB server behind `engine: mysql`).
/// None for any other failure (a missing grant is reported as it is).
pub fn status_fallback(spec: &CommandSpec, stderr: &str) -> Option<CommandSpec> {
    let new = format!("--execute={BINARY_LOG_STATUS}");
    if !stderr.contains("ERROR 1064") || !spec.args.contains(&new) {
        return None;
    }
    let mut c = spec.clone();
    for a in &mut c.args {
        if *a == new {
            *a = format!("--execute={MASTER_STATUS}");
        }
    }
    Some(c)
}

/// The first two columns of [`master_status`]'s answer: file and position.
pub fn parse_master_status(out: &str) -> Option<(String, u64)> {
    let mut cols = out.lines().next()?.split('\t');
    let file = cols.next()?.trim();
    let position = cols.next()?.trim().parse().ok()?;
    is_binlog_name(file).then(|| (file.to_string(), position))
}

/// `SHOW BINARY LOGS`: every binlog file the server keeps and its size (the current one's is its
/// position). Same grant as [`master_status`].
pub fn binary_logs(job: &Job) -> CommandSpec {
    let mut c = admin(job);
    c.arg("--execute=SHOW BINARY LOGS");
    c
}

/// [`binary_logs`]'s answer: `name\tsize` lines (MySQL adds an `Encrypted` column).
pub fn parse_binary_logs(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let mut cols = l.split('\t');
            let name = cols.next()?.trim();
            let size = cols.next()?.trim().parse().ok()?;
            is_binlog_name(name).then(|| (name.to_string(), size))
        })
        .collect()
}

/// The archive lag in bytes: what the server wrote that the archive does not hold yet. That is
/// the size of every server file after `archived` (the newest archived file), the current one's
/// up to its position; before any file is archived, of every file from `from` (the file the
/// stream started at) on. Files of another base name do not count. None when neither is known,
/// or the server listed no file.
pub fn unarchived_bytes(
    server: &[(String, u64)],
    archived: Option<&str>,
    from: Option<&str>,
) -> Option<u64> {
    let (base, first) = match (archived, from) {
        (Some(a), _) => {
            let (b, n) = order_key(a);
            (b, n + 1)
        }
        (None, Some(f)) => order_key(f),
        (None, None) => return None,
    };
    if server.is_empty() {
        return None;
    }
    Some(
        server
            .iter()
            .filter(|(name, _)| {
                let (b, n) = order_key(name);
                b == base && n >= first
            })
            .map(|(_, size)| size)
            .sum(),
    )
}

/// `SELECT @@GLOBAL.log_bin`: 1 when the server writes a binary log (any user may ask).
pub fn log_bin(job: &Job) -> CommandSpec {
    let mut c = admin(job);
    c.arg("--execute=SELECT @@GLOBAL.log_bin");
    c
}

/// A short, harmless read of the binlog the way the stream reads it (`COM_BINLOG_DUMP`, which
/// needs `REPLICATION SLAVE`): the first event of `file` only, to stdout. It registers no replica
/// id, so a running stream is not disturbed.
pub fn read_probe(job: &Job, file: &str) -> CommandSpec {
    let mut c = CommandSpec::new(program(job.engine, "mariadb-binlog", "mysqlbinlog"));
    connect(&mut c, job);
    c.arg("--read-from-remote-server");
    c.arg("--stop-position=4");
    c.arg(file.to_string());
    c
}

/// The server id the job's binlog reader connects with: a hash of the job's name (FNV-1a), in
/// 2^30 … 2^31 - 1, far from the small ids replicas are usually given, and the same on every start.
pub fn reader_server_id(job: &str) -> u32 {
    let hash = job.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    0x4000_0000 | (hash & 0x3fff_ffff)
}

/// The binlog stream: every file from `{binlog_file}` on, written as-is into the stream's
/// private folder (`{run_dir}`), following the server's rotations until the connection ends.
pub fn stream(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new(program(job.engine, "mariadb-binlog", "mysqlbinlog"));
    connect(&mut c, job);
    for a in ["--read-from-remote-server", "--raw", "--stop-never"] {
        c.arg(a);
    }
    // A replica's id, one per job: the server drops a binlog reader when another connects with
    // its id, and both tools default to one id (65535), so two jobs on one server would take
    // turns going down.
    let id = reader_server_id(&job.name);
    c.arg(match job.engine {
        Engine::Mysql => format!("--connection-server-id={id}"),
        _ => format!("--stop-never-slave-server-id={id}"),
    });
    c.arg(format!("--result-file={RUN_DIR}/"));
    c.arg(FIRST_FILE);
    c
}

/// `mariadb-binlog` reading archived `files` (local paths, in order) from `start` in the first
/// one up to `stop` (`YYYY-MM-DD HH:MM:SS`, UTC: the command runs with `TZ=UTC`), only the
/// events of `source`, renamed to `target`. MariaDB filters on the name before the rewrite,
/// MySQL after it.
pub fn replay(
    engine: Engine,
    start: u64,
    stop: Option<&str>,
    source: &str,
    target: &str,
    files: &[String],
) -> CommandSpec {
    let mut c = CommandSpec::new(program(engine, "mariadb-binlog", "mysqlbinlog"));
    c.env("TZ", EnvValue::Plain("UTC".into()));
    c.arg(format!("--start-position={start}"));
    if let Some(t) = stop {
        c.arg(format!("--stop-datetime={t}"));
    }
    let filter = if engine == Engine::Mariadb {
        source
    } else {
        target
    };
    c.arg(format!("--database={filter}"));
    if source != target {
        c.arg(format!("--rewrite-db={source}->{target}"));
    }
    // Absolute paths (never read as options).
    for f in files {
        c.arg(f.clone());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_job_reads_the_binlog_with_its_own_stable_server_id() {
        let (a, b) = (reader_server_id("app"), reader_server_id("other"));
        assert_ne!(a, b);
        assert_eq!(a, reader_server_id("app"), "the same id on every start");
        for id in [
            a,
            b,
            reader_server_id(""),
            reader_server_id(&"x".repeat(500)),
        ] {
            assert!((1 << 30..1 << 31).contains(&id), "{id}");
        }
    }

    #[test]
    fn position_comment_of_mariadb_and_mysql() {
        assert_eq!(
            parse_position(
                "-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000002', MASTER_LOG_POS=1146;"
            ),
            Some(("binlog.000002".into(), 1146))
        );
        assert_eq!(
            parse_position("-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='mysql-bin.000010', SOURCE_LOG_POS=157;"),
            Some(("mysql-bin.000010".into(), 157))
        );
        assert_eq!(
            parse_position("CHANGE MASTER TO MASTER_LOG_FILE='b.000001', MASTER_LOG_POS=4;"),
            None
        );
        assert_eq!(
            parse_position("-- CHANGE MASTER TO MASTER_LOG_FILE='../x', MASTER_LOG_POS=4;"),
            None
        );
        assert_eq!(
            parse_position("-- CHANGE MASTER TO MASTER_LOG_FILE='b.000001';"),
            None
        );
        assert_eq!(
            parse_gtid("-- SET GLOBAL gtid_slave_pos='0-1-5';").as_deref(),
            Some("0-1-5")
        );
        assert_eq!(parse_gtid("-- SET GLOBAL gtid_slave_pos='x'; DROP';"), None);
    }

    #[test]
    fn sniffer_reads_the_head_across_chunk_boundaries() {
        let dump = "-- MariaDB dump\n--\n-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000002', MASTER_LOG_POS=1146;\n\n-- SET GLOBAL gtid_slave_pos='0-1-5';\nCREATE TABLE t (id int);\n";
        let mut s = PositionSniffer::default();
        for chunk in dump.as_bytes().chunks(7) {
            s.feed(chunk);
        }
        assert_eq!(
            s.position(),
            Some(BinlogPosition {
                file: "binlog.000002".into(),
                position: 1146,
                gtid: Some("0-1-5".into())
            })
        );
        let mut late = PositionSniffer::default();
        late.feed(b"-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000003', MASTER_LOG_POS=9;\n-- Dumping data for table `t`\n");
        late.feed(&vec![b'x'; PositionSniffer::TAIL * 3]);
        late.feed(b"\n-- SET GLOBAL gtid_slave_pos='0-1-17';\n-- Dump completed\n");
        assert_eq!(late.position().and_then(|p| p.gtid), None);
        late.finish();
        assert_eq!(
            late.position().and_then(|p| p.gtid).as_deref(),
            Some("0-1-17")
        );
        let mut none = PositionSniffer::default();
        none.feed(b"-- Dumping data for table `t`\n-- CHANGE MASTER TO MASTER_LOG_FILE='b.000001', MASTER_LOG_POS=4;\n");
        assert_eq!(none.position(), None);
    }

    #[test]
    fn mysqldump_8_0_26_and_later_gets_source_data_every_other_client_master_data() {
        let mysql = |v: &str| {
            format!("mysqldump  Ver {v} for Linux on x86_64 (MySQL Community Server - GPL)")
        };
        for (line, flag) in [
            (mysql("8.0.26"), SOURCE_DATA_FLAG),
            (mysql("8.0.36"), SOURCE_DATA_FLAG),
            (mysql("8.4.0"), SOURCE_DATA_FLAG),
            (mysql("9.1.0"), SOURCE_DATA_FLAG),
            (mysql("8.0.25"), POSITION_FLAG),
            (
                "mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)".into(),
                POSITION_FLAG,
            ),
            (
                "mysqldump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)"
                    .into(),
                POSITION_FLAG,
            ),
            (
                "mariadb-dump from 11.8.2-MariaDB, client 10.19 for debian-linux-gnu (x86_64)"
                    .into(),
                POSITION_FLAG,
            ),
            ("".into(), POSITION_FLAG),
            ("garbage".into(), POSITION_FLAG),
        ] {
            assert_eq!(position_flag(Some(&line)), flag, "{line}");
        }
        assert_eq!(position_flag(None), POSITION_FLAG);
        assert_eq!(
            client_version("mysqldump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu"),
            Some((true, vec![10, 11, 19]))
        );
        assert_eq!(
            client_version("mysqldump  Ver 8.0.36-0ubuntu0.22.04.1 for Linux on x86_64"),
            Some((false, vec![8, 0, 36]))
        );
        // Only a dump that has the flag gets it swapped; the rest of argv stays as it was.
        let mut dump = CommandSpec::new("mysqldump".to_string());
        for a in ["--single-transaction", POSITION_FLAG, "--", "shop"] {
            dump.arg(a);
        }
        let new = mysql("8.0.36");
        let swapped = with_position_flag(&dump, Some(&new));
        assert_eq!(
            swapped.args,
            ["--single-transaction", SOURCE_DATA_FLAG, "--", "shop"]
        );
        let old = mysql("8.0.20");
        assert!(matches!(
            with_position_flag(&dump, Some(&old)),
            std::borrow::Cow::Borrowed(_)
        ));
        // And the position such a dump writes is read as well.
        let mut s = PositionSniffer::default();
        s.feed(b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Position to start replication or point-in-time recovery from\n--\n\n-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='binlog.000007', SOURCE_LOG_POS=157;\n\n--\n-- Table structure for table `t`\n");
        assert_eq!(
            s.position().map(|p| (p.file, p.position)),
            Some(("binlog.000007".into(), 157))
        );
    }

    #[test]
    fn mysql_asks_show_binary_log_status_and_falls_back_only_on_a_syntax_error() {
        assert_eq!(status_statement(Engine::Mysql), BINARY_LOG_STATUS);
        assert_eq!(status_statement(Engine::Mariadb), MASTER_STATUS);
        let mut spec = CommandSpec::new("mysql".to_string());
        spec.arg("--batch");
        spec.arg(format!("--execute={BINARY_LOG_STATUS}"));
        let old = status_fallback(
            &spec,
            "ERROR 1064 (42000) at line 1: You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near 'BINARY LOG STATUS' at line 1",
        )
        .expect("a fallback");
        assert_eq!(old.args, ["--batch", "--execute=SHOW MASTER STATUS"]);
        // A missing grant is not a syntax error: reported as it is, never asked twice.
        assert!(status_fallback(
            &spec,
            "ERROR 1227 (42000) at line 1: Access denied; you need (at least one of) the SUPER, REPLICATION CLIENT privilege(s) for this operation"
        )
        .is_none());
        // Already the old statement: nothing to fall back to.
        assert!(status_fallback(&old, "ERROR 1064 (42000)").is_none());
    }

    #[test]
    fn unarchived_bytes_count_every_server_file_past_the_archive() {
        let server = parse_binary_logs(
            "binlog.000001\t1000\nbinlog.000002\t16777300\tNo\nbinlog.000003\t5000\n",
        );
        assert_eq!(server.len(), 3);
        // The previous file archived: the current one's position.
        assert_eq!(
            unarchived_bytes(&server, Some("binlog.000002"), None),
            Some(5000)
        );
        // Two files behind: the whole of the one in between, too.
        assert_eq!(
            unarchived_bytes(&server, Some("binlog.000001"), Some("binlog.000001")),
            Some(16_782_300)
        );
        // Nothing archived yet: from the stream's first file on.
        assert_eq!(
            unarchived_bytes(&server, None, Some("binlog.000002")),
            Some(16_782_300)
        );
        // The newest file archived (the server has not written since the rotation).
        assert_eq!(
            unarchived_bytes(&server, Some("binlog.000003"), None),
            Some(0)
        );
        assert_eq!(unarchived_bytes(&server, None, None), None);
        assert_eq!(unarchived_bytes(&[], Some("binlog.000002"), None), None);
        // Another base name (the server's log-bin was renamed) does not count.
        assert_eq!(
            unarchived_bytes(&server, Some("other.000001"), None),
            Some(0)
        );
        assert!(parse_binary_logs("Log_name\tFile_size\n").is_empty());
    }

    #[test]
    fn binlog_names_and_their_order() {
        assert_eq!(binlog_number("binlog.000012"), Some(12));
        assert_eq!(binlog_number("mysql-bin.1000000"), Some(1_000_000));
        assert!(!is_binlog_name("client.cnf"));
        assert!(!is_binlog_name("binlog.index"));
        assert!(!is_binlog_name(".000001"));
        assert!(!is_binlog_name("binlog.0001"));
        let mut v = vec!["b.1000000", "b.999999", "b.000002"];
        v.sort_by_key(|n| order_key(n));
        assert_eq!(v, ["b.000002", "b.999999", "b.1000000"]);
        assert_eq!(
            parse_master_status("binlog.000003\t342\t\t\n"),
            Some(("binlog.000003".into(), 342))
        );
        assert_eq!(parse_master_status(""), None);
    }
}
