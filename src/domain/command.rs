//! A child process described as data: program, argv, env and 0600 files. Secrets stay `Secret`s
//! here, so printing a plan shows `***` and only the executor ever exposes them (into env/files).

use crate::secret::Secret;
use serde::Serialize;
use std::fmt;

/// Placeholder in argv for the run's private folder (0700, removed after the run).
pub const RUN_DIR: &str = "{run_dir}";

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EnvValue {
    Plain(String),
    #[serde(serialize_with = "ser_secret")]
    Secret(Secret),
}

fn ser_secret<S: serde::Serializer>(_: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("***")
}

impl EnvValue {
    pub fn expose(&self) -> &str {
        match self {
            EnvValue::Plain(s) => s,
            EnvValue::Secret(s) => s.expose(),
        }
    }
}

impl fmt::Display for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvValue::Plain(s) => f.write_str(s),
            EnvValue::Secret(_) => f.write_str("***"),
        }
    }
}

/// A file written with mode 0600 into the run folder before the command starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrivateFile {
    pub name: String,
    #[serde(serialize_with = "ser_secret")]
    pub contents: Secret,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, EnvValue)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PrivateFile>,
}

impl CommandSpec {
    pub fn new(program: impl Into<String>) -> Self {
        CommandSpec {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            files: Vec::new(),
        }
    }

    pub fn arg(&mut self, a: impl Into<String>) -> &mut Self {
        self.args.push(a.into());
        self
    }

    pub fn env(&mut self, k: &str, v: EnvValue) -> &mut Self {
        self.env.push((k.to_string(), v));
        self
    }

    /// argv with `{run_dir}` replaced.
    pub fn args_in(&self, run_dir: &std::path::Path) -> Vec<String> {
        let dir = run_dir.to_string_lossy();
        self.args.iter().map(|a| a.replace(RUN_DIR, &dir)).collect()
    }

    /// One shell-like line for people: env names with values (secrets as ***), then argv.
    pub fn display_line(&self) -> String {
        let mut parts: Vec<String> = self
            .env
            .iter()
            .map(|(k, v)| format!("{k}={}", quote(&v.to_string())))
            .collect();
        parts.push(quote(&self.program));
        parts.extend(self.args.iter().map(|a| quote(a)));
        parts.join(" ")
    }
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+{}*".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
