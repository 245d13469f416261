//! Where a job's database is: host/port/user/password/database and options, from a URI
//! (parsed by `engine::uri`, which knows each engine's forms) or from discrete keys.

use crate::secret::Secret;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connection {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    /// Database name; for SQLite the database file path; for Redis the db number.
    pub database: Option<String>,
    /// Query options, e.g. `sslmode`, `sslrootcert`, `ssl-ca`, `tls`, `authSource`.
    pub params: BTreeMap<String, String>,
    /// `rediss://` or `tls=true`.
    pub tls: bool,
    /// `mongodb+srv://`.
    pub srv: bool,
}
