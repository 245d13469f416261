//! mysql/mariadb `pitr` jobs: the dump's bytes pass through a small forwarding thread that reads
//! the binlog position from the dump's head (`--master-data=2`), without holding the dump back or
//! buffering it. The relay reads the forwarding pipe instead of the dump's stdout.

use crate::engine::mysql_pitr::{BinlogPosition, PositionSniffer};
use std::fs::File;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// The position, once the forwarder has seen it (read after the relay ended).
#[derive(Debug, Clone, Default)]
pub struct Found(Arc<Mutex<Option<BinlogPosition>>>);

impl Found {
    pub fn get(&self) -> Option<BinlogPosition> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

/// Forward `dump` into a new pipe, watching its head. The thread ends at the dump's EOF (the dump
/// ended or was killed) or when the relay stops reading (its end of the pipe closed).
pub fn watch(mut dump: File) -> std::io::Result<(File, Found)> {
    let (r, w) = crate::proc::pipe()?;
    let found = Found::default();
    let slot = found.0.clone();
    std::thread::Builder::new()
        .name("binlog-head".into())
        .spawn(move || {
            let mut out = File::from(w);
            let mut sniffer = PositionSniffer::default();
            let mut buf = vec![0u8; 128 * 1024];
            let publish = |sniffer: &PositionSniffer| {
                if let (Some(p), Ok(mut g)) = (sniffer.position(), slot.lock()) {
                    *g = Some(p);
                }
            };
            loop {
                let n = match dump.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                sniffer.feed(&buf[..n]);
                if out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            // Published before the write end closes: the relay sees EOF only after this.
            sniffer.finish();
            publish(&sniffer);
            drop(out);
        })?;
    Ok((File::from(r), found))
}
