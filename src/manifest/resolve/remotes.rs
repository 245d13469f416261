//! `remotes:`: each one an rclone remote or a local folder.

use super::{entries, typed, Ctx};
use crate::manifest::tree::escape;
use crate::manifest::types;
use crate::model::*;
use serde_json::Value;
use std::collections::BTreeMap;

/// Every remote that is well formed; the others are reported.
pub(super) fn remotes(doc: &Value, ctx: &mut Ctx) -> BTreeMap<String, Remote> {
    let mut remotes = BTreeMap::new();
    for (name, rv) in entries(doc, "remotes") {
        let Some(r) = typed::<types::RemoteDoc>(rv) else {
            continue;
        };
        if let Some(kind) = kind(name, &r, ctx) {
            remotes.insert(
                name.clone(),
                Remote {
                    name: name.clone(),
                    kind,
                },
            );
        }
    }
    remotes
}

/// `rclone: NAME:path` or `path: /folder`, exactly one of them.
fn kind(name: &str, r: &types::RemoteDoc, ctx: &mut Ctx) -> Option<RemoteKind> {
    let ptr = format!("/remotes/{}", escape(name));
    match (&r.rclone, &r.path) {
        (Some(target), None) => {
            if !target.contains(':') {
                ctx.error(&format!("{ptr}/rclone"), format!("rclone remote `{target}` must look like `NAME:path` (a remote from rclone.conf)"));
            }
            Some(RemoteKind::Rclone(target.clone()))
        }
        (None, Some(p)) => Some(RemoteKind::Local(ctx.path(p))),
        (Some(_), Some(_)) => {
            ctx.error_key(
                &ptr,
                format!("remote `{name}` sets both `rclone` and `path`; choose one"),
            );
            None
        }
        (None, None) => {
            ctx.error_key(
                &ptr,
                format!("remote `{name}` needs `rclone: NAME:path` or `path: /folder`"),
            );
            None
        }
    }
}
