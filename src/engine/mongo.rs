//! mongodump --archive. The connection URI (with the password) is written to a 0600 YAML file
//! passed as `--config`, mongodump's documented way to keep credentials out of argv.

use crate::domain::command::{CommandSpec, PrivateFile, RUN_DIR};
use crate::model::{Compress, Job, Mode};
use crate::secret::Secret;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

pub const CONFIG_FILE: &str = "mongo.yaml";

/// Rebuild a URI from the connection parts (percent-encoding credentials).
pub fn uri(job: &Job) -> Secret {
    let c = &job.connection;
    let scheme = if c.srv { "mongodb+srv" } else { "mongodb" };
    let mut auth = String::new();
    if let Some(u) = &c.user {
        auth.push_str(&utf8_percent_encode(u, NON_ALPHANUMERIC).to_string());
        if let Some(p) = &c.password {
            auth.push(':');
            auth.push_str(&utf8_percent_encode(p.expose(), NON_ALPHANUMERIC).to_string());
        }
        auth.push('@');
    }
    let host = c.host.clone().unwrap_or_else(|| "127.0.0.1".into());
    let hostport = match (c.srv, c.port) {
        (false, Some(p)) => format!("{host}:{p}"),
        _ => host,
    };
    let mut params: Vec<String> = c
        .params
        .iter()
        .filter(|(k, _)| k.as_str() != "authSource")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if let Some(src) = &job.auth_source {
        params.push(format!("authSource={src}"));
    } else if c.user.is_some() {
        params.push("authSource=admin".into());
    }
    let query = if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    };
    let db = c.database.clone().unwrap_or_default();
    Secret::new(format!("{scheme}://{auth}{hostport}/{db}{query}"))
}

pub fn config_file(job: &Job) -> PrivateFile {
    let u = uri(job);
    let escaped = u.expose().replace('\\', "\\\\").replace('"', "\\\"");
    PrivateFile {
        name: CONFIG_FILE.into(),
        contents: Secret::new(format!("uri: \"{escaped}\"\n")),
    }
}

pub fn dump(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new("mongodump");
    c.arg(format!("--config={RUN_DIR}/{CONFIG_FILE}"));
    c.files.push(config_file(job));
    match job.mode {
        Mode::Stream => {
            c.arg("--archive");
        }
        Mode::Directory | Mode::Tar => {
            c.arg(format!("--out={}", super::dump_dir()));
        }
    }
    if job.compress == Compress::Native {
        c.arg("--gzip");
    }
    super::push_user_args(&mut c, job);
    c
}

/// Databases that are the server's own, never backed up by `database: "*"`.
pub const SYSTEM_DATABASES: &[&str] = &["admin", "config", "local"];

/// listDatabases through mongosh, one name per line (the URI lives in the 0600 script).
pub fn list_databases(job: &Job) -> CommandSpec {
    let mut j = job.clone();
    j.connection.database = None;
    let lit = serde_json::to_string(uri(&j).expose()).unwrap_or_else(|_| "\"\"".into());
    shell(Secret::new(format!(
        "const db = connect({lit});\ndb.adminCommand({{ listDatabases: 1, nameOnly: true }}).databases.forEach(function (d) {{ print(d.name); }});\n"
    )))
}

/// Escape a database name for mongorestore's namespace patterns (`*` and `\` are special).
fn ns_pattern(db: &str) -> String {
    let escaped = db.replace('\\', "\\\\").replace('*', "\\*");
    format!("{escaped}.*")
}

/// `mongorestore --archive --drop` reading the archive from stdin. The URI (without a database:
/// the namespaces come from the archive) is in the 0600 `--config` file. When the target database
/// differs from the one the archive holds, its namespaces are renamed with `--nsFrom/--nsTo`.
pub fn restore(job: &Job, source_db: Option<&str>, gzip: bool) -> CommandSpec {
    let mut c = CommandSpec::new("mongorestore");
    let mut j = job.clone();
    j.connection.database = None;
    c.arg(format!("--config={RUN_DIR}/{CONFIG_FILE}"));
    c.files.push(config_file(&j));
    c.arg("--archive");
    c.arg("--drop");
    if gzip {
        c.arg("--gzip");
    }
    let target = job.connection.database.as_deref().filter(|d| !d.is_empty());
    if let Some(src) = source_db.filter(|d| !d.is_empty()) {
        c.arg(format!("--nsInclude={}", ns_pattern(src)));
        if let Some(dst) = target.filter(|d| *d != src) {
            c.arg(format!("--nsFrom={}", ns_pattern(src)));
            c.arg(format!("--nsTo={}", ns_pattern(dst)));
        }
    }
    for a in &job.restore_args {
        c.arg(a.clone());
    }
    c
}

pub const SHELL_SCRIPT: &str = "dbstash-mongo.js";

/// `mongosh` running a 0600 script file (the script carries the URI, so argv never does).
pub fn shell(script: Secret) -> CommandSpec {
    let mut c = CommandSpec::new("mongosh");
    c.arg("--nodb").arg("--quiet");
    c.arg(format!("{RUN_DIR}/{SHELL_SCRIPT}"));
    c.files.push(PrivateFile {
        name: SHELL_SCRIPT.into(),
        contents: script,
    });
    c
}

/// A mongosh script connected to the job's database (the URI is inside the 0600 script file).
pub fn script(job: &Job, body: &str) -> Secret {
    let uri = uri(job);
    let lit = serde_json::to_string(uri.expose()).unwrap_or_else(|_| "\"\"".into());
    Secret::new(format!("const db = connect({lit});\n{body}\n"))
}

/// Collections and document counts, as `name TAB count` lines.
pub const COUNTS_JS: &str = "db.getCollectionNames().sort().forEach(function (n) { print(n + '\\t' + db.getCollection(n).countDocuments({})); });";

/// [`COUNTS_JS`]'s answer as `(collection, documents)`.
pub fn parse_counts(out: &str) -> Vec<(String, u64)> {
    out.lines()
        .filter_map(|l| {
            let (n, c) = l.rsplit_once('\t')?;
            Some((n.to_string(), c.trim().parse().ok()?))
        })
        .collect()
}

/// The first line of [`collections_js`]' answer: an answer without it (a mongosh that printed
/// nothing) proves nothing about the database.
const LISTED: &str = "dbstash-collections";

/// The database's collections (`listCollections`), after a count line.
pub fn collections_js() -> String {
    format!(
        "const names = db.getCollectionNames();\nprint('{LISTED} ' + names.length);\nnames.forEach(function (n) {{ print(n); }});"
    )
}

/// `dbstash-collections N` then N names; `None` unless the count line is there and agrees.
pub fn parse_collections(out: &str) -> Option<Vec<String>> {
    let mut lines = out.lines().skip_while(|l| !l.starts_with(LISTED));
    let n: usize = lines.next()?.strip_prefix(LISTED)?.trim().parse().ok()?;
    let names: Vec<String> = lines.take(n).map(str::to_string).collect();
    (names.len() == n).then_some(names)
}
