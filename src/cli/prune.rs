//! `dbstash prune`.

pub fn run(_config: &std::path::Path, _job: Option<&str>, _dry_run: bool) -> i32 {
    super::not_yet("prune")
}
