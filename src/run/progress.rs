//! The interactive progress line (bytes, rate) of `backup`/`restore` on a terminal.

use indicatif::{ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct Progress {
    bar: ProgressBar,
    task: tokio::task::JoinHandle<()>,
}

impl Progress {
    pub fn start(job: &str, bytes: Arc<AtomicU64>) -> Self {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {prefix}: {bytes} ({bytes_per_sec}) {elapsed}")
        {
            bar.set_style(style);
        }
        bar.set_prefix(job.to_string());
        let b = bar.clone();
        let task = tokio::spawn(async move {
            loop {
                b.set_position(bytes.load(Ordering::Relaxed));
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
