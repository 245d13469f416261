//! The interactive progress line of `backup`/`restore` on a terminal: bytes and rate, plus percent
//! and ETA when the size can be expected (a restore knows its object's size; a backup expects the
//! previous backup's raw size, or the job's `expected_size`).

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How many bytes the run should move, when that can be known beforehand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// The size is known (a restore reads an object of recorded size).
    Exact(u64),
    /// An estimate (the previous backup's raw size, `expected_size`).
    About(u64),
}

impl Expected {
    fn bytes(self) -> u64 {
        match self {
            Expected::Exact(n) | Expected::About(n) => n,
        }
    }
}

pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(job: &str, bytes: Arc<AtomicU64>) -> Self {
        Self::expecting(job, bytes, None)
    }

    /// A progress line that also shows percent and ETA when `expected` is known (and not 0).
    pub fn expecting(job: &str, bytes: Arc<AtomicU64>, expected: Option<Expected>) -> Self {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix}: {msg}") {
            bar.set_style(style);
        }
        // The line is complete from its first draw, however short the run.
        bar.set_message(line(0, expected, Duration::ZERO));
        bar.set_prefix(job.to_string());
        let b = bar.clone();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            loop {
                b.set_message(line(
                    bytes.load(Ordering::Relaxed),
                    expected,
                    started.elapsed(),
                ));
                b.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Progress { bar, task }
    }

    pub fn stop(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

/// The text after the job name: `12.00 MiB of ~100.00 MiB, 12% (3.00 MiB/s) 0:04, ETA 0:29`.
/// Past the expected size (an estimate can be low) it says so, without percent or ETA.
pub fn line(done: u64, expected: Option<Expected>, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    // The first fraction of a second says nothing about the rate.
    let rate = (secs >= 0.5).then(|| done as f64 / secs);
    let rate_text = match rate {
        Some(r) => format!("{}/s", HumanBytes(r as u64)),
        None => "-/s".to_string(),
    };
    let took = clock(elapsed);
    let Some(expected) = expected.filter(|e| e.bytes() > 0) else {
        return format!("{} ({rate_text}) {took}", HumanBytes(done));
    };
    let total = expected.bytes();
    let approx = match expected {
        Expected::Exact(_) => "",
        Expected::About(_) => "~",
    };
    if done > total {
        return format!(
            "{}, past the expected {approx}{} ({rate_text}) {took}",
            HumanBytes(done),
            HumanBytes(total)
        );
    }
    let percent = (done as u128 * 100 / total as u128) as u64;
    let eta = rate
        .filter(|r| *r > 0.0)
        .map(|r| {
            format!(
                ", ETA {}",
                clock(Duration::from_secs_f64((total - done) as f64 / r))
            )
        })
        .unwrap_or_default();
    format!(
        "{} of {approx}{}, {percent}% ({rate_text}) {took}{eta}",
        HumanBytes(done),
        HumanBytes(total)
    )
}

/// `m:ss`, or `h:mm:ss` from one hour on.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn without_an_expected_size_bytes_rate_and_time() {
        assert_eq!(
            line(12 * MIB, None, Duration::from_secs(4)),
            "12.00 MiB (3.00 MiB/s) 0:04"
        );
        // 0 is no expectation (an empty previous backup).
        assert_eq!(
            line(12 * MIB, Some(Expected::About(0)), Duration::from_secs(4)),
            "12.00 MiB (3.00 MiB/s) 0:04"
        );
    }

    #[test]
    fn with_an_expected_size_percent_and_eta() {
        assert_eq!(
            line(
                25 * MIB,
                Some(Expected::About(100 * MIB)),
                Duration::from_secs(10)
            ),
            "25.00 MiB of ~100.00 MiB, 25% (2.50 MiB/s) 0:10, ETA 0:30"
        );
        assert_eq!(
            line(
                50 * MIB,
                Some(Expected::Exact(100 * MIB)),
                Duration::from_secs(3600)
            ),
            "50.00 MiB of 100.00 MiB, 50% (14.22 KiB/s) 1:00:00, ETA 1:00:00"
        );
    }

    #[test]
    fn no_eta_before_there_is_a_rate() {
        assert_eq!(
            line(
                0,
                Some(Expected::About(100 * MIB)),
                Duration::from_millis(100)
            ),
            "0 B of ~100.00 MiB, 0% (-/s) 0:00"
        );
    }

    #[test]
    fn past_the_estimate_no_percent() {
        assert_eq!(
            line(
                150 * MIB,
                Some(Expected::About(100 * MIB)),
                Duration::from_secs(15)
            ),
            "150.00 MiB, past the expected ~100.00 MiB (10.00 MiB/s) 0:15"
        );
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let l = line(
            u64::MAX / 2,
            Some(Expected::Exact(u64::MAX)),
            Duration::from_secs(1),
        );
        assert!(l.contains(", 49%") || l.contains(", 50%"), "{l}");
    }
}
