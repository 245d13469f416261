//! Judging a pumped backup (pure): what the relay, the producer and the required uploads did →
//! the object is good, or which failure it is. The order is the contract:
//!
//! 1. a required upload that died on its own is the failure, whatever the dump then saw;
//! 2. a failed dump never becomes an object — unless the relay failed first and the dump only
//!    died because it was stopped (or of the broken pipe the relay left it);
//! 3. the relay's own failure;
//! 4. too few bytes for a real dump (unless `allow_empty`).

use super::error::{ProducerError, RunError, Tails};
use super::relay::RelayStats;
use crate::secret::{redact, Secret};

/// Why the relay did not finish.
#[derive(Debug)]
pub enum RelayFailure {
    /// Reading, compressing, encrypting or writing to an upload failed.
    Io(std::io::Error),
    /// Its blocking task panicked or was cancelled.
    Task(tokio::task::JoinError),
}

/// What the pump saw. `T` is what the relay hands back besides its stats (the tee).
#[derive(Debug)]
pub struct Observed<T> {
    pub relayed: Result<(RelayStats, T), RelayFailure>,
    pub produced: Result<(), ProducerError>,
    /// A required upload that exited on its own: (remote, how).
    pub upload_died: Option<(String, String)>,
    /// The relay failed before the producer did: the producer was stopped because of it.
    pub relay_failed_first: bool,
}

/// The least a real dump writes (`min_raw_bytes`), and whether an empty one is fine anyway.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    pub min_raw_bytes: u64,
    pub allow_empty: bool,
}

/// Why the backup failed (made into a `RunError` with the producer's name and tail).
#[derive(Debug)]
pub enum Failure {
    UploadEnded { remote: String, how: String },
    Producer(ProducerError),
    Relay(RelayFailure),
    TooSmall { raw: u64 },
}

impl Failure {
    /// The run's error: `program` and its redacted stderr `tail` for the producer's failures,
    /// what the aborted uploads said (`tails`) for the uploads' and the relay's.
    pub fn into_error(
        self,
        program: String,
        tail: String,
        tails: Tails,
        min_raw_bytes: u64,
        secrets: &[&Secret],
    ) -> RunError {
        match self {
            Failure::UploadEnded { remote, how } => RunError::UploadEnded { remote, how, tails },
            Failure::Producer(how) => RunError::Tool { program, how, tail },
            Failure::Relay(RelayFailure::Io(e)) => RunError::Relay {
                message: redact(&e.to_string(), secrets),
                tails,
            },
            Failure::Relay(RelayFailure::Task(source)) => RunError::RelayTask { source, tails },
            Failure::TooSmall { raw } => RunError::TooSmall {
                program,
                raw,
                min: min_raw_bytes,
                tail,
            },
        }
    }
}

pub fn judge<T>(seen: Observed<T>, floor: Floor) -> Result<(RelayStats, T), Failure> {
    if let Some((remote, how)) = seen.upload_died {
        return Err(Failure::UploadEnded { remote, how });
    }
    let relay_broke = seen.relayed.is_err();
    // The relay and the dump often fail together (the relay stops reading, the dump then dies
    // of SIGPIPE): then the relay's error is the real one.
    let relay_first = seen.relay_failed_first
        || (relay_broke && matches!(&seen.produced, Err(e) if e.is_broken_pipe()));
    if let Err(e) = seen.produced {
        if !relay_first {
            return Err(Failure::Producer(e));
        }
    }
    let (stats, rest) = seen.relayed.map_err(Failure::Relay)?;
    if stats.raw_bytes < floor.min_raw_bytes.max(1) && !floor.allow_empty {
        return Err(Failure::TooSmall {
            raw: stats.raw_bytes,
        });
    }
    Ok((stats, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::error::ExitReason;

    fn stats(raw: u64) -> RelayStats {
        RelayStats {
            raw_bytes: raw,
            stored_bytes: raw,
            sha256: String::new(),
        }
    }

    fn seen(
        relayed: Result<u64, &str>,
        produced: Result<(), ExitReason>,
        died: Option<&str>,
        relay_first: bool,
    ) -> Observed<()> {
        Observed {
            relayed: relayed
                .map(|r| (stats(r), ()))
                .map_err(|e| RelayFailure::Io(std::io::Error::other(e.to_string()))),
            produced: produced.map_err(ProducerError::Exited),
            upload_died: died.map(|r| (r.to_string(), "exit 1".to_string())),
            relay_failed_first: relay_first,
        }
    }

    const FLOOR: Floor = Floor {
        min_raw_bytes: 10,
        allow_empty: false,
    };

    #[test]
    fn a_clean_dump_of_enough_bytes_is_good() {
        let (s, ()) = judge(seen(Ok(100), Ok(()), None, false), FLOOR).unwrap();
        assert_eq!(s.raw_bytes, 100);
    }

    #[test]
    fn a_dead_required_upload_wins_over_everything() {
        let e = judge(
            seen(
                Err("broken pipe"),
                Err(ExitReason::Code(1)),
                Some("s3"),
                false,
            ),
            FLOOR,
        );
        assert!(matches!(e, Err(Failure::UploadEnded { remote, .. }) if remote == "s3"));
    }

    #[test]
    fn a_failed_dump_is_never_an_object_even_if_the_relay_finished() {
        let e = judge(seen(Ok(100), Err(ExitReason::Code(1)), None, false), FLOOR);
        assert!(matches!(
            e,
            Err(Failure::Producer(ProducerError::Exited(ExitReason::Code(
                1
            ))))
        ));
        let e = judge(
            seen(Ok(100), Err(ExitReason::Signal(9)), None, false),
            FLOOR,
        );
        assert!(matches!(e, Err(Failure::Producer(_))));
    }

    #[test]
    fn the_relay_is_blamed_when_it_failed_first_or_the_dump_died_of_its_broken_pipe() {
        for how in [ExitReason::Signal(13), ExitReason::Code(141)] {
            let e = judge(seen(Err("boom"), Err(how), None, false), FLOOR);
            assert!(matches!(e, Err(Failure::Relay(_))), "{how}");
        }
        // Stopped by us (SIGKILL) after the relay failed.
        let e = judge(
            seen(Err("boom"), Err(ExitReason::Signal(9)), None, true),
            FLOOR,
        );
        assert!(matches!(e, Err(Failure::Relay(_))));
        // A SIGPIPE with a relay that finished is the dump's own failure.
        let e = judge(
            seen(Ok(100), Err(ExitReason::Signal(13)), None, false),
            FLOOR,
        );
        assert!(matches!(e, Err(Failure::Producer(_))));
        // The dump failing on its own while the relay also broke: the dump.
        let e = judge(
            seen(Err("boom"), Err(ExitReason::Code(1)), None, false),
            FLOOR,
        );
        assert!(matches!(e, Err(Failure::Producer(_))));
    }

    #[test]
    fn too_few_bytes_fail_unless_empty_is_allowed() {
        let e = judge(seen(Ok(9), Ok(()), None, false), FLOOR);
        assert!(matches!(e, Err(Failure::TooSmall { raw: 9 })));
        // Zero bytes fail even with a floor of 0 (a dump always writes something).
        let zero = Floor {
            min_raw_bytes: 0,
            allow_empty: false,
        };
        assert!(judge(seen(Ok(0), Ok(()), None, false), zero).is_err());
        let allow = Floor {
            min_raw_bytes: 10,
            allow_empty: true,
        };
        assert!(judge(seen(Ok(0), Ok(()), None, false), allow).is_ok());
    }
}
