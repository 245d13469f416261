//! The error model: how dbstash types its errors, what reaches users, what is redacted, and the
//! exit codes. The rules:
//!
//! - **Typed per module.** Each module owns one `thiserror` enum named after it (`LoadError`,
//!   `StorageError`, `RestoreError`, `NotifyError`, `PumpError`, …). A variant says *what* went
//!   wrong and carries the typed values needed to say it (a path, a program, an exit status, an
//!   `#[source]`); when a module's failures have several shapes, a variant holds a small enum of
//!   its own (`RestoreError::Usage(UsageError)`, `RestoreError::Target { target, problem }`).
//!   There is no catch-all `Variant(String)` whose text is built at the call site, and no new
//!   `Result<_, String>` in `run/`, `restore/` or `storage/`: a caller that matches on an error
//!   (to choose an exit code or whether to log it) matches a variant, never a message.
//!   `run/` has `RunError` (`run::error`); `storage/` has `StorageError`, whose rclone failures
//!   carry the exit status, so "not found" and "retry" are decided by code.
//! - **A process status is a value.** How a child ended is a
//!   [`proc::status::ExitReason`](crate::proc::status::ExitReason) (exit code or signal), kept
//!   typed in the error and turned into text ("exit 3", "killed by signal 9") only by `Display`.
//!   Decisions — a dump that died of the relay's broken pipe, rclone's not-found codes — match
//!   the value (`ExitReason::is_broken_pipe`, `ExitReason::Code(3)`), never the message. A run
//!   cut short by its timeout or by shutdown is its own variant (`RunError::TimedOut`,
//!   `RunError::ShuttingDown`), not a status.
//! - **Messages are the contract.** Changing an error's type never changes its text: users,
//!   notifications and tests read it. A variant's `#[error]` is the whole line dbstash showed
//!   before, and a test pins the ones that matter.
//! - **Shown to users as one line.** The user sees `Display`, prefixed `dbstash: ` by `cli`:
//!   one line, no backtrace, no `Debug`. Manifest problems are `PATH:LINE:COL: message`
//!   (`domain::diag`), one per line, plain text — dbstash does not render fancy diagnostics
//!   (the miette dependency was dropped: its output is not the greppable one-line format the
//!   contract promises, and CI annotations come from `validate --format github`). A tool's own
//!   words (its stderr tail) are kept at the end of the line, after what dbstash was doing.
//! - **Redacted in one place.** A [`Secret`](crate::secret::Secret) never `Display`s its value.
//!   Text that may carry one — a tool's stderr, a hook's output, an error built from either, a
//!   notifier's HTTP error — goes through [`Redactor`](crate::secret::Redactor) (every secret as
//!   written *and* percent-encoded, as it appears in the URI a tool echoes) before it is logged,
//!   kept in an error or sent anywhere. Redaction happens where the text is captured
//!   (`proc::StderrTail`) and again where an error leaves for a person (`cli`, notifiers).
//! - **Reports hold text, never decide on it.** What a run did (`run::RunOutcome`, its `Part`s,
//!   a notification's event, a stream's last error) is a report: logged as one JSON line, sent to
//!   notifiers, counted in metrics. Its `error` is the redacted `Display` of the typed error, made
//!   once where the run ends; no code matches on it (decisions are taken on the typed error before).
//! - **Exit codes** ([`exit`]): 0 success; 1 an operation failed or was refused (a backup,
//!   restore, verify, prune or notification — a `RestoreError::Usage` too, as the contract gives
//!   `restore` 0/1); 2 the manifest or the command line is invalid and nothing was attempted.

/// Process exit codes (see the module rules).
pub mod exit {
    /// Everything asked for succeeded.
    pub const OK: i32 = 0;
    /// An operation was attempted and failed (or was refused, e.g. no confirmation).
    pub const FAILED: i32 = 1;
    /// The manifest or the command line is invalid; nothing was attempted.
    pub const INVALID: i32 = 2;
}
