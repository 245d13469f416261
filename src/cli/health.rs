//! `dbstash health`.

pub fn run(_config: &std::path::Path, _url: Option<&str>) -> i32 {
    super::not_yet("health")
}
