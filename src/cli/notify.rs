//! `dbstash notify test`.

pub fn test(_config: &std::path::Path, _name: &str) -> i32 {
    super::not_yet("notify test")
}
