//! The in-process transform between the dump and the storage: optional compression (zstd with
//! worker threads, or gzip on all cores), optional age encryption, then sha256 and a byte count
//! of exactly what is stored, then the tee into every remote's upload.
//! Synchronous on purpose: it runs on its own thread with blocking pipes, and its buffers are
//! bounded, so memory does not grow with the database.

use crate::cancel::{Cancel, StopReader};
use crate::engine::Codec;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

const BLOCK: usize = 1 << 20;
const ZSTD_JOB: u32 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayStats {
    /// Bytes the dump produced.
    pub raw_bytes: u64,
    /// Bytes written to storage (after compression).
    pub stored_bytes: u64,
    /// sha256 of the stored bytes.
    pub sha256: String,
}

/// Counts and hashes everything written through it.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.count, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Counts what is read (the dump's raw size), and publishes it for progress lines.
struct CountingReader<R: Read> {
    inner: R,
    count: u64,
    progress: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        if let Some(p) = &self.progress {
            p.store(self.count, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Sees every byte the dump produced, in order, as it passes (a base backup's `backup_label` is
/// read this way: nothing is buffered for it).
pub type Tap = Box<dyn FnMut(&[u8]) + Send>;

struct TapReader<R: Read> {
    inner: R,
    tap: Tap,
}

impl<R: Read> Read for TapReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.tap)(&buf[..n]);
        Ok(n)
    }
}

fn workers() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
}

/// The stored bytes' last stage before hashing: age encryption, or nothing.
enum Sealed<W: Write> {
    Plain(HashingWriter<W>),
    Age(age::stream::StreamWriter<HashingWriter<W>>),
}

impl<W: Write> Write for Sealed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sealed::Plain(w) => w.write(buf),
            Sealed::Age(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sealed::Plain(w) => w.flush(),
            Sealed::Age(w) => w.flush(),
        }
    }
}

impl<W: Write> Sealed<W> {
    fn new(sink: HashingWriter<W>, recipients: Option<&[String]>) -> io::Result<Self> {
        let Some(list) = recipients else {
            return Ok(Sealed::Plain(sink));
        };
        let parsed = parse_recipients(list)?;
        let enc = age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| io::Error::other(format!("age: {e}")))?;
        let w = enc
            .wrap_output(sink)
            .map_err(|e| io::Error::other(format!("age: {e}")))?;
        Ok(Sealed::Age(w))
    }

    /// Finish the age stream (its last chunk and tag) and hand back the hashing sink.
    fn finish(self) -> io::Result<HashingWriter<W>> {
        match self {
            Sealed::Plain(w) => Ok(w),
            Sealed::Age(w) => w.finish(),
        }
    }
}

pub fn parse_recipients(list: &[String]) -> io::Result<Vec<crate::crypt::Recipient>> {
    list.iter()
        .map(|r| {
            r.parse::<crate::crypt::Recipient>()
                .map_err(|e| io::Error::other(format!("age recipient `{r}`: {e}")))
        })
        .collect()
}

/// Copy `src` into `dst` through `codec` (and age when `recipients` are given). `dst` is handed
/// back so the caller decides when the far end sees EOF.
pub fn relay<R: Read, W: Write + Send>(
    src: R,
    dst: W,
    codec: Codec,
    recipients: Option<&[String]>,
    progress: Option<Arc<AtomicU64>>,
) -> io::Result<(RelayStats, W)> {
    let mut reader = CountingReader {
        inner: src,
        count: 0,
        progress,
    };
    let sink = Sealed::new(HashingWriter::new(dst), recipients)?;
    let sink = match codec {
        Codec::None => {
            let mut s = sink;
            copy(&mut reader, &mut s)?;
            s
        }
        Codec::Zstd { level } => {
            let mut enc = zstd::stream::write::Encoder::new(sink, level)?;
            enc.multithread(workers())?;
            // zstd's default job for levels 1-6 is 4x the window (8 MiB at level 3) and its buffer
            // pool holds about 2 x workers + 3 jobs: ~56 MiB on two cores. 1 MiB jobs cut that to
            // ~14 MiB for <1% in ratio (measured with scripts/bench, docs/PERFORMANCE.md).
            enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))?;
            // Each job re-reads the end of the previous one as its dictionary: by default 1/8 of
            // the window (256 KiB at level 3), a quarter of a 1 MiB job — ~25% more CPU than
            // `zstd -T0` with its 8 MiB jobs. 1/64 of the window costs ~0.5% in ratio instead.
            enc.set_parameter(zstd::stream::raw::CParameter::OverlapSizeLog(3))?;
            copy(&mut reader, &mut enc)?;
            enc.finish()?
        }
        Codec::Gzip { level } => parallel_gzip(&mut reader, sink, level)?,
    };
    let (mut dst, stored, sha) = sink.finish()?.finish();
    dst.flush()?;
    Ok((
        RelayStats {
            raw_bytes: reader.count,
            stored_bytes: stored,
            sha256: sha,
        },
        dst,
    ))
}

/// `relay` for the run's own descriptors. A plain stream (no compression, no age) from a pipe
/// into one upload pipe takes the zero-copy path (`tee_plain`); everything else goes to `relay`.
/// Either stops at its next read once `cancel` is set: a run cut short must not leave this
/// thread compressing into a local file for minutes (tokio waits for it at exit).
/// A `tap` sees the dump's bytes (it takes the reading path).
pub fn relay_files(
    src: std::fs::File,
    dst: Tee<std::fs::File>,
    codec: Codec,
    recipients: Option<&[String]>,
    progress: Option<Arc<AtomicU64>>,
    cancel: &Cancel,
    tap: Option<Tap>,
) -> io::Result<(RelayStats, Tee<std::fs::File>)> {
    let src = StopReader {
        inner: src,
        cancel: cancel.clone(),
    };
    if let Some(tap) = tap {
        return relay(
            TapReader { inner: src, tap },
            dst,
            codec,
            recipients,
            progress,
        );
    }
    let src = src.inner;
    #[cfg(target_os = "linux")]
    if codec == Codec::None
        && recipients.is_none()
        && dst.outs.len() == 1
        && is_pipe(&src)
        && is_pipe(&dst.outs[0].writer)
    {
        let mut dst = dst;
        let stats = tee_plain(&src, &mut dst.outs[0], progress.as_deref(), cancel)?;
        return Ok((stats, dst));
    }
    let src = StopReader {
        inner: src,
        cancel: cancel.clone(),
    };
    relay(src, dst, codec, recipients, progress)
}

#[cfg(target_os = "linux")]
fn is_pipe(f: &std::fs::File) -> bool {
    use std::os::unix::fs::FileTypeExt;
    f.metadata().is_ok_and(|m| m.file_type().is_fifo())
}

/// tee(2) duplicates the dump's pipe pages into the upload's pipe without copying them; we then
/// read (consume) the same bytes only to hash and count them. One copy of every byte fewer than
/// read-then-write, which matters when the dump, rclone and the relay share a few cores.
/// Failure handling is the `Tee`'s: an optional upload that fails is dropped and the dump is
/// still drained; a required one fails the relay.
#[cfg(target_os = "linux")]
fn tee_plain(
    src: &std::fs::File,
    out: &mut TeeOut<std::fs::File>,
    progress: Option<&AtomicU64>,
    cancel: &Cancel,
) -> io::Result<RelayStats> {
    use nix::errno::Errno;
    use nix::fcntl::{tee, SpliceFFlags};
    // Small enough that the bytes just read are still in cache when they are hashed.
    const CHUNK: usize = 256 << 10;
    let mut buf = vec![0u8; CHUNK];
    let mut hasher = Sha256::new();
    let mut count = 0u64;
    let mut reader = src;
    loop {
        cancel.check()?;
        let want = if out.failed.is_some() {
            CHUNK
        } else {
            match tee(src, &out.writer, CHUNK, SpliceFFlags::empty()) {
                Ok(0) => break,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    let e = io::Error::from(e);
                    if !out.optional {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("remote `{}`: {e}", out.name),
                        ));
                    }
                    out.failed = Some(e.to_string());
                    continue;
                }
            }
        };
        // The tee'd bytes are in the pipe already: this read returns them at once.
        let n = if out.failed.is_some() {
            match reader.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        } else {
            reader.read_exact(&mut buf[..want])?;
            want
        };
        hasher.update(&buf[..n]);
        count += n as u64;
        if let Some(p) = progress {
            p.store(count, Ordering::Relaxed);
        }
    }
    Ok(RelayStats {
        raw_bytes: count,
        stored_bytes: count,
        sha256: hex::encode(hasher.finalize()),
    })
}

fn copy<R: Read, W: Write>(r: &mut R, w: &mut W) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
    }
}

fn read_block<R: Read>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut block = vec![0u8; BLOCK];
    let mut filled = 0;
    while filled < BLOCK {
        match r.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    block.truncate(filled);
    Ok(block)
}

/// One block as one gzip member, with libdeflate (whole-buffer deflate: about twice zlib's speed
/// at the same level, and our blocks are whole buffers anyway).
fn gzip_member(c: &mut libdeflater::Compressor, data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; c.gzip_compress_bound(data.len())];
    let n = c
        .gzip_compress(data, &mut out)
        .map_err(|e| io::Error::other(format!("gzip: {e:?}")))?;
    out.truncate(n);
    Ok(out)
}

fn gzip_level(level: u32) -> libdeflater::CompressionLvl {
    libdeflater::CompressionLvl::new(level.clamp(1, 9) as i32)
        .unwrap_or_else(|_| libdeflater::CompressionLvl::default())
}

/// gzip on every core: 1 MiB blocks compressed concurrently as independent gzip members, written
/// in order. Concatenated members are a standard gzip file (RFC 1952 §2.2; `gzip -d` reads them).
/// At most `workers + 2` blocks are in flight (one being read, one queued, one per worker), so memory
/// stays bounded at a few MiB whatever the database size.
fn parallel_gzip<R: Read, W: Write + Send>(r: &mut R, mut out: W, level: u32) -> io::Result<W> {
    let n = workers().max(1) as usize;
    type Job = (Vec<u8>, SyncSender<io::Result<Vec<u8>>>);
    let (job_tx, job_rx) = sync_channel::<Job>(1);
    let job_rx = Arc::new(std::sync::Mutex::new(job_rx));
    std::thread::scope(|scope| -> io::Result<W> {
        for _ in 0..n {
            let rx = job_rx.clone();
            scope.spawn(move || {
                let mut c = libdeflater::Compressor::new(gzip_level(level));
                loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok((data, reply)) = job else { return };
                    let _ = reply.send(gzip_member(&mut c, &data));
                }
            });
        }
        // Results come back in submission order through per-block one-shot channels.
        let (order_tx, order_rx) = sync_channel::<Receiver<io::Result<Vec<u8>>>>(n + 1);
        let writer = scope.spawn(move || -> io::Result<W> {
            for rx in order_rx {
                let member = rx
                    .recv()
                    .map_err(|_| io::Error::other("gzip worker vanished"))??;
                out.write_all(&member)?;
            }
            Ok(out)
        });
        let mut result = Ok(());
        let mut sent = 0usize;
        loop {
            let block = match read_block(r) {
                Ok(b) => b,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            if block.is_empty() && sent > 0 {
                break;
            }
            let last = block.is_empty();
            let (tx, rx) = sync_channel(1);
            if order_tx.send(rx).is_err() || job_tx.send((block, tx)).is_err() {
                break;
            }
            sent += 1;
            if last {
                // Empty input still yields one (empty) member: a valid gzip file.
                break;
            }
        }
        drop(order_tx);
        drop(job_tx);
        let written = writer
            .join()
            .map_err(|_| io::Error::other("gzip writer panicked"))??;
        result?;
        Ok(written)
    })
}

/// One stream into several uploads. A write error on an optional remote drops that remote (the
/// run goes on for the others); on a required one it fails the relay.
pub struct Tee<W: Write> {
    pub outs: Vec<TeeOut<W>>,
}

pub struct TeeOut<W: Write> {
    pub name: String,
    pub optional: bool,
    pub writer: W,
    /// Why this (optional) remote was dropped mid-stream.
    pub failed: Option<String>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for o in self.outs.iter_mut().filter(|o| o.failed.is_none()) {
            if let Err(e) = o.writer.write_all(buf) {
                if !o.optional {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("remote `{}`: {e}", o.name),
                    ));
                }
                o.failed = Some(e.to_string());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        for o in self.outs.iter_mut().filter(|o| o.failed.is_none()) {
            if let Err(e) = o.writer.flush() {
                if !o.optional {
                    return Err(e);
                }
                o.failed = Some(e.to_string());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn data() -> Vec<u8> {
        (0..3_500_000u32)
            .flat_map(|i| format!("row {i} {}\n", i % 97).into_bytes())
            .take(3_500_000)
            .collect()
    }

    #[test]
    fn gzip_output_is_standard_and_hash_matches() {
        let input = data();
        let (stats, out) =
            relay(&input[..], Vec::new(), Codec::Gzip { level: 6 }, None, None).unwrap();
        assert_eq!(stats.raw_bytes, input.len() as u64);
        assert_eq!(stats.stored_bytes, out.len() as u64);
        assert_eq!(stats.sha256, hex::encode(Sha256::digest(&out)));
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, input);
    }

    #[test]
    fn zstd_and_none_round_trip() {
        let input = data();
        let (_, z) = relay(&input[..], Vec::new(), Codec::Zstd { level: 3 }, None, None).unwrap();
        assert!(z.len() < input.len() / 3);
        assert_eq!(zstd::decode_all(&z[..]).unwrap(), input);
        let (s, plain) = relay(&input[..], Vec::new(), Codec::None, None, None).unwrap();
        assert_eq!(plain, input);
        assert_eq!(s.stored_bytes, s.raw_bytes);
    }

    #[test]
    fn empty_input_gives_valid_empty_streams() {
        let (s, out) = relay(&b""[..], Vec::new(), Codec::Gzip { level: 6 }, None, None).unwrap();
        assert_eq!(s.raw_bytes, 0);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty() && !out.is_empty());
    }

    #[test]
    fn age_stage_encrypts_after_compression_and_hashes_the_ciphertext() {
        use std::str::FromStr;
        #[allow(deprecated)] // X25519, as operators' keys are (crate::crypt::Recipient)
        let id = age::x25519::Identity::generate();
        let recipients = vec![id.to_public().to_string()];
        let input = data();
        let (stats, out) = relay(
            &input[..],
            Vec::new(),
            Codec::Zstd { level: 3 },
            Some(&recipients),
            None,
        )
        .unwrap();
        assert_eq!(stats.stored_bytes, out.len() as u64);
        assert_eq!(stats.sha256, hex::encode(Sha256::digest(&out)));
        assert!(out.starts_with(b"age-encryption.org/v1"));
        let dec = age::Decryptor::new(&out[..]).unwrap();
        let mut plain = Vec::new();
        dec.decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap()
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(zstd::decode_all(&plain[..]).unwrap(), input);
        #[allow(deprecated)]
        let other = age::x25519::Identity::generate();
        let dec = age::Decryptor::new(&out[..]).unwrap();
        assert!(dec
            .decrypt(std::iter::once(&other as &dyn age::Identity))
            .is_err());
        assert!(crate::crypt::Recipient::from_str("age1nope").is_err());
    }

    #[cfg(target_os = "linux")]
    fn pipe() -> (std::fs::File, std::fs::File) {
        let (r, w) = nix::unistd::pipe().unwrap();
        (std::fs::File::from(r), std::fs::File::from(w))
    }

    #[cfg(target_os = "linux")]
    fn tee_out(w: std::fs::File, optional: bool) -> Tee<std::fs::File> {
        Tee {
            outs: vec![TeeOut {
                name: "r".into(),
                optional,
                writer: w,
                failed: None,
            }],
        }
    }

    /// The zero-copy path: every byte reaches the upload pipe, and the hash and counts are of
    /// exactly those bytes.
    #[cfg(target_os = "linux")]
    #[test]
    fn plain_pipe_to_pipe_takes_tee_and_keeps_every_byte() {
        let input = data();
        let (src_r, mut src_w) = pipe();
        let (up_r, up_w) = pipe();
        let feed = {
            let input = input.clone();
            std::thread::spawn(move || src_w.write_all(&input).unwrap())
        };
        let drain = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut up_r = up_r;
            up_r.read_to_end(&mut got).unwrap();
            got
        });
        let progress = AtomicU64::new(0);
        let mut tee = tee_out(up_w, false);
        let stats = tee_plain(&src_r, &mut tee.outs[0], Some(&progress), &Cancel::new()).unwrap();
        drop(tee);
        feed.join().unwrap();
        let got = drain.join().unwrap();
        assert_eq!(got, input);
        assert_eq!(stats.raw_bytes, input.len() as u64);
        assert_eq!(stats.stored_bytes, input.len() as u64);
        assert_eq!(stats.sha256, hex::encode(Sha256::digest(&input)));
        assert_eq!(progress.load(Ordering::Relaxed), input.len() as u64);
    }

    /// A dead upload pipe fails the relay when the remote is required; when it is optional the
    /// remote is marked failed and the dump is still drained and hashed to its end.
    #[cfg(target_os = "linux")]
    #[test]
    fn tee_path_fails_on_a_dead_required_upload_and_drains_for_an_optional_one() {
        let input = data();
        for optional in [false, true] {
            let (src_r, mut src_w) = pipe();
            let (up_r, up_w) = pipe();
            drop(up_r);
            let feed = {
                let input = input.clone();
                std::thread::spawn(move || src_w.write_all(&input).is_ok())
            };
            let res = relay_files(
                src_r,
                tee_out(up_w, optional),
                Codec::None,
                None,
                None,
                &Cancel::new(),
                None,
            );
            if optional {
                let (stats, tee) = res.unwrap();
                assert!(tee.outs[0].failed.is_some());
                assert_eq!(stats.raw_bytes, input.len() as u64);
                assert_eq!(stats.sha256, hex::encode(Sha256::digest(&input)));
                assert!(feed.join().unwrap());
            } else {
                let err = res.err().unwrap();
                assert!(err.to_string().contains("remote `r`"), "{err}");
                let _ = feed.join();
            }
        }
    }

    /// Both paths (compressing into a file, and tee between pipes) stop reading an endless dump
    /// once the flag is set: the relay fails instead of running until the dump ends.
    #[cfg(target_os = "linux")]
    #[test]
    fn relay_stops_an_endless_stream_when_cancelled() {
        for codec in [Codec::Zstd { level: 3 }, Codec::None] {
            let (src_r, mut src_w) = pipe();
            let feed = std::thread::spawn(move || {
                let block = vec![b'x'; 64 << 10];
                while src_w.write_all(&block).is_ok() {}
            });
            let (up_r, up_w) = pipe();
            let drain = std::thread::spawn(move || io::copy(&mut { up_r }, &mut io::sink()));
            let cancel = Cancel::new();
            let stop = {
                let cancel = cancel.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    cancel.set();
                })
            };
            let res = relay_files(
                src_r,
                tee_out(up_w, false),
                codec,
                None,
                None,
                &cancel,
                None,
            );
            let err = res.err().expect("an endless stream ended");
            assert!(err.to_string().contains("stopped"), "{codec:?}: {err}");
            stop.join().unwrap();
            feed.join().unwrap();
            drain.join().unwrap().unwrap();
        }
    }

    #[test]
    fn tee_drops_a_failing_optional_output_and_fails_on_a_required_one() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        enum Out {
            Ok(Vec<u8>),
            Broken(Broken),
        }
        impl Write for Out {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                match self {
                    Out::Ok(v) => v.write(b),
                    Out::Broken(x) => x.write(b),
                }
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = |name: &str, optional, w| TeeOut {
            name: name.into(),
            optional,
            writer: w,
            failed: None,
        };
        let mut tee = Tee {
            outs: vec![
                out("a", false, Out::Ok(Vec::new())),
                out("b", true, Out::Broken(Broken)),
            ],
        };
        tee.write_all(b"hello").unwrap();
        assert!(tee.outs[1].failed.is_some());
        assert!(matches!(&tee.outs[0].writer, Out::Ok(v) if v == b"hello"));
        let mut tee = Tee {
            outs: vec![
                out("a", true, Out::Ok(Vec::new())),
                out("b", false, Out::Broken(Broken)),
            ],
        };
        let err = tee.write_all(b"x").unwrap_err();
        assert!(err.to_string().contains("remote `b`"));
    }
}
