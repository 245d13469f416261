//! Point-in-time recovery for MariaDB/MySQL: the binlog position a dump records, the binlog
//! stream (`mariadb-binlog --read-from-remote-server --raw --stop-never`), binlog file names, and
//! the replay of archived binlog files into a restored database.

use super::mysql::{admin, connect, program};
use crate::domain::command::{CommandSpec, EnvValue, RUN_DIR};
use crate::model::{Engine, Job};
use serde::{Deserialize, Serialize};

/// The dump flag that writes the snapshot's binlog position as a comment in the dump's first
/// lines (`-- CHANGE MASTER TO MASTER_LOG_FILE='…', MASTER_LOG_POS=…;`). MySQL 8.0.26+ calls it
/// `--source-data` but still takes `--master-data` (with a deprecation warning on stderr).
pub const POSITION_FLAG: &str = "--master-data=2";

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

/// `SHOW MASTER STATUS`: the server's current binlog file; refused without `REPLICATION CLIENT`
/// (MariaDB: `BINLOG MONITOR`), empty when the server has no binlog.
pub fn master_status(job: &Job) -> CommandSpec {
    let mut c = admin(job);
    c.arg("--execute=SHOW MASTER STATUS");
    c
}

/// The first column of [`master_status`]'s answer.
pub fn parse_master_status(out: &str) -> Option<String> {
    let file = out.lines().next()?.split('\t').next()?.trim();
    is_binlog_name(file).then(|| file.to_string())
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
            parse_master_status("binlog.000003\t342\t\t\n").as_deref(),
            Some("binlog.000003")
        );
        assert_eq!(parse_master_status(""), None);
    }
}
