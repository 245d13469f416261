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
    /// `message` is kept to one line: every diagnostic prints as one `PATH:LINE:COL: message` line.
    pub fn error(file: &Path, loc: Location, message: impl Into<String>) -> Self {
        let message: String = message.into();
        let message = if message.contains(['\n', '\r']) {
            message.split_whitespace().collect::<Vec<_>>().join(" ")
        } else {
            message
        };
        Diagnostic {
            file: file.to_path_buf(),
            line: loc.line.max(1),
            col: loc.col.max(1),
            severity: Severity::Error,
            message,
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
            escape_property(&self.file.display().to_string()),
            self.line,
            self.col,
            escape_data(&self.message)
        )
    }
}

/// GitHub workflow-command escaping of a message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub workflow-command escaping of a property value (`file=`).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_annotations_are_escaped_and_messages_one_line() {
        let d = Diagnostic::error(
            Path::new("ci,dir/a:b.yaml"),
            Location { line: 3, col: 0 },
            "100% wrong\nsecond line",
        );
        assert_eq!(d.message, "100% wrong second line");
        assert_eq!(d.col, 1);
        assert_eq!(
            d.github(),
            "::error file=ci%2Cdir/a%3Ab.yaml,line=3,col=1::100%25 wrong second line"
        );
    }
}
