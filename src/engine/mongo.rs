//! mongodump --archive. The connection URI (with the password) is written to a 0600 YAML file
//! passed as `--config`, mongodump's documented way to keep credentials out of argv.

use crate::manifest::model::{Compress, Job};
use crate::plan::command::{CommandSpec, PrivateFile, RUN_DIR};
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
    c.arg("--archive");
    if job.compress == Compress::Native {
        c.arg("--gzip");
    }
    super::push_user_args(&mut c, job);
    c
}
