//! Connection URIs, per engine: which schemes each engine takes, Go's MySQL DSN
//! (`user:pass@tcp(host:port)/db`), and a plain SQLite path. Errors never quote the URI (it is a
//! secret).

use crate::model::{Connection, Engine};
use crate::secret::Secret;
use percent_encoding::percent_decode_str;

/// Why a connection URI does not parse; never quotes the URI.
#[derive(Debug, thiserror::Error)]
pub enum UriError {
    #[error("the SQLite URI has no file path")]
    NoSqlitePath,
    #[error("the connection URI is not valid ({0})")]
    Invalid(url::ParseError),
    /// `scheme` is ` scheme `NAME`` for a well-known scheme, else empty.
    #[error("the connection URI{scheme} does not fit engine {engine} (expected {expected})")]
    WrongScheme {
        scheme: String,
        engine: &'static str,
        expected: String,
    },
    #[error("the Go MySQL DSN has no `tcp(...)` address")]
    GoNoAddress,
    #[error("the Go MySQL DSN has an unclosed `(`")]
    GoUnclosed,
    #[error("the Go MySQL DSN has an invalid port")]
    GoBadPort,
    #[error("unsupported protocol `{protocol}` in the Go MySQL DSN")]
    GoProtocol { protocol: String },
}

/// A URI of `engine`'s form that parses, for `render` to stand in for a secret it cannot read.
pub fn placeholder(engine: Engine) -> &'static str {
    match engine {
        Engine::Postgres | Engine::Postgis => "postgresql://placeholder@placeholder/placeholder",
        Engine::Mysql | Engine::Mariadb => "mysql://placeholder@placeholder/placeholder",
        Engine::Mongo => "mongodb://placeholder/placeholder",
        Engine::Redis => "redis://placeholder:6379/0",
        Engine::Sqlite => "/placeholder.db",
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

fn schemes(engine: Engine) -> &'static [&'static str] {
    match engine {
        Engine::Postgres | Engine::Postgis => &["postgresql", "postgres"],
        Engine::Mysql | Engine::Mariadb => &["mysql", "mariadb"],
        Engine::Mongo => &["mongodb", "mongodb+srv"],
        Engine::Redis => &["redis", "rediss"],
        Engine::Sqlite => &["sqlite"],
    }
}

/// Parse `uri` for `engine`.
pub fn parse_uri(engine: Engine, uri: &str) -> Result<Connection, UriError> {
    let uri = uri.trim();
    if engine == Engine::Sqlite {
        let path = uri
            .strip_prefix("sqlite://")
            .or_else(|| uri.strip_prefix("sqlite:"))
            .unwrap_or(uri);
        if path.is_empty() {
            return Err(UriError::NoSqlitePath);
        }
        return Ok(Connection {
            database: Some(decode(path)),
            ..Default::default()
        });
    }
    if engine.is_mysql()
        && (uri.contains("@tcp(") || uri.contains("@unix(") || uri.starts_with("tcp("))
    {
        return parse_go_dsn(uri);
    }
    let url = url::Url::parse(uri).map_err(UriError::Invalid)?;
    if !schemes(engine).contains(&url.scheme()) {
        // Name the scheme only when it is a well-known one: in `user:password@host` the
        // "scheme" is a user name, and in a mangled URI it could be anything.
        let known = [
            "postgresql",
            "postgres",
            "mysql",
            "mariadb",
            "mongodb",
            "mongodb+srv",
            "redis",
            "rediss",
            "sqlite",
            "http",
            "https",
            "file",
        ];
        let scheme = if known.contains(&url.scheme()) {
            format!(" scheme `{}`", url.scheme())
        } else {
            String::new()
        };
        return Err(UriError::WrongScheme {
            scheme,
            engine: engine.as_str(),
            expected: schemes(engine)
                .iter()
                .map(|s| format!("{s}://"))
                .collect::<Vec<_>>()
                .join(" or "),
        });
    }
    let mut c = Connection {
        srv: url.scheme() == "mongodb+srv",
        tls: url.scheme() == "rediss",
        ..Default::default()
    };
    if !url.username().is_empty() {
        c.user = Some(decode(url.username()));
    }
    if let Some(p) = url.password() {
        c.password = Some(Secret::new(decode(p)));
    }
    c.host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string());
    c.port = url.port();
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() {
        c.database = Some(decode(path));
    }
    for (k, v) in url.query_pairs() {
        let (k, v) = (k.into_owned(), v.into_owned());
        match k.as_str() {
            // libpq accepts these in the query too.
            "host" if c.host.is_none() => c.host = Some(v),
            "port" if c.port.is_none() => c.port = v.parse().ok(),
            "user" if c.user.is_none() => c.user = Some(v),
            "password" => c.password = Some(Secret::new(v)),
            "dbname" if c.database.is_none() => c.database = Some(v),
            "tls" | "ssl" if v == "true" => {
                c.tls = true;
                c.params.insert(k, v);
            }
            _ => {
                c.params.insert(k, v);
            }
        }
    }
    Ok(c)
}

/// Go's MySQL DSN: `[user[:pass]@]tcp(host[:port])/db[?params]` (or `unix(/path)`).
fn parse_go_dsn(dsn: &str) -> Result<Connection, UriError> {
    let dsn = dsn.strip_prefix("mysql://").unwrap_or(dsn);
    let mut c = Connection::default();
    let (creds, rest) = match dsn.rfind(")/").and_then(|close| dsn[..close].rfind('@')) {
        Some(at) => (Some(&dsn[..at]), &dsn[at + 1..]),
        None => (None, dsn),
    };
    if let Some(creds) = creds {
        match creds.split_once(':') {
            Some((u, p)) => {
                c.user = Some(decode(u));
                c.password = Some(Secret::new(decode(p)));
            }
            None => c.user = Some(decode(creds)),
        }
    }
    let open = rest.find('(').ok_or(UriError::GoNoAddress)?;
    let close = rest[open..]
        .find(')')
        .map(|c| c + open)
        .ok_or(UriError::GoUnclosed)?;
    let proto = &rest[..open];
    let addr = &rest[open + 1..close];
    match proto {
        "tcp" => match addr.rsplit_once(':') {
            Some((h, p)) => {
                c.host = Some(h.trim_start_matches('[').trim_end_matches(']').to_string());
                c.port = Some(p.parse().map_err(|_| UriError::GoBadPort)?);
            }
            None if !addr.is_empty() => c.host = Some(addr.to_string()),
            None => {}
        },
        "unix" => {
            c.params.insert("socket".into(), addr.to_string());
        }
        other => {
            return Err(UriError::GoProtocol {
                protocol: other.to_string(),
            })
        }
    }
    let tail = rest[close + 1..].trim_start_matches('/');
    let (db, query) = tail.split_once('?').unwrap_or((tail, ""));
    if !db.is_empty() {
        c.database = Some(decode(db));
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "tls" && v == "true" {
            c.tls = true;
        }
        c.params.insert(decode(k), decode(v));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_uri_with_encoded_password_and_tls() {
        let c = parse_uri(
            Engine::Postgres,
            "postgresql://app:p%40ss%2Fw@db.example:6543/shop?sslmode=verify-full&sslrootcert=/ca.pem",
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("app"));
        assert_eq!(c.password.unwrap().expose(), "p@ss/w");
        assert_eq!(c.host.as_deref(), Some("db.example"));
        assert_eq!(c.port, Some(6543));
        assert_eq!(c.database.as_deref(), Some("shop"));
        assert_eq!(c.params["sslmode"], "verify-full");
        assert_eq!(c.params["sslrootcert"], "/ca.pem");
    }

    #[test]
    fn every_placeholder_parses_for_its_engine_and_aliases_name_engines() {
        for e in Engine::ALL {
            assert!(parse_uri(e, placeholder(e)).is_ok(), "{e:?}");
            assert_eq!(Engine::from_name(e.as_str()), Some(e));
        }
        assert_eq!(Engine::from_name("pg"), Some(Engine::Postgres));
        assert_eq!(Engine::from_name("mongodb"), Some(Engine::Mongo));
        assert_eq!(Engine::from_name("oracle"), None);
    }

    #[test]
    fn go_dsn() {
        let c = parse_uri(
            Engine::Mysql,
            "root:se:cret@tcp(10.0.0.5:3307)/app?tls=true",
        )
        .unwrap();
        assert_eq!(c.user.as_deref(), Some("root"));
        assert_eq!(c.password.unwrap().expose(), "se:cret");
        assert_eq!(c.host.as_deref(), Some("10.0.0.5"));
        assert_eq!(c.port, Some(3307));
        assert_eq!(c.database.as_deref(), Some("app"));
        assert!(c.tls);
    }

    #[test]
    fn redis_mongo_sqlite() {
        let r = parse_uri(Engine::Redis, "rediss://:pw@cache:6380/2").unwrap();
        assert!(r.tls);
        assert_eq!(r.password.unwrap().expose(), "pw");
        assert_eq!(r.database.as_deref(), Some("2"));
        let m = parse_uri(
            Engine::Mongo,
            "mongodb+srv://u:p@cluster0.example/app?authSource=admin",
        )
        .unwrap();
        assert!(m.srv);
        assert_eq!(m.params["authSource"], "admin");
        let s = parse_uri(Engine::Sqlite, "sqlite:///var/lib/app.db").unwrap();
        assert_eq!(s.database.as_deref(), Some("/var/lib/app.db"));
        let p = parse_uri(Engine::Sqlite, "./app.db").unwrap();
        assert_eq!(p.database.as_deref(), Some("./app.db"));
    }

    #[test]
    fn malformed_go_dsns_are_errors_not_panics() {
        for dsn in [
            "a)/@tcp(h",
            "u:p@tcp(h:3306/db",
            "u:p@tcp)(",
            ")@tcp(",
            "@tcp()/",
            "u:p@tcp(h:99999999)/db",
        ] {
            let _ = parse_uri(Engine::Mysql, dsn);
        }
        assert!(parse_uri(Engine::Mysql, "a)/@tcp(h").is_err());
        let c = parse_uri(Engine::Mysql, "@tcp()/db").unwrap();
        assert_eq!(c.database.as_deref(), Some("db"));
    }

    #[test]
    fn an_unknown_scheme_is_not_quoted() {
        let e = parse_uri(Engine::Postgres, "hunter2:x@db/app")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn wrong_scheme_names_the_engine_not_the_secret() {
        let e = parse_uri(Engine::Postgres, "mysql://u:topsecret@h/db")
            .unwrap_err()
            .to_string();
        assert!(e.contains("postgresql://"), "{e}");
        assert!(!e.contains("topsecret"));
    }
}
