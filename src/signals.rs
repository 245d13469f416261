//! Stop and reload signals.
//!
//! The handlers are installed when these values are made, not when they are first awaited: a
//! SIGTERM or SIGHUP that arrives while `run` is still starting up (sweeping dead runs, loading
//! the manifest) would otherwise meet the default disposition and end the process on the spot,
//! without its log lines or a clean shutdown.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// SIGTERM and SIGINT.
pub struct Stop {
    term: Option<Signal>,
    int: Option<Signal>,
}

impl Stop {
    /// Installs the handlers now; call inside the runtime.
    pub fn install() -> Self {
        Stop {
            term: signal(SignalKind::terminate()).ok(),
            int: signal(SignalKind::interrupt()).ok(),
        }
    }

    /// Resolves on the first SIGTERM or SIGINT since `install` (one that already arrived counts).
    pub async fn recv(&mut self) {
        match (self.term.as_mut(), self.int.as_mut()) {
            (Some(t), Some(i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}

/// SIGHUP: reload.
pub struct Hangup(Option<Signal>);

impl Hangup {
    /// Installs the handler now; call inside the runtime.
    pub fn install() -> Self {
        Hangup(signal(SignalKind::hangup()).ok())
    }

    /// Resolves on each SIGHUP; never when the handler could not be installed.
    pub async fn recv(&mut self) {
        match self.0.as_mut() {
            Some(h) => {
                h.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT from now on.
pub async fn wait_for_stop() {
    Stop::install().recv().await
}
