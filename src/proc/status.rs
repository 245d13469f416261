//! How a process ended, typed: callers judge a status by kind (a code, a signal), never by the
//! text of a message.

use std::fmt;

/// How a process ended, from its `ExitStatus`: judged by kind, never by the text of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
    /// Neither (cannot happen on Unix; kept so a status is never invented).
    Unknown,
}

impl ExitReason {
    pub fn of(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => ExitReason::Code(c),
            (None, Some(s)) => ExitReason::Signal(s),
            _ => ExitReason::Unknown,
        }
    }

    /// Died of a broken pipe: SIGPIPE, or a shell's 128 + 13 for a child that did. A dump ends
    /// this way when the relay stopped reading first, so the relay's error is the real one.
    pub fn is_broken_pipe(self) -> bool {
        const SIGPIPE: i32 = 13;
        matches!(self, ExitReason::Signal(SIGPIPE) | ExitReason::Code(141))
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Code(c) => write!(f, "exit {c}"),
            ExitReason::Signal(s) => write!(f, "killed by signal {s}"),
            ExitReason::Unknown => f.write_str("unknown status"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_reasons_read_as_before_and_know_a_broken_pipe() {
        let code = ExitReason::of(std::process::ExitStatus::from_raw(3 << 8));
        assert_eq!(code, ExitReason::Code(3));
        assert_eq!(code.to_string(), "exit 3");
        let sig = ExitReason::of(std::process::ExitStatus::from_raw(9));
        assert_eq!(sig.to_string(), "killed by signal 9");
        assert!(!sig.is_broken_pipe());
        assert!(ExitReason::of(std::process::ExitStatus::from_raw(13)).is_broken_pipe());
        assert!(ExitReason::Code(141).is_broken_pipe());
        assert!(!ExitReason::Code(1).is_broken_pipe());
    }
}
