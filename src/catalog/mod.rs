//! What is on a remote: backup records (a backup is complete only when its record exists),
//! listing them, which ones a retention policy keeps (`keep`, pure) and applying it
//! (`retention`), and the leftovers of runs that died (`leftovers`, found by intent markers).
//! Shared by `run`, `restore`, `list` and `prune`.

pub mod keep;
pub mod leftovers;
pub mod record;
pub mod retention;
