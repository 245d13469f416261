//! The inverse of the backup relay: stored bytes → sha256 + size check → decompression → sink.
//! Synchronous, for a blocking thread. The size is checked as bytes flow (an object longer than
//! its record fails at once); the sha256 can only be judged at the end — which is why the caller
//! keeps the restore tool from seeing end-of-file until this returns `Ok`.

use crate::engine::Codec;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
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
    fn push(&mut self, data: &[u8]) -> io::Result<()> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 2 * HOLDBACK {
            let n = self.buf.len() - HOLDBACK;
            self.dst.write_all(&self.buf[..n])?;
            self.buf.drain(..n);
        }
        Ok(())
    }

    fn release(self) -> io::Result<()> {
        self.dst.write_all(&self.buf)?;
        self.dst.flush()
    }
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

#[derive(Default)]
struct Tally {
    count: u64,
    hasher: Sha256,
    source_failed: bool,
    too_long: bool,
}

/// Reads the stored bytes, hashing and counting them, refusing to go past the promised size.
struct Tap<'a, R: Read> {
    inner: &'a mut R,
    tally: &'a mut Tally,
    limit: u64,
    progress: Option<&'a AtomicU64>,
}

impl<R: Read> Read for Tap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                self.tally.source_failed = true;
                return Err(e);
            }
        };
        self.tally.hasher.update(&buf[..n]);
        self.tally.count += n as u64;
        if let Some(p) = self.progress {
            p.store(self.tally.count, Ordering::Relaxed);
        }
        if self.tally.count > self.limit {
            self.tally.too_long = true;
            return Err(io::Error::other("object longer than its record"));
        }
        Ok(n)
    }
}

fn classify(tally: &Tally, limit: u64, codec: Codec, e: io::Error) -> PumpError {
    if tally.too_long {
        PumpError::TooLong { expected: limit }
    } else if tally.source_failed {
        PumpError::Source(e)
    } else {
        PumpError::Decode {
            codec: codec.name(),
            error: e,
        }
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

/// [`pump`] with age decryption (before decompression) when `identities` are given.
pub fn pump_with<R: Read, W: Write>(
    src: &mut R,
    codec: Codec,
    identities: Option<&[age::x25519::Identity]>,
    expect: &Expect,
    dst: &mut W,
    progress: Option<Arc<AtomicU64>>,
) -> Result<Pumped, PumpError> {
    let mut tally = Tally::default();
    let limit = expect.size;
    let mut raw = 0u64;
    let mut head = Vec::with_capacity(HEAD);
    let mut out = Holdback {
        dst,
        buf: Vec::with_capacity(2 * HOLDBACK + BUF),
    };
    {
        let tap = Tap {
            inner: src,
            tally: &mut tally,
            limit,
            progress: progress.as_deref(),
        };
        let tap: Box<dyn Read + '_> = match identities {
            None => Box::new(tap),
            Some(ids) => {
                let dec = age::Decryptor::new_buffered(io::BufReader::new(tap))
                    .map_err(PumpError::Decrypt)?;
                let r = dec
                    .decrypt(ids.iter().map(|i| i as &dyn age::Identity))
                    .map_err(|e| match e {
                        age::DecryptError::NoMatchingKeys => PumpError::WrongIdentity,
                        e => PumpError::Decrypt(e),
                    })?;
                Box::new(r)
            }
        };
        let mut decoder: Box<dyn Read + '_> = match codec {
            Codec::None => tap,
            Codec::Gzip { .. } => Box::new(flate2::read::MultiGzDecoder::new(tap)),
            Codec::Zstd { .. } => match zstd::stream::read::Decoder::new(tap) {
                Ok(d) => Box::new(d),
                Err(e) => {
                    return Err(PumpError::Decode {
                        codec: codec.name(),
                        error: e,
                    })
                }
            },
        };
        let mut buf = vec![0u8; BUF];
        loop {
            let n = match decoder.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    drop(decoder);
                    return Err(classify(&tally, limit, codec, e));
                }
            };
            if head.len() < HEAD {
                let take = (HEAD - head.len()).min(n);
                head.extend_from_slice(&buf[..take]);
            }
            out.push(&buf[..n]).map_err(PumpError::Sink)?;
            raw += n as u64;
        }
    }
    // Whatever follows the end of the compressed stream still counts for size and sha256.
    {
        let mut rest = Tap {
            inner: src,
            tally: &mut tally,
            limit,
            progress: progress.as_deref(),
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match rest.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(classify(&tally, limit, codec, e)),
            }
        }
    }
    let sha = hex::encode(tally.hasher.finalize());
    if tally.count != expect.size {
        return Err(PumpError::Size {
            expected: expect.size,
            actual: tally.count,
        });
    }
    if !sha.eq_ignore_ascii_case(&expect.sha256) {
        return Err(PumpError::Sha {
            expected: expect.sha256.clone(),
            actual: sha,
        });
    }
    // The verdict is in: hand over the rest.
    out.release().map_err(PumpError::Sink)?;
    Ok(Pumped {
        stored: tally.count,
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
