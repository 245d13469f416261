//! Recognise this job's own objects by name, so cleanup never touches foreign files: an object
//! without a record is removed only if its name matches the job's name template + extension and
//! it is older than the job's timeout (so a run in progress is never mistaken for a leftover).

use crate::plan::naming::sanitize;
use crate::plan::JobPlan;
use crate::storage::Entry;
use jiff::Timestamp;
use std::collections::HashSet;

/// A regex for names this plan can produce (any date/time/ts/uuid, the `-N` collision suffix).
pub fn name_regex(plan: &JobPlan) -> Option<regex::Regex> {
    let mut re = String::from("^");
    let mut rest = plan.name_template.as_str();
    while let Some(open) = rest.find('{') {
        re.push_str(&regex::escape(&rest[..open]));
        let close = rest[open..].find('}')? + open;
        let part = match &rest[open + 1..close] {
            "job" => regex::escape(&sanitize(&plan.job)),
            "db" if plan.per_database => r"[^/]+".into(),
            "db" => regex::escape(&sanitize(&plan.database)),
            "engine" => regex::escape(&sanitize(plan.engine.as_str())),
            "date" => r"\d{4}-\d{2}-\d{2}".into(),
            "time" => r"\d{6}".into(),
            "ts" => r"\d+".into(),
            "uuid" => "[0-9a-f]{8}".into(),
            _ => return None,
        };
        re.push_str(&part);
        rest = &rest[close + 1..];
    }
    re.push_str(&regex::escape(rest));
    re.push_str(r"(-\d+)?");
    re.push_str(&regex::escape(&plan.extension));
    re.push('$');
    regex::Regex::new(&re).ok()
}

/// Objects of this job with no record, old enough to be a crashed run's leftovers.
pub fn find(
    plan: &JobPlan,
    entries: &[Entry],
    complete: &HashSet<String>,
    now: Timestamp,
) -> Vec<String> {
    let Some(re) = name_regex(plan) else {
        return Vec::new();
    };
    let names: HashSet<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let min_age = plan.timeout.as_secs().saturating_mul(2).max(3600) as i64;
    entries
        .iter()
        .filter(|e| re.is_match(&e.name))
        .filter(|e| !complete.contains(&e.name))
        .filter(|e| !names.contains(format!("{}{}", e.name, super::record::SUFFIX).as_str()))
        .filter(|e| {
            e.modified
                .is_some_and(|m| now.as_second() - m.as_second() > min_age)
        })
        .map(|e| e.name.clone())
        .collect()
}
