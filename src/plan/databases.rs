//! Which databases a several-database job backs up: the server's list (or the job's), minus the
//! engine's own system databases and the job's `exclude` globs. Pure, so it is unit-tested.

use crate::model::Databases;

/// `*` any run of characters, `?` one character; everything else literal. Whole-name match.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative wildcard match with one backtrack point (linear in practice, no recursion).
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The databases to back up, in name order. `listed` is the server's answer (one per line) for
/// `database: "*"`, unused for an explicit list.
pub fn select(which: &Databases, listed: &str, system: &[&str], exclude: &[String]) -> Vec<String> {
    let mut names: Vec<String> = match which {
        Databases::One => Vec::new(),
        Databases::List(l) => l.clone(),
        Databases::All => listed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .filter(|l| !system.contains(l))
            .map(str::to_string)
            .collect(),
    };
    names.retain(|n| !exclude.iter().any(|p| glob(p, n)));
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("test_*", "test_1"));
        assert!(glob("*_tmp", "a_tmp"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "abbc"));
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(!glob("test", "test2"));
        assert!(glob("ünï*", "ünïcode"));
    }

    #[test]
    fn all_minus_system_and_excludes() {
        let listed = "app\ninformation_schema\nmysql\n\nscratch_1\nshop\nsys\nperformance_schema\n";
        let got = select(
            &Databases::All,
            listed,
            crate::engine::mysql::SYSTEM_SCHEMAS,
            &["scratch_*".to_string()],
        );
        assert_eq!(got, vec!["app", "shop"]);
    }

    #[test]
    fn explicit_list_ignores_the_listing() {
        let got = select(
            &Databases::List(vec!["b".into(), "a".into(), "tmp".into()]),
            "zzz\n",
            &[],
            &["tmp".to_string()],
        );
        assert_eq!(got, vec!["a", "b"]);
    }
}
