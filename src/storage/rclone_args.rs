//! rclone argv builders (pure): shared by `plan` output and the rclone storage.

use crate::plan::command::CommandSpec;
use crate::plan::RcloneConf;

/// rclone's streaming upload holds at most 10,000 parts; the default 5 MiB chunk caps a stream at
/// 48.8 GiB. For larger expected streams pick a chunk that leaves 2x headroom.
pub fn s3_chunk_size(expected: Option<u64>) -> Option<String> {
    const DEFAULT: u64 = 5 * 1024 * 1024;
    let expected = expected?;
    let needed = expected.saturating_mul(2) / 10_000;
    if needed <= DEFAULT {
        return None;
    }
    let mib = needed.div_ceil(1024 * 1024);
    Some(format!("{mib}Mi"))
}

pub fn join(remote: &str, key: &str) -> String {
    if key.is_empty() {
        return remote.to_string();
    }
    if remote.ends_with(':') || remote.ends_with('/') {
        format!("{remote}{key}")
    } else {
        format!("{remote}/{key}")
    }
}

/// `rclone [--config F] SUBCOMMAND [extra_args] ARGS...`
pub fn command(conf: &RcloneConf, sub: &str, args: &[String]) -> CommandSpec {
    command_with(conf, sub, &[], args)
}

/// `rclone [--config F] SUBCOMMAND [defaults] [extra_args] ARGS...`: `defaults` are dbstash's own
/// flags, placed before the user's `extra_args` so that those win.
pub fn command_with(
    conf: &RcloneConf,
    sub: &str,
    defaults: &[String],
    args: &[String],
) -> CommandSpec {
    let mut c = CommandSpec::new(conf.binary.clone());
    if let Some(f) = &conf.config_file {
        c.arg(format!("--config={}", f.display()));
    }
    c.arg(sub);
    for a in defaults {
        c.arg(a.clone());
    }
    for a in &conf.extra_args {
        c.arg(a.clone());
    }
    for a in args {
        c.arg(a.clone());
    }
    c
}

pub fn rcat(conf: &RcloneConf, remote: &str, key: &str, expected: Option<u64>) -> CommandSpec {
    let mut args = Vec::new();
    if let Some(chunk) = s3_chunk_size(expected) {
        args.push(format!("--s3-chunk-size={chunk}"));
    }
    args.push(join(remote, key));
    command(conf, "rcat", &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_size_only_when_needed() {
        assert_eq!(s3_chunk_size(None), None);
        assert_eq!(s3_chunk_size(Some(10 * 1024 * 1024 * 1024)), None);
        // 200 GiB needs 2x headroom over 10,000 parts: about 41 MiB.
        assert_eq!(
            s3_chunk_size(Some(200 * 1024 * 1024 * 1024)).as_deref(),
            Some("41Mi")
        );
    }

    #[test]
    fn joins_remote_paths() {
        assert_eq!(join("s3:bucket", "a/b"), "s3:bucket/a/b");
        assert_eq!(join("s3:", "a"), "s3:a");
    }
}
