//! The command line: one file per subcommand, each returning its exit code.

mod plan;
mod schema;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "dbstash",
    version,
    about = "Back up many databases from one YAML manifest"
)]
pub struct Cli {
    /// The manifest (default ./dbstash.yaml, then /config/dbstash.yaml).
    #[arg(
        short,
        long,
        global = true,
        env = "DBSTASH_CONFIG",
        value_name = "PATH"
    )]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ValidateFormat {
    Text,
    Json,
    Github,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, schema-check and semantically check the manifest; touches nothing.
    Validate {
        #[arg(long, value_enum, default_value = "text")]
        format: ValidateFormat,
        /// Fail (exit 2) on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Show what each job would do: commands, object names, next runs, retention. Runs nothing.
    Plan {
        #[arg(long = "job", value_name = "J")]
        jobs: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
        /// Do not list remotes (no "would delete").
        #[arg(long)]
        offline: bool,
    },
    /// Print the manifest's JSON Schema.
    Schema,
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let config = crate::manifest::find(cli.config.as_deref());
    match cli.command {
        Command::Validate {
            format,
            deny_warnings,
        } => validate::run(&config, format, deny_warnings),
        Command::Plan {
            jobs,
            format,
            offline,
        } => plan::run(&config, &jobs, format, offline),
        Command::Schema => schema::run(),
    }
}

/// Load the manifest, printing its errors (one line each) on failure.
pub(crate) fn load_or_report(config: &std::path::Path) -> Option<crate::manifest::Manifest> {
    match crate::manifest::load(config) {
        Ok(m) => {
            for w in &m.warnings {
                eprintln!("{w}");
            }
            Some(m)
        }
        Err(e) => {
            for d in e.diagnostics() {
                eprintln!("{d}");
            }
            None
        }
    }
}
