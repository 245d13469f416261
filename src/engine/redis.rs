//! redis-cli --rdb -: the server's RDB snapshot on stdout; the password in REDISCLI_AUTH.

use crate::domain::command::{CommandSpec, EnvValue};
use crate::model::Job;

pub fn connect(c: &mut CommandSpec, job: &Job) {
    let conn = &job.connection;
    if let Some(h) = &conn.host {
        c.arg("-h").arg(h.clone());
    }
    if let Some(p) = conn.port {
        c.arg("-p").arg(p.to_string());
    }
    if let Some(u) = &conn.user {
        c.arg("--user").arg(u.clone());
    }
    if conn.tls {
        c.arg("--tls");
        for (param, flag) in [("cacert", "--cacert"), ("cert", "--cert"), ("key", "--key")] {
            if let Some(v) = conn.params.get(param) {
                c.arg(flag).arg(v.clone());
            }
        }
    }
    if let Some(pw) = &conn.password {
        c.env("REDISCLI_AUTH", EnvValue::Secret(pw.clone()));
    }
}

pub fn dump(job: &Job) -> CommandSpec {
    let mut c = CommandSpec::new("redis-cli");
    connect(&mut c, job);
    super::push_user_args(&mut c, job);
    c.arg("--rdb").arg("-");
    c
}
