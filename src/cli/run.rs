//! `dbstash run`.

pub fn run(_config: &std::path::Path, _once: bool, _jobs: &[String]) -> i32 {
    super::not_yet("run")
}
