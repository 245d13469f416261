//! A local folder: plain files, fsync'd (file and folder) before a backup counts as written.
//! Everything written here is private whatever the umask: files 0600, folders 0700 (a database
//! dump must not be readable by every user of the host).

use super::{
    Download, DownloadKind, Entry, Reservation, Storage, StorageError, Upload, UploadKind,
};
use crate::cancel::Cancel;
use crate::proc::ProcGroup;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What `write_small` puts between `.NAME` and its pid in its temp file's name.
pub const TMP_INFIX: &str = ".tmp-";

/// The hidden folder `upload_dir` copies `name` into before renaming it in place.
pub fn part_name(name: &str, pid: u32) -> String {
    format!(".{name}.part-{pid}")
}

/// Mode of every file dbstash writes into a local folder.
const FILE_MODE: u32 = 0o600;
/// Mode of every folder dbstash creates there.
const DIR_MODE: u32 = 0o700;

/// `create_dir_all`, but the folders it creates are 0700 (existing ones are left as they are).
fn make_dirs(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Open `path` for writing, empty, as a private file: created 0600, and an existing file (ours,
/// claimed before) set to 0600 too, since `mode` only applies to a file the call creates.
fn create_private(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

pub struct LocalStorage {
    root: PathBuf,
}

pub struct LocalUpload {
    path: PathBuf,
}

fn io<'a>(op: &'static str, key: &'a str) -> impl FnOnce(std::io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        key: key.to_string(),
        source,
    }
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

impl LocalUpload {
    pub(super) async fn commit(self, hold: Option<File>) -> Result<(), StorageError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(f) = hold {
                f.sync_all()?;
            }
            sync_dir(&path);
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|source| StorageError::Task {
            what: "fsync",
            source,
        })?
        .map_err(io("fsync", &self.path.display().to_string()))
    }
}

impl LocalStorage {
    pub fn new(root: PathBuf) -> Self {
        LocalStorage { root }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    /// The entries of `folder` (none if it does not exist yet), sorted by name. Entries whose
    /// metadata cannot be read (removed meanwhile) are skipped.
    fn read_entries(&self, folder: &str) -> Result<Vec<(String, fs::Metadata)>, StorageError> {
        let rd = match fs::read_dir(self.path(folder)) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("list", folder)(e)),
        };
        let mut out = Vec::new();
        for ent in rd {
            let ent = ent.map_err(io("list", folder))?;
            if let Ok(meta) = ent.metadata() {
                out.push((ent.file_name().to_string_lossy().into_owned(), meta));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

fn mtime(meta: &fs::Metadata) -> Option<jiff::Timestamp> {
    meta.modified()
        .ok()
        .and_then(|t| jiff::Timestamp::try_from(t).ok())
}

impl Storage for LocalStorage {
    async fn list(&self, folder: &str) -> Result<Vec<Entry>, StorageError> {
        let out = self
            .read_entries(folder)?
            .into_iter()
            .filter(|(_, meta)| meta.is_file())
            .map(|(name, meta)| Entry {
                name,
                size: meta.len(),
                modified: mtime(&meta),
            })
            .collect();
        Ok(out)
    }

    async fn read_small(&self, key: &str) -> Result<Vec<u8>, StorageError> {
        fs::read(self.path(key)).map_err(io("read", key))
    }

    async fn write_small(&self, key: &str, data: &[u8]) -> Result<(), StorageError> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            make_dirs(dir).map_err(io("mkdir", key))?;
        }
        // `.NAME.tmp-PID`: `prune` recognises these of dead processes (run::leftovers).
        let tmp = path.with_file_name(format!(
            ".{}{TMP_INFIX}{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        let written = (|| {
            let mut f = create_private(&tmp)?;
            f.write_all(data)?;
            f.sync_all()
        })();
        if let Err(e) = written {
            // A full disk must not leave the temp file behind.
            let _ = fs::remove_file(&tmp);
            return Err(io("write", key)(e));
        }
        fs::rename(&tmp, &path).map_err(io("rename", key))?;
        sync_dir(&path);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("delete", key)(e)),
        }
    }

    async fn reserve(&self, key: &str, folder: bool) -> Result<Reservation, StorageError> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            make_dirs(dir).map_err(io("mkdir", key))?;
        }
        // O_EXCL / mkdir: exactly one caller gets the name, whoever else tries at the same time.
        let made = if folder {
            fs::DirBuilder::new().mode(DIR_MODE).create(&path)
        } else {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&path)
                .map(drop)
        };
        match made {
            Ok(()) => Ok(Reservation::Made),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Reservation::Taken),
            Err(e) => Err(io("reserve", key)(e)),
        }
    }

    async fn begin_upload(
        &self,
        key: &str,
        _group: &ProcGroup,
        _expected: Option<u64>,
    ) -> Result<Upload, StorageError> {
        let path = self.path(key);
        if let Some(dir) = path.parent() {
            make_dirs(dir).map_err(io("mkdir", key))?;
        }
        // The name was claimed (`reserve`) by this run: the file, if there, is its own.
        let f = create_private(&path).map_err(io("create", key))?;
        Upload::new(f, UploadKind::Local(LocalUpload { path })).map_err(io("dup", key))
    }

    async fn open_read(
        &self,
        key: &str,
        _size: Option<u64>,
        _group: &ProcGroup,
    ) -> Result<Download, StorageError> {
        let f = File::open(self.path(key)).map_err(io("open", key))?;
        // A folder opens, and reading it fails only later: it is not an object.
        let meta = f.metadata().map_err(io("open", key))?;
        if !meta.is_file() {
            return Err(io("open", key)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a file",
            )));
        }
        Ok(Download {
            reader: f,
            kind: DownloadKind::Local,
        })
    }

    async fn prepare_small(&self, _key: &str, _group: &ProcGroup) -> super::PendingSmall {
        super::PendingSmall::Direct
    }

    async fn list_folders(&self, folder: &str) -> Result<Vec<Entry>, StorageError> {
        let out = self
            .read_entries(folder)?
            .into_iter()
            // Our own in-progress copies (`.NAME.part-PID`) are not folders of anyone's.
            .filter(|(name, meta)| meta.is_dir() && !name.starts_with('.'))
            .map(|(name, meta)| Entry {
                name,
                size: 0,
                modified: mtime(&meta),
            })
            .collect();
        Ok(out)
    }

    async fn upload_dir(
        &self,
        local: &Path,
        key: &str,
        _group: &ProcGroup,
    ) -> Result<(), StorageError> {
        let dest = self.path(key);
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Copied beside its final place, then renamed: the folder appears whole or not at all.
        let part = dest.with_file_name(part_name(&name, std::process::id()));
        let (src, d, p) = (local.to_path_buf(), dest.clone(), part.clone());
        let k = key.to_string();
        // The copy stops between two chunks when this future is dropped (a run's timeout or
        // shutdown), and removes its part folder itself: nobody awaits it any more.
        let cancel = Cancel::new();
        let _stop_copy = cancel.on_drop();
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = d.parent() {
                make_dirs(parent)?;
            }
            let _ = fs::remove_dir_all(&p);
            // Looked at once more before the rename: a run cut short meanwhile has already
            // deleted `d` (its cleanup), and a folder renamed in after that would have no record.
            // The rename replaces only the empty folder this run reserved; a folder with anything
            // in it (someone else's) makes it fail instead of being overwritten.
            let copied = copy_tree(&src, &p, &cancel)
                .and_then(|()| cancel.check())
                .and_then(|()| fs::rename(&p, &d));
            if copied.is_err() {
                let _ = fs::remove_dir_all(&p);
            }
            copied?;
            sync_dir(&d);
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|source| StorageError::Task {
            what: "copy",
            source,
        })?
        .map_err(|e| {
            let _ = fs::remove_dir_all(&part);
            io("copy folder", &k)(e)
        })
    }

    async fn download_dir(
        &self,
        key: &str,
        local: &Path,
        _group: &ProcGroup,
    ) -> Result<(), StorageError> {
        let (src, dst) = (self.path(key), local.to_path_buf());
        if !src.is_dir() {
            return Err(StorageError::NotAFolder { path: src });
        }
        // Stops when this future is dropped (an interrupted restore); the caller's folder goes.
        let cancel = Cancel::new();
        let _stop_copy = cancel.on_drop();
        tokio::task::spawn_blocking(move || copy_tree(&src, &dst, &cancel))
            .await
            .map_err(|source| StorageError::Task {
                what: "copy",
                source,
            })?
            .map_err(io("copy folder", key))
    }

    async fn delete_dir(&self, key: &str) -> Result<(), StorageError> {
        match fs::remove_dir_all(self.path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io("delete folder", key)(e)),
        }
    }

    fn describe(&self, key: &str) -> String {
        self.path(key).display().to_string()
    }
}

/// Copy regular files and folders (symlinks are not followed nor copied), fsync'ing each file.
/// Copies are private (0600 files, 0700 folders) whatever the source's modes. Stops with an
/// error between two chunks once `cancel` is set.
fn copy_tree(src: &Path, dst: &Path, cancel: &Cancel) -> std::io::Result<()> {
    make_dirs(dst)?;
    for e in fs::read_dir(src)? {
        let e = e?;
        let t = e.file_type()?;
        let to = dst.join(e.file_name());
        if t.is_dir() {
            copy_tree(&e.path(), &to, cancel)?;
        } else if t.is_file() {
            copy_file(&e.path(), &to, cancel)?;
        }
    }
    if let Ok(d) = File::open(dst) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// `fs::copy` (permissions included) in 64 MiB chunks, looking at `cancel` between two, then fsync.
fn copy_file(from: &Path, to: &Path, cancel: &Cancel) -> std::io::Result<()> {
    use std::io::Read;
    const CHUNK: u64 = 64 << 20;
    cancel.check()?;
    let mut src = File::open(from)?;
    let mut dst = create_private(to)?;
    while std::io::copy(&mut (&mut src).take(CHUNK), &mut dst)? > 0 {
        cancel.check()?;
    }
    dst.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_tree_stops_when_cancelled() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("sub/a"), b"abc").unwrap();
        let cancel = Cancel::new();
        copy_tree(src.path(), &dst.path().join("x"), &cancel).unwrap();
        assert_eq!(std::fs::read(dst.path().join("x/sub/a")).unwrap(), b"abc");
        cancel.set();
        let e = copy_tree(src.path(), &dst.path().join("y"), &cancel).unwrap_err();
        assert!(e.to_string().contains("stopped"), "{e}");
        assert!(!dst.path().join("y/sub/a").exists());
    }
}
