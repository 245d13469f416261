//! `dbstash verify`.

pub fn run(_config: &std::path::Path, _job: &str, _backup: &str, _restore_to: Option<&str>) -> i32 {
    super::not_yet("verify")
}
