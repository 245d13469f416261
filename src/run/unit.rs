//! One backup object: one database's dump ⇒ relay (compress, encrypt, hash) ⇒ tee ⇒ one upload
//! per remote → checks → commit every upload → a record on each remote (last) → retention.
//! Any failure of the dump or of a required remote aborts every upload before it sees EOF; an
//! optional remote that fails is dropped (its partial object deleted) and the others go on.

use super::claim;
use super::commit::{base_record, forget_partial, remove_backup, retain, write_records};
pub use super::ctx::{Ctx, Done};
use super::dump::{
    dump_to_folder, make_private_dir, start_dump, tail_or, tool_version, write_private_files,
};
use super::folder;
use super::relay::{self, Tee, TeeOut};
use crate::catalog::record::{self, Record};
use crate::engine::DumpSpec;
use crate::model::Mode;
use crate::plan::JobPlan;
use crate::proc::{self, StderrTail};
use crate::secret::{redact, Secret};
use crate::storage::{Entry, Storage, Upload};
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::fs::File;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// A running upload to remote `idx`.
struct Up {
    idx: usize,
    name: String,
    optional: bool,
    upload: Upload,
    /// The record's uploader, started with the upload so its start-up is off the critical path.
    record: crate::storage::PendingSmall,
}

/// What produces the bytes the relay reads: the dump tool itself (stream mode), or the task
/// writing a tar of the dump's folder (tar mode), or nothing to wait for (SQLite snapshot file).
enum Producer {
    Child(tokio::process::Child),
    Tar(tokio::task::JoinHandle<std::io::Result<()>>),
    Done,
}

impl Producer {
    /// Ok(()) when it finished cleanly; Err(description) otherwise. Cancel-safe for `Child`.
    async fn wait(&mut self) -> Result<(), String> {
        match self {
            Producer::Child(c) => match c.wait().await {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(proc::describe_status(s)),
                Err(e) => Err(e.to_string()),
            },
            Producer::Tar(t) => {
                let r = t.await;
                *self = Producer::Done;
                match r {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(format!("writing the tar stream: {e}")),
                    Err(e) => Err(format!("tar task: {e}")),
                }
            }
            Producer::Done => Ok(()),
        }
    }
}

/// Resolves when a required upload exits on its own (crashed, killed, gave up). Cancel-safe:
/// built once and polled across the select loop's iterations.
async fn required_exit(ups: &mut [Up]) -> (String, String) {
    type Fut<'a> = Pin<Box<dyn Future<Output = (String, String)> + Send + 'a>>;
    let mut futs: Vec<Fut<'_>> = ups
        .iter_mut()
        .filter(|u| !u.optional)
        .map(|u| {
            let name = u.name.clone();
            let up = &mut u.upload;
            Box::pin(async move { (name, up.exited().await) }) as Fut<'_>
        })
        .collect();
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if let Poll::Ready(v) = f.as_mut().poll(cx) {
                return Poll::Ready(v);
            }
        }
        Poll::Pending
    })
    .await
}

async fn abort_all(ups: Vec<Up>, ctx: &Ctx<'_>, key: &str) -> Vec<String> {
    let mut tails = Vec::new();
    for u in ups {
        let t = u.upload.abort(&ctx.stores[u.idx], key).await;
        if !t.is_empty() {
            tails.push(format!("{}: {t}", u.name));
        }
    }
    tails
}

/// Back up `plan` (one database) to every remote of the run.
pub async fn backup_one(plan: &JobPlan, ctx: &Ctx<'_>, unit_dir: &Path) -> Result<Done, String> {
    let refs: Vec<&Secret> = ctx.secrets.iter().collect();
    make_private_dir(unit_dir)
        .map_err(|e| format!("cannot create run folder {}: {e}", unit_dir.display()))?;

    // Stream mode: start the dump now, so its start-up (connecting, reading the catalog)
    // overlaps the listing below; it waits on its full pipe until the relay reads it. If anything
    // fails before the relay starts, dropping the child kills it (kill_on_drop).
    let mut early = None;
    if let (Mode::Stream, DumpSpec::Command(spec)) = (plan.mode, &plan.dump) {
        early = Some(start_dump(spec, ctx, unit_dir)?);
    }

    // Claim the object's name on every remote (never overwrite a backup, never share a name
    // with another run); the listings taken for the claim also say what the last backup weighed.
    let wanted = plan.object_for(&plan.name_vars(ctx.started));
    // Only folder modes without `expected_size` need the previous backup's record (its raw size),
    // and an interactive run for its progress line's percent and ETA.
    let read_record =
        (plan.mode != Mode::Stream || ctx.env.progress) && plan.expected_size.is_none();
    let version = async {
        match &plan.version {
            Some(v) => tool_version(v).await.map(|t| (v.program.clone(), t)),
            None => None,
        }
    };
    // mysql/mariadb: the database's default charset/collation, for a restore that creates it.
    let charset = async {
        crate::engine::mysql::source_charset(plan.job()?, &unit_dir.join("charset")).await
    };
    let (claimed, version, charset) = tokio::join!(
        claim::claim(plan, ctx, &wanted, read_record),
        version,
        charset
    );
    let claim::Claimed {
        obj,
        listings,
        live,
        mut dropped,
    } = claimed.map_err(|e| e.to_string())?;
    let mut previous = None;
    let mut largest = None;
    let mut listed: Vec<Option<Vec<Entry>>> = vec![None; plan.remotes.len()];
    for (i, p) in listings.into_iter().enumerate() {
        if let Some(p) = p {
            previous = previous.or(p.backup);
            largest = largest.max(p.largest);
            listed[i] = Some(p.entries);
        }
    }
    let key = obj.key();
    let estimate = plan.expected_size.or_else(|| {
        previous
            .as_ref()
            .map(|b| b.record.size)
            .or(largest)
            .map(|s| s + s / 4)
    });
    let versions: BTreeMap<String, String> = version.into_iter().collect();

    // tar mode: the folder first (temp space checked up front), then the tar of it is the stream.
    let mut folder_src = None;
    if plan.mode != Mode::Stream {
        let DumpSpec::Command(spec) = &plan.dump else {
            return Err("internal error: a folder dump needs a command".into());
        };
        let space_estimate = plan
            .expected_size
            .or_else(|| previous.as_ref().map(|b| b.record.raw_size));
        folder::check_space(&ctx.env.temp_dir, space_estimate)?;
        write_private_files(unit_dir, spec)
            .map_err(|e| format!("cannot write option file: {e}"))?;
        let dir = dump_to_folder(plan, spec, ctx, unit_dir).await?;
        if plan.mode == Mode::Directory {
            let named = super::directory::Named {
                obj: &obj,
                key,
                versions,
            };
            return super::directory::finish(plan, ctx, &dir, named, live, dropped).await;
        }
        folder_src = Some(dir);
    }

    // Start the uploads first, so the bytes have somewhere to go.
    let mut ups: Vec<Up> = Vec::new();
    for i in live {
        let r = &plan.remotes[i];
        match ctx.stores[i]
            .begin_upload(&key, ctx.upload_group, estimate)
            .await
        {
            Ok(u) => {
                claim::note_partial(ctx, i, &key, false);
                let record = ctx.stores[i]
                    .prepare_small(&record::record_key(&key), ctx.upload_group)
                    .await;
                ups.push(Up {
                    idx: i,
                    name: r.name.clone(),
                    optional: r.optional,
                    upload: u,
                    record,
                });
            }
            Err(e) if r.optional => {
                tracing::warn!(job = %plan.job, event = "remote_dropped", remote = %r.name, error = %e);
                dropped.push(format!("{}: cannot start upload: {e}", r.name));
            }
            Err(e) => {
                abort_all(ups, ctx, &key).await;
                return Err(format!("cannot start upload to `{}`: {e}", r.name));
            }
        }
    }
    let mut outs = Vec::new();
    for u in ups.iter_mut() {
        match u.upload.take_writer() {
            Ok(w) => outs.push(TeeOut {
                name: u.name.clone(),
                optional: u.optional,
                writer: w,
                failed: None,
            }),
            Err(e) => {
                abort_all(ups, ctx, &key).await;
                return Err(format!("upload: {e}"));
            }
        }
    }

    // Start the producer of the bytes. The tar writer and the relay are blocking threads that a
    // dropped future does not stop: this guard does (a run cut short by its timeout or shutdown).
    let cancel = crate::cancel::Cancel::new();
    let _stop_copies = cancel.on_drop();
    let mut dump_tail = StderrTail::empty();
    // A SQLite snapshot's relay stops reading when this is dropped (a run cut short).
    let mut _snapshot_stop = None;
    let (source, mut producer): (File, Producer) = match (&plan.dump, folder_src) {
        (_, Some(dir)) => match folder::tar_stream(dir, cancel.clone()) {
            Ok((r, task)) => (r, Producer::Tar(task)),
            Err(e) => {
                abort_all(ups, ctx, &key).await;
                return Err(format!("cannot start the tar stream: {e}"));
            }
        },
        (DumpSpec::Command(_), None) => match early.take() {
            Some((f, child, tail)) => {
                dump_tail = tail;
                (f, Producer::Child(child))
            }
            None => {
                abort_all(ups, ctx, &key).await;
                return Err("internal error: the dump was not started".into());
            }
        },
        (DumpSpec::SqliteSnapshot { path }, None) => {
            match super::sqlite::snapshot(path.clone(), unit_dir.join("snapshot.sqlite3")).await {
                Ok(snap) => {
                    _snapshot_stop = Some(snap.stop);
                    (snap.file, Producer::Done)
                }
                Err(e) => {
                    abort_all(ups, ctx, &key).await;
                    return Err(e.to_string());
                }
            }
        }
    };

    let progress = ctx.env.progress.then(|| Arc::new(AtomicU64::new(0)));
    let expected = plan
        .expected_size
        .or_else(|| previous.as_ref().map(|b| b.record.raw_size))
        .map(super::progress::Expected::About);
    let bar = progress
        .clone()
        .map(|p| super::progress::Progress::expecting(&plan.job, p, expected));
    let codec = plan.codec;
    let recipients = plan.encrypt.as_ref().map(|e| e.recipients.clone());
    let relay_cancel = cancel.clone();
    let mut relay_task = tokio::task::spawn_blocking(move || {
        let tee = Tee { outs };
        relay::relay_files(
            source,
            tee,
            codec,
            recipients.as_deref(),
            progress,
            &relay_cancel,
        )
    });
    // Watch the relay, the producer and the required uploads at once. Whichever fails first stops
    // the others now (SIGKILL to the dump's group; rclone, which never sees EOF, is aborted below):
    // a dump whose child still holds the pipe, or an idle dump behind a dead upload, must not keep
    // the run alive.
    let mut relayed = None;
    let mut produced: Option<Result<(), String>> = None;
    let mut upload_died: Option<(String, String)> = None;
    let mut relay_failed_first = false;
    {
        let mut stopped = false;
        let watch = required_exit(&mut ups);
        tokio::pin!(watch);
        while relayed.is_none() || produced.is_none() {
            tokio::select! {
                r = &mut relay_task, if relayed.is_none() => {
                    if !matches!(r, Ok(Ok(_))) && !stopped {
                        relay_failed_first = true;
                        stopped = true;
                        ctx.group.kill();
                    }
                    relayed = Some(r);
                }
                s = producer.wait(), if produced.is_none() => {
                    if s.is_err() && !stopped {
                        stopped = true;
                        ctx.group.kill();
                    }
                    produced = Some(s);
                }
                how = &mut watch, if upload_died.is_none() && !stopped => {
                    upload_died = Some(how);
                    stopped = true;
                    ctx.group.kill();
                }
            }
        }
    }
    if let Some(b) = bar {
        b.stop();
    }
    // The relay and the dump often fail together (the relay stops reading, the dump then dies of
    // SIGPIPE): a broken pipe in the relay names the real culprit, so look for a dead upload and
    // let the relay's error win over the dump's SIGPIPE.
    let relay_broke = !matches!(relayed, Some(Ok(Ok(_))));
    if relay_broke {
        if upload_died.is_none() {
            for u in ups.iter_mut().filter(|u| !u.optional) {
                if let Ok(how) =
                    tokio::time::timeout(Duration::from_millis(300), u.upload.exited()).await
                {
                    upload_died = Some((u.name.clone(), how));
                    break;
                }
            }
        }
        if matches!(&produced, Some(Err(how)) if how == "exit 141" || how == "killed by signal 13")
        {
            relay_failed_first = true;
        }
    }
    let dump_tail = redact(&dump_tail.finish().await, &refs);
    let program = match &plan.dump {
        DumpSpec::Command(c) if plan.mode == Mode::Stream => c.program.clone(),
        DumpSpec::Command(_) => "tar".into(),
        DumpSpec::SqliteSnapshot { .. } => "sqlite snapshot".into(),
    };
    let (Some(relayed), Some(produced)) = (relayed, produced) else {
        abort_all(ups, ctx, &key).await;
        return Err("internal error: the relay or the dump was not waited for".into());
    };

    // A required upload died on its own: that is the failure, whatever the dump then saw.
    if let Some((remote, how)) = upload_died {
        let tails = abort_all(ups, ctx, &key).await;
        return Err(format!(
            "upload to `{remote}` failed: the upload ended before the dump did ({how}){}",
            tails_text(&tails)
        ));
    }
    // Judge the dump first: a failed dump must never become an object, whatever the relay saw
    // (unless the relay failed first and the dump only died because we stopped it).
    if let Err(how) = &produced {
        if !relay_failed_first {
            abort_all(ups, ctx, &key).await;
            return Err(format!("{program} failed ({how}): {}", tail_or(&dump_tail)));
        }
    }
    let (stats, tee) = match relayed {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            let tails = abort_all(ups, ctx, &key).await;
            return Err(format!(
                "upload failed: {}{}",
                redact(&e.to_string(), &refs),
                tails_text(&tails)
            ));
        }
        Err(e) => {
            let tails = abort_all(ups, ctx, &key).await;
            return Err(format!("relay: {e}{}", tails_text(&tails)));
        }
    };
    if stats.raw_bytes < plan.min_raw_bytes.max(1) && !plan.allow_empty {
        abort_all(ups, ctx, &key).await;
        return Err(format!(
            "{program} produced only {} bytes (an empty database still dumps at least {}); set `allow_empty: true` if this is expected. {}",
            stats.raw_bytes,
            plan.min_raw_bytes,
            tail_or(&dump_tail)
        ));
    }
    // Optional remotes whose pipe broke mid-stream are dropped now.
    let failed: BTreeMap<String, String> = tee
        .outs
        .into_iter()
        .filter_map(|o| o.failed.map(|f| (o.name, f)))
        .collect();
    let mut keep = Vec::new();
    for u in ups {
        match failed.get(&u.name) {
            Some(why) => {
                let tail = u.upload.abort(&ctx.stores[u.idx], &key).await;
                forget_partial(ctx, u.idx, &key);
                tracing::warn!(job = %plan.job, event = "remote_dropped", remote = %u.name, error = %why, tail = %tail);
                dropped.push(format!("{}: {why} {tail}", u.name).trim_end().to_string());
            }
            None => keep.push(u),
        }
    }

    // Commit every upload; a required one failing undoes the others.
    let mut committed: Vec<(usize, String, crate::storage::PendingSmall)> = Vec::new();
    let mut commit_error = None;
    for u in keep {
        if commit_error.is_some() {
            let _ = u.upload.abort(&ctx.stores[u.idx], &key).await;
            forget_partial(ctx, u.idx, &key);
            continue;
        }
        match u.upload.commit().await {
            Ok(()) => committed.push((u.idx, u.name, u.record)),
            Err(e) => {
                let msg = redact(&e.to_string(), &refs);
                remove_backup(plan, ctx, u.idx, &key).await;
                if u.optional {
                    tracing::warn!(job = %plan.job, event = "remote_dropped", remote = %u.name, error = %msg);
                    dropped.push(format!("{}: {msg}", u.name));
                } else {
                    commit_error = Some(format!("upload to `{}` failed: {msg}", u.name));
                }
            }
        }
    }
    if let Some(e) = commit_error {
        for (i, _, _) in &committed {
            remove_backup(plan, ctx, *i, &key).await;
        }
        return Err(e);
    }

    // The records, last.
    let finished = Timestamp::now();
    let rec = Record {
        size: stats.stored_bytes,
        raw_size: stats.raw_bytes,
        sha256: stats.sha256.clone(),
        compression: plan.codec.name().into(),
        dump_format: plan.extension.clone(),
        encryption: if plan.encrypt.is_some() {
            "age"
        } else {
            "none"
        }
        .into(),
        charset,
        ..base_record(plan, ctx, &obj, finished, versions)
    };
    let written = write_records(plan, ctx, &key, &rec, committed, &mut dropped).await?;

    retain(plan, ctx, &written, finished, &listed).await;
    Ok(Done {
        key,
        database: plan.database.clone(),
        stats,
        remotes: written.into_iter().map(|(_, n)| n).collect(),
        dropped,
    })
}

fn tails_text(tails: &[String]) -> String {
    if tails.is_empty() {
        String::new()
    } else {
        format!(": {}", tails.join("; "))
    }
}
