//! What a manifest reload changes, by job name (pure; unit-tested).

use crate::model::Settings;
use std::collections::BTreeMap;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

pub fn jobs<P: PartialEq>(old: &BTreeMap<String, P>, new: &BTreeMap<String, P>) -> Diff {
    let mut d = Diff::default();
    for (name, plan) in new {
        match old.get(name) {
            None => d.added.push(name.clone()),
            Some(o) if o != plan => d.changed.push(name.clone()),
            Some(_) => d.unchanged.push(name.clone()),
        }
    }
    d.removed = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .cloned()
        .collect();
    d
}

/// Settings that only take effect after a restart.
pub fn needs_restart(old: &Settings, new: &Settings) -> Vec<&'static str> {
    let mut v = Vec::new();
    if old.health_listen != new.health_listen {
        v.push("settings.health.listen");
    }
    if old.max_parallel != new.max_parallel {
        v.push("settings.max_parallel");
    }
    if old.temp_dir != new.temp_dir {
        v.push("settings.temp_dir");
    }
    if old.log_level != new.log_level || old.log_format != new.log_format {
        v.push("settings.log");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::JobPlan;
    use std::path::Path;

    fn plans(yaml: &str) -> BTreeMap<String, JobPlan> {
        let m =
            crate::manifest::load_str(Path::new("m.yaml"), yaml, &|_| None, &|_| Ok(String::new()))
                .unwrap();
        crate::plan::build_all(&m, &[])
            .unwrap()
            .into_iter()
            .map(|p| (p.job.clone(), p))
            .collect()
    }

    #[test]
    fn added_removed_changed_by_name() {
        let base = "version: 1\nremotes: { l: { path: /tmp/x } }\njobs:\n";
        let old = plans(&format!("{base}  a: {{ engine: redis, remote: l, schedule: '@daily' }}\n  b: {{ engine: redis, remote: l, schedule: '@daily' }}\n  c: {{ engine: redis, remote: l, schedule: '@daily' }}\n"));
        let new = plans(&format!("{base}  a: {{ engine: redis, remote: l, schedule: '@daily' }}\n  b: {{ engine: redis, remote: l, schedule: '@hourly' }}\n  d: {{ engine: redis, remote: l, schedule: '@daily' }}\n"));
        let d = jobs(&old, &new);
        assert_eq!(d.added, ["d"]);
        assert_eq!(d.removed, ["c"]);
        assert_eq!(d.changed, ["b"]);
        assert_eq!(d.unchanged, ["a"]);
        assert!(jobs(&new, &new).is_empty());
    }
}
