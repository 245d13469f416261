//! The inverse of the backup relay: stored bytes → sha256 + size check ([`Tap`]) → decryption →
//! decompression → sink.
//! Synchronous, for a blocking thread. The size is checked as bytes flow (an object longer than
//! its record fails at once); the sha256 can only be judged at the end — which is why the caller
//! keeps the restore tool from seeing end-of-file until this returns `Ok`.

use super::tap::{Stop, Tap};
use crate::engine::Codec;
use std::io::{self, BufRead, Read, Write};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

const BUF: usize = 256 * 1024;
const HEAD: usize = 16;
/// The last bytes of the decompressed stream are handed over only after the verdict. A tool that
/// knows where its input ends (pg_restore reads its archive's table of contents first; mongorestore
/// sees the archive terminator) could otherwise finish — and commit — without waiting for EOF.
pub const HOLDBACK: usize = 64 * 1024;

/// Writes everything but the newest `HOLDBACK` bytes; `release` writes those.
struct Holdback<'a, W: Write> {
    dst: &'a mut W,
    buf: Vec<u8>,
}

impl<W: Write> Holdback<'_, W> {
    /// Only the bytes that stay held are copied: what goes out is written straight from `data`
    /// (the decoder's buffer), so the stream is not copied once more on its way to the tool.
    fn push(&mut self, data: &[u8]) -> io::Result<()> {
        let total = self.buf.len() + data.len();
        if total < 2 * HOLDBACK {
            self.buf.extend_from_slice(data);
            return Ok(());
        }
        let out = total - HOLDBACK;
        if out <= self.buf.len() {
            self.dst.write_all(&self.buf[..out])?;
            self.buf.drain(..out);
            self.buf.extend_from_slice(data);
        } else {
            let from_data = out - self.buf.len();
            write_both(self.dst, &self.buf, &data[..from_data])?;
            self.buf.clear();
            self.buf.extend_from_slice(&data[from_data..]);
        }
        Ok(())
    }

    fn release(self) -> io::Result<()> {
        self.dst.write_all(&self.buf)?;
        self.dst.flush()
    }
}

/// `a` then `b`, in as few writes as the sink takes (one `writev` into a pipe or file).
fn write_both<W: Write>(dst: &mut W, mut a: &[u8], mut b: &[u8]) -> io::Result<()> {
    while !a.is_empty() {
        match dst.write_vectored(&[io::IoSlice::new(a), io::IoSlice::new(b)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) if n <= a.len() => a = &a[n..],
            Ok(n) => {
                b = &b[n - a.len()..];
                a = &[];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    dst.write_all(b)
}

/// What the record promises.
#[derive(Debug, Clone)]
pub struct Expect {
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    #[error("reading the object failed: {0}")]
    Source(io::Error),
    #[error("the object is longer than its record says ({expected} bytes)")]
    TooLong { expected: u64 },
    #[error("the object does not decompress as {codec}: {error}")]
    Decode {
        codec: &'static str,
        error: io::Error,
    },
    #[error("{0}")]
    Sink(io::Error),
    #[error("cannot decrypt the backup: {0}")]
    Decrypt(#[source] age::DecryptError),
    #[error("cannot decrypt the backup: no identity matches its recipients (wrong --identity?)")]
    WrongIdentity,
    #[error("the object has {actual} bytes, its record says {expected} (truncated or replaced)")]
    Size { expected: u64, actual: u64 },
    #[error("the object's sha256 {actual} does not match its record's {expected} (corrupted or replaced)")]
    Sha { expected: String, actual: String },
}

/// What went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pumped {
    /// Stored (possibly compressed) bytes read and verified.
    pub stored: u64,
    /// Decompressed bytes handed to the sink.
    pub raw: u64,
    pub sha256: String,
    /// The first bytes of the decompressed stream (format signatures).
    pub head: Vec<u8>,
}

fn classify(tap: Option<Stop>, limit: u64, codec: Codec, e: io::Error) -> PumpError {
    match tap {
        Some(Stop::TooLong) => PumpError::TooLong { expected: limit },
        Some(Stop::Source) => PumpError::Source(e),
        None => PumpError::Decode {
            codec: codec.name(),
            error: e,
        },
    }
}

/// Copy `src` through `codec`'s decoder into `dst`, checking size and sha256 against `expect`.
/// `Ok` only when every byte arrived, the sums match and the compressed stream ended properly.
pub fn pump<R: Read, W: Write>(
    src: &mut R,
    codec: Codec,
    expect: &Expect,
    dst: &mut W,
    progress: Option<Arc<AtomicU64>>,
) -> Result<Pumped, PumpError> {
    pump_with(src, codec, None, expect, dst, progress)
}

/// What has come out of the decoder so far.
struct Sink<'a, W: Write> {
    out: Holdback<'a, W>,
    raw: u64,
    head: Vec<u8>,
}

impl<W: Write> Sink<'_, W> {
    fn take(&mut self, data: &[u8]) -> Result<(), PumpError> {
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        self.out.push(data).map_err(PumpError::Sink)?;
        self.raw += data.len() as u64;
        Ok(())
    }
}

/// A failure while decoding: of the stream (the tap says whether it is the source's, its length
/// or the format's), or one already judged.
enum Fault {
    Stream(io::Error),
    Pump(PumpError),
}

/// Decrypt and decompress everything the tap gives into `sink`. The decoders read the tap's
/// chunks in place.
fn decode<R: Read, W: Write>(
    tap: &mut Tap<'_, R>,
    codec: Codec,
    identities: Option<&[age::x25519::Identity]>,
    sink: &mut Sink<'_, W>,
) -> Result<(), Fault> {
    let input: Box<dyn BufRead + '_> = match identities {
        None => Box::new(tap),
        Some(ids) => {
            let dec = age::Decryptor::new_buffered(tap)
                .map_err(|e| Fault::Pump(PumpError::Decrypt(e)))?;
            let r = dec
                .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
                .map_err(|e| {
                    Fault::Pump(match e {
                        age::DecryptError::NoMatchingKeys => PumpError::WrongIdentity,
                        e => PumpError::Decrypt(e),
                    })
                })?;
            Box::new(io::BufReader::with_capacity(BUF, r))
        }
    };
    match codec {
        Codec::None => copy_buffered(input, sink),
        Codec::Gzip { .. } => copy(flate2::bufread::MultiGzDecoder::new(input), sink),
        Codec::Zstd { .. } => copy(
            zstd::stream::read::Decoder::with_buffer(input).map_err(Fault::Stream)?,
            sink,
        ),
    }
}

/// Hand over what `input` holds, chunk by chunk, without copying it first.
fn copy_buffered<W: Write>(mut input: impl BufRead, sink: &mut Sink<'_, W>) -> Result<(), Fault> {
    loop {
        let data = match input.fill_buf() {
            Ok([]) => return Ok(()),
            Ok(data) => data,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fault::Stream(e)),
        };
        let n = data.len();
        sink.take(data).map_err(Fault::Pump)?;
        input.consume(n);
    }
}

/// Hand over what a decoder produces.
fn copy<W: Write>(mut decoder: impl Read, sink: &mut Sink<'_, W>) -> Result<(), Fault> {
    let mut buf = vec![0u8; BUF];
    loop {
        match decoder.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => sink.take(&buf[..n]).map_err(Fault::Pump)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Fault::Stream(e)),
        }
    }
}

/// [`pump`] with age decryption (before decompression) when `identities` are given.
pub fn pump_with<R: Read, W: Write>(
    src: &mut R,
    codec: Codec,
    identities: Option<&[age::x25519::Identity]>,
    expect: &Expect,
    dst: &mut W,
    progress: Option<Arc<AtomicU64>>,
) -> Result<Pumped, PumpError> {
    let limit = expect.size;
    let mut sink = Sink {
        out: Holdback {
            dst,
            // `push` never holds more than this.
            buf: Vec::with_capacity(2 * HOLDBACK),
        },
        raw: 0,
        head: Vec::with_capacity(HEAD),
    };
    let mut tap = Tap::new(src, limit, progress.as_deref());
    // Whatever follows the end of the compressed stream still counts for size and sha256.
    let decoded = decode(&mut tap, codec, identities, &mut sink)
        .and_then(|()| tap.drain().map_err(Fault::Stream));
    match decoded {
        Ok(()) => {}
        Err(Fault::Stream(e)) => return Err(classify(tap.stopped(), limit, codec, e)),
        Err(Fault::Pump(e)) => return Err(e),
    }
    let count = tap.count();
    let sha = tap.sha256().map_err(PumpError::Source)?;
    if count != expect.size {
        return Err(PumpError::Size {
            expected: expect.size,
            actual: count,
        });
    }
    if !sha.eq_ignore_ascii_case(&expect.sha256) {
        return Err(PumpError::Sha {
            expected: expect.sha256.clone(),
            actual: sha,
        });
    }
    // The verdict is in: hand over the rest.
    let Sink { out, raw, head } = sink;
    out.release().map_err(PumpError::Sink)?;
    Ok(Pumped {
        stored: count,
        raw,
        sha256: sha,
        head,
    })
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::relay::relay;

    fn data() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("line {i} {}\n", i % 13).into_bytes())
            .collect()
    }

    fn stored(codec: Codec) -> (Vec<u8>, Expect) {
        let (stats, out) = relay(&data()[..], Vec::new(), codec, None, None).unwrap();
        (
            out,
            Expect {
                size: stats.stored_bytes,
                sha256: stats.sha256,
            },
        )
    }

    const CODECS: [Codec; 3] = [
        Codec::None,
        Codec::Gzip { level: 6 },
        Codec::Zstd { level: 3 },
    ];

    /// A pipe that takes a few bytes per call, vectored or not.
    struct Stingy(Vec<u8>);
    impl Write for Stingy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(7_001);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
            let mut left = 9_973usize;
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(left);
                self.0.extend_from_slice(&b[..take]);
                left -= take;
                n += take;
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_holdback_writes_a_prefix_and_keeps_the_newest_bytes_until_released() {
        let data = data();
        for chunk in [1usize, 1_000, HOLDBACK - 1, HOLDBACK, 3 * HOLDBACK + 5, BUF] {
            let mut sink = Stingy(Vec::new());
            let mut hold = Holdback {
                dst: &mut sink,
                buf: Vec::new(),
            };
            let (mut pushed, mut checked) = (0, 0);
            for piece in data.chunks(chunk) {
                hold.push(piece).unwrap();
                pushed += piece.len();
                let written = hold.dst.0.len();
                assert_eq!(written + hold.buf.len(), pushed, "chunk {chunk}");
                assert!(pushed - written >= HOLDBACK.min(pushed), "chunk {chunk}");
                assert!(hold.buf.len() < 2 * HOLDBACK, "chunk {chunk}");
                assert!(
                    hold.dst.0[checked..] == data[checked..written],
                    "chunk {chunk}: not the stream's prefix"
                );
                checked = written;
            }
            hold.release().unwrap();
            assert!(
                sink.0 == data,
                "chunk {chunk}: the stream changed on its way"
            );
        }
    }

    #[test]
    fn round_trips_every_codec() {
        for codec in CODECS {
            let (bytes, expect) = stored(codec);
            let mut out = Vec::new();
            let p = pump(&mut &bytes[..], codec, &expect, &mut out, None).unwrap();
            assert_eq!(out, data(), "{}", codec.name());
            assert_eq!(p.raw, data().len() as u64);
            assert_eq!(p.stored, bytes.len() as u64);
            assert_eq!(&p.head[..], &data()[..16]);
        }
    }

    #[test]
    fn flipped_byte_fails() {
        for codec in CODECS {
            let (mut bytes, expect) = stored(codec);
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x55;
            let r = pump(&mut &bytes[..], codec, &expect, &mut io::sink(), None);
            assert!(
                matches!(r, Err(PumpError::Sha { .. } | PumpError::Decode { .. })),
                "{}: {r:?}",
                codec.name()
            );
        }
    }

    #[test]
    fn the_sink_never_gets_the_end_of_a_bad_stream() {
        for codec in CODECS {
            let (mut bytes, expect) = stored(codec);
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
            let mut out = Vec::new();
            let r = pump(&mut &bytes[..], codec, &expect, &mut out, None);
            assert!(r.is_err(), "{}", codec.name());
            assert!(
                out.len() <= data().len() - HOLDBACK,
                "{}: {} of {} bytes reached the sink",
                codec.name(),
                out.len(),
                data().len()
            );
            assert_eq!(&out[..], &data()[..out.len()]);
        }
    }

    #[test]
    fn truncated_fails() {
        for codec in CODECS {
            let (bytes, expect) = stored(codec);
            let cut = &bytes[..bytes.len() - 100];
            let r = pump(&mut &cut[..], codec, &expect, &mut io::sink(), None);
            assert!(
                matches!(r, Err(PumpError::Size { .. } | PumpError::Decode { .. })),
                "{}: {r:?}",
                codec.name()
            );
        }
    }

    #[test]
    fn longer_fails_as_soon_as_it_is_longer() {
        for codec in CODECS {
            let (mut bytes, expect) = stored(codec);
            bytes.extend_from_slice(b"trailing garbage");
            let r = pump(&mut &bytes[..], codec, &expect, &mut io::sink(), None);
            assert!(
                matches!(r, Err(PumpError::TooLong { .. } | PumpError::Decode { .. })),
                "{}: {r:?}",
                codec.name()
            );
        }
    }

    #[test]
    fn wrong_codec_is_a_decode_error() {
        let (bytes, expect) = stored(Codec::None);
        let r = pump(
            &mut &bytes[..],
            Codec::Zstd { level: 3 },
            &expect,
            &mut io::sink(),
            None,
        );
        assert!(matches!(r, Err(PumpError::Decode { .. })), "{r:?}");
    }

    #[test]
    fn source_errors_are_reported_as_such() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("connection reset"));
                }
                self.0 -= 1;
                buf[0] = b'x';
                Ok(1)
            }
        }
        let expect = Expect {
            size: 100,
            sha256: String::new(),
        };
        let r = pump(&mut Broken(5), Codec::None, &expect, &mut io::sink(), None);
        assert!(matches!(r, Err(PumpError::Source(_))), "{r:?}");
    }
}
