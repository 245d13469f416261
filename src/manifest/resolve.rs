//! Semantic layer: schema-valid JSON → the validated `model::Manifest`, collecting every error
//! with its location. Jobs are merged key by key from defaults < template < job.

use super::connection::{default_port, parse_uri, Connection};
use super::diag::{Diagnostic, Location};
use super::limits::{human, MAX_MERGED_BYTES};
use super::model::*;
use super::schema::unknown_key_message;
use super::tree::{escape, Locations};
use super::types::{self, JobDoc, NotifierDoc, OneOrMany, RemoteRef};
use super::units::{parse_duration, parse_size};
use crate::plan::naming;
use crate::plan::schedule::Schedule;
use crate::secret::Secret;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Job keys whose mapping values merge key by key across layers (the rest are replaced whole).
const NESTED: &[&str] = &["retention", "hooks", "verify", "encrypt"];
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
pub const DEFAULT_NAME: &str = "{db}-{date}-{time}";
pub const DEFAULT_PATH: &str = "{job}";

pub struct Ctx<'a> {
    pub file: &'a Path,
    pub base_dir: PathBuf,
    pub locs: &'a Locations,
    /// The document as written, before the schema layer dropped bad values.
    pub raw: &'a Value,
    /// Errors the earlier layers (YAML, `${VAR}`, schema) already reported.
    pub prior_errors: usize,
    pub diags: Vec<Diagnostic>,
    pub read_file: &'a dyn Fn(&Path) -> std::io::Result<String>,
}

impl Ctx<'_> {
    /// Was `name` declared under `section` (`remotes`, `notifiers`, `templates`), valid or not?
    fn declared(&self, section: &str, name: &str) -> bool {
        self.raw
            .get(section)
            .and_then(Value::as_object)
            .is_some_and(|m| m.contains_key(name))
    }
    fn any_error(&self) -> bool {
        self.prior_errors > 0 || self.diags.iter().any(Diagnostic::is_error)
    }
    fn loc(&self, ptr: &str) -> Location {
        self.locs.value(ptr)
    }
    fn error(&mut self, ptr: &str, msg: impl Into<String>) {
        let l = self.loc(ptr);
        self.diags.push(Diagnostic::error(self.file, l, msg));
    }
    fn error_key(&mut self, ptr: &str, msg: impl Into<String>) {
        let l = self.locs.key(ptr);
        self.diags.push(Diagnostic::error(self.file, l, msg));
    }
    fn warn(&mut self, ptr: &str, msg: impl Into<String>) {
        let l = self.locs.key(ptr);
        self.diags.push(Diagnostic::warning(self.file, l, msg));
    }
    fn path(&self, p: &str) -> PathBuf {
        let pb = PathBuf::from(p);
        if pb.is_absolute() {
            pb
        } else {
            self.base_dir.join(pb)
        }
    }
    /// The value of `inline` or the contents of `file` (trailing newline trimmed), as a secret.
    fn secret(
        &mut self,
        inline: Option<&String>,
        file: Option<&String>,
        ptr: &str,
        key: &str,
    ) -> Option<Secret> {
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.error_key(
                    &format!("{ptr}/{key}_file"),
                    format!("set either `{key}` or `{key}_file`, not both"),
                );
                None
            }
            (Some(v), None) => Some(Secret::new(v.clone())),
            (None, Some(f)) => {
                let path = self.path(f);
                match (self.read_file)(&path) {
                    Ok(s) => Some(Secret::new(s.trim_end_matches(['\n', '\r']).to_string())),
                    Err(e) => {
                        self.error(
                            &format!("{ptr}/{key}_file"),
                            format!("cannot read {key}_file `{}`: {e}", path.display()),
                        );
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }
    fn duration(&mut self, v: Option<&String>, ptr: &str) -> Option<Duration> {
        let s = v?;
        match parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(ptr, e);
                None
            }
        }
    }
}

/// Every job gets its own copy of `defaults` and of its template: a long default (a hook script,
/// say) and thousands of one-line jobs must not multiply into gigabytes.
struct MergeBudget<'a> {
    defaults: usize,
    templates: HashMap<&'a str, usize>,
    used: usize,
}

impl<'a> MergeBudget<'a> {
    fn new(defaults: &Map<String, Value>) -> Self {
        MergeBudget {
            defaults: defaults.iter().map(|(k, v)| k.len() + json_size(v)).sum(),
            templates: HashMap::new(),
            used: 0,
        }
    }

    /// Count one job's merged size; false once all jobs together pass the cap.
    fn admit(&mut self, doc: &Value, job: &'a Value) -> bool {
        let template = match job.get("template").and_then(Value::as_str) {
            Some(t) => *self.templates.entry(t).or_insert_with(|| {
                doc.get("templates")
                    .and_then(|ts| ts.get(t))
                    .map_or(0, json_size)
            }),
            None => 0,
        };
        self.used += self.defaults + template + json_size(job);
        self.used <= MAX_MERGED_BYTES
    }
}

/// Roughly the bytes a value holds: its strings and keys, a word for anything else.
fn json_size(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(items) => items.iter().map(json_size).sum(),
        Value::Object(m) => m.iter().map(|(k, v)| k.len() + json_size(v)).sum(),
        _ => 8,
    }
}

/// "unknown remote `nass`, did you mean `nas`?" over the names declared under `section`.
fn suggest(ctx: &Ctx, section: &str, kind: &str, name: &str) -> String {
    let names: Vec<&str> = ctx
        .raw
        .get(section)
        .and_then(Value::as_object)
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let hint = unknown_key_message(name, &names);
    match hint.split_once(", did you mean ") {
        Some((_, s)) => format!("unknown {kind} `{name}`, did you mean {s}"),
        None if names.is_empty() => format!("unknown {kind} `{name}` (none are declared)"),
        None => format!("unknown {kind} `{name}` (declared: {})", names.join(", ")),
    }
}

/// One section entry as its typed shape; `None` when the schema layer already reported it.
fn typed<T: serde::de::DeserializeOwned>(v: &Value) -> Option<T> {
    serde_json::from_value(v.clone()).ok()
}

/// `settings` with every key that parses: a `health:` block missing its `listen` (reported by
/// the schema layer) must not also throw away `timezone` and hide its errors.
/// A key dropped here passed the schema but does not fit its type (`max_parallel: 5000000000`):
/// it is reported, never silently replaced by the default.
fn lenient_settings(v: &Value, ctx: &mut Ctx) -> types::SettingsDoc {
    if let Some(all) = typed(v) {
        return all;
    }
    let mut kept = Map::new();
    for (k, val) in v.as_object().into_iter().flatten() {
        kept.insert(k.clone(), val.clone());
        if let Err(e) = serde_json::from_value::<types::SettingsDoc>(Value::Object(kept.clone())) {
            kept.remove(k);
            // A block missing a key was reported by the schema layer; a number is not.
            if val.is_number() {
                ctx.error(&format!("/settings/{}", escape(k)), serde_reason(&e));
            }
        }
    }
    typed(&Value::Object(kept)).unwrap_or_default()
}

fn entries<'v>(doc: &'v Value, section: &str) -> Vec<(&'v String, &'v Value)> {
    doc.get(section)
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

pub fn resolve(doc: &Value, ctx: &mut Ctx) -> Option<Manifest> {
    // Section by section and entry by entry, so one bad entry does not hide the others' errors.
    let settings_doc = doc
        .get("settings")
        .map(|s| lenient_settings(s, ctx))
        .unwrap_or_default();
    let settings = settings(&settings_doc, ctx);
    let mut remotes = BTreeMap::new();
    for (name, rv) in entries(doc, "remotes") {
        let Some(r) = typed::<types::RemoteDoc>(rv) else {
            continue;
        };
        let ptr = format!("/remotes/{}", escape(name));
        let kind = match (&r.rclone, &r.path) {
            (Some(target), None) => {
                if !target.contains(':') {
                    ctx.error(&format!("{ptr}/rclone"), format!("rclone remote `{target}` must look like `NAME:path` (a remote from rclone.conf)"));
                }
                RemoteKind::Rclone(target.clone())
            }
            (None, Some(p)) => RemoteKind::Local(ctx.path(p)),
            (Some(_), Some(_)) => {
                ctx.error_key(
                    &ptr,
                    format!("remote `{name}` sets both `rclone` and `path`; choose one"),
                );
                continue;
            }
            (None, None) => {
                ctx.error_key(
                    &ptr,
                    format!("remote `{name}` needs `rclone: NAME:path` or `path: /folder`"),
                );
                continue;
            }
        };
        remotes.insert(
            name.clone(),
            Remote {
                name: name.clone(),
                kind,
            },
        );
    }
    let mut notifiers = BTreeMap::new();
    for (name, nv) in entries(doc, "notifiers") {
        let Some(n) = typed::<NotifierDoc>(nv) else {
            continue;
        };
        if let Some(n) = notifier(name, &n, ctx) {
            notifiers.insert(name.clone(), n);
        }
    }
    let empty = Map::new();
    let defaults = doc
        .get("defaults")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    if defaults.contains_key("template") {
        ctx.error_key(
            "/defaults/template",
            "`template` cannot be set in `defaults`",
        );
    }
    for (tname, t) in doc
        .get("templates")
        .and_then(Value::as_object)
        .unwrap_or(&empty)
    {
        if t.get("template").is_some() {
            ctx.error_key(
                &format!("/templates/{}/template", escape(tname)),
                "a template cannot use another template",
            );
        }
    }
    let mut jobs = BTreeMap::new();
    let mut merged = MergeBudget::new(defaults);
    for (jname, jv) in doc.get("jobs").and_then(Value::as_object).unwrap_or(&empty) {
        if !merged.admit(doc, jv) {
            ctx.error_key(
                &format!("/jobs/{}", escape(jname)),
                format!(
                    "`defaults` and templates copied into every job make the jobs larger than {} together, the limit for the expanded manifest",
                    human(MAX_MERGED_BYTES as u64)
                ),
            );
            break;
        }
        if let Some(job) = job(
            jname, jv, defaults, doc, &settings, &remotes, &notifiers, ctx,
        ) {
            jobs.insert(jname.clone(), job);
        }
    }
    super::collide::check(&jobs, &remotes, ctx);
    let declares_jobs = ctx
        .raw
        .get("jobs")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    if !declares_jobs && !ctx.any_error() {
        ctx.warn("", "the manifest declares no jobs");
    }
    Some(Manifest {
        file: ctx.file.to_path_buf(),
        hash: String::new(),
        settings,
        remotes,
        notifiers,
        jobs,
        warnings: Vec::new(),
    })
}

fn settings(s: &types::SettingsDoc, ctx: &mut Ctx) -> Settings {
    let timezone = match &s.timezone {
        Some(name) => Zone::get(name).unwrap_or_else(|e| {
            ctx.error("/settings/timezone", e);
            Zone::utc()
        }),
        None => Zone::utc(),
    };
    let health_listen = s.health.as_ref().map(|h| h.listen.clone());
    if let Some(l) = &health_listen {
        let ok = l
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !ok {
            ctx.error(
                "/settings/health/listen",
                format!("invalid listen address `{l}` (use HOST:PORT, e.g. `0.0.0.0:8080`)"),
            );
        }
    }
    let rclone = s.rclone.clone().unwrap_or_default();
    Settings {
        timezone,
        max_parallel: s.max_parallel.unwrap_or(2).max(1) as usize,
        temp_dir: s
            .temp_dir
            .as_deref()
            .map(|p| ctx.path(p))
            .unwrap_or_else(|| PathBuf::from("/tmp/dbstash")),
        health_listen,
        log_level: s.log.as_ref().and_then(|l| l.level).unwrap_or_default(),
        log_format: s.log.as_ref().and_then(|l| l.format).unwrap_or_default(),
        rclone: RcloneSettings {
            binary: rclone.binary.unwrap_or_else(|| "rclone".into()),
            config_file: rclone.config_file.as_deref().map(|p| ctx.path(p)),
            extra_args: rclone.extra_args,
        },
        shutdown_grace: ctx
            .duration(s.shutdown_grace.as_ref(), "/settings/shutdown_grace")
            .unwrap_or(Duration::from_secs(30)),
    }
}

fn notifier(name: &str, n: &NotifierDoc, ctx: &mut Ctx) -> Option<Notifier> {
    use types::NotifierKind as K;
    let ptr = format!("/notifiers/{}", escape(name));
    let url = ctx.secret(n.url.as_ref(), n.url_file.as_ref(), &ptr, "url");
    let secret = ctx.secret(n.secret.as_ref(), n.secret_file.as_ref(), &ptr, "secret");
    let needs_url = !matches!(n.kind, K::Email);
    if needs_url && url.is_none() && n.url_file.is_none() {
        ctx.error_key(&ptr, format!("notifier `{name}` needs `url` or `url_file`"));
    }
    if let Some(u) = &url {
        if needs_url && !(u.expose().starts_with("http://") || u.expose().starts_with("https://")) {
            ctx.error(
                &format!("{ptr}/url"),
                format!("notifier `{name}`: the URL must start with http:// or https://"),
            );
        }
    }
    let mut smtp = None;
    if n.kind == K::Email {
        if n.from.is_none() {
            ctx.error_key(&ptr, format!("email notifier `{name}` needs `from`"));
        }
        if n.to.as_ref().is_none_or(Vec::is_empty) {
            ctx.error_key(
                &ptr,
                format!("email notifier `{name}` needs at least one address in `to`"),
            );
        }
        match &n.smtp {
            None => ctx.error_key(
                &ptr,
                format!("email notifier `{name}` needs `smtp: {{ host: ... }}`"),
            ),
            Some(s) => {
                let security = s.security.unwrap_or_default();
                let sptr = format!("{ptr}/smtp");
                smtp = Some(Smtp {
                    host: s.host.clone(),
                    port: s.port.map(|p| p as u16).unwrap_or(match security {
                        SmtpSecurity::Starttls => 587,
                        SmtpSecurity::Tls => 465,
                        SmtpSecurity::None => 25,
                    }),
                    security,
                    username: s.username.clone(),
                    password: ctx.secret(
                        s.password.as_ref(),
                        s.password_file.as_ref(),
                        &sptr,
                        "password",
                    ),
                    ca_file: s.ca_file.as_deref().map(|p| ctx.path(p)),
                });
            }
        }
    } else {
        for (key, set) in [
            ("from", n.from.is_some()),
            ("to", n.to.is_some()),
            ("smtp", n.smtp.is_some()),
        ] {
            if set {
                ctx.error_key(
                    &format!("{ptr}/{key}"),
                    format!("`{key}` applies only to email notifiers"),
                );
            }
        }
    }
    if n.kind != K::Webhook
        && (n.headers.is_some() || n.secret.is_some() || n.secret_file.is_some())
    {
        ctx.error_key(
            &ptr,
            format!("`headers` and `secret` apply only to webhook notifiers (`{name}` is not one)"),
        );
    }
    if let Some(m) = &n.message {
        if let Err(e) = crate::notify::template::check(m) {
            ctx.error(&format!("{ptr}/message"), template_error(&e));
        }
    }
    let on: BTreeSet<NotifyOn> = match &n.on {
        Some(o) => o.to_vec().into_iter().collect(),
        None if n.kind == K::Healthchecks => {
            [NotifyOn::Start, NotifyOn::Success, NotifyOn::Failure].into()
        }
        None => [NotifyOn::Failure].into(),
    };
    let timeout = ctx
        .duration(n.timeout.as_ref(), &format!("{ptr}/timeout"))
        .unwrap_or(Duration::from_secs(10));
    Some(Notifier {
        name: name.to_string(),
        kind: n.kind,
        url,
        on,
        message: n.message.clone(),
        timeout,
        from: n.from.clone(),
        to: n.to.clone().unwrap_or_default(),
        smtp,
        headers: n.headers.clone().unwrap_or_default(),
        secret,
    })
}

/// A handlebars error as one short line: "unknown variable `jobb`" rather than the engine's report.
fn template_error(raw: &str) -> String {
    const STRICT: &str = "strict mode Some(\"";
    if let Some(at) = raw.find(STRICT) {
        let rest = &raw[at + STRICT.len()..];
        if let Some(end) = rest.find('"') {
            let known = crate::notify::template::sample_context();
            let names: Vec<&str> = known
                .as_object()
                .map(|o| o.keys().map(String::as_str).collect())
                .unwrap_or_default();
            let var = &rest[..end];
            return match unknown_key_message(var, &names).split_once(", did you mean ") {
                Some((_, s)) => {
                    format!("message template: unknown variable `{var}`, did you mean {s}")
                }
                None => format!(
                    "message template: unknown variable `{var}` (known: {})",
                    names.join(", ")
                ),
            };
        }
    }
    const HELPER: &str = "Helper not found ";
    if let Some(at) = raw.find(HELPER) {
        let helper = raw[at + HELPER.len()..].lines().next().unwrap_or("").trim();
        return format!("message template: unknown helper `{helper}`");
    }
    // Keep the first line and drop the parser's list of expected tokens.
    let first = raw.lines().next().unwrap_or(raw).trim();
    let first = first
        .split_once(": expected ")
        .map_or(first, |(head, _)| head);
    let first = first
        .strip_prefix("Failed to parse template Template error: ")
        .unwrap_or(first);
    let place = raw
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .and_then(|l| {
            l.rsplit_once(':')
                .and_then(|(a, col)| Some((a.rsplit_once(':')?.1, col)))
        })
        .map(|(line, col)| format!(" at line {line}, column {col} of the message"))
        .unwrap_or_default();
    format!("message template: {first}{place}")
}

/// serde's reason without the value it quotes (`invalid value: integer `5000000000`, expected u32`).
fn serde_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text);
    match text.split_once("expected ") {
        Some((_, exp)) => format!("a value does not fit (expected {exp})"),
        None => "a value does not fit its key".to_string(),
    }
}

/// The merged job: values, and for each key path (`retention/max_files`) the pointer it came from.
struct Merged {
    value: Map<String, Value>,
    source: HashMap<String, String>,
    origins: BTreeMap<String, Origin>,
}

impl Merged {
    fn ptr(&self, rel: &str, fallback: &str) -> String {
        self.source
            .get(rel)
            .cloned()
            .unwrap_or_else(|| fallback.to_string())
    }
}

fn merge(layers: &[(Origin, String, &Map<String, Value>)]) -> Merged {
    let mut m = Merged {
        value: Map::new(),
        source: HashMap::new(),
        origins: BTreeMap::new(),
    };
    for (origin, base, layer) in layers {
        for (k, v) in layer.iter() {
            let kptr = format!("{base}/{}", escape(k));
            if v.is_null() {
                // `key: null` unsets an inherited value.
                m.value.remove(k);
                m.origins.remove(k);
                continue;
            }
            match (NESTED.contains(&k.as_str()), v, m.value.get_mut(k)) {
                (true, Value::Object(inner), Some(Value::Object(existing))) => {
                    for (ik, iv) in inner {
                        existing.insert(ik.clone(), iv.clone());
                        m.source
                            .insert(format!("{k}/{ik}"), format!("{kptr}/{}", escape(ik)));
                    }
                }
                _ => {
                    m.value.insert(k.clone(), v.clone());
                    if let Value::Object(inner) = v {
                        for ik in inner.keys() {
                            m.source
                                .insert(format!("{k}/{ik}"), format!("{kptr}/{}", escape(ik)));
                        }
                    }
                }
            }
            m.source.insert(k.clone(), kptr);
            m.origins.insert(k.clone(), origin.clone());
        }
    }
    m
}

/// The key (`retention/max_days`) of a merged job whose value does not fit its type, so the error
/// points at the value instead of the job.
fn misfit(job: &Map<String, Value>) -> Option<String> {
    let fits = |m: Map<String, Value>| serde_json::from_value::<JobDoc>(Value::Object(m)).is_ok();
    for (k, v) in job {
        if fits(Map::from_iter([(k.clone(), v.clone())])) {
            continue;
        }
        for ik in v.as_object().into_iter().flat_map(Map::keys) {
            let mut without = v.as_object().cloned().unwrap_or_default();
            without.remove(ik);
            if fits(Map::from_iter([(k.clone(), Value::Object(without))])) {
                return Some(format!("{k}/{ik}"));
            }
        }
        return Some(k.clone());
    }
    None
}

fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && !name.starts_with('.')
}

/// A password that is silently overridden or never used is a mistake waiting to be found at
/// restore time: say so now.
fn password_warnings(ctx: &mut Ctx, engine: Engine, uri_has_one: bool, key: &str) {
    if engine == Engine::Sqlite {
        ctx.warn(key, "sqlite has no passwords: `password` is not used");
    } else if uri_has_one {
        ctx.warn(
            key,
            "the `uri` has a password too: this `password` replaces it (keep one of the two)",
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn job(
    name: &str,
    jv: &Value,
    defaults: &Map<String, Value>,
    doc: &Value,
    settings: &Settings,
    remotes: &BTreeMap<String, Remote>,
    notifiers: &BTreeMap<String, Notifier>,
    ctx: &mut Ctx,
) -> Option<Job> {
    let jptr = format!("/jobs/{}", escape(name));
    if !valid_job_name(name) {
        ctx.error_key(
            &jptr,
            format!("invalid job name `{name}`: use letters, digits, `-`, `_` and `.`"),
        );
    }
    let empty = Map::new();
    let own = jv.as_object().unwrap_or(&empty);
    let mut layers: Vec<(Origin, String, &Map<String, Value>)> =
        vec![(Origin::Defaults, "/defaults".into(), defaults)];
    if let Some(t) = own.get("template").and_then(Value::as_str) {
        let tmap = doc
            .get("templates")
            .and_then(|ts| ts.get(t))
            .and_then(Value::as_object);
        match tmap {
            Some(tm) => layers.push((
                Origin::Template(t.to_string()),
                format!("/templates/{}", escape(t)),
                tm,
            )),
            None if ctx.declared("templates", t) => {}
            None => {
                let msg = suggest(ctx, "templates", "template", t);
                ctx.error(&format!("{jptr}/template"), msg);
            }
        }
    }
    layers.push((Origin::Job, jptr.clone(), own));
    let merged = merge(&layers);
    let d: JobDoc = match serde_json::from_value(Value::Object(merged.value.clone())) {
        Ok(d) => d,
        // Values the schema layer rejected were already reported; anything else (a number too
        // big for its field) is reported here, at the value, without quoting it.
        Err(_) if ctx.prior_errors > 0 => return None,
        Err(e) => {
            match misfit(&merged.value) {
                Some(rel) => ctx.error(&merged.ptr(&rel, &jptr), serde_reason(&e)),
                None => ctx.error_key(&jptr, format!("job `{name}`: {}", serde_reason(&e))),
            }
            return None;
        }
    };
    let p = |rel: &str| merged.ptr(rel, &jptr);
    let before = ctx.diags.iter().filter(|d| d.is_error()).count();

    let Some(engine) = d.engine else {
        // An `engine` that was written but rejected (`engine: pgx`) was already reported.
        let written = layers
            .iter()
            .any(|(_, lptr, _)| ctx.raw.pointer(&format!("{lptr}/engine")).is_some());
        if written {
            return None;
        }
        ctx.error_key(
            &jptr,
            format!(
                "job `{name}` has no `engine` (set it on the job, its template or in defaults)"
            ),
        );
        return None;
    };

    // Connection: the URI first, then discrete keys override its parts.
    let uri = ctx.secret(d.uri.as_ref(), d.uri_file.as_ref(), &jptr, "uri");
    let uri_ptr = if d.uri.is_some() {
        p("uri")
    } else {
        p("uri_file")
    };
    // A URI that could not be read or parsed is reported once; what it would have supplied
    // (the database name) is then not reported missing as well.
    let mut uri_failed = uri.is_none() && (d.uri.is_some() || d.uri_file.is_some());
    let mut conn = match &uri {
        Some(u) => parse_uri(engine, u.expose()).unwrap_or_else(|e| {
            ctx.error(&uri_ptr, e);
            uri_failed = true;
            Connection::default()
        }),
        None => Connection::default(),
    };
    if let Some(h) = &d.host {
        conn.host = Some(h.clone());
    }
    if let Some(port) = d.port {
        conn.port = Some(port as u16);
    }
    if let Some(u) = &d.user {
        conn.user = Some(u.clone());
    }
    if let Some(pw) = ctx.secret(
        d.password.as_ref(),
        d.password_file.as_ref(),
        &jptr,
        "password",
    ) {
        let key = if d.password.is_some() {
            p("password")
        } else {
            p("password_file")
        };
        password_warnings(ctx, engine, conn.password.is_some(), &key);
        conn.password = Some(pw);
    }
    // Reported once; the database is then not reported missing as well.
    let mut database_unsupported = false;
    let multi_ok = engine.is_postgres() || engine.is_mysql() || engine == Engine::Mongo;
    let databases = match &d.database {
        Some(OneOrMany::One(db)) if db == "*" => Databases::All,
        Some(OneOrMany::Many(list)) => {
            if list.is_empty() {
                ctx.error(&p("database"), "the database list is empty");
            }
            for (i, db) in list.iter().enumerate() {
                if db.is_empty() || db == "*" || list[..i].contains(db) {
                    ctx.error(
                        &format!("{}/{i}", p("database")),
                        format!("`{db}` in the database list must be a name, once (use `database: \"*\"` for every database)"),
                    );
                }
            }
            Databases::List(list.clone())
        }
        Some(OneOrMany::One(db)) => {
            conn.database = Some(db.clone());
            Databases::One
        }
        None => Databases::One,
    };
    if databases.is_many() {
        database_unsupported = true;
        conn.database = None;
        if !multi_ok {
            ctx.error(
                &p("database"),
                format!("several databases per job are for postgres, mysql/mariadb and mongo; {} has no databases to list", engine.as_str()),
            );
        }
    }
    let exclude = d.exclude.clone().unwrap_or_default();
    if d.exclude.is_some() && !databases.is_many() {
        ctx.error_key(
            &p("exclude"),
            "`exclude` applies only with `database: \"*\"` or a list of databases",
        );
    }
    for (i, pat) in exclude.iter().enumerate() {
        if pat.is_empty() {
            ctx.error(&format!("{}/{i}", p("exclude")), "empty exclude pattern");
        }
    }
    let globals = d.globals.unwrap_or(false);
    if globals && !engine.is_postgres() {
        ctx.error(
            &p("globals"),
            "`globals: true` (pg_dumpall --globals-only) is for postgres jobs",
        );
    }
    if engine == Engine::Sqlite {
        match conn.database.clone() {
            Some(path) => conn.database = Some(ctx.path(&path).to_string_lossy().into_owned()),
            None if uri_failed || database_unsupported => {}
            None => ctx.error_key(&jptr, format!("job `{name}` (sqlite) needs the database file: `uri: sqlite:///path` or `database: /path`")),
        }
    } else {
        if conn.port.is_none() {
            conn.port = default_port(engine);
        }
        if conn.host.is_none() && !conn.params.contains_key("socket") {
            conn.host = Some("127.0.0.1".into());
        }
        if (engine.is_postgres() || engine.is_mysql())
            && conn.database.is_none()
            && !uri_failed
            && !database_unsupported
        {
            ctx.error_key(
                &jptr,
                format!("job `{name}` needs a database name (`database:` or the URI's path)"),
            );
        }
    }
    let auth_source = d
        .auth_source
        .clone()
        .or_else(|| conn.params.get("authSource").cloned());
    if d.auth_source.is_some() && engine != Engine::Mongo {
        ctx.warn(
            &p("auth_source"),
            "`auth_source` applies only to mongo jobs",
        );
    }

    // Where it goes.
    let mut targets = Vec::new();
    match &d.remote {
        None => ctx.error_key(&jptr, format!("job `{name}` has no `remote`")),
        Some(r) => {
            let list = r.to_vec();
            for (i, item) in list.iter().enumerate() {
                let (rname, optional) = match item {
                    RemoteRef::Name(n) => (n.clone(), false),
                    RemoteRef::Entry(e) => (e.name.clone(), e.optional),
                };
                if targets.iter().any(|t: &RemoteTarget| t.name == rname) {
                    ctx.error(
                        &format!("{}/{i}", p("remote")),
                        format!("remote `{rname}` is listed twice"),
                    );
                }
                if !remotes.contains_key(&rname) && !ctx.declared("remotes", &rname) {
                    let rp = if matches!(r, OneOrMany::Many(_)) {
                        format!("{}/{i}", p("remote"))
                    } else {
                        p("remote")
                    };
                    let msg = suggest(ctx, "remotes", "remote", &rname);
                    ctx.error(&rp, msg);
                }
                targets.push(RemoteTarget {
                    name: rname,
                    optional,
                });
            }
        }
    }
    if !targets.is_empty() && targets.iter().all(|t| t.optional) {
        ctx.error(
            &p("remote"),
            "every remote is `optional: true`: at least one must be required, or a run could succeed with no backup anywhere",
        );
    }
    let path = d.path.clone().unwrap_or_else(|| DEFAULT_PATH.into());
    if let Err(e) = naming::check_template(&path, true) {
        ctx.error(&p("path"), format!("path: {e}"));
    }
    let name_template = d.name.clone().unwrap_or_else(|| DEFAULT_NAME.into());
    if let Err(e) = naming::check_template(&name_template, false) {
        ctx.error(&p("name"), format!("name: {e}"));
    } else if !naming::is_unique_per_run(&name_template) {
        ctx.warn(
            &p("name"),
            "name has no {time}, {ts} or {uuid}: two runs on the same day get numbered suffixes",
        );
    }

    if databases.is_many() || globals {
        // One folder per job keeps list/prune/restore simple: they look in one place.
        if path.contains("{db}") {
            ctx.error(
                &p("path"),
                "with several databases (or `globals`) the backups share the job's folder: keep `{db}` out of `path` and in `name`",
            );
        } else if !name_template.contains("{db}") {
            ctx.error(
                &p("name"),
                "with several databases (or `globals`) each database gets its own backup: put `{db}` in `name`",
            );
        }
    }

    // When.
    let timezone = match &d.timezone {
        Some(tz) => Zone::get(tz).unwrap_or_else(|e| {
            ctx.error(&p("timezone"), e);
            settings.timezone.clone()
        }),
        None => settings.timezone.clone(),
    };
    let schedule = match &d.schedule {
        Some(s) => Schedule::parse(s)
            .and_then(|sch| {
                // `0 0 31 4 *` parses but never runs: say so now, not by silence.
                match sch.next_after(jiff::Timestamp::now(), &timezone.tz) {
                    Some(_) => Ok(sch),
                    None => Err(format!(
                        "schedule `{}` never runs (no such date)",
                        sch.expr()
                    )),
                }
            })
            .map_err(|e| ctx.error(&p("schedule"), e))
            .ok(),
        None => {
            ctx.warn(
                &jptr,
                format!("job `{name}` has no schedule: it runs only with `dbstash backup {name}`"),
            );
            None
        }
    };
    let timeout = ctx
        .duration(d.timeout.as_ref(), &p("timeout"))
        .unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
        ctx.error(&p("timeout"), "timeout must be longer than 0s");
    }
    // Only an explicit timeout is compared with the schedule (the comparison costs a few cron walks).
    if let (Some(s), Some(_)) = (&schedule, &d.timeout) {
        if let Some(gap) = s.min_interval(jiff::Timestamp::now(), &timezone.tz) {
            if timeout > gap {
                ctx.warn(&p("timeout"), format!("timeout {} is longer than the {}s between runs: overlapping ticks will be skipped", d.timeout.clone().unwrap_or_default(), gap.as_secs()));
            }
        }
    }

    // How.
    let mode = d.mode.unwrap_or_default();
    let compress = d.compress.unwrap_or_default();
    if mode != Mode::Stream {
        if !(engine.is_postgres() || engine == Engine::Mongo) {
            ctx.error(
                &p("mode"),
                format!("`mode: {}` needs a dump tool that writes a folder (pg_dump -Fd, mongodump --out); {} streams only (mysqldump --tab would need the server to write into dbstash's folder)", mode.as_str(), engine.as_str()),
            );
        }
        if mode == Mode::Directory && matches!(compress, Compress::Gzip | Compress::Zstd) {
            ctx.error(
                &p("compress"),
                "a `directory` backup is uploaded file by file: use `compress: native` (the dump tool compresses each file) or `none`, or `mode: tar`",
            );
        }
        if mode == Mode::Directory && d.encrypt.is_some() {
            ctx.error_key(
                &p("encrypt"),
                "`encrypt` works on one stream: use `mode: tar` (or an rclone crypt remote) for encrypted folder dumps",
            );
        }
        if d.format.is_some() && engine.is_postgres() {
            ctx.error(
                &p("format"),
                format!(
                    "`mode: {}` dumps in pg_dump's directory format; drop `format`",
                    mode.as_str()
                ),
            );
        }
    }
    if compress == Compress::Native
        && !matches!(engine, Engine::Postgres | Engine::Postgis | Engine::Mongo)
    {
        ctx.error(&p("compress"), format!("`compress: native` is not available for {} (its dump tool has no compression); use gzip or zstd", engine.as_str()));
    }
    if let Some(level) = d.compress_level {
        let ok = match compress {
            Compress::Gzip => (1..=9).contains(&level),
            Compress::Zstd | Compress::Native => (1..=19).contains(&level),
            Compress::None => true,
        };
        if !ok {
            ctx.error(
                &p("compress_level"),
                format!("compress_level {level} is out of range (gzip 1-9, zstd 1-19)"),
            );
        } else if compress == Compress::None {
            ctx.warn(
                &p("compress_level"),
                "compress_level has no effect with `compress: none`",
            );
        }
    }
    let format = match (engine, d.format) {
        (Engine::Postgres | Engine::Postgis, None) if compress == Compress::Native => {
            DumpFormat::Custom
        }
        (Engine::Postgres | Engine::Postgis, None) => DumpFormat::Plain,
        (
            Engine::Postgres | Engine::Postgis,
            Some(f @ (DumpFormat::Plain | DumpFormat::Custom)),
        ) => f,
        (Engine::Sqlite, None) => DumpFormat::Snapshot,
        (Engine::Sqlite, Some(f @ (DumpFormat::Snapshot | DumpFormat::Sql))) => f,
        (_, None) => DumpFormat::Plain,
        (e, Some(_)) => {
            ctx.error(&p("format"), format!("`format` for {} is not valid: postgres takes plain|custom, sqlite takes snapshot|sql", e.as_str()));
            DumpFormat::Plain
        }
    };
    if engine.is_postgres() && compress == Compress::Native && format == DumpFormat::Plain {
        ctx.error(&p("compress"), "`compress: native` for postgres means the custom format; drop `format: plain` or use gzip/zstd");
    }
    let dump_args = d.dump_args.clone().unwrap_or_default();
    if let Some(r) = crate::engine::dump_args::disk_writing_dump_arg(engine, &dump_args) {
        ctx.error(
            &format!("{}/{}", p("dump_args"), r.index),
            format!("dump argument `{}` {}", dump_args[r.index], r.reason),
        );
    }
    let retention_doc = d.retention.clone().unwrap_or_default();
    let retention = Retention {
        max_files: retention_doc.max_files.unwrap_or(0),
        max_days: retention_doc.max_days.unwrap_or(0),
        gfs: crate::plan::gfs::Gfs {
            last: retention_doc.keep_last.unwrap_or(0),
            hourly: retention_doc.keep_hourly.unwrap_or(0),
            daily: retention_doc.keep_daily.unwrap_or(0),
            weekly: retention_doc.keep_weekly.unwrap_or(0),
            monthly: retention_doc.keep_monthly.unwrap_or(0),
            yearly: retention_doc.keep_yearly.unwrap_or(0),
        },
    };
    let notify = d.notify.clone().unwrap_or_default();
    for (i, n) in notify.iter().enumerate() {
        if !notifiers.contains_key(n) && !ctx.declared("notifiers", n) {
            let msg = suggest(ctx, "notifiers", "notifier", n);
            ctx.error(&format!("{}/{i}", p("notify")), msg);
        }
    }
    if d.admin_user.is_some() && engine != Engine::Postgis {
        ctx.warn(
            &p("admin_user"),
            "`admin_user` is used only by postgis jobs",
        );
    }
    let stale_after = ctx.duration(d.stale_after.as_ref(), &p("stale_after"));
    let verify = d.verify.as_ref().map(|v| Verify {
        schedule: v.schedule.as_ref().and_then(|s| {
            Schedule::parse(s)
                .map_err(|e| ctx.error(&p("verify/schedule"), e))
                .ok()
        }),
        restore_to: v.restore_to.as_ref().map(|u| {
            if let Err(e) = parse_uri(engine, u) {
                ctx.error(&p("verify/restore_to"), e);
            }
            Secret::new(u.clone())
        }),
        identity_file: v.identity_file.as_ref().map(|f| ctx.path(f)),
        no_owner: v.no_owner.unwrap_or(false),
    });
    let encrypt = d
        .encrypt
        .as_ref()
        .and_then(|e| recipients(ctx, e, &p("encrypt")));
    if let Some(v) = &verify {
        if v.schedule.is_some() && encrypt.is_some() && v.identity_file.is_none() {
            ctx.error_key(
                &p("verify/schedule"),
                "a drill of an encrypted job needs `verify.identity_file` (the age identity that decrypts it)",
            );
        }
        if v.no_owner && !matches!(engine, Engine::Postgres | Engine::Postgis) {
            ctx.warn(
                &p("verify/no_owner"),
                "`no_owner` is used only by postgres and postgis jobs",
            );
        } else if v.no_owner && mode == Mode::Stream && format == DumpFormat::Plain {
            ctx.warn(
                &p("verify/no_owner"),
                "a plain SQL backup sets its owners in its own statements, so a drill cannot leave them out: use `format: custom` (or `compress: native`, or mode tar/directory)",
            );
        }
        if v.identity_file.is_some() && encrypt.is_none() {
            ctx.warn(
                &p("verify/identity_file"),
                "`identity_file` is used only when the job has `encrypt`",
            );
        }
    }
    let expected_size = d.expected_size.as_ref().and_then(|s| {
        parse_size(s)
            .map_err(|e| ctx.error(&p("expected_size"), e))
            .ok()
    });

    let mut origins = merged.origins.clone();
    origins.remove("template");
    if ctx.diags.iter().filter(|d| d.is_error()).count() > before {
        return None;
    }
    Some(Job {
        name: name.to_string(),
        engine,
        connection: conn,
        auth_source,
        remotes: targets,
        path,
        schedule,
        timezone,
        mode,
        name_template,
        compress,
        compress_level: d.compress_level,
        format,
        timeout,
        retention,
        notify,
        run_on_start: d.run_on_start.unwrap_or(false),
        hooks: Hooks {
            pre: d.hooks.as_ref().and_then(|h| h.pre.clone()),
            post: d.hooks.as_ref().and_then(|h| h.post.clone()),
        },
        dump_args,
        restore_args: d.restore_args.clone().unwrap_or_default(),
        admin_user: d.admin_user.clone(),
        stale_after,
        verify,
        allow_empty: d.allow_empty.unwrap_or(false),
        expected_size,
        databases,
        exclude,
        globals,
        encrypt,
        origins,
    })
}

/// `encrypt:` → validated age recipients (x25519 `age1...` keys), from the list and/or the file.
fn recipients(ctx: &mut Ctx, e: &types::EncryptDoc, ptr: &str) -> Option<Encrypt> {
    use std::str::FromStr;
    let mut out = Vec::new();
    for (i, r) in e.age_recipients.iter().enumerate() {
        match age::x25519::Recipient::from_str(r.trim()) {
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
                    match age::x25519::Recipient::from_str(line) {
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
