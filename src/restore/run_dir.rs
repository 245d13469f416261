//! A private (0700) folder per restore step for the tools' 0600 option files, removed on drop.

use super::RestoreError;
use crate::plan::command::CommandSpec;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn create(base: &Path) -> Result<Self, RestoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let path = base.join("restore").join(&id[..12]);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|source| RestoreError::Io {
                what: format!("cannot create private folder {}", path.display()),
                source,
            })?;
        Ok(RunDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn write_private_files(dir: &Path, spec: &CommandSpec) -> Result<(), RestoreError> {
    use std::io::Write;
    for f in &spec.files {
        let p = dir.join(&f.name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .map_err(|source| RestoreError::Io {
                what: format!("cannot write {}", p.display()),
                source,
            })?;
        file.write_all(f.contents.expose().as_bytes())
            .map_err(|source| RestoreError::Io {
                what: format!("cannot write {}", p.display()),
                source,
            })?;
    }
    Ok(())
}
