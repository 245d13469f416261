//! `dbstash render kubernetes`.

pub fn kubernetes(_config: &std::path::Path, _jobs: &[String], _image: &str) -> i32 {
    super::not_yet("render kubernetes")
}
