//! `dbstash list`.

pub fn run(_config: &std::path::Path, _job: Option<&str>, _format: super::OutputFormat) -> i32 {
    super::not_yet("list")
}
