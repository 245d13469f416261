//! `dbstash completions SHELL`, the hidden `dbstash __complete jobs|notifiers` those scripts call
//! for names from the manifest, and the hidden `dbstash man`.

use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// Print the completion script for `shell` to stdout: clap's static script, plus (bash, fish) job
/// and notifier names read from the manifest at TAB time through `dbstash __complete`.
pub fn completions(shell: clap_complete::Shell) -> i32 {
    let mut cmd = super::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "dbstash", &mut buf);
    match shell {
        clap_complete::Shell::Bash => buf.extend_from_slice(bash_names(&cmd).as_bytes()),
        clap_complete::Shell::Fish => buf.extend_from_slice(FISH_NAMES.as_bytes()),
        _ => {}
    }
    write_stdout(&buf)
}

/// `dbstash __complete jobs|notifiers`: the names declared in the manifest, one per line. Reads
/// only the YAML (no `${VAR}`, no secret files, no validation): completion works on a manifest
/// that does not validate yet, and says nothing when there is none.
pub fn names(config: &Path, what: &str) -> i32 {
    let section = match what {
        "jobs" => "jobs",
        "notifiers" => "notifiers",
        _ => return 2,
    };
    let Ok(text) = std::fs::read_to_string(config) else {
        return 0;
    };
    let Ok(root) = crate::manifest::yaml::parse(&text) else {
        return 0;
    };
    let mut out = String::new();
    if let Some(crate::manifest::yaml::Node {
        kind: crate::manifest::yaml::Kind::Map(entries),
        ..
    }) = root.get(section)
    {
        for (k, _) in entries {
            out.push_str(&k.name);
            out.push('\n');
        }
    }
    write_stdout(out.as_bytes())
}

/// Bash: wrap clap's `_dbstash` so the job argument of `backup`/`restore`/`verify`, every `--job`
/// value and `notify test N` offer the manifest's names (`-c PATH` on the line is honoured).
fn bash_names(cmd: &clap::Command) -> String {
    let mut takes_value = std::collections::BTreeSet::new();
    options_with_values(cmd, &mut takes_value);
    let pattern = takes_value.into_iter().collect::<Vec<_>>().join("|");
    BASH_NAMES.replace("@VALUE_OPTIONS@", &pattern)
}

/// Every `--long` and `-s` that takes a value, in any subcommand (their values are not positional
/// words).
fn options_with_values(cmd: &clap::Command, out: &mut std::collections::BTreeSet<String>) {
    for a in cmd.get_arguments() {
        if a.is_positional() || !a.get_action().takes_values() {
            continue;
        }
        if let Some(l) = a.get_long() {
            out.insert(format!("--{l}"));
        }
        if let Some(s) = a.get_short() {
            out.insert(format!("-{s}"));
        }
    }
    for s in cmd.get_subcommands() {
        options_with_values(s, out);
    }
}

const BASH_NAMES: &str = r#"
# Job and notifier names from the manifest (-c PATH on the line, $DBSTASH_CONFIG, or the default).
_dbstash_names() {
    local i cfg=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            -c|--config) cfg=(-c "${COMP_WORDS[i+1]}") ;;
            --config=*) cfg=(-c "${COMP_WORDS[i]#--config=}") ;;
        esac
    done
    "${COMP_WORDS[0]}" "${cfg[@]}" __complete "$1" 2>/dev/null
}

_dbstash_with_names() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local i words=() kind=""
    # The positional words before the cursor: subcommands, then arguments.
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            @VALUE_OPTIONS@) ((i++)) ;;
            -*) ;;
            *) words+=("${COMP_WORDS[i]}") ;;
        esac
    done
    if [[ "$prev" == "--job" ]]; then
        kind=jobs
    elif [[ "$cur" != -* ]]; then
        case "${words[0]}:${#words[@]}" in
            backup:*) kind=jobs ;;
            restore:1|verify:1) kind=jobs ;;
            notify:2) [[ "${words[1]}" == "test" ]] && kind=notifiers ;;
        esac
    fi
    if [[ -n "$kind" ]]; then
        local names
        names="$(_dbstash_names "$kind")"
        COMPREPLY=( $(compgen -W "${names}" -- "${cur}") )
        return 0
    fi
    _dbstash "$@"
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _dbstash_with_names -o nosort -o bashdefault -o default dbstash
else
    complete -F _dbstash_with_names -o bashdefault -o default dbstash
fi
"#;

const FISH_NAMES: &str = r#"
# Job and notifier names from the manifest ($DBSTASH_CONFIG or the default).
complete -c dbstash -n "__fish_seen_subcommand_from backup restore verify" -f -a "(dbstash __complete jobs 2>/dev/null)"
complete -c dbstash -l job -f -a "(dbstash __complete jobs 2>/dev/null)"
complete -c dbstash -n "__fish_seen_subcommand_from notify; and __fish_seen_subcommand_from test" -f -a "(dbstash __complete notifiers 2>/dev/null)"
"#;

/// Print the man page (roff) to stdout: the global options, then every subcommand with its own
/// synopsis and options (one page: there are no per-subcommand pages to point to).
pub fn man() -> i32 {
    let cmd = super::Cli::command();
    match render_man(cmd) {
        Ok(buf) => write_stdout(&buf),
        Err(e) => {
            eprintln!("dbstash: cannot render the man page: {e}");
            1
        }
    }
}

fn render_man(cmd: clap::Command) -> std::io::Result<Vec<u8>> {
    let top = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    top.render_title(&mut buf)?;
    top.render_name_section(&mut buf)?;
    top.render_synopsis_section(&mut buf)?;
    top.render_description_section(&mut buf)?;
    top.render_options_section(&mut buf)?;
    buf.extend_from_slice(b".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        render_subcommand(sub, "dbstash", &mut buf)?;
    }
    top.render_version_section(&mut buf)?;
    Ok(buf)
}

/// One subcommand (and its own subcommands) as a `.SS` subsection: about, synopsis, options.
fn render_subcommand(sub: &clap::Command, parent: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
    if sub.is_hide_set() || sub.get_name() == "help" {
        return Ok(());
    }
    let full = format!("{parent} {}", sub.get_name());
    if sub.has_subcommands() {
        for s in sub.get_subcommands() {
            render_subcommand(s, &full, buf)?;
        }
        return Ok(());
    }
    let page = clap_mangen::Man::new(
        sub.clone()
            .bin_name(&full)
            .disable_help_flag(true)
            .disable_help_subcommand(true),
    );
    writeln!(buf, ".SS \"{}\"", full.replace('-', "\\-"))?;
    let mut part = Vec::new();
    page.render_description_section(&mut part)?;
    page.render_synopsis_section(&mut part)?;
    buf.extend_from_slice(&without_headings(&part));
    let mut options = Vec::new();
    page.render_options_section(&mut options)?;
    let options = without_headings(&options);
    if options
        .split(|b| *b == b'\n')
        .any(|l| !l.is_empty() && l != b".PP")
    {
        buf.extend_from_slice(b".PP\nArguments and options:\n");
        buf.extend_from_slice(&options);
    }
    Ok(())
}

/// A section's body for a subsection: no `.SH` line, no repeated roff preamble.
fn without_headings(roff: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(roff);
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with(".ie \\n(.g") || line.starts_with(".el .ds Aq") {
            continue;
        }
        if line.starts_with(".SH ") {
            out.push_str(".PP\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

fn write_stdout(bytes: &[u8]) -> i32 {
    // A reader that went away ends the command as `outln!` does (exit 141, no message).
    let mut out = std::io::stdout().lock();
    super::out_result(out.write_all(bytes).and_then(|()| out.flush()));
    0
}
