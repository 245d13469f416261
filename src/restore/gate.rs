//! The restore tool's stdin, before the tool exists. The download (and its integrity pump) of a
//! PostgreSQL restore starts as soon as the backup is picked, while the target is checked and
//! created: the `rclone cat` start and the first bytes then overlap that work instead of following
//! it. The pump's writes wait here (the download behind them waits on its pipe) until the tool's
//! stdin is handed over ([`Opener::open`]) or the restore is refused ([`Opener`] dropped: the
//! write fails, and the pump stops the download).
//!
//! A custom-format archive's head goes through here once, to two places: `pg_restore --list`
//! (the roles check reads the table of contents) and a private file. When the listing is done
//! (its pipe breaks), writes wait; once the tool is there, the file is replayed to it and the rest
//! of the stream follows. The archive is read once, and every byte the tool gets still went
//! through the pump's size and sha256 check and its hold-back of the last bytes.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::sync::mpsc;

/// The writer the pump gets.
pub struct Gate {
    head: Option<Head>,
    open: mpsc::Receiver<File>,
    out: Option<File>,
}

/// The archive's head on its way to the listing tool.
struct Head {
    /// Everything written so far (opened read-write: it is replayed to the tool).
    file: File,
    /// The listing tool's stdin, until it stops reading.
    pipe: Option<File>,
}

/// Hands the tool's stdin to the [`Gate`]; dropping it refuses the stream.
pub struct Opener(mpsc::SyncSender<File>);

impl Opener {
    /// The tool is running: the gate writes into `stdin` from now on. `false` if the pump is gone
    /// (the download failed first).
    pub fn open(self, stdin: File) -> bool {
        self.0.send(stdin).is_ok()
    }
}

/// A gate whose writes wait for the tool.
pub fn closed() -> (Gate, Opener) {
    gate(None)
}

/// A gate that first copies what it gets into `file` and `pipe` (the listing tool's stdin).
pub fn with_head(file: File, pipe: File) -> (Gate, Opener) {
    gate(Some(Head {
        file,
        pipe: Some(pipe),
    }))
}

fn gate(head: Option<Head>) -> (Gate, Opener) {
    let (tx, rx) = mpsc::sync_channel(1);
    (
        Gate {
            head,
            open: rx,
            out: None,
        },
        Opener(tx),
    )
}

fn refused() -> io::Error {
    io::Error::other("the restore did not go ahead")
}

impl Gate {
    /// Wait for the tool; replay the head to it.
    fn wait(&mut self) -> io::Result<&mut File> {
        if self.out.is_none() {
            // The listing tool gets EOF now, whatever it still expected.
            if let Some(h) = self.head.as_mut() {
                h.pipe = None;
            }
            let mut out = self.open.recv().map_err(|_| refused())?;
            if let Some(mut h) = self.head.take() {
                h.file.rewind()?;
                io::copy(&mut h.file, &mut out)?;
            }
            self.out = Some(out);
        }
        self.out.as_mut().ok_or_else(refused)
    }
}

impl Write for Gate {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.out.is_none() {
            if let Some(h) = self.head.as_mut() {
                h.file.write_all(buf)?;
                if let Some(p) = h.pipe.as_mut() {
                    match p.write_all(buf) {
                        Ok(()) => return Ok(buf.len()),
                        // The listing has read its table of contents and exited.
                        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => h.pipe = None,
                        Err(e) => return Err(e),
                    }
                }
                // In the file: replayed to the tool.
                self.wait()?;
                return Ok(buf.len());
            }
        }
        self.wait()?.write_all(buf)?;
        Ok(buf.len())
    }

    /// The pump's last call, after its verdict: a stream short enough to fit in the listing
    /// tool's head still reaches the tool here.
    fn flush(&mut self) -> io::Result<()> {
        self.wait()?.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pipe() -> (File, File) {
        let (r, w) = nix::unistd::pipe().unwrap();
        (File::from(r), File::from(w))
    }

    fn head_file(dir: &std::path::Path) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join("head"))
            .unwrap()
    }

    /// Once the pump waits, the tool's stdin is handed over: what the tool then gets.
    fn tool_gets(opener: Opener, pump: std::thread::JoinHandle<()>) -> String {
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!pump.is_finished(), "the pump waits for the tool");
        let (mut r, w) = pipe();
        assert!(opener.open(w));
        pump.join().unwrap();
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        got
    }

    #[test]
    fn writes_wait_for_the_tool_and_reach_it_in_order() {
        let (mut gate, opener) = closed();
        let pump = std::thread::spawn(move || {
            gate.write_all(b"hello ").unwrap();
            gate.write_all(b"world").unwrap();
            gate.flush().unwrap();
        });
        assert_eq!(tool_gets(opener, pump), "hello world");
    }

    #[test]
    fn a_refused_restore_fails_the_write() {
        let (mut gate, opener) = closed();
        drop(opener);
        assert!(gate.write_all(b"x").is_err());
    }

    #[test]
    fn the_head_goes_to_the_listing_then_is_replayed_to_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let file = head_file(dir.path());
        let (list_r, list_w) = pipe();
        let (mut gate, opener) = with_head(file, list_w);
        // The listing reads two bytes and exits.
        let listing = std::thread::spawn(move || {
            let mut r = list_r;
            let mut two = [0u8; 2];
            r.read_exact(&mut two).unwrap();
            two
        });
        let pump = std::thread::spawn(move || {
            gate.write_all(b"ab").unwrap();
            assert_eq!(&listing.join().unwrap(), b"ab");
            // The listing is gone: this one waits for the tool.
            gate.write_all(b"cd").unwrap();
            gate.write_all(b"ef").unwrap();
            gate.flush().unwrap();
        });
        assert_eq!(tool_gets(opener, pump), "abcdef");
    }

    #[test]
    fn a_stream_that_ends_inside_the_listing_still_reaches_the_tool() {
        let dir = tempfile::tempdir().unwrap();
        let file = head_file(dir.path());
        let (mut list_r, list_w) = pipe();
        let (mut gate, opener) = with_head(file, list_w);
        let (mut tool_r, tool_w) = pipe();
        assert!(opener.open(tool_w));
        gate.write_all(b"short").unwrap();
        gate.flush().unwrap();
        drop(gate);
        let mut listed = String::new();
        list_r.read_to_string(&mut listed).unwrap();
        assert_eq!(listed, "short", "the listing saw all of it, then EOF");
        let mut got = String::new();
        tool_r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "short");
    }
}
