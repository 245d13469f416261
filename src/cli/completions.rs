//! `dbstash completions SHELL` and the hidden `dbstash man`.

pub fn completions(_shell: clap_complete::Shell) -> i32 {
    super::not_yet("completions")
}

pub fn man() -> i32 {
    super::not_yet("man")
}
