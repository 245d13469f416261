//! `dbstash backup`.

pub fn run(_config: &std::path::Path, _jobs: &[String]) -> i32 {
    super::not_yet("backup")
}
