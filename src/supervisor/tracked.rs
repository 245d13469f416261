//! Loading the manifest while noting every `*_file` it reads (`password_file`, `uri_file`,
//! `url_file`, `age_recipients_file`, …).
//!
//! Kubernetes and Vault rotate secret files in place while the manifest text stays the same. The
//! supervisor's "has anything changed?" check is therefore a fingerprint of the manifest text *and*
//! of every file the last load read: a rotated password changes the fingerprint, the reload builds
//! new plans with the new value, and the next run uses it. (The other route — re-reading the
//! files at each run start — would touch every run and notifier path; this one keeps one rule:
//! everything a run uses comes from the last applied revision, and a rotation is a revision.)
//!
//! Only digests of the files' bytes are kept, never the bytes.

use crate::manifest::{self, LoadError, Manifest};
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

/// One load: its result, the secret files it read (in reading order), and the fingerprint of the
/// text plus those files as they were read.
pub struct Tracked {
    pub result: Result<Manifest, LoadError>,
    pub files: Vec<PathBuf>,
    pub fingerprint: String,
}

/// Load `text` (the bytes of the manifest at `path`), noting the files it reads.
pub fn load(path: &Path, text: &[u8]) -> Tracked {
    let Ok(s) = std::str::from_utf8(text) else {
        // Not UTF-8: the loader's own read error says so.
        return Tracked {
            result: manifest::load(path),
            files: Vec::new(),
            fingerprint: fingerprint(text, &[]),
        };
    };
    let seen: RefCell<Vec<(PathBuf, FileState)>> = RefCell::new(Vec::new());
    let read = |p: &Path| {
        // The loader's own capped reader: regular files of at most 64 KiB.
        let r = manifest::limits::read_secret_file(p);
        let state = match &r {
            Ok(s) => FileState::Bytes(Sha256::digest(s.as_bytes()).into()),
            Err(e) => FileState::Error(e.kind()),
        };
        seen.borrow_mut().push((p.to_path_buf(), state));
        r
    };
    let result = manifest::load_str(path, s, &|k| std::env::var(k).ok(), &read);
    let seen = seen.into_inner();
    let mut h = Sha256::new();
    h.update(Sha256::digest(text));
    for (p, state) in &seen {
        feed(&mut h, p, state);
    }
    Tracked {
        result,
        files: seen.into_iter().map(|(p, _)| p).collect(),
        fingerprint: hex::encode(h.finalize()),
    }
}

/// The fingerprint of `text` and the current contents of `files` (the same value `load` computes
/// when the files still hold what it read).
pub fn fingerprint(text: &[u8], files: &[PathBuf]) -> String {
    let mut h = Sha256::new();
    h.update(Sha256::digest(text));
    for p in files {
        let state = match manifest::limits::read_secret_file(p) {
            Ok(b) => FileState::Bytes(Sha256::digest(b.as_bytes()).into()),
            Err(e) => FileState::Error(e.kind()),
        };
        feed(&mut h, p, &state);
    }
    hex::encode(h.finalize())
}

/// The folders holding `files`, for the watcher (a Kubernetes Secret volume swaps its `..data`
/// symlink in that folder).
pub fn folders(files: &[PathBuf]) -> std::collections::BTreeSet<PathBuf> {
    files
        .iter()
        .filter_map(|f| f.parent())
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect()
}

enum FileState {
    Bytes([u8; 32]),
    Error(std::io::ErrorKind),
}

fn feed(h: &mut Sha256, path: &Path, state: &FileState) {
    let p = path.as_os_str().as_encoded_bytes();
    h.update((p.len() as u64).to_le_bytes());
    h.update(p);
    match state {
        FileState::Bytes(d) => {
            h.update([1]);
            h.update(d);
        }
        FileState::Error(k) => {
            h.update([0]);
            h.update(format!("{k:?}").as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_file_changes_the_fingerprint_and_the_text_alone_does_not_hide_it() {
        let d = tempfile::tempdir().unwrap();
        let secret = d.path().join("pw");
        std::fs::write(&secret, "one\n").unwrap();
        let manifest = d.path().join("m.yaml");
        let text = format!(
            "version: 1\nremotes: {{ l: {{ path: /tmp/x }} }}\njobs:\n  a: {{ engine: redis, host: h, password_file: '{}', remote: l }}\n",
            secret.display()
        );
        let t = load(&manifest, text.as_bytes());
        assert!(t.result.is_ok());
        assert_eq!(t.files, std::slice::from_ref(&secret));
        assert_eq!(fingerprint(text.as_bytes(), &t.files), t.fingerprint);
        std::fs::write(&secret, "two\n").unwrap();
        assert_ne!(fingerprint(text.as_bytes(), &t.files), t.fingerprint);
        std::fs::remove_file(&secret).unwrap();
        assert_ne!(fingerprint(text.as_bytes(), &t.files), t.fingerprint);
        assert_eq!(
            folders(&t.files).into_iter().collect::<Vec<_>>(),
            [d.path()]
        );
    }
}
