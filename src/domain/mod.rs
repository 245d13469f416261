//! The leaf layer: vocabulary every other layer shares and that knows nothing of them —
//! schedules, object naming, GFS retention calendars, command specs, durations and sizes, and
//! located diagnostics. Nothing here imports another dbstash module except `secret`.

pub mod command;
pub mod diag;
pub mod gfs;
pub mod naming;
pub mod schedule;
pub mod units;
