//! The run's ledger of partial objects: what it may have put on a remote that has no record yet
//! (a placeholder from the name claim, an upload in flight, a committed object before its record).
//! Whatever is still in it when the run ends was cut short, and `claim::clean_up` deletes it —
//! only these: nothing dbstash did not start is deleted.

use std::sync::Mutex;

/// A file object or a folder (directory mode): they are deleted differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    File,
    Folder,
}

impl ObjectKind {
    pub fn of(folder: bool) -> Self {
        if folder {
            ObjectKind::Folder
        } else {
            ObjectKind::File
        }
    }
}

/// One object that may be on remote `remote` (index into the plan's remotes) without a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partial {
    pub remote: usize,
    pub key: String,
    pub kind: ObjectKind,
}

#[derive(Debug, Default)]
pub struct Ledger(Mutex<Vec<Partial>>);

impl Ledger {
    /// Note `key` on `remote` (once).
    pub fn note(&self, remote: usize, key: &str, kind: ObjectKind) {
        if let Ok(mut p) = self.0.lock() {
            if !p.iter().any(|e| e.remote == remote && e.key == key) {
                p.push(Partial {
                    remote,
                    key: key.to_string(),
                    kind,
                });
            }
        }
    }

    /// `key` on `remote` is complete (its record is written) or gone.
    pub fn forget(&self, remote: usize, key: &str) {
        if let Ok(mut p) = self.0.lock() {
            p.retain(|e| !(e.remote == remote && e.key == key));
        }
    }

    /// Take the entries for `key` on every remote out of the ledger.
    pub fn take_key(&self, key: &str) -> Vec<Partial> {
        self.0
            .lock()
            .map(|mut p| {
                let (mine, rest) = std::mem::take(&mut *p)
                    .into_iter()
                    .partition(|e| e.key == key);
                *p = rest;
                mine
            })
            .unwrap_or_default()
    }

    /// Take every entry out of the ledger (the run is over).
    pub fn take_all(&self) -> Vec<Partial> {
        self.0
            .lock()
            .map(|mut p| std::mem::take(&mut *p))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_once_forgets_per_remote_and_takes_by_key() {
        let l = Ledger::default();
        l.note(0, "a.sql", ObjectKind::File);
        l.note(0, "a.sql", ObjectKind::File);
        l.note(1, "a.sql", ObjectKind::File);
        l.note(0, "d", ObjectKind::Folder);
        l.forget(1, "a.sql");
        let a = l.take_key("a.sql");
        assert_eq!(
            a,
            [Partial {
                remote: 0,
                key: "a.sql".into(),
                kind: ObjectKind::File
            }]
        );
        let rest = l.take_all();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].kind, ObjectKind::Folder);
        assert!(l.take_all().is_empty());
    }
}
