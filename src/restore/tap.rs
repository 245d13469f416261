//! The stored bytes as the pump reads them: in chunks, counted against the size the record
//! promises (an object longer than that fails at once), with the sha256 taken on a thread of its
//! own. The decoders read the chunks in place (`BufRead`), and a chunk they are done with goes to
//! the hashing thread, so hashing runs beside reading and decompressing instead of between them:
//! the shell pipe the restore is measured against (`rclone cat | zstd -dc | psql`) has a process,
//! and zstd its I/O threads, for each of those stages.

use sha2::{Digest, Sha256};
use std::io::{self, BufRead, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// One read from the source fills at most this much.
const CHUNK: usize = 256 * 1024;
/// Chunks in flight: being read, queued for the hasher, being hashed. Bounds the memory (~2 MiB).
const CHUNKS: usize = 8;

/// Why the tap stopped the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Reading the source failed.
    Source,
    /// The source went past the promised size.
    TooLong,
}

pub struct Tap<'a, R: Read> {
    inner: &'a mut R,
    chunk: Vec<u8>,
    /// Bytes of `chunk` that hold data, and how many of them were consumed.
    len: usize,
    pos: usize,
    count: u64,
    limit: u64,
    progress: Option<&'a AtomicU64>,
    stopped: Option<Stop>,
    hashing: Hashing,
}

impl<'a, R: Read> Tap<'a, R> {
    pub fn new(inner: &'a mut R, limit: u64, progress: Option<&'a AtomicU64>) -> Self {
        Tap {
            inner,
            chunk: vec![0; CHUNK],
            len: 0,
            pos: 0,
            count: 0,
            limit,
            progress,
            stopped: None,
            hashing: Hashing::start(),
        }
    }

    /// Bytes read from the source so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Why the stream was stopped here, if it was.
    pub fn stopped(&self) -> Option<Stop> {
        self.stopped
    }

    /// Read the source to its end (what follows the compressed stream counts too).
    pub fn drain(&mut self) -> io::Result<()> {
        loop {
            let n = self.fill_buf()?.len();
            if n == 0 {
                return Ok(());
            }
            self.consume(n);
        }
    }

    /// The sha256 of every byte read.
    pub fn sha256(mut self) -> io::Result<String> {
        let last = std::mem::take(&mut self.chunk);
        self.hashing.feed(last, self.len);
        self.hashing.finish()
    }

    fn refill(&mut self) -> io::Result<()> {
        if self.len > 0 {
            let fresh = self.hashing.spare();
            let full = std::mem::replace(&mut self.chunk, fresh);
            self.hashing.feed(full, self.len);
        }
        self.len = 0;
        self.pos = 0;
        let n = loop {
            match self.inner.read(&mut self.chunk) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.stopped = Some(Stop::Source);
                    return Err(e);
                }
            }
        };
        self.len = n;
        self.count += n as u64;
        if let Some(p) = self.progress {
            p.store(self.count, Ordering::Relaxed);
        }
        if self.count > self.limit {
            self.stopped = Some(Stop::TooLong);
            return Err(io::Error::other("object longer than its record"));
        }
        Ok(())
    }
}

impl<R: Read> BufRead for Tap<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.len {
            self.refill()?;
        }
        Ok(&self.chunk[self.pos..self.len])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.len);
    }
}

impl<R: Read> Read for Tap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let have = self.fill_buf()?;
        let n = have.len().min(buf.len());
        buf[..n].copy_from_slice(&have[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// The sha256, on its own thread when one can be started (in this thread otherwise).
enum Hashing {
    Beside {
        full: mpsc::SyncSender<(Vec<u8>, usize)>,
        spare: mpsc::Receiver<Vec<u8>>,
        made: usize,
        thread: JoinHandle<String>,
    },
    Inline(Sha256),
}

impl Hashing {
    fn start() -> Self {
        let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(CHUNKS);
        let (spare_tx, spare_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("restore-sha256".into())
            .spawn(move || {
                let mut hasher = Sha256::new();
                for (chunk, len) in full_rx {
                    hasher.update(&chunk[..len]);
                    // The tap may be gone (a failed restore): the chunk is then simply freed.
                    let _ = spare_tx.send(chunk);
                }
                hex::encode(hasher.finalize())
            });
        match thread {
            Ok(thread) => Hashing::Beside {
                full: full_tx,
                spare: spare_rx,
                made: 1,
                thread,
            },
            Err(_) => Hashing::Inline(Sha256::new()),
        }
    }

    /// A buffer for the next read: one the hasher is done with, a new one while fewer than
    /// `CHUNKS` exist, else the next the hasher hands back (it only ever waits on the CPU).
    fn spare(&mut self) -> Vec<u8> {
        match self {
            Hashing::Beside { spare, made, .. } => {
                if let Ok(c) = spare.try_recv() {
                    return c;
                }
                if *made < CHUNKS {
                    *made += 1;
                    return vec![0; CHUNK];
                }
                spare.recv().unwrap_or_else(|_| vec![0; CHUNK])
            }
            Hashing::Inline(_) => vec![0; CHUNK],
        }
    }

    fn feed(&mut self, chunk: Vec<u8>, len: usize) {
        match self {
            // The thread is gone only if it panicked: `finish` reports that.
            Hashing::Beside { full, .. } => {
                let _ = full.send((chunk, len));
            }
            Hashing::Inline(h) => h.update(&chunk[..len]),
        }
    }

    fn finish(self) -> io::Result<String> {
        match self {
            Hashing::Beside { full, thread, .. } => {
                drop(full);
                thread
                    .join()
                    .map_err(|_| io::Error::other("the sha256 thread failed"))
            }
            Hashing::Inline(h) => Ok(hex::encode(h.finalize())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Vec<u8> {
        (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    /// A source that hands out odd-sized reads.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 % 7 + 1;
            let n = buf.len().min(self.0.len()).min(self.1 * 40_000 + 13);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn hashes_counts_and_hands_on_every_byte_in_order() {
        let data = data();
        let mut src = Trickle(&data, 0);
        let progress = AtomicU64::new(0);
        let mut tap = Tap::new(&mut src, data.len() as u64, Some(&progress));
        let mut out = Vec::new();
        // Half through BufRead in place, the rest through Read.
        while out.len() < data.len() / 2 {
            let b = tap.fill_buf().unwrap();
            let n = b.len().min(1_000_003);
            out.extend_from_slice(&b[..n]);
            tap.consume(n);
        }
        tap.read_to_end(&mut out).unwrap();
        assert!(out == data, "the bytes changed on their way");
        assert_eq!(tap.count(), data.len() as u64);
        assert_eq!(progress.load(Ordering::Relaxed), data.len() as u64);
        assert_eq!(tap.stopped(), None);
        assert_eq!(tap.sha256().unwrap(), sha(&data));
    }

    #[test]
    fn bytes_nobody_consumed_are_hashed_too() {
        let data = data();
        let mut src = &data[..];
        let mut tap = Tap::new(&mut src, data.len() as u64, None);
        tap.fill_buf().unwrap();
        tap.consume(10);
        tap.drain().unwrap();
        assert_eq!(tap.count(), data.len() as u64);
        assert_eq!(tap.sha256().unwrap(), sha(&data));
    }

    #[test]
    fn going_past_the_promised_size_stops_at_once() {
        let data = data();
        let mut src = &data[..];
        let mut tap = Tap::new(&mut src, 1_000, None);
        let e = tap.fill_buf().unwrap_err();
        assert_eq!(tap.stopped(), Some(Stop::TooLong), "{e}");
    }

    #[test]
    fn a_failing_source_is_told_apart() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("connection reset"))
            }
        }
        let mut src = Broken;
        let mut tap = Tap::new(&mut src, 1_000, None);
        assert!(tap.fill_buf().is_err());
        assert_eq!(tap.stopped(), Some(Stop::Source));
    }

    #[test]
    fn an_empty_source_hashes_as_empty() {
        let mut src: &[u8] = &[];
        let mut tap = Tap::new(&mut src, 0, None);
        assert!(tap.fill_buf().unwrap().is_empty());
        assert_eq!(tap.sha256().unwrap(), sha(b""));
    }
}
