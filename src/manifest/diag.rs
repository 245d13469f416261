//! Located diagnostics: every manifest problem is reported as `PATH:LINE:COL: message`.

use std::fmt;
use std::path::{Path, PathBuf};

/// 1-based line and column in the manifest text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Location {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    pub fn error(file: &Path, loc: Location, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: loc.line,
            col: loc.col,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    pub fn warning(file: &Path, loc: Location, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, loc, message)
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `::error file=F,line=L,col=C::message` for GitHub Actions annotations.
    pub fn github(&self) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        format!(
            "::{level} file={},line={},col={}::{}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(
            f,
            "{}:{}:{}: {prefix}{}",
            self.file.display(),
            self.line,
            self.col,
            self.message
        )
    }
}

/// Sort by position and drop exact duplicates so output is stable.
pub fn tidy(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by(|a, b| {
        (a.line, a.col, a.severity, &a.message).cmp(&(b.line, b.col, b.severity, &b.message))
    });
    diags.dedup();
    diags
}
