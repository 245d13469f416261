//! Redis RDB files cannot be loaded into a running server from a client, so dbstash checks them
//! instead: the `REDIS` signature and version, the end-of-file opcode, and the CRC-64 (Jones)
//! checksum Redis writes in the last 8 bytes (0 = the server had `rdbchecksum no`).

use std::io::{self, Write};

const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

fn table() -> [u64; 256] {
    let mut t = [0u64; 256];
    for (i, slot) in t.iter_mut().enumerate() {
        let mut crc = i as u64;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
        }
        *slot = crc;
    }
    t
}

/// `redis-cli --rdb -` from a server doing diskless sync cannot truncate its output pipe, so the
/// 40-byte end-of-transfer mark may follow the RDB. Such files still load; dbstash recognises it.
pub const EOF_MARK_LEN: usize = 40;
const TAIL: usize = 8 + EOF_MARK_LEN;

/// Streaming RDB checker: a `Write` sink that keeps the header, the running CRC of everything
/// but the newest 48 bytes, and those bytes.
pub struct RdbCheck {
    table: [u64; 256],
    crc: u64,
    header: Vec<u8>,
    tail: Vec<u8>,
    len: u64,
    /// The last byte fed into the CRC.
    last_fed: Option<u8>,
}

impl Default for RdbCheck {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a file is not a whole RDB file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdbProblem {
    #[error("not an RDB file (no REDIS signature)")]
    NoSignature,
    #[error("not an RDB file (bad version field)")]
    BadVersion,
    #[error("the RDB file is too short")]
    TooShort,
    #[error("the RDB file does not end with the EOF marker (truncated)")]
    Truncated,
    #[error("the RDB checksum does not match (stored {stored:016x}, computed {computed:016x})")]
    Checksum { stored: u64, computed: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbInfo {
    pub version: u32,
    /// Bytes of the RDB proper (without a trailing transfer mark).
    pub bytes: u64,
    /// `Some(true)` checksum verified, `None` the file carries no checksum (0).
    pub checksum_ok: Option<bool>,
    /// Bytes after the RDB proper (a diskless-sync EOF mark), 0 normally.
    pub trailer: u64,
}

impl RdbCheck {
    pub fn new() -> Self {
        RdbCheck {
            table: table(),
            crc: 0,
            header: Vec::new(),
            tail: Vec::new(),
            len: 0,
            last_fed: None,
        }
    }

    fn step(&self, crc: u64, b: u8) -> u64 {
        self.table[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8)
    }

    fn feed(&mut self, b: u8) {
        self.crc = self.step(self.crc, b);
        self.last_fed = Some(b);
    }

    /// Check an RDB whose last `trailer` bytes are not part of it.
    fn judge(&self, version: u32, trailer: usize) -> Result<RdbInfo, RdbProblem> {
        let tail_len = self.tail.len();
        if tail_len < trailer + 8 {
            return Err(RdbProblem::TooShort);
        }
        let body = tail_len - trailer - 8;
        let mut crc = self.crc;
        let mut last = self.last_fed;
        for &b in &self.tail[..body] {
            crc = self.step(crc, b);
            last = Some(b);
        }
        let bytes = self.len - trailer as u64;
        if version < 5 {
            // No checksum before RDB version 5: only the EOF opcode can be checked.
            if self.tail.get(tail_len - trailer - 1) != Some(&0xff) {
                return Err(RdbProblem::Truncated);
            }
            return Ok(RdbInfo {
                version,
                bytes,
                checksum_ok: None,
                trailer: trailer as u64,
            });
        }
        if last != Some(0xff) {
            return Err(RdbProblem::Truncated);
        }
        let mut stored = [0u8; 8];
        stored.copy_from_slice(&self.tail[body..body + 8]);
        let stored = u64::from_le_bytes(stored);
        if stored != 0 && stored != crc {
            return Err(RdbProblem::Checksum {
                stored,
                computed: crc,
            });
        }
        Ok(RdbInfo {
            version,
            bytes,
            checksum_ok: (stored != 0).then_some(true),
            trailer: trailer as u64,
        })
    }

    /// Judge what was written.
    pub fn finish(&self) -> Result<RdbInfo, RdbProblem> {
        if self.header.len() < 9 || &self.header[..5] != b"REDIS" {
            return Err(RdbProblem::NoSignature);
        }
        let version: u32 = std::str::from_utf8(&self.header[5..9])
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or(RdbProblem::BadVersion)?;
        let plain = self.judge(version, 0);
        if plain.is_ok() {
            return plain;
        }
        let marked = self.tail.len() == TAIL
            && self.tail[8..]
                .iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
        if marked {
            if let Ok(info) = self.judge(version, EOF_MARK_LEN) {
                return Ok(info);
            }
        }
        plain
    }
}

impl Write for RdbCheck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.header.len() < 9 {
            let take = (9 - self.header.len()).min(buf.len());
            self.header.extend_from_slice(&buf[..take]);
        }
        self.len += buf.len() as u64;
        // Everything but the newest TAIL bytes goes into the CRC.
        let mut pending = std::mem::take(&mut self.tail);
        pending.extend_from_slice(buf);
        let keep_from = pending.len().saturating_sub(TAIL);
        for &b in &pending[..keep_from] {
            self.feed(b);
        }
        self.tail = pending[keep_from..].to_vec();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(data: &[u8]) -> u64 {
        let mut c = RdbCheck::new();
        for &b in data {
            c.feed(b);
        }
        c.crc
    }

    #[test]
    fn crc64_jones_check_value() {
        assert_eq!(crc(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    fn rdb(body: &[u8]) -> Vec<u8> {
        let mut v = b"REDIS0011".to_vec();
        v.extend_from_slice(body);
        v.push(0xff);
        let sum = crc(&v);
        v.extend_from_slice(&sum.to_le_bytes());
        v
    }

    #[test]
    fn accepts_good_and_rejects_bad() {
        let good = rdb(b"\xfa\x09redis-ver\x057.0.0");
        let mut c = RdbCheck::new();
        for chunk in good.chunks(3) {
            c.write_all(chunk).unwrap();
        }
        let info = c.finish().unwrap();
        assert_eq!(info.version, 11);
        assert_eq!(info.checksum_ok, Some(true));
        let mut bad = good.clone();
        bad[12] ^= 1;
        let mut c = RdbCheck::new();
        c.write_all(&bad).unwrap();
        assert!(c.finish().is_err());
        let mut c = RdbCheck::new();
        c.write_all(&good[..good.len() - 3]).unwrap();
        assert!(c.finish().is_err());
        let mut c = RdbCheck::new();
        c.write_all(b"hello world, not redis").unwrap();
        assert!(c.finish().is_err());
        // redis-cli's diskless-sync mark after the RDB
        let mut marked = good.clone();
        marked.extend_from_slice(b"5d7221045ca5a6bb94e85d7221045ca5a6bb94e8");
        let mut c = RdbCheck::new();
        c.write_all(&marked).unwrap();
        let info = c.finish().unwrap();
        assert_eq!((info.trailer, info.bytes), (40, good.len() as u64));
        let mut tiny = RdbCheck::new();
        tiny.write_all(&rdb(b"")).unwrap();
        assert_eq!(tiny.finish().unwrap().checksum_ok, Some(true));
    }
}
