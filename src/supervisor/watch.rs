//! Noticing manifest changes: the manifest's *directory* is watched (so editors' atomic renames and
//! Kubernetes ConfigMap `..data` symlink swaps are seen), events are debounced (1 s), and a slow
//! poll catches anything the watcher misses. Every trigger ends in a content-hash comparison.

use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use std::path::Path;
use std::time::Duration;
use tokio::sync::mpsc;

pub type Watcher = notify_debouncer_full::Debouncer<
    notify_debouncer_full::notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// Start watching the folder holding `manifest`; each debounced batch of events sends `()`.
pub fn start(manifest: &Path, tx: mpsc::Sender<()>) -> Result<Watcher, String> {
    let dir = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .to_path_buf();
    let mut debouncer = new_debouncer(
        Duration::from_secs(1),
        None,
        move |res: DebounceEventResult| {
            if res.is_ok() {
                let _ = tx.try_send(());
            }
        },
    )
    .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    debouncer
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    Ok(debouncer)
}

/// Also watch `dir` (a folder of secret files the manifest reads).
pub fn add(w: &mut Watcher, dir: &Path) -> Result<(), String> {
    w.watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| format!("cannot watch {}: {e}", dir.display()))
}

/// Stop watching `dir`.
pub fn unwatch(w: &mut Watcher, dir: &Path) -> Result<(), String> {
    w.unwatch(dir)
        .map_err(|e| format!("cannot unwatch {}: {e}", dir.display()))
}
