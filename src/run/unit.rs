//! One backup object, as named stages: name (claim it on every remote) → start uploads → start
//! the producer → pump (dump ⇒ relay: compress, encrypt, hash ⇒ tee ⇒ one upload per remote) →
//! judge → commit every upload → a record on each remote (last) → retention. Any failure of the
//! dump or of a required remote aborts every upload before it sees EOF (`Uploads::abort`); an
//! optional remote that fails is dropped (its partial object deleted) and the others go on.

use super::claim;
use super::claim_ahead::{self, Ahead};
use super::commit::{base_record, retain, write_records};
pub use super::ctx::{Ctx, Done};
use super::dump::{dump_to_folder, make_private_dir, tool_version, write_private_files};
use super::error::RunError;
use super::folder;
use super::judge::{self, Floor};
use super::producer;
use super::relay::{RelayStats, Tap, Tee};
use super::uploads::Uploads;
use crate::catalog::record::Record;
use crate::engine::mysql::DbCharset;
use crate::engine::postgres::base::{BaseWal, TarScan};
use crate::engine::DumpSpec;
use crate::model::Mode;
use crate::plan::{JobPlan, ObjectName};
use crate::secret::{redact, Secret};
use crate::storage::Entry;
use jiff::Timestamp;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The backup's claimed name and what the claim's listings said.
struct Named {
    obj: ObjectName,
    key: String,
    /// The remotes still taking part (the others were optional and dropped).
    live: Vec<usize>,
    /// Optional remotes dropped so far, with why.
    dropped: Vec<String>,
    /// Per remote: its folder as listed for the claim, for retention.
    listed: Vec<Option<Vec<Entry>>>,
    /// About how many bytes the dump writes (`expected_size`, or the last backup's raw size):
    /// the temp space check and the progress line.
    raw_estimate: Option<u64>,
    /// About how large the object will be, for the uploads' part sizes.
    upload_estimate: Option<u64>,
    versions: BTreeMap<String, String>,
    charset: Option<DbCharset>,
}

fn dump_command(plan: &JobPlan) -> Option<&crate::domain::command::CommandSpec> {
    match &plan.dump {
        DumpSpec::Command(c) => Some(c),
        DumpSpec::SqliteSnapshot { .. } => None,
    }
}

/// A `pitr` job of `engine: mysql`: the dump client's `--version`, asked before the dump starts
/// (MySQL 8.0.26+ calls the position flag `--source-data`). The answer is kept for the record, so
/// it is asked once. None for every other job: their dumps start without waiting.
async fn position_client(plan: &JobPlan, ctx: &Ctx<'_>) -> Option<String> {
    let mysql_pitr =
        plan.engine == crate::model::Engine::Mysql && plan.pitr.as_ref().is_some_and(|p| p.binlog);
    match &plan.version {
        Some(v) if mysql_pitr => tool_version(v, dump_command(plan), ctx.run_id).await,
        _ => None,
    }
}

/// Back up `plan` (one database) to every remote of the run.
/// `ahead`: where its name's claim arrives when the run claims its databases' names in batches
/// (`claim_ahead`). `dumped` is told once the dump is over and its bytes are all in the uploads
/// (dropped unsent when the backup ends otherwise): the rest is the remotes' work.
pub async fn backup_one(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    unit_dir: &Path,
    ahead: Option<Ahead>,
    dumped: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<Done, RunError> {
    let refs: Vec<&Secret> = ctx.secrets.iter().collect();
    make_private_dir(unit_dir).map_err(|source| RunError::UnitFolder {
        path: unit_dir.display().to_string(),
        source,
    })?;
    let early = producer::start_early(plan, ctx, unit_dir, position_client(plan, ctx).await)?;
    let mut named = name(plan, ctx, unit_dir, ahead).await?;
    let folder = dump_folder(plan, ctx, unit_dir, named.raw_estimate).await?;
    if let (Mode::Directory, Some(dir)) = (plan.mode, &folder) {
        let n = super::directory::Named {
            obj: &named.obj,
            key: named.key.clone(),
            versions: named.versions,
        };
        return super::directory::finish(plan, ctx, dir, n, named.live, named.dropped).await;
    }
    // The uploads first, so the bytes have somewhere to go.
    let uploads = Uploads::start(
        plan,
        ctx,
        &named.key,
        named.upload_estimate,
        &named.live,
        &mut named.dropped,
    )
    .await?;
    let pending = producer::Pending { folder, early };
    let streamed = stream(
        plan,
        ctx,
        unit_dir,
        pending,
        uploads,
        named.raw_estimate,
        &refs,
    )
    .await?;
    let Streamed {
        stats,
        tee,
        mut uploads,
        base_wal,
        binlog,
    } = streamed;
    // The dump has exited and the relay is done: nothing of this backup runs in the slot's
    // process group any more.
    if let Some(d) = dumped {
        let _ = d.send(());
    }
    if plan.pitr.as_ref().is_some_and(|p| p.binlog) && binlog.is_none() {
        tracing::warn!(job = %plan.job, event = "binlog_position_unknown", "the dump states no binlog position (is the server's binlog on?): a restore to an instant cannot start from it");
    }
    uploads
        .drop_failed(&plan.job, &failed_outs(tee), &mut named.dropped)
        .await;
    let committed = uploads.commit(plan, ctx, &refs, &mut named.dropped).await?;
    // The records, last.
    let finished = Timestamp::now();
    let rec = Record {
        base_wal,
        binlog,
        ..stream_record(plan, ctx, &mut named, &stats, finished)
    };
    let written = write_records(plan, ctx, &named.key, &rec, committed, &mut named.dropped).await?;
    retain(plan, ctx, &written, finished, &named.listed).await;
    Ok(Done {
        key: named.key,
        database: plan.database.clone(),
        stats,
        remotes: written.into_iter().map(|w| w.name).collect(),
        dropped: named.dropped,
    })
}

/// Claim the object's name on every remote (never overwrite a backup, never share a name with
/// another run); the listings taken for the claim also say what the last backup weighed. The
/// tool's version and (mysql/mariadb) the database's charset are read meanwhile.
async fn name(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    unit_dir: &Path,
    ahead: Option<Ahead>,
) -> Result<Named, RunError> {
    let wanted = plan.object_for(&plan.name_vars(ctx.started));
    // Only folder modes without `expected_size` need the previous backup's record (its raw size),
    // and an interactive run for its progress line's percent and ETA.
    let read_record = claim_ahead::reads_record(plan, ctx);
    // The claim made ahead, else this backup's own.
    let claim = async {
        let early = match ahead {
            Some(rx) => rx.await.ok().flatten(),
            None => None,
        };
        match early {
            Some(c) => Ok(c),
            None => claim::claim(plan, ctx, &wanted, read_record).await,
        }
    };
    let version = async {
        match &plan.version {
            Some(v) => tool_version(v, dump_command(plan), ctx.run_id)
                .await
                .map(|t| (v.program.clone(), t)),
            None => None,
        }
    };
    // mysql/mariadb: the database's default charset/collation, for a restore that creates it.
    let charset = async {
        crate::engine::mysql::source_charset(plan.job()?, &unit_dir.join("charset")).await
    };
    let (claimed, version, charset) = tokio::join!(claim, version, charset);
    let claim::Claimed {
        obj,
        listings,
        live,
        dropped,
    } = claimed?;
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
    let upload_estimate = plan.expected_size.or_else(|| {
        previous
            .as_ref()
            .map(|b| b.record.size)
            .or(largest)
            .map(|s| s + s / 4)
    });
    let raw_estimate = plan
        .expected_size
        .or_else(|| previous.as_ref().map(|b| b.record.raw_size));
    Ok(Named {
        key: obj.key(),
        obj,
        live,
        dropped,
        listed,
        raw_estimate,
        upload_estimate,
        versions: version.into_iter().collect(),
        charset,
    })
}

/// tar and directory modes: the dump tool writes its folder first (temp space checked up front).
async fn dump_folder(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    unit_dir: &Path,
    raw_estimate: Option<u64>,
) -> Result<Option<PathBuf>, RunError> {
    if plan.mode == Mode::Stream {
        return Ok(None);
    }
    let DumpSpec::Command(spec) = &plan.dump else {
        return Err(RunError::Internal("a folder dump needs a command"));
    };
    folder::check_space(&ctx.env.temp_dir, raw_estimate)?;
    write_private_files(unit_dir, spec).map_err(RunError::OptionFile)?;
    Ok(Some(dump_to_folder(plan, spec, ctx, unit_dir).await?))
}

/// A judged good stream: the relay's stats, its tee (which optional remotes broke), the uploads.
struct Streamed<'a> {
    stats: RelayStats,
    tee: Tee<File>,
    uploads: Uploads<'a>,
    base_wal: Option<BaseWal>,
    /// mysql/mariadb `pitr` jobs: the binlog position the dump's head stated.
    binlog: Option<crate::engine::mysql_pitr::BinlogPosition>,
}

/// A postgres `pitr` job's base backup: a reader of its tar's label and manifest, and the tap
/// that feeds it from the relay.
fn label_scan(plan: &JobPlan) -> Option<(Arc<Mutex<TarScan>>, Tap)> {
    if plan.pitr.is_none() || !plan.engine.is_postgres() {
        return None;
    }
    let scan = Arc::new(Mutex::new(TarScan::new()));
    let fed = scan.clone();
    let tap: Tap = Box::new(move |b: &[u8]| {
        if let Ok(mut s) = fed.lock() {
            s.feed(b);
        }
    });
    Some((scan, tap))
}

/// Start the producer, pump its bytes into the uploads, judge what happened. On failure every
/// upload is aborted before it sees EOF.
async fn stream<'a>(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    unit_dir: &Path,
    pending: producer::Pending,
    mut uploads: Uploads<'a>,
    raw_estimate: Option<u64>,
    refs: &[&Secret],
) -> Result<Streamed<'a>, RunError> {
    let outs = match uploads.writers() {
        Ok(o) => o,
        Err(e) => {
            uploads.abort().await;
            return Err(RunError::UploadWriter(e));
        }
    };
    // The tar writer and the relay are blocking threads that a dropped future does not stop:
    // this guard does (a run cut short by its timeout or shutdown).
    let cancel = crate::cancel::Cancel::new();
    let _stop_copies = cancel.on_drop();
    let (file, mut source) = match producer::start(plan, pending, unit_dir, &cancel).await {
        Ok(x) => x,
        Err(e) => {
            uploads.abort().await;
            return Err(e);
        }
    };
    let scan = label_scan(plan);
    let (scan, tap) = scan.map_or((None, None), |(s, t)| (Some(s), Some(t)));
    let flow = super::pump::Flow { file, outs, tap };
    let pumped = super::pump::pump(
        plan,
        ctx,
        flow,
        &mut source,
        &mut uploads,
        raw_estimate,
        &cancel,
    )
    .await;
    let tail = redact(&source.tail.finish().await, refs);
    let floor = Floor {
        min_raw_bytes: plan.min_raw_bytes,
        allow_empty: plan.allow_empty,
    };
    match pumped.map(|seen| judge::judge(seen, floor)) {
        Ok(Ok((stats, tee))) => Ok(Streamed {
            stats,
            tee,
            uploads,
            base_wal: scan
                .and_then(|s| s.lock().ok().map(|mut g| std::mem::take(&mut *g)))
                .and_then(TarScan::finish),
            binlog: source.binlog.as_ref().and_then(|f| f.get()),
        }),
        Ok(Err(failure)) => {
            let tails = uploads.abort().await;
            let program = producer::program(plan);
            Err(failure.into_error(program, tail, tails, plan.min_raw_bytes, refs))
        }
        Err(e) => {
            uploads.abort().await;
            Err(e)
        }
    }
}

/// Optional remotes whose pipe broke mid-stream: remote → why.
fn failed_outs(tee: Tee<File>) -> BTreeMap<String, String> {
    tee.outs
        .into_iter()
        .filter_map(|o| o.failed.map(|f| (o.name, f)))
        .collect()
}

/// The record of a streamed object.
fn stream_record(
    plan: &JobPlan,
    ctx: &Ctx<'_>,
    named: &mut Named,
    stats: &RelayStats,
    finished: Timestamp,
) -> Record {
    Record {
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
        charset: named.charset.take(),
        ..base_record(
            plan,
            ctx,
            &named.obj,
            finished,
            std::mem::take(&mut named.versions),
        )
    }
}
