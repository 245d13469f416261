//! `dbstash run` whose first manifest load failed. It does not exit: it reports the errors, answers
//! `/healthz` 200 and `/readyz` 503 (on `settings.health.listen`, when the broken file still says
//! where), and starts the supervisor as soon as the file holds a valid manifest — so a container
//! started with a bad ConfigMap becomes ready once the ConfigMap is fixed, without a restart.

use crate::manifest::{self, yaml, Manifest};
use crate::server::metrics::Metrics;
use crate::server::Health;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const POLL: Duration = Duration::from_secs(30);
/// How long a stopping health server may take to release its address.
const RELEASE: Duration = Duration::from_secs(5);

/// The health endpoint while no manifest is loaded: alive, not ready.
struct Pending {
    metrics: Metrics,
}

impl Health for Pending {
    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
    fn alive(&self) -> Result<(), crate::server::Stuck> {
        Ok(())
    }
    fn ready(&self) -> bool {
        false
    }
    fn stale_jobs(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A health server that can be stopped and waited for.
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(listen: &str, pending: Arc<Pending>) -> Option<Server> {
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let stopped = async move {
            let _ = rx.await;
        };
        match crate::server::serve(listen, pending, stopped).await {
            Ok(handle) => Some(Server { stop, handle }),
            Err(e) => {
                eprintln!("dbstash: {e}");
                None
            }
        }
    }

    /// Stop and wait until the address is free again (the supervisor binds it next).
    async fn stop(self) {
        let _ = self.stop.send(());
        let abort = self.handle.abort_handle();
        if tokio::time::timeout(RELEASE, self.handle).await.is_err() {
            abort.abort();
        }
    }
}

/// Wait for a valid manifest at `path`; `None` when dbstash is asked to stop first.
pub async fn wait_for_manifest(
    path: &Path,
    first: &manifest::LoadError,
    (stop, hup): &mut (crate::signals::Stop, crate::signals::Hangup),
) -> Option<Manifest> {
    let pending = Arc::new(Pending {
        metrics: Metrics::new(),
    });
    pending.metrics.count_reload("error");
    report(first);
    crate::logging::print_error(&format!(
        "{}: waiting for a valid manifest (not ready until then)",
        path.display()
    ));
    let mut server = None;
    let mut last = read(path);
    ensure_server(&mut server, last.as_deref(), &pending).await;

    let (tx, mut rx) = mpsc::channel::<()>(8);
    let _watcher = super::watch::start(path, tx).ok();
    let mut poll = tokio::time::interval(POLL);
    let manifest = loop {
        tokio::select! {
            biased;
            _ = stop.recv() => break None,
            _ = rx.recv() => {}
            _ = hup.recv() => {}
            _ = poll.tick() => {}
        }
        let text = read(path);
        if text == last {
            continue;
        }
        last = text;
        match manifest::load(path) {
            Ok(m) => break Some(m),
            Err(e) => {
                pending.metrics.count_reload("error");
                report(&e);
                ensure_server(&mut server, last.as_deref(), &pending).await;
            }
        }
    };
    if let Some(s) = server {
        s.stop().await;
    }
    manifest
}

fn report(e: &manifest::LoadError) {
    crate::logging::print_diagnostics(&e.diagnostics(), None);
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Serve health once the (still invalid) manifest says where.
async fn ensure_server(server: &mut Option<Server>, text: Option<&str>, pending: &Arc<Pending>) {
    if server.is_some() {
        return;
    }
    if let Some(listen) = text.and_then(health_listen) {
        *server = Server::start(&listen, pending.clone()).await;
    }
}

/// `settings.health.listen` of a manifest that may be invalid elsewhere (`${VAR}` expanded).
fn health_listen(text: &str) -> Option<String> {
    let (root, _) = yaml::parse_all(text).ok()?;
    let node =
        ["settings", "health", "listen"]
            .iter()
            .try_fold(&root, |node, key| match &node.kind {
                yaml::Kind::Map(entries) => {
                    entries.iter().find(|(k, _)| k.name == *key).map(|(_, v)| v)
                }
                _ => None,
            })?;
    match &node.kind {
        yaml::Kind::Str { value, .. } => {
            manifest::interp::expand(value, &|k| std::env::var(k).ok()).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::health_listen;

    #[test]
    fn the_listen_address_of_an_invalid_manifest() {
        let broken = "version: 1\nsettings: { health: { listen: '127.0.0.1:9' } }\njobs: { a: { engine: nope } }\n";
        assert_eq!(health_listen(broken).as_deref(), Some("127.0.0.1:9"));
        assert_eq!(health_listen("version: 1\njobs: {}\n"), None);
        assert_eq!(health_listen("settings: [\n"), None);
        assert_eq!(health_listen("- a\n"), None);
    }
}
