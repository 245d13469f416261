//! Stopping in-process copies (blocking threads) when the future that awaits them is dropped.
//!
//! A run's timeout and dbstash's shutdown reach a run by dropping its future (`run::backup`), and
//! an interrupted `restore` is stopped the same way. A dropped future cannot stop a blocking
//! thread, and tokio waits for those at exit, so every long in-process copy (the tar writer, the
//! relay, a local folder copy, hashing, restore's pump and unpack) looks at a [`Cancel`] flag
//! between two chunks or files; the future holds the flag's [`CancelOnDrop`] guard.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A flag shared between an async caller and the blocking work it waits for.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// A guard that sets the flag when dropped: keep it in the future that awaits the work.
    pub fn on_drop(&self) -> CancelOnDrop {
        CancelOnDrop(self.clone())
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err` (see [`stopped`]) once the flag is set: for `?` between two chunks of a copy.
    pub fn check(&self) -> io::Result<()> {
        if self.is_set() {
            Err(stopped())
        } else {
            Ok(())
        }
    }
}

/// Sets its [`Cancel`] when dropped.
#[derive(Debug)]
pub struct CancelOnDrop(Cancel);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// The error a cancelled copy ends with. Not `Interrupted`: copy loops retry that one.
pub fn stopped() -> io::Error {
    io::Error::other("stopped (timeout or shutdown)")
}

/// A reader that fails with [`stopped`] once its flag is set, so any copy loop reading from it
/// (`io::copy`, a compressor, tar) ends at its next read.
pub struct StopReader<R> {
    pub inner: R,
    pub cancel: Cancel,
}

impl<R: io::Read> io::Read for StopReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.cancel.check()?;
        self.inner.read(buf)
    }
}

/// A writer that fails with [`stopped`] once its flag is set.
pub struct StopWriter<W> {
    pub inner: W,
    pub cancel: Cancel,
}

impl<W: io::Write> io::Write for StopWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.cancel.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn dropping_the_guard_stops_a_reader_at_its_next_read() {
        let cancel = Cancel::new();
        let guard = cancel.on_drop();
        let mut r = StopReader {
            inner: io::repeat(7),
            cancel: cancel.clone(),
        };
        let mut buf = [0u8; 4];
        r.read_exact(&mut buf).unwrap();
        drop(guard);
        let e = r.read(&mut buf).unwrap_err();
        assert_eq!(e.to_string(), stopped().to_string());
        assert!(cancel.check().is_err());
    }
}
