//! `dbstash run`: the long-lived supervisor.

pub mod signals;

pub fn run(_config: &std::path::Path) -> i32 {
    crate::cli::not_yet_pub("run (supervisor)")
}
