//! What a stored object is: dbstash's compression on the outside, the dump format inside.
//! Decided from the record (`compression`, `dump_format`), falling back to the object's chained
//! extension (`.sql.gz`, `.dump.zst`, `.archive.gz`, …) when the record does not say.

use super::RestoreError;
use crate::catalog::record::Record;
use crate::engine::payload;
pub use crate::engine::payload::Payload;
use crate::engine::Codec;
use crate::model::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub codec: Codec,
    pub payload: Payload,
    /// The stored bytes are an age file (decrypted before decompression).
    pub encrypted: bool,
}

impl Layout {
    /// Bytes the decompressed stream starts with, when the format has a signature.
    pub fn magic(&self) -> Option<&'static [u8]> {
        self.payload.magic()
    }
}

fn codec_named(name: &str) -> Option<Codec> {
    match name {
        "none" => Some(Codec::None),
        "gzip" | "gz" => Some(Codec::Gzip { level: 6 }),
        "zstd" | "zst" => Some(Codec::Zstd { level: 3 }),
        _ => None,
    }
}

/// The layout of object `name` of an `engine` job, with its record when there is one.
pub fn detect(engine: Engine, name: &str, record: Option<&Record>) -> Result<Layout, RestoreError> {
    if record.is_some_and(|r| r.mode == "directory") {
        return Ok(Layout {
            codec: Codec::None,
            payload: Payload::Directory,
            encrypted: false,
        });
    }
    // The full extension chain: the record's, else the name's.
    let chain = record
        .map(|r| r.dump_format.as_str())
        .filter(|f| f.starts_with('.'))
        .map(str::to_string)
        .unwrap_or_else(|| extension_chain(name));
    let mut exts: Vec<&str> = chain.split('.').filter(|s| !s.is_empty()).collect();
    // age is always the outermost layer.
    let encrypted = record.is_some_and(|r| r.encryption == "age") || exts.last() == Some(&"age");
    if exts.last() == Some(&"age") {
        exts.pop();
    }
    let codec = match record.and_then(|r| codec_named(&r.compression)) {
        Some(c) => {
            // Strip dbstash's own suffix (if present) so the rest is the dump format.
            if c != Codec::None && exts.last().is_some_and(|e| codec_named(e) == Some(c)) {
                exts.pop();
            }
            c
        }
        None => {
            // Only the name to go by: the outermost .gz/.zst is dbstash's, except mongodump's own
            // `.archive.gz` (mongo `compress: native`).
            let mongo_native = payload::tool_compressed(engine, &exts);
            match exts.last().and_then(|e| codec_named(e)) {
                Some(c) if c != Codec::None && !mongo_native => {
                    exts.pop();
                    c
                }
                _ => Codec::None,
            }
        }
    };
    let Some(payload) = payload::of(engine, &exts) else {
        return Err(super::Unsupported::UnknownFormat {
            name: name.to_string(),
            chain: chain.to_string(),
            engine: engine.as_str(),
        }
        .into());
    };
    Ok(Layout {
        codec,
        payload,
        encrypted,
    })
}

/// `.sql.gz` from `app-2024-01-01-020000.sql.gz`: every dot-suffix made of letters/digits after
/// the last character that cannot be part of an extension.
fn extension_chain(name: &str) -> String {
    let known = |ext: &str| {
        payload::EXTENSIONS.contains(&ext) || ["tar", "gz", "zst", "age"].contains(&ext)
    };
    let mut chain = String::new();
    let mut rest = name;
    while let Some((stem, ext)) = rest.rsplit_once('.') {
        if !known(ext) {
            break;
        }
        chain = format!(".{ext}{chain}");
        rest = stem;
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(compression: &str, dump_format: &str) -> Record {
        Record {
            format: "dbstash-record/1".into(),
            job: "j".into(),
            engine: "x".into(),
            database: "d".into(),
            object: "o".into(),
            run_id: "r".into(),
            started: jiff::Timestamp::UNIX_EPOCH,
            finished: jiff::Timestamp::UNIX_EPOCH,
            size: 0,
            raw_size: 0,
            sha256: String::new(),
            compression: compression.into(),
            dump_format: dump_format.into(),
            files: Vec::new(),
            mode: "stream".into(),
            encryption: "none".into(),
            tool_versions: Default::default(),
            dbstash_version: "0".into(),
            host: "h".into(),
            charset: None,
            base_wal: None,
            binlog: None,
        }
    }

    #[test]
    fn record_decides_and_disambiguates_mongo() {
        let l = detect(
            Engine::Mongo,
            "a.archive.gz",
            Some(&rec("gzip", ".archive.gz")),
        )
        .unwrap();
        assert_eq!(l.codec.name(), "gzip");
        assert_eq!(l.payload, Payload::MongoArchive { gzip: false });
        let l = detect(
            Engine::Mongo,
            "a.archive.gz",
            Some(&rec("none", ".archive.gz")),
        )
        .unwrap();
        assert_eq!(l.codec, Codec::None);
        assert_eq!(l.payload, Payload::MongoArchive { gzip: true });
        let l = detect(
            Engine::Postgres,
            "a.dump.zst",
            Some(&rec("zstd", ".dump.zst")),
        )
        .unwrap();
        assert_eq!(l.codec.name(), "zstd");
        assert_eq!(l.payload, Payload::PgCustom);
    }

    #[test]
    fn falls_back_to_the_chained_extension() {
        let cases = [
            (
                Engine::Postgres,
                "app-2024-01-01.sql.gz",
                "gzip",
                Payload::Sql,
            ),
            (
                Engine::Postgres,
                "app.v2.dump.zst",
                "zstd",
                Payload::PgCustom,
            ),
            (Engine::Postgres, "app.sql", "none", Payload::Sql),
            (Engine::Mariadb, "shop.sql.zst", "zstd", Payload::Sql),
            (Engine::Redis, "redis0.rdb.gz", "gzip", Payload::Rdb),
            (Engine::Sqlite, "app.sqlite3", "none", Payload::SqliteFile),
            (Engine::Sqlite, "app.sql.gz", "gzip", Payload::Sql),
            (
                Engine::Mongo,
                "m.archive.gz",
                "none",
                Payload::MongoArchive { gzip: true },
            ),
            (
                Engine::Mongo,
                "m.archive.zst",
                "zstd",
                Payload::MongoArchive { gzip: false },
            ),
            (Engine::Postgres, "x.tar", "none", Payload::Tar),
        ];
        for (engine, name, codec, payload) in cases {
            // An unknown compression in the record counts as no information.
            for r in [None, Some(rec("xz?", ""))] {
                let l = detect(engine, name, r.as_ref()).unwrap();
                assert_eq!((l.codec.name(), l.payload), (codec, payload), "{name}");
            }
        }
    }

    #[test]
    fn unknown_format_is_an_error() {
        assert!(detect(Engine::Postgres, "x.bin", None).is_err());
        assert!(detect(Engine::Redis, "x.sql", None).is_err());
    }
}
