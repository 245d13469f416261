use crate::secret::{redact, Secret};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

const KEEP_LINES: usize = 20;
const MAX_LINE: usize = 500;

/// Drains a child's stderr concurrently (so the child never blocks on a full pipe) and keeps the
/// last lines for error messages. Lines are also logged at debug level.
#[derive(Debug)]
pub struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    task: Option<JoinHandle<()>>,
}

impl StderrTail {
    pub fn spawn<R: AsyncRead + Unpin + Send + 'static>(reader: R, who: &'static str) -> Self {
        Self::spawn_redacted(reader, who, Vec::new())
    }

    /// Like `spawn`, with every occurrence of `secrets` replaced by `***` before a line is logged
    /// or kept (a tool that echoes its connection string must not leak it, even at debug level).
    pub fn spawn_redacted<R: AsyncRead + Unpin + Send + 'static>(
        reader: R,
        who: &'static str,
        secrets: Vec<Secret>,
    ) -> Self {
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let store = lines.clone();
        let task = tokio::spawn(async move {
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        if !secrets.is_empty() {
                            let refs: Vec<&Secret> = secrets.iter().collect();
                            line = redact(&line, &refs);
                        }
                        if line.is_empty() {
                            continue;
                        }
                        if line.len() > MAX_LINE {
                            let mut cut = MAX_LINE;
                            while !line.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            line.truncate(cut);
                        }
                        tracing::debug!(tool = who, event = "tool_stderr", "{line}");
                        if let Ok(mut l) = store.lock() {
                            if l.len() == KEEP_LINES {
                                l.pop_front();
                            }
                            l.push_back(line);
                        }
                    }
                }
            }
        });
        StderrTail {
            lines,
            task: Some(task),
        }
    }

    pub fn empty() -> Self {
        StderrTail {
            lines: Arc::new(Mutex::new(VecDeque::new())),
            task: None,
        }
    }

    /// Wait until the pipe is drained (the child exited), then the tail as one string.
    pub async fn finish(&mut self) -> String {
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
        self.text()
    }

    pub fn text(&self) -> String {
        self.lines
            .lock()
            .map(|l| l.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}
