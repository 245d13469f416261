//! What each engine supports, as data: the manifest's semantic layer asks here instead of
//! matching on engines itself, so adding an engine (or a mode to one) is one table row.

use crate::model::{Compress, DumpFormat, Engine};

/// One engine's capabilities, as far as a job's keys are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// The port a connection without one uses; `None` for file databases.
    pub default_port: Option<u16>,
    /// The database is a file path (sqlite), not a name on a server.
    pub file_database: bool,
    /// A job must name its database (there is no server-wide dump to fall back on).
    pub needs_database_name: bool,
    /// The server has databases to list: `database: "*"` or a list of databases.
    pub multi_database: bool,
    /// The dump tool can write a folder (`pg_dump -Fd`, `mongodump --out`): modes tar/directory.
    pub folder_dump: bool,
    /// The dump tool compresses by itself: `compress: native`.
    pub native_compress: bool,
    /// The `format:` values the engine accepts; empty when it has no choice.
    pub formats: &'static [DumpFormat],
    /// The format without `format:`.
    pub default_format: DumpFormat,
    /// The format `compress: native` means (postgres: the custom archive), if it fixes one.
    pub native_format: Option<DumpFormat>,
    /// `globals: true` (server-wide roles and tablespaces).
    pub globals: bool,
    /// Connections take a password.
    pub passwords: bool,
    /// `auth_source` (the database that holds the user).
    pub auth_source: bool,
    /// `admin_user` (a superuser for extension setup on restore).
    pub admin_user: bool,
    /// `verify.no_owner` (the drill restores without the backup's owners).
    pub no_owner: bool,
}

const NONE: Caps = Caps {
    default_port: None,
    file_database: false,
    needs_database_name: false,
    multi_database: false,
    folder_dump: false,
    native_compress: false,
    formats: &[],
    default_format: DumpFormat::Plain,
    native_format: None,
    globals: false,
    passwords: true,
    auth_source: false,
    admin_user: false,
    no_owner: false,
};

const POSTGRES: Caps = Caps {
    default_port: Some(5432),
    needs_database_name: true,
    multi_database: true,
    folder_dump: true,
    native_compress: true,
    formats: &[DumpFormat::Plain, DumpFormat::Custom],
    native_format: Some(DumpFormat::Custom),
    globals: true,
    no_owner: true,
    ..NONE
};

const MYSQL: Caps = Caps {
    default_port: Some(3306),
    needs_database_name: true,
    multi_database: true,
    ..NONE
};

/// The capabilities of `engine`.
pub fn caps(engine: Engine) -> Caps {
    match engine {
        Engine::Postgres => POSTGRES,
        Engine::Postgis => Caps {
            admin_user: true,
            ..POSTGRES
        },
        Engine::Mysql | Engine::Mariadb => MYSQL,
        Engine::Mongo => Caps {
            default_port: Some(27017),
            multi_database: true,
            folder_dump: true,
            native_compress: true,
            auth_source: true,
            ..NONE
        },
        Engine::Redis => Caps {
            default_port: Some(6379),
            ..NONE
        },
        Engine::Sqlite => Caps {
            file_database: true,
            formats: &[DumpFormat::Snapshot, DumpFormat::Sql],
            default_format: DumpFormat::Snapshot,
            passwords: false,
            ..NONE
        },
    }
}

impl Caps {
    /// The dump format for `format:` (if set) and `compress:`; `None` when the engine does not
    /// take the format asked for.
    pub fn format(&self, asked: Option<DumpFormat>, compress: Compress) -> Option<DumpFormat> {
        match asked {
            Some(f) => self.formats.contains(&f).then_some(f),
            None if compress == Compress::Native => {
                Some(self.native_format.unwrap_or(self.default_format))
            }
            None => Some(self.default_format),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Engine; 7] = Engine::ALL;

    #[test]
    fn default_ports() {
        assert_eq!(caps(Engine::Postgres).default_port, Some(5432));
        assert_eq!(caps(Engine::Postgis).default_port, Some(5432));
        assert_eq!(caps(Engine::Mariadb).default_port, Some(3306));
        assert_eq!(caps(Engine::Mongo).default_port, Some(27017));
        assert_eq!(caps(Engine::Redis).default_port, Some(6379));
        assert_eq!(caps(Engine::Sqlite).default_port, None);
    }

    #[test]
    fn folder_modes_only_where_the_tool_writes_folders() {
        let folder: Vec<Engine> = ALL.into_iter().filter(|e| caps(*e).folder_dump).collect();
        assert_eq!(folder, [Engine::Postgres, Engine::Postgis, Engine::Mongo]);
    }

    #[test]
    fn formats() {
        let pg = caps(Engine::Postgres);
        assert_eq!(pg.format(None, Compress::None), Some(DumpFormat::Plain));
        assert_eq!(pg.format(None, Compress::Native), Some(DumpFormat::Custom));
        assert_eq!(
            pg.format(Some(DumpFormat::Plain), Compress::Native),
            Some(DumpFormat::Plain)
        );
        assert_eq!(pg.format(Some(DumpFormat::Sql), Compress::None), None);
        let lite = caps(Engine::Sqlite);
        assert_eq!(
            lite.format(None, Compress::Gzip),
            Some(DumpFormat::Snapshot)
        );
        assert_eq!(
            lite.format(Some(DumpFormat::Sql), Compress::None),
            Some(DumpFormat::Sql)
        );
        assert_eq!(lite.format(Some(DumpFormat::Custom), Compress::None), None);
        let mongo = caps(Engine::Mongo);
        assert_eq!(
            mongo.format(None, Compress::Native),
            Some(DumpFormat::Plain)
        );
        assert_eq!(mongo.format(Some(DumpFormat::Plain), Compress::None), None);
    }

    #[test]
    fn keys_that_belong_to_one_engine() {
        let only = |f: fn(&Caps) -> bool| -> Vec<Engine> {
            ALL.into_iter().filter(|e| f(&caps(*e))).collect()
        };
        assert_eq!(only(|c| c.admin_user), [Engine::Postgis]);
        assert_eq!(only(|c| c.auth_source), [Engine::Mongo]);
        assert_eq!(only(|c| c.globals), [Engine::Postgres, Engine::Postgis]);
        assert_eq!(only(|c| !c.passwords), [Engine::Sqlite]);
        assert_eq!(
            only(|c| c.native_compress),
            [Engine::Postgres, Engine::Postgis, Engine::Mongo]
        );
    }
}
