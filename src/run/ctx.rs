//! What a run shares with each of its backups (`Ctx`) and what one backup reports (`Done`):
//! its own file so that the stages (`unit`, `dump`, `directory`, `claim`, `commit`) can all name
//! them without importing one another in a circle.

use super::ledger::Ledger;
use super::markers::Claims;
use super::relay::RelayStats;
use super::RunEnv;
use crate::proc::ProcGroup;
use crate::secret::Secret;
use crate::storage::AnyStorage;
use jiff::Timestamp;

/// What a run shares with each of its backups.
pub struct Ctx<'a> {
    pub env: &'a RunEnv,
    /// One per `plan.remotes`, same order.
    pub stores: &'a [AnyStorage],
    pub group: &'a ProcGroup,
    pub upload_group: &'a ProcGroup,
    pub started: Timestamp,
    /// Objects that may be on a remote without a record yet: deleted by the run if it is cut
    /// short.
    pub partial: &'a Ledger,
    pub run_id: &'a str,
    pub secrets: &'a [Secret],
    /// The intent markers of the names this run claimed (see run::claim).
    pub claims: &'a Claims,
}

pub struct Done {
    pub key: String,
    pub database: String,
    pub stats: RelayStats,
    /// Remotes holding the complete backup.
    pub remotes: Vec<String>,
    /// Optional remotes that failed, with why.
    pub dropped: Vec<String>,
}
