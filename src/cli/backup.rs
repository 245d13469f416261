//! `dbstash backup J...`: the same as `run --once --job J...`, with a progress line on a terminal.

pub fn run(config: &std::path::Path, jobs: &[String]) -> Result<super::ExitCode, super::CliError> {
    super::run::run_once(config, jobs, true)
}
