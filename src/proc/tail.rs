use crate::secret::{Redactor, Secret};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

const KEEP_LINES: usize = 20;
const MAX_LINE: usize = 500;
/// Lines `brief` keeps from the end of a tool's output, after its first line.
const BRIEF_TAIL: usize = 2;

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
        let redactor = Redactor::new(&secrets.iter().collect::<Vec<_>>());
        let task = tokio::spawn(async move {
            let mut r = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut line = String::from_utf8_lossy(&buf).trim_end().to_string();
                        if !redactor.is_empty() {
                            line = redactor.redact(&line);
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

/// A tool's stderr as one line for an error message: its first line (usually what went wrong),
/// then its last few (how it ended), with the count of lines left out between them. rclone, for
/// one, logs a line per retry and per attempt; a run's error, a notification or a log field should
/// not carry all of them. Timestamps such tools put before each line are dropped.
pub fn brief(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| without_timestamp(l.trim()))
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() <= BRIEF_TAIL + 1 {
        return lines.join(" | ");
    }
    let skipped = lines.len() - 1 - BRIEF_TAIL;
    let gap = match skipped {
        1 => "(1 more line)".to_string(),
        n => format!("({n} more lines)"),
    };
    let mut parts = vec![lines[0].to_string()];
    if skipped > 0 {
        parts.push(gap);
    }
    parts.extend(
        lines[lines.len() - BRIEF_TAIL..]
            .iter()
            .map(|l| l.to_string()),
    );
    parts.join(" | ")
}

/// `2026/01/02 03:04:05 ERROR : x` → `ERROR : x` (rclone's and Go's log prefix).
fn without_timestamp(line: &str) -> &str {
    let b = line.as_bytes();
    let shape = b"dddd/dd/dd dd:dd:dd ";
    let matches = b.len() > shape.len()
        && shape.iter().zip(b).all(|(s, c)| match s {
            b'd' => c.is_ascii_digit(),
            other => other == c,
        });
    if matches {
        line[shape.len()..].trim_start()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_keeps_the_first_line_and_a_short_tail_on_one_line() {
        let mut text = String::new();
        for i in 1..=40 {
            text.push_str(&format!(
                "2026/01/02 03:04:05 ERROR : attempt {i}/40 failed\n"
            ));
        }
        text.push_str("2026/01/02 03:04:06 Failed to rcat: access denied\n");
        let b = brief(&text);
        assert_eq!(
            b,
            "ERROR : attempt 1/40 failed | (38 more lines) | ERROR : attempt 40/40 failed | Failed to rcat: access denied"
        );
        assert!(!b.contains('\n'));
    }

    #[test]
    fn brief_leaves_short_output_whole() {
        assert_eq!(brief(""), "");
        assert_eq!(brief("one\n"), "one");
        assert_eq!(brief("one\n\ntwo\nthree\n"), "one | two | three");
        assert_eq!(brief("a\nb\nc\nd\n"), "a | (1 more line) | c | d");
    }
}
