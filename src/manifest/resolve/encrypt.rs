//! `encrypt:`: the age recipients a job's backups are encrypted to.

use super::Ctx;
use crate::manifest::types;
use crate::model::Encrypt;

/// `encrypt:` → validated age recipients (x25519 `age1...` keys), from the list and/or the file.
pub(super) fn recipients(ctx: &mut Ctx, e: &types::EncryptDoc, ptr: &str) -> Option<Encrypt> {
    use std::str::FromStr;
    let mut out = Vec::new();
    for (i, r) in e.age_recipients.iter().enumerate() {
        match crate::crypt::Recipient::from_str(r.trim()) {
            Ok(_) => out.push(r.trim().to_string()),
            Err(err) => ctx.error(
                &format!("{ptr}/age_recipients/{i}"),
                format!("not an age recipient (`age1...`): {err}"),
            ),
        }
    }
    if let Some(f) = &e.age_recipients_file {
        let path = ctx.path(f);
        match (ctx.read_file)(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    match crate::crypt::Recipient::from_str(line) {
                        Ok(_) => out.push(line.to_string()),
                        Err(err) => ctx.error(
                            &format!("{ptr}/age_recipients_file"),
                            format!(
                                "{}:{}: not an age recipient (`age1...`): {err}",
                                path.display(),
                                n + 1
                            ),
                        ),
                    }
                }
            }
            Err(err) => ctx.error(
                &format!("{ptr}/age_recipients_file"),
                format!(
                    "cannot read age_recipients_file `{}`: {err}",
                    path.display()
                ),
            ),
        }
    }
    if out.is_empty() {
        // Reported once: a list of bad recipients already said what is wrong.
        if e.age_recipients.is_empty() && e.age_recipients_file.is_none() {
            ctx.error_key(
                ptr,
                "`encrypt` needs at least one age recipient (`age_recipients` or `age_recipients_file`)",
            );
        }
        return None;
    }
    Some(Encrypt { recipients: out })
}
