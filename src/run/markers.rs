//! The intent markers a run holds (see `claim`), kept in the run's shared context until the
//! object is complete or the run ends. Its own file so that `ctx` and `claim` do not import each
//! other.

use crate::catalog::leftovers::LiveRun;
use std::sync::Mutex;

/// A marker this run wrote on remote `idx` for the object `key`.
pub(super) struct Held {
    pub(super) idx: usize,
    pub(super) key: String,
    pub(super) marker: String,
    pub(super) _live: LiveRun,
}

/// The markers a run holds, removed when it ends (`clean_up`).
#[derive(Default)]
pub struct Claims(Mutex<Vec<Held>>);

impl Claims {
    pub(super) fn push(&self, h: Held) {
        if let Ok(mut v) = self.0.lock() {
            v.push(h);
        }
    }

    pub(super) fn take_for(&self, key: &str) -> Vec<Held> {
        let Ok(mut v) = self.0.lock() else {
            return Vec::new();
        };
        let (mine, rest) = std::mem::take(&mut *v)
            .into_iter()
            .partition(|h| h.key == key);
        *v = rest;
        mine
    }

    pub(super) fn take_all(&self) -> Vec<Held> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}
