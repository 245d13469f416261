//! A string that must never be shown: database passwords, connection URIs, webhook URLs, SMTP passwords.
//!
//! `Debug` and `Display` print `***`; the value is reachable only through `expose()`, so every place
//! that hands a secret to a child process or a socket is greppable.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
    }

    /// The plain value. Call this only where the value leaves dbstash for its destination.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

/// Shortest secret value that is scrubbed: shorter ones would turn ordinary words into `***`.
const MIN_SECRET: usize = 3;

/// The one place that scrubs secrets from text (tool stderr, hook output, error messages,
/// notification errors). Each value is matched as written and in its percent-encoded forms,
/// which is how a password appears inside the connection URI a tool echoes back
/// (`postgres://u:p%40ss@h/db`). Longer values are replaced first, so a secret that contains
/// another is scrubbed whole.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} forms)", self.needles.len())
    }
}

impl Redactor {
    pub fn new(secrets: &[&Secret]) -> Self {
        Self::from_values(secrets.iter().map(|s| s.expose()))
    }

    /// For values held as plain strings (webhook URL pieces a notifier derives from its `Secret`).
    pub fn from_values<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut needles: Vec<String> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_SECRET)
            .flat_map(encoded_forms)
            .collect();
        needles.sort();
        needles.dedup();
        needles.sort_by_key(|v| std::cmp::Reverse(v.len()));
        Redactor { needles }
    }

    /// `text` with every form of every secret replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), "***");
            }
        }
        out
    }

    /// Does `text` carry any form of any secret?
    pub fn appears_in(&self, text: &str) -> bool {
        self.needles.iter().any(|n| text.contains(n.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }
}

/// `value` as written and as a URI would carry it: every non-alphanumeric byte encoded, or only
/// the reserved ones (RFC 3986 leaves `-._~` alone), in upper- and lower-case hex.
fn encoded_forms(value: &str) -> Vec<String> {
    use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
    const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let mut forms = vec![value.to_string()];
    for set in [NON_ALPHANUMERIC, RESERVED] {
        let upper = utf8_percent_encode(value, set).to_string();
        let lower = lower_hex_escapes(&upper);
        forms.extend([upper, lower]);
    }
    forms.sort();
    forms.dedup();
    forms
}

/// `%2F` → `%2f` (both spellings are valid in a URI).
fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut escape = 0;
    for c in encoded.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Shorthand for `Redactor::new(secrets).redact(text)`.
pub fn redact(text: &str, secrets: &[&Secret]) -> String {
    Redactor::new(secrets).redact(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn redact_replaces_every_occurrence() {
        let s = Secret::new("pw123");
        assert_eq!(redact("a pw123 b pw123", &[&s]), "a *** b ***");
    }

    #[test]
    fn redactor_scrubs_percent_encoded_forms() {
        let s = Secret::new("p@ss/w-rd");
        let r = Redactor::new(&[&s]);
        for leak in [
            "p@ss/w-rd",
            "p%40ss%2Fw%2Drd",
            "p%40ss%2Fw-rd",
            "p%40ss%2fw-rd",
        ] {
            let out = r.redact(&format!("FATAL: postgres://u:{leak}@h/db refused"));
            assert_eq!(out, "FATAL: postgres://u:***@h/db refused", "{leak}");
        }
        assert!(r.appears_in("x p%40ss%2Fw-rd y"));
        assert!(!r.appears_in("nothing here"));
    }

    #[test]
    fn redactor_replaces_the_longer_secret_whole() {
        let short = Secret::new("abc");
        let long = Secret::new("xxabcxx");
        assert_eq!(
            Redactor::new(&[&short, &long]).redact("a xxabcxx b"),
            "a *** b"
        );
        // Too short to scrub: two characters would turn ordinary words into `***`.
        assert_eq!(Redactor::new(&[&Secret::new("ab")]).redact("ab"), "ab");
    }
}
