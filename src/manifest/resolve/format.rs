//! How a job dumps: `mode` (stream, or a folder as tar/directory), `compress` and its level,
//! the dump `format`, and the user's `dump_args` — each checked against what the engine's dump
//! tool can do (`crate::engine::caps`).

use super::job::JobScope;
use super::Ctx;
use crate::manifest::types::JobDoc;
use crate::model::*;

pub(super) struct How {
    pub mode: Mode,
    pub compress: Compress,
    pub format: DumpFormat,
    pub dump_args: Vec<String>,
}

pub(super) fn how(s: &JobScope, d: &JobDoc, ctx: &mut Ctx) -> How {
    let mode = d.mode.unwrap_or_default();
    let compress = d.compress.unwrap_or_default();
    if mode != Mode::Stream {
        check_folder_mode(s, d, mode, compress, ctx);
    }
    if compress == Compress::Native && !s.caps.native_compress {
        ctx.error(&s.p("compress"), format!("`compress: native` is not available for {} (its dump tool has no compression); use gzip or zstd", s.engine.as_str()));
    }
    if let Some(level) = d.compress_level {
        check_level(s, compress, level, ctx);
    }
    let format = s.caps.format(d.format, compress).unwrap_or_else(|| {
        ctx.error(&s.p("format"), format!("`format` for {} is not valid: postgres takes plain|custom, sqlite takes snapshot|sql", s.engine.as_str()));
        DumpFormat::Plain
    });
    if compress == Compress::Native && s.caps.native_format.is_some_and(|f| f != format) {
        ctx.error(&s.p("compress"), "`compress: native` for postgres means the custom format; drop `format: plain` or use gzip/zstd");
    }
    let dump_args = d.dump_args.clone().unwrap_or_default();
    if let Some(r) = crate::engine::dump_args::disk_writing_dump_arg(s.engine, &dump_args) {
        ctx.error(
            &format!("{}/{}", s.p("dump_args"), r.index),
            format!("dump argument `{}` {}", dump_args[r.index], r.reason),
        );
    }
    How {
        mode,
        compress,
        format,
        dump_args,
    }
}

/// `mode: tar|directory` needs a dump tool that writes a folder, and a folder uploaded file by
/// file cannot go through one compressor or one encryption stream.
fn check_folder_mode(s: &JobScope, d: &JobDoc, mode: Mode, compress: Compress, ctx: &mut Ctx) {
    if !s.caps.folder_dump {
        ctx.error(
            &s.p("mode"),
            format!("`mode: {}` needs a dump tool that writes a folder (pg_dump -Fd, mongodump --out); {} streams only (mysqldump --tab would need the server to write into dbstash's folder)", mode.as_str(), s.engine.as_str()),
        );
    }
    if mode == Mode::Directory && matches!(compress, Compress::Gzip | Compress::Zstd) {
        ctx.error(
            &s.p("compress"),
            "a `directory` backup is uploaded file by file: use `compress: native` (the dump tool compresses each file) or `none`, or `mode: tar`",
        );
    }
    if mode == Mode::Directory && d.encrypt.is_some() {
        ctx.error_key(
            &s.p("encrypt"),
            "`encrypt` works on one stream: use `mode: tar` (or an rclone crypt remote) for encrypted folder dumps",
        );
    }
    // The folder is the tool's own directory format: a stream format has no meaning there.
    if d.format.is_some() && s.caps.folder_dump && !s.caps.formats.is_empty() {
        ctx.error(
            &s.p("format"),
            format!(
                "`mode: {}` dumps in pg_dump's directory format; drop `format`",
                mode.as_str()
            ),
        );
    }
}

/// Is `level` in range for the codec? gzip takes 1-9, zstd (also postgres' `native`) 1-19.
pub(super) fn level_in_range(compress: Compress, level: i32) -> bool {
    match compress {
        Compress::Gzip => (1..=9).contains(&level),
        Compress::Zstd | Compress::Native => (1..=19).contains(&level),
        Compress::None => true,
    }
}

fn check_level(s: &JobScope, compress: Compress, level: i32, ctx: &mut Ctx) {
    if !level_in_range(compress, level) {
        ctx.error(
            &s.p("compress_level"),
            format!("compress_level {level} is out of range (gzip 1-9, zstd 1-19)"),
        );
    } else if compress == Compress::None {
        ctx.warn(
            &s.p("compress_level"),
            "compress_level has no effect with `compress: none`",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_levels() {
        assert!(level_in_range(Compress::Gzip, 9));
        assert!(!level_in_range(Compress::Gzip, 10));
        assert!(!level_in_range(Compress::Gzip, 0));
        assert!(level_in_range(Compress::Zstd, 19));
        assert!(!level_in_range(Compress::Native, 20));
        assert!(level_in_range(Compress::None, 42));
    }
}
