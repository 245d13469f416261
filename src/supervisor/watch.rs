//! Noticing manifest changes: the manifest's *directory* is watched (so editors' atomic renames and
//! Kubernetes ConfigMap `..data` symlink swaps are seen), events are debounced (1 s), and a slow
//! poll catches anything the watcher misses. Every trigger ends in a content-hash comparison.

use notify_debouncer_full::notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::mpsc;

pub type Watcher = notify_debouncer_full::Debouncer<
    notify_debouncer_full::notify::RecommendedWatcher,
    notify_debouncer_full::RecommendedCache,
>;

/// A folder that could not be (un)watched.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {}: {source}", dir.display())]
pub struct WatchError {
    action: &'static str,
    dir: PathBuf,
    #[source]
    source: notify_debouncer_full::notify::Error,
}

fn failed<'a>(
    action: &'static str,
    dir: &'a Path,
) -> impl FnOnce(notify_debouncer_full::notify::Error) -> WatchError + 'a {
    move |source| WatchError {
        action,
        dir: dir.to_path_buf(),
        source,
    }
}

/// Start watching the folder holding `manifest`; each debounced batch of events sends `()`.
pub fn start(manifest: &Path, tx: mpsc::Sender<()>) -> Result<Watcher, WatchError> {
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
    .map_err(failed("watch", &dir))?;
    debouncer
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(failed("watch", &dir))?;
    Ok(debouncer)
}

/// Also watch `dir` (a folder of secret files the manifest reads).
pub fn add(w: &mut Watcher, dir: &Path) -> Result<(), WatchError> {
    w.watch(dir, RecursiveMode::NonRecursive)
        .map_err(failed("watch", dir))
}

/// Stop watching `dir`.
pub fn unwatch(w: &mut Watcher, dir: &Path) -> Result<(), WatchError> {
    w.unwatch(dir).map_err(failed("unwatch", dir))
}
