//! For unit tests elsewhere in the crate: one job, validated the way `validate` does it.

use crate::model::Job;
use std::path::Path;

/// The job `j` of a manifest with one local remote `l`; `yaml_job` is the rest of its flow map
/// (`engine: postgres, database: app`). Panics with the diagnostics when it does not validate.
pub fn job(yaml_job: &str) -> Job {
    let text = format!(
        "version: 1\nremotes: {{ l: {{ path: /tmp/x }} }}\njobs:\n  j: {{ remote: l, {yaml_job} }}\n"
    );
    let m = super::load_str(Path::new("t.yaml"), &text, &|_| None, &|_| {
        Err(std::io::Error::other("no files"))
    })
    .unwrap_or_else(|e| panic!("{:?}", e.diagnostics()));
    m.jobs["j"].clone()
}
