//! `dbstash restore`.

pub fn run(
    _config: &std::path::Path,
    _job: &str,
    _backup: &str,
    _to: Option<&str>,
    _to_file: Option<&std::path::Path>,
    _yes: bool,
) -> i32 {
    super::not_yet("restore")
}
