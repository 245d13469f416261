//! Cross-job check: two jobs that can write the same object — same remote, same folder, and
//! names that do not differ by a literal (no `{job}` or `{uuid}` to tell them apart). At run time
//! the name is claimed and the second run would step aside to another name (run::claim), but the
//! two jobs' backups would still mix in one history: reported as an error, at the second job.

use super::resolve::Ctx;
use super::tree::escape;
use crate::domain::diag::Diagnostic;
use crate::domain::naming::sanitize;
use crate::model::{Job, Remote, RemoteKind};
use std::collections::BTreeMap;

/// One piece of a rendered object path: a known text, or a token that varies per run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Var(&'static str),
}

/// The shape of every object key `job` writes to `remote`: root, folder, name and extension, with
/// the job's own values in place and the run's (date, time, several databases) as variables.
/// None when every run's name is unique (`{uuid}`).
fn shape(job: &Job, remote: &Remote) -> Option<Vec<Part>> {
    let mut parts = vec![Part::Lit(root(&remote.kind))];
    for seg in job.path.split('/') {
        let mut s = Vec::new();
        template(seg, job, &mut s)?;
        if s.is_empty() || s == [Part::Lit(".".into())] {
            continue;
        }
        parts.extend(s);
        parts.push(Part::Lit("/".into()));
    }
    template(&job.name_template, job, &mut parts)?;
    parts.push(Part::Lit(crate::engine::extension(job)));
    Some(merge(parts))
}

/// Where a remote's objects live, ending with `/`: two remote names for one place are one remote.
fn root(kind: &RemoteKind) -> String {
    match kind {
        RemoteKind::Local(p) => {
            let mut s: String = p
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            s = s.replace("//", "/");
            format!("local:{}/", s.trim_end_matches('/'))
        }
        RemoteKind::Rclone(r) => {
            let r = r.trim_end_matches('/');
            if r.ends_with(':') {
                format!("rclone:{r}")
            } else {
                format!("rclone:{r}/")
            }
        }
    }
}

/// Append the parts of one template; None if it holds `{uuid}`.
fn template(t: &str, job: &Job, out: &mut Vec<Part>) -> Option<()> {
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push(Part::Lit(rest[..open].to_string()));
        let Some(close) = rest[open..].find('}').map(|c| c + open) else {
            break;
        };
        out.push(match &rest[open + 1..close] {
            "uuid" => return None,
            "job" => Part::Lit(sanitize(&job.name)),
            "db" if job.databases.is_many() || job.globals => Part::Var("db"),
            "db" => Part::Lit(sanitize(&crate::engine::db_label(job))),
            "engine" => Part::Lit(sanitize(job.engine.as_str())),
            "date" => Part::Var("date"),
            "time" => Part::Var("time"),
            "ts" => Part::Var("ts"),
            other => Part::Lit(format!("{{{other}}}")),
        });
        rest = &rest[close + 1..];
    }
    out.push(Part::Lit(rest.to_string()));
    Some(())
}

/// Adjacent texts joined, empty ones dropped, so equal keys have equal shapes.
fn merge(parts: Vec<Part>) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::new();
    for p in parts {
        match (out.last_mut(), p) {
            (_, Part::Lit(s)) if s.is_empty() => {}
            (Some(Part::Lit(a)), Part::Lit(b)) => a.push_str(&b),
            (_, p) => out.push(p),
        }
    }
    out
}

/// Report every job whose objects can collide with an earlier job's (earlier in the file).
pub fn check(jobs: &BTreeMap<String, Job>, remotes: &BTreeMap<String, Remote>, ctx: &mut Ctx) {
    let mut ordered: Vec<&Job> = jobs.values().collect();
    ordered.sort_by_key(|j| ctx.locs.key(&job_ptr(&j.name)));
    let mut seen: Vec<(Vec<Part>, &Job, &str)> = Vec::new();
    for job in ordered {
        let mut reported = false;
        for target in &job.remotes {
            let Some(remote) = remotes.get(&target.name) else {
                continue;
            };
            let Some(s) = shape(job, remote) else {
                continue;
            };
            let earlier = seen
                .iter()
                .find(|(other, j, _)| *other == s && j.name != job.name);
            if let (Some((_, first, _)), false) = (earlier, reported) {
                report(ctx, first, job, &target.name);
                reported = true;
            }
            seen.push((s, job, &target.name));
        }
    }
}

fn job_ptr(name: &str) -> String {
    format!("/jobs/{}", escape(name))
}

fn report(ctx: &mut Ctx, first: &Job, second: &Job, remote: &str) {
    let ptr = job_ptr(&second.name);
    let name_ptr = format!("{ptr}/name");
    let loc = if ctx.locs.has(&name_ptr) {
        ctx.locs.value(&name_ptr)
    } else {
        ctx.locs.key(&ptr)
    };
    let message = format!(
        "jobs `{}` and `{}` can write the same object: same remote `{remote}`, folder `{}` and name `{}`; \
         add `{{job}}` to the name (e.g. `{{job}}-{}`) or give them different folders",
        first.name, second.name, second.path, second.name_template, second.name_template
    );
    ctx.diags.push(Diagnostic::error(ctx.file, loc, message));
}

#[cfg(test)]
mod tests {
    use crate::manifest::load_str;
    use std::path::Path;

    fn errors(yaml: &str) -> Vec<String> {
        let env = |_: &str| None;
        let read = |_: &Path| Err(std::io::Error::other("no files"));
        match load_str(Path::new("m.yaml"), yaml, &env, &read) {
            Ok(_) => Vec::new(),
            Err(e) => e
                .diagnostics()
                .into_iter()
                .filter(|d| d.is_error())
                .map(|d| d.to_string())
                .collect(),
        }
    }

    fn manifest(defaults: &str, a: &str, b: &str) -> String {
        format!(
            "version: 1
remotes:
  l: {{ path: /srv/backups }}
  l2: {{ path: /srv/backups/ }}
  other: {{ path: /srv/elsewhere }}
  s3: {{ rclone: 's3:bucket' }}
defaults: {{ {defaults} }}
jobs:
  prod: {{ engine: postgres, host: h, database: app, {a} }}
  staging: {{ engine: postgres, host: h2, database: app2, {b} }}
"
        )
    }

    const SHARED: &str = "path: shared, name: 'nightly-{date}-{time}'";

    #[test]
    fn same_folder_and_pattern_is_an_error_at_the_second_job() {
        let e = errors(&manifest(SHARED, "remote: l", "remote: l"));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("m.yaml:10:3: jobs `prod` and `staging`"),
            "{e:?}"
        );
        assert!(e[0].contains("add `{job}`"), "{e:?}");
        // the job's own `name` is pointed at when it sets one
        let e = errors(&manifest(
            "path: shared",
            "remote: s3, name: 'n-{date}'",
            "remote: s3, name: 'n-{date}'",
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("m.yaml:10:"), "{e:?}");
        assert!(
            e[0].contains("name: 'n-{date}'") || e[0].contains("`n-{date}`"),
            "{e:?}"
        );
        // two remote names for one folder are one remote
        assert_eq!(
            errors(&manifest(SHARED, "remote: l", "remote: l2")).len(),
            1
        );
        // `{db}` with different databases differs by a literal only if the values differ
        let e = errors(&manifest(
            "path: shared, name: '{engine}-{date}-{time}'",
            "remote: l",
            "remote: l",
        ));
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn names_that_cannot_meet_are_fine() {
        let ok = [
            manifest(SHARED, "remote: l, name: 'a-{date}-{time}'", "remote: l"),
            manifest(
                "path: shared, name: '{job}-{date}-{time}'",
                "remote: l",
                "remote: l",
            ),
            manifest("path: shared, name: 'n-{uuid}'", "remote: l", "remote: l"),
            manifest(SHARED, "remote: l, path: one", "remote: l, path: two"),
            manifest(SHARED, "remote: l", "remote: other"),
            manifest(SHARED, "remote: l", "remote: s3"),
            manifest("path: shared", "remote: l", "remote: l"),
            manifest("name: 'nightly-{date}-{time}'", "remote: l", "remote: l"),
            manifest(SHARED, "remote: l", "remote: l, compress: gzip"),
        ];
        for m in ok {
            assert_eq!(errors(&m), Vec::<String>::new(), "{m}");
        }
    }
}
