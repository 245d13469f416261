//! `directory` mode's second half: the dump tool's folder is copied to every remote file by file
//! (a required remote failing undoes the others), then each remote gets a record listing every
//! file's size and sha256 (its own `sha256` is the digest of that list).

use super::commit::{base_record, remove_backup, retain, write_records, Committed};
use super::ctx::{Ctx, Done};
use super::error::RunError;
use super::ledger::ObjectKind;
use super::relay::RelayStats;
use crate::cancel::{Cancel, StopReader};
use crate::catalog::record::{self, Record};
use crate::plan::{JobPlan, ObjectName};
use crate::storage::Storage;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

/// The chosen name of a backup and what its record will say about the tools.
pub struct Named<'a> {
    pub obj: &'a ObjectName,
    pub key: String,
    pub versions: BTreeMap<String, String>,
}

/// Every file under `dir` with its size and sha256, in path order. Stops at its next read once
/// `cancel` is set (a dump folder can hold hundreds of gigabytes).
fn sum_tree(dir: &Path, cancel: &Cancel) -> std::io::Result<Vec<record::FileSum>> {
    use super::relay::HashingWriter;
    fn walk(
        root: &Path,
        d: &Path,
        out: &mut Vec<record::FileSum>,
        cancel: &Cancel,
    ) -> std::io::Result<()> {
        for e in std::fs::read_dir(d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                walk(root, &e.path(), out, cancel)?;
            } else if t.is_file() {
                let mut f = StopReader {
                    inner: File::open(e.path())?,
                    cancel: cancel.clone(),
                };
                let mut h = HashingWriter::new(std::io::sink());
                let size = std::io::copy(&mut f, &mut h)?;
                let (_, _, sha256) = h.finish();
                let path = e.path();
                let rel = path.strip_prefix(root).map_err(std::io::Error::other)?;
                out.push(record::FileSum {
                    path: rel.to_string_lossy().into_owned(),
                    size,
                    sha256,
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out, cancel)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Copy the folder to every live remote, then write the records.
pub async fn finish(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    dir: &Path,
    named: Named<'_>,
    live: Vec<usize>,
    mut dropped: Vec<String>,
) -> Result<Done, RunError> {
    let key = named.key;
    let d = dir.to_path_buf();
    // Hashing runs on a blocking thread: this guard stops it if the run is cut short (the copies
    // below stop the same way, inside `upload_dir`).
    let cancel = Cancel::new();
    let _stop_hashing = cancel.on_drop();
    let files = tokio::task::spawn_blocking(move || sum_tree(&d, &cancel))
        .await
        .map_err(RunError::HashTask)?
        .map_err(RunError::ReadFolder)?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let mut copied: Vec<(usize, String)> = Vec::new();
    for i in live {
        let r = &plan.remotes[i];
        ctx.partial.note(i, &key, ObjectKind::Folder);
        match ctx.stores[i].upload_dir(dir, &key, ctx.upload_group).await {
            Ok(()) => copied.push((i, r.name.clone())),
            Err(e) => {
                remove_backup(plan, ctx, i, &key).await;
                if r.optional {
                    tracing::warn!(job = %plan.job, event = "remote_dropped", remote = %r.name, error = %e);
                    dropped.push(format!("{}: {e}", r.name));
                    continue;
                }
                for (j, _) in &copied {
                    remove_backup(plan, ctx, *j, &key).await;
                }
                return Err(RunError::Copy {
                    remote: r.name.clone(),
                    source: e,
                });
            }
        }
    }
    let finished = Timestamp::now();
    let digest = record::folder_digest(&files);
    let native = plan
        .job()
        .is_some_and(|j| j.compress == crate::model::Compress::Native);
    let rec = Record {
        size: total,
        raw_size: total,
        sha256: digest.clone(),
        compression: if native { "native" } else { "none" }.into(),
        files,
        ..base_record(plan, ctx, named.obj, finished, named.versions)
    };
    let committed = copied
        .into_iter()
        .map(|(idx, name)| Committed {
            idx,
            name,
            record: crate::storage::PendingSmall::Direct,
        })
        .collect();
    let written = write_records(plan, ctx, &key, &rec, committed, &mut dropped).await?;
    retain(plan, ctx, &written, finished, &[]).await;
    Ok(Done {
        key,
        database: plan.database.clone(),
        stats: RelayStats {
            raw_bytes: total,
            stored_bytes: total,
            sha256: digest,
        },
        remotes: written.into_iter().map(|w| w.name).collect(),
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_tree_lists_every_file_and_stops_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), b"abc").unwrap();
        std::fs::write(dir.path().join("toc.dat"), b"").unwrap();
        let sums = sum_tree(dir.path(), &Cancel::new()).unwrap();
        let paths: Vec<&str> = sums.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["sub/a", "toc.dat"]);
        assert_eq!(sums[0].size, 3);
        let cancel = Cancel::new();
        cancel.set();
        let e = sum_tree(dir.path(), &cancel).unwrap_err();
        assert!(e.to_string().contains("stopped"), "{e}");
    }
}
