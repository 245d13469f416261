//! Size caps on everything the manifest loader reads or builds, so hostile or mistaken input is a
//! located error instead of an out-of-memory abort (`-c /dev/zero`, `password_file: /dev/zero`,
//! an anchor on a long string aliased thousands of times).
//!
//! The numbers are far above any real manifest (the largest seen in practice are tens of KiB) and
//! far below what would hurt a small container: parsing, schema checks and job merging keep a few
//! copies of the document, so the caps bound the loader's memory to tens of MiB.

use std::io::{self, Read};
use std::path::Path;

/// The manifest text.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;
/// The YAML tree after aliases and `${VAR}` are expanded (bytes of its strings).
pub const MAX_EXPANDED_BYTES: usize = 4 * 1024 * 1024;
/// Every job after `defaults` and its template are merged into it, all jobs together.
pub const MAX_MERGED_BYTES: usize = 16 * 1024 * 1024;
/// One `*_file` secret (a password, URI, URL, recipients list).
pub const MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// "1 MiB" for messages.
pub fn human(bytes: u64) -> String {
    crate::domain::units::human_size(bytes).replace(".0 ", " ")
}

/// Read the manifest: at most `MAX_MANIFEST_BYTES`. Any readable file works (a pipe from
/// `envsubst` too); an endless one (`/dev/zero`) stops at the cap.
pub fn read_manifest(path: &Path) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    read_capped(file, MAX_MANIFEST_BYTES, "the manifest")
}

/// Read a `*_file` secret: a regular file (symlinks followed, as Kubernetes mounts them) of at
/// most `MAX_SECRET_FILE_BYTES`. A device or FIFO is refused before a byte is read: it could be
/// endless or block forever. (A folder fails its read with the system's own "Is a directory".)
pub fn read_secret_file(path: &Path) -> io::Result<String> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    read_capped(file, MAX_SECRET_FILE_BYTES, "a secret file")
}

fn read_capped(file: std::fs::File, cap: u64, what: &str) -> io::Result<String> {
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {}, the limit for {what}", human(cap)),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endless_and_special_files_are_refused() {
        let e = read_manifest(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("larger than 1 MiB"), "{e}");
        let e = read_secret_file(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file");
        let e = read_secret_file(Path::new("/")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::IsADirectory);
    }

    #[test]
    fn secret_files_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, vec![b'a'; MAX_SECRET_FILE_BYTES as usize]).unwrap();
        assert_eq!(read_secret_file(&p).unwrap().len(), 65536);
        std::fs::write(&p, vec![b'a'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        let e = read_secret_file(&p).unwrap_err();
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");
    }
}
