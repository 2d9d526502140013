//! Sending the self-service emails from a request: built and sent in the background with the
//! current config's SMTP settings, so a page never waits on (or reveals anything through) the
//! mail server. A failure is logged; the person can ask again.

use crate::config::Config;
use crate::digest::outbox::Mailer;
use lettre::Message;
use lettre::message::Mailbox;

pub fn send_later<F>(config: &Config, build: F)
where
    F: FnOnce(&Mailbox) -> anyhow::Result<Message> + Send + 'static,
{
    let Some(smtp) = config.smtp.clone() else {
        tracing::warn!("no [smtp] configured: a self-service email was not sent");
        return;
    };
    let base_dir = config.base_dir();
    tokio::spawn(async move {
        let result = async {
            let from: Mailbox = smtp
                .from
                .parse()
                .map_err(|e| anyhow::anyhow!("smtp from {:?}: {e}", smtp.from))?;
            let message = build(&from)?;
            let mailer = Mailer::from_url(&smtp.url, &base_dir)?;
            mailer
                .send(message)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = format!("{e:#}"), "self-service email not sent");
        }
    });
}
