//! WAL segment names and `backup_label`: the two places PostgreSQL says where WAL is.

/// `TTTTTTTTLLLLLLLLSSSSSSSS`: timeline, log and segment number in hex — a completed segment as
/// pg_receivewal leaves it (it writes `NAME.partial` and renames it when the segment is full).
pub fn is_segment(name: &str) -> bool {
    name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `TTTTTTTT.history`: a timeline's history, needed to follow a promotion.
pub fn is_history(name: &str) -> bool {
    name.len() == 16
        && name.ends_with(".history")
        && name[..8].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Files of the spool that are complete and go to the archive.
pub fn is_archivable(name: &str) -> bool {
    is_segment(name) || is_history(name)
}

/// The segment's position in the WAL (log and segment number), whatever its timeline.
pub fn position(segment: &str) -> &str {
    &segment[8..]
}

/// The first WAL segment a base backup needs, from its `backup_label`
/// (`START WAL LOCATION: 0/2000028 (file 000000010000000000000002)`).
pub fn start_segment(label: &str) -> Option<String> {
    let line = label
        .lines()
        .find(|l| l.starts_with("START WAL LOCATION:"))?;
    let file = line.split("(file ").nth(1)?.trim_end_matches(')').trim();
    is_segment(file).then(|| file.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_segment("000000010000000000000002"));
        assert!(!is_segment("000000010000000000000002.partial"));
        assert!(is_history("00000002.history"));
        assert!(!is_archivable("000000010000000000000002.partial"));
        assert_eq!(position("000000020000000000000003"), "0000000000000003");
    }

    #[test]
    fn label() {
        let l = "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\n";
        assert_eq!(
            start_segment(l).as_deref(),
            Some("000000010000000000000002")
        );
        assert_eq!(start_segment("nothing"), None);
    }
}
