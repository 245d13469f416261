//! rclone argv builders (pure): shared by `plan` output and the rclone storage.

use crate::domain::command::CommandSpec;
use crate::plan::RcloneConf;

/// A streaming upload (`rcat`) cannot be sent again: rclone's high-level retries only repeat the
/// failure, and its default 10 low-level retries per part (each with the S3 SDK's own attempts and
/// backoff) kept a run against a dead endpoint going for 7 to 8 minutes. One attempt, two tries per
/// part (a part is buffered, so a transient error on one is still survived), and bounded connect
/// and idle times make a dead endpoint fail the run within seconds and a hung one within a few
/// minutes, with rclone's own error. Placed before the user's `extra_args`, which win.
pub const STREAM_UPLOAD_DEFAULTS: [&str; 4] = [
    "--retries=1",
    "--low-level-retries=2",
    "--contimeout=10s",
    "--timeout=30s",
];

/// Every other call: a bounded connect time (rclone's default is a minute per attempt), the rest
/// as rclone has it (downloads and copies can resend, so their retries are worth having).
pub const CALL_DEFAULTS: [&str; 1] = ["--contimeout=10s"];

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

/// `rclone [--config F] SUBCOMMAND [defaults] [extra_args] ARGS...`
pub fn command(conf: &RcloneConf, sub: &str, args: &[String]) -> CommandSpec {
    command_with(conf, sub, &[], args)
}

/// `rclone [--config F] SUBCOMMAND [defaults] [call defaults] [extra_args] ARGS...`: `defaults`
/// are dbstash's own flags for the subcommand (`STREAM_UPLOAD_DEFAULTS` for `rcat`,
/// `CALL_DEFAULTS` otherwise), then the caller's (a later flag wins in rclone), then the user's
/// `extra_args`, so that those win over both.
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
    let own: &[&str] = if sub == "rcat" {
        &STREAM_UPLOAD_DEFAULTS
    } else {
        &CALL_DEFAULTS
    };
    for a in own {
        c.arg(*a);
    }
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

    fn conf(extra: &[&str]) -> RcloneConf {
        RcloneConf {
            binary: "rclone".into(),
            config_file: None,
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn stream_uploads_are_bounded_and_user_args_come_last() {
        let c = rcat(&conf(&["--retries=5"]), "s3:b", "k", None);
        let line = c.args.join(" ");
        assert_eq!(
            line,
            "rcat --retries=1 --low-level-retries=2 --contimeout=10s --timeout=30s --retries=5 s3:b/k"
        );
    }

    #[test]
    fn callers_defaults_follow_ours_and_other_calls_keep_their_retries() {
        let c = command_with(
            &conf(&[]),
            "lsjson",
            &["--retries=1".into()],
            &["s3:b".into()],
        );
        assert_eq!(c.args.join(" "), "lsjson --contimeout=10s --retries=1 s3:b");
        let c = command(&conf(&[]), "cat", &["s3:b/k".into()]);
        assert!(
            !c.args.iter().any(|a| a.starts_with("--retries")),
            "{:?}",
            c.args
        );
    }

    #[test]
    fn joins_remote_paths() {
        assert_eq!(join("s3:bucket", "a/b"), "s3:bucket/a/b");
        assert_eq!(join("s3:", "a"), "s3:a");
    }
}
