//! `dbstash completions SHELL` and the hidden `dbstash man`.

use clap::CommandFactory;
use std::io::Write;

/// Print the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "dbstash", &mut buf);
    write_stdout(&buf)
}

/// Print the man page (roff) generated from the same clap definitions to stdout.
pub fn man() -> i32 {
    let cmd = super::Cli::command();
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut buf) {
        eprintln!("dbstash: cannot render the man page: {e}");
        return 1;
    }
    write_stdout(&buf)
}

fn write_stdout(bytes: &[u8]) -> i32 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => 0,
        // `dbstash completions bash | head` closes the pipe early: not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("dbstash: cannot write to stdout: {e}");
            1
        }
    }
}
