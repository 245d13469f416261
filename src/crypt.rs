//! age identities for reading encrypted backups (`restore`/`verify --identity FILE`, drills'
//! `verify.identity_file`). Only restore-side code ever holds them; backups need public keys only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An age X25519 recipient (`age1...`), what `encrypt:` takes. age 0.13 deprecates classic X25519
/// keys in favour of hybrid post-quantum ones (`age1pq1...`), but the keys and identity files
/// operators hold are X25519, and their backups must stay readable with them.
#[allow(deprecated)]
pub type Recipient = age::x25519::Recipient;

/// The identities of an age identity file (`AGE-SECRET-KEY-1...` lines, `#` comments). Never
/// printed: Debug shows how many there are.
#[derive(Clone)]
pub struct Identities(pub Arc<Vec<age::x25519::Identity>>);

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({} keys, redacted)", self.0.len())
    }
}

impl PartialEq for Identities {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Why an identity file cannot be used. Never shows a key, not even a malformed one.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("line {line}: not an age identity (`AGE-SECRET-KEY-1...`)")]
    NotAnIdentity { line: usize },
    #[error("no age identity in it")]
    Empty,
    #[error("cannot read identity file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("identity file {}: {problem}", .path.display())]
    Invalid {
        path: PathBuf,
        problem: Box<IdentityError>,
    },
}

impl Identities {
    pub fn parse(text: &str) -> Result<Self, IdentityError> {
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = line
                .parse::<age::x25519::Identity>()
                .map_err(|_| IdentityError::NotAnIdentity { line: n + 1 })?;
            out.push(id);
        }
        if out.is_empty() {
            return Err(IdentityError::Empty);
        }
        Ok(Identities(Arc::new(out)))
    }

    pub fn load(path: &Path) -> Result<Self, IdentityError> {
        let text = std::fs::read_to_string(path).map_err(|source| IdentityError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|problem| IdentityError::Invalid {
            path: path.to_path_buf(),
            problem: Box::new(problem),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    #[test]
    fn parses_identity_files_and_never_prints_keys() {
        #[allow(deprecated)] // X25519, as operators' identity files are (see `Recipient`)
        let id = age::x25519::Identity::generate();
        let secret = id.to_string().expose_secret().to_string();
        let ids = Identities::parse(&format!(
            "# created: now\n# public key: {}\n{secret}\n",
            id.to_public()
        ))
        .unwrap();
        assert_eq!(ids.0.len(), 1);
        assert!(!format!("{ids:?}").contains("AGE-SECRET"));
        assert!(Identities::parse("# nothing\n").is_err());
        let e = Identities::parse("AGE-SECRET-KEY-1NOPE\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1") && !e.contains("NOPE"), "{e}");
    }
}
