//! `dump_args` that would make a dump tool write somewhere other than the stream dbstash reads
//! (a file, a folder), or change the format dbstash names and restores the backup by.
//!
//! Each tool's own option parser decides what an argument means, so each is read the way its tool
//! reads it: pg_dump (glibc `getopt_long`: clustered short flags `-xf/p`, attached values `-f/p`,
//! and any unambiguous prefix of a long option, `--fil=/p`), mysqldump/mariadb-dump (MySQL's
//! `my_getopt`: the same, plus `_` for `-` and a `--loose-` prefix), mongodump (go-flags: no
//! prefixes), redis-cli (exact words) and sqlite3 (`-opt` or `--opt`). When in doubt an argument is
//! refused: the tool would have rejected a mangled option anyway, while a missed one writes the
//! whole database, world-readable, to a path nobody cleans up.

use crate::model::Engine;

/// Why a dump argument is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Index in `dump_args` of the argument that carries the option.
    pub index: usize,
    pub reason: &'static str,
}

/// The wording `validate` has always used (scripts and tests match it).
const WRITES_TO_DISK: &str =
    "makes the dump tool write to disk; stream mode needs its output on stdout";
const SETS_FORMAT: &str =
    "sets the dump format, which dbstash chooses (it names, records and restores the backup by it): use `format:` or `mode:`";
const RUNS_COMMANDS: &str =
    "runs sqlite3 commands, which could send the dump elsewhere (`.output`, `.once`)";

/// How one tool reads its command line.
struct Tool {
    /// Short options that take a value (attached, `-Ufoo`, or the next argument).
    short_with_value: &'static str,
    /// Short options whose value can only be attached (`-pSECRET`); never the next argument.
    short_optional_value: &'static str,
    /// Long options (full names) that take a value as the next argument when written without `=`.
    long_with_value: &'static [&'static str],
    /// Single-dash long options (`-cmd`), as sqlite3 takes them.
    single_dash_long: bool,
    /// Short option letter, or long name, → the verdict on its value.
    judge: fn(Opt<'_>, Option<&str>) -> Option<&'static str>,
}

/// An option as written: `Short('f')` or `Long("file")` (the name as given, maybe abbreviated).
#[derive(Debug, Clone, Copy)]
enum Opt<'a> {
    Short(char),
    Long(&'a str),
}

/// Is `given` the name `full`, or (for tools that allow it) a prefix of it? Over-matching is safe:
/// a prefix shared with other options is ambiguous, and the tool refuses it anyway.
fn names(given: &str, full: &str, prefixes: bool) -> bool {
    !given.is_empty() && (given == full || (prefixes && full.starts_with(given)))
}

const PG_DUMP: Tool = Tool {
    short_with_value: "deEfFhjnNpStTUZ",
    short_optional_value: "",
    long_with_value: &[
        "dbname",
        "extension",
        "file",
        "format",
        "host",
        "jobs",
        "port",
        "schema",
        "exclude-schema",
        "superuser",
        "table",
        "exclude-table",
        "username",
        "compress",
        "encoding",
        "exclude-table-data",
        "extra-float-digits",
        "lock-wait-timeout",
        "role",
        "section",
        "snapshot",
        "rows-per-insert",
        "include-foreign-data",
    ],
    single_dash_long: false,
    judge: |opt, value| match opt {
        Opt::Short('f') => Some(WRITES_TO_DISK),
        Opt::Long(n) if names(n, "file", true) => Some(WRITES_TO_DISK),
        Opt::Short('F') => Some(pg_format(value)),
        Opt::Long(n) if names(n, "format", true) => Some(pg_format(value)),
        _ => None,
    },
};

/// pg_dump reads `d`, `directory` (any case) as the directory format: a folder on disk.
fn pg_format(value: Option<&str>) -> &'static str {
    match value.map(str::to_ascii_lowercase).as_deref() {
        Some("d" | "directory") => WRITES_TO_DISK,
        _ => SETS_FORMAT,
    }
}

const MYSQLDUMP: Tool = Tool {
    short_with_value: "hPrSTuw",
    short_optional_value: "p#",
    long_with_value: &[
        "host",
        "port",
        "result-file",
        "socket",
        "tab",
        "user",
        "where",
        "log-error",
        "ignore-table",
        "default-character-set",
        "character-sets-dir",
        "fields-terminated-by",
        "fields-enclosed-by",
        "fields-optionally-enclosed-by",
        "fields-escaped-by",
        "lines-terminated-by",
        "protocol",
        "compatible",
    ],
    single_dash_long: false,
    judge: |opt, _| match opt {
        Opt::Short('r') => Some(WRITES_TO_DISK),
        Opt::Short('T') => Some(WRITES_TO_DISK),
        Opt::Long(n) if names(n, "result-file", true) || names(n, "log-error", true) => {
            Some(WRITES_TO_DISK)
        }
        Opt::Long(n) if names(n, "tab", true) => Some(WRITES_TO_DISK),
        _ => None,
    },
};

const MONGODUMP: Tool = Tool {
    short_with_value: "hpudcqoj",
    short_optional_value: "",
    long_with_value: &[
        "host",
        "port",
        "username",
        "password",
        "db",
        "collection",
        "query",
        "out",
        "numParallelCollections",
        "authenticationDatabase",
        "authenticationMechanism",
        "readPreference",
        "uri",
        "config",
        "queryFile",
        "excludeCollection",
        "excludeCollectionsWithPrefix",
    ],
    single_dash_long: false,
    judge: |opt, value| match opt {
        Opt::Short('o') => Some(WRITES_TO_DISK),
        Opt::Long("out") => Some(WRITES_TO_DISK),
        // `--archive` alone (or `=-`) is the stream; `--archive=FILE` writes FILE.
        Opt::Long("archive") if value.is_some_and(|v| v != "-") => Some(WRITES_TO_DISK),
        _ => None,
    },
};

const REDIS_CLI: Tool = Tool {
    short_with_value: "",
    short_optional_value: "",
    long_with_value: &[],
    single_dash_long: false,
    judge: |opt, value| match opt {
        Opt::Long("rdb") if value != Some("-") => Some(WRITES_TO_DISK),
        Opt::Long("functions-rdb") => Some(WRITES_TO_DISK),
        _ => None,
    },
};

const SQLITE3: Tool = Tool {
    short_with_value: "",
    short_optional_value: "",
    long_with_value: &["cmd", "init", "separator", "newline", "nullvalue", "vfs"],
    single_dash_long: true,
    judge: |opt, _| match opt {
        Opt::Long("cmd" | "init") => Some(RUNS_COMMANDS),
        _ => None,
    },
};

fn tool(engine: Engine) -> &'static Tool {
    match engine {
        Engine::Postgres | Engine::Postgis => &PG_DUMP,
        Engine::Mysql | Engine::Mariadb => &MYSQLDUMP,
        Engine::Mongo => &MONGODUMP,
        Engine::Redis => &REDIS_CLI,
        Engine::Sqlite => &SQLITE3,
    }
}

/// The first argument of `args` that would make `engine`'s dump tool write to disk or pick its own
/// format, read the way that tool reads its command line.
pub fn disk_writing_dump_arg(engine: Engine, args: &[String]) -> Option<Refused> {
    let t = tool(engine);
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let next = args.get(i + 1).map(String::as_str);
        let refuse = |reason| Some(Refused { index: i, reason });
        if a == "--" {
            // Everything after is an operand (pg_dump then fails on "too many arguments").
            return None;
        }
        let long = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-').filter(|_| t.single_dash_long));
        if let Some(body) = long {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let name = canonical(engine, name);
            let takes_value = t.long_with_value.contains(&name.as_str());
            // redis-cli and go-flags take `--opt value`; getopt too for options with a value.
            let value = inline.or(if takes_value || t.long_with_value.is_empty() {
                next
            } else {
                None
            });
            if let Some(reason) = (t.judge)(Opt::Long(&name), value) {
                return refuse(reason);
            }
            i += if inline.is_none() && takes_value {
                2
            } else {
                1
            };
            continue;
        }
        if let Some(cluster) = a.strip_prefix('-').filter(|c| !c.is_empty()) {
            match short_cluster(t, cluster, next) {
                Cluster::Refused(reason) => return refuse(reason),
                Cluster::ValueIsNext => i += 2,
                Cluster::Done => i += 1,
            }
            continue;
        }
        i += 1; // an operand
    }
    None
}

enum Cluster {
    Refused(&'static str),
    /// The last letter takes a value and the next argument is it.
    ValueIsNext,
    Done,
}

/// `-xf/p`: flags one after another until a letter that takes a value, which takes the rest of
/// the word or, when nothing is left, the next argument.
fn short_cluster(t: &Tool, cluster: &str, next: Option<&str>) -> Cluster {
    if t.short_with_value.is_empty() && t.short_optional_value.is_empty() {
        return Cluster::Done;
    }
    for (at, c) in cluster.char_indices() {
        let rest = &cluster[at + c.len_utf8()..];
        let value = if rest.is_empty() { next } else { Some(rest) };
        if let Some(reason) = (t.judge)(Opt::Short(c), value) {
            return Cluster::Refused(reason);
        }
        if t.short_optional_value.contains(c) {
            return Cluster::Done;
        }
        if t.short_with_value.contains(c) {
            return if rest.is_empty() {
                Cluster::ValueIsNext
            } else {
                Cluster::Done
            };
        }
    }
    Cluster::Done
}

/// The option name as the tool compares it: my_getopt treats `_` as `-` and ignores `--loose-`
/// (and the boolean prefixes, stripped too: over-matching only refuses a nonsense option).
fn canonical(engine: Engine, name: &str) -> String {
    if !matches!(engine, Engine::Mysql | Engine::Mariadb) {
        return name.to_string();
    }
    let name = name.replace('_', "-");
    let mut n = name.as_str();
    for prefix in ["loose-", "skip-", "enable-", "disable-", "maximum-"] {
        if let Some(rest) = n.strip_prefix(prefix) {
            n = rest;
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_format_is_named_as_a_folder() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for a in [&["-Fd"][..], &["-F", "directory"], &["--forma=D"]] {
            let r = disk_writing_dump_arg(Engine::Postgres, &args(a)).unwrap();
            assert_eq!(r.reason, WRITES_TO_DISK, "{a:?}");
        }
        let r = disk_writing_dump_arg(Engine::Postgres, &args(&["-Fc"])).unwrap();
        assert_eq!(r.reason, SETS_FORMAT);
    }

    fn refused(engine: Engine, args: &[&str]) -> Option<usize> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        disk_writing_dump_arg(engine, &args).map(|r| r.index)
    }

    #[test]
    fn pg_dump_spellings_of_file_and_format() {
        let pg = Engine::Postgres;
        for args in [
            &["-f/p"][..],
            &["-f", "/p"],
            &["-xf", "/p"],
            &["-xf/p"],
            &["-vxOf/p"],
            &["--file=/p"],
            &["--file", "/p"],
            &["--fil=/p"],
            &["--fi", "/p"],
            &["-Fd"],
            &["-F", "d"],
            &["-Fdirectory"],
            &["-xFd"],
            &["--format=directory"],
            &["--format", "d"],
            &["--forma=d"],
            &["--for=D"],
            &["-Ft"],
            &["-Fc"],
            &["--format=tar"],
        ] {
            assert_eq!(refused(pg, args), Some(0), "{args:?}");
        }
        assert_eq!(refused(Engine::Postgis, &["--clean", "-f/p"]), Some(1));
    }

    #[test]
    fn pg_dump_values_and_harmless_options_pass() {
        let pg = Engine::Postgres;
        for args in [
            &["--exclude-table=audit_log"][..],
            &["--clean", "--if-exists"],
            &["--jobs=2"],
            // The value of -t/-U/--table is a pattern or a name, not an option.
            &["-t", "-f"],
            &["-tfoo"],
            &["-Ufrank"],
            &["--table", "-f"],
            &["-Z5"],
            &["--no-owner", "-x"],
            &["--", "-f"],
        ] {
            assert_eq!(refused(pg, args), None, "{args:?}");
        }
    }

    #[test]
    fn mysqldump_spellings() {
        for engine in [Engine::Mysql, Engine::Mariadb] {
            for args in [
                &["-T/dir"][..],
                &["-T", "/dir"],
                &["-vT/dir"],
                &["--tab=/dir"],
                &["--tab", "/dir"],
                &["--loose-tab=/dir"],
                &["-r/f"],
                &["-r", "/f"],
                &["-vr/f"],
                &["--result-file=/f"],
                &["--result_file=/f"],
                &["--resul=/f"],
                &["--log-error=/f"],
            ] {
                assert_eq!(refused(engine, args), Some(0), "{args:?}");
            }
            for args in [
                &["--single-transaction"][..],
                &["--tables", "t1"],
                &["-u", "-r"],
                &["-pr"],
                &["--where", "-T"],
                &["--ignore-table=db.t"],
            ] {
                assert_eq!(refused(engine, args), None, "{args:?}");
            }
        }
    }

    #[test]
    fn mongodump_and_redis_and_sqlite() {
        let m = Engine::Mongo;
        for args in [
            &["--out=/d"][..],
            &["--out", "/d"],
            &["-o", "/d"],
            &["-o/d"],
            &["-vo", "/d"],
            &["--archive=/f"],
        ] {
            assert_eq!(refused(m, args), Some(0), "{args:?}");
        }
        for args in [
            &["--archive"][..],
            &["--archive=-"],
            &["--gzip", "-d", "-o"],
        ] {
            assert_eq!(refused(m, args), None, "{args:?}");
        }
        assert_eq!(refused(Engine::Redis, &["--rdb", "/f"]), Some(0));
        assert_eq!(refused(Engine::Redis, &["--functions-rdb", "/f"]), Some(0));
        assert_eq!(refused(Engine::Redis, &["--rdb", "-"]), None);
        assert_eq!(refused(Engine::Sqlite, &["-cmd", ".output /f"]), Some(0));
        assert_eq!(refused(Engine::Sqlite, &["--init", "/f"]), Some(0));
        assert_eq!(refused(Engine::Sqlite, &["-bail"]), None);
    }
}
