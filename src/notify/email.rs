//! Email over SMTP (lettre): `security: starttls | tls | none`, port, AUTH when `username` is set,
//! `ca_file` trusted as an extra root, one message to every `to` address.

use super::event::Event;
use super::text;
use super::{Attempt, Failure, NotifyError};
use crate::model::kinds::SmtpSecurity;
use crate::model::{Notifier, Smtp};
use lettre::message::{header::ContentType, Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

/// The message for `event` (subject `[dbstash] app: backup failed`, plain-text body).
pub fn message(n: &Notifier, event: &Event) -> Result<Message, NotifyError> {
    let from_raw = n
        .from
        .as_deref()
        .ok_or_else(|| NotifyError::Config("email notifier has no `from`".into()))?;
    let from: Mailbox = from_raw
        .parse()
        .map_err(|e| NotifyError::Config(format!("invalid `from` address `{from_raw}`: {e}")))?;
    if n.to.is_empty() {
        return Err(NotifyError::Config("email notifier has no `to`".into()));
    }
    let mut b = Message::builder()
        .from(from)
        .subject(text::subject(event, &n.name))
        .header(ContentType::TEXT_PLAIN);
    for to in &n.to {
        let mb: Mailbox = to
            .parse()
            .map_err(|e| NotifyError::Config(format!("invalid `to` address `{to}`: {e}")))?;
        b = b.to(mb);
    }
    b.body(text::message_text(event, n)?)
        .map_err(|e| NotifyError::Config(format!("building the message: {e}")))
}

fn tls_parameters(smtp: &Smtp) -> Result<TlsParameters, NotifyError> {
    let mut b = TlsParameters::builder(smtp.host.clone());
    if let Some(ca) = &smtp.ca_file {
        let pem = std::fs::read(ca).map_err(|e| {
            NotifyError::Config(format!("reading smtp ca_file {}: {e}", ca.display()))
        })?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| NotifyError::Config(format!("smtp ca_file {}: {e}", ca.display())))?;
        b = b.add_root_certificate(cert);
    }
    b.build()
        .map_err(|e| NotifyError::Config(format!("smtp TLS setup: {e}")))
}

/// The transport for this notifier's `smtp:` settings.
pub fn transport(
    smtp: &Smtp,
    timeout: std::time::Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
    let tls = match smtp.security {
        SmtpSecurity::None => Tls::None,
        SmtpSecurity::Starttls => Tls::Required(tls_parameters(smtp)?),
        SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(smtp)?),
    };
    let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let Some(user) = &smtp.username {
        let password = smtp
            .password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_default();
        b = b.credentials(Credentials::new(user.clone(), password));
    }
    Ok(b.build())
}

/// A lettre error as a failure: SMTP 5xx and TLS/config problems are permanent, the rest retried.
fn classify(e: lettre::transport::smtp::Error) -> Failure {
    let permanent = e.is_permanent() || e.is_tls() || e.is_client();
    let timeout = e.is_timeout();
    let msg = super::error_chain(&e);
    let error = NotifyError::Smtp(msg);
    if permanent && !timeout {
        Failure::permanent(error)
    } else {
        Failure::transient(error)
    }
}

pub(crate) async fn send(n: &Notifier, event: &Event) -> Attempt {
    let smtp = n
        .smtp
        .as_ref()
        .ok_or_else(|| Failure::permanent(NotifyError::Config("no `smtp` settings".into())))?;
    let msg = message(n, event).map_err(Failure::permanent)?;
    let t = transport(smtp, n.timeout).map_err(Failure::permanent)?;
    t.send(msg).await.map(|_| ()).map_err(classify)
}
