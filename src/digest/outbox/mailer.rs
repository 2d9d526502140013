//! Where digests go: tinbao's own SMTP pool (`smtp://`), lettre's pooled SMTPS transport
//! (`smtps://`), or .eml files in a folder (`file://`).

use super::{SEND_CONCURRENCY, SMTP_TIMEOUT};
use crate::digest::render::Rendered;
use crate::digest::smtp::{Pool, Relay, SendError, Session, chain};
use anyhow::Context;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::Path;
use std::sync::Arc;

/// Where digests go.
#[derive(Clone)]
pub enum Mailer {
    /// `smtp://` (plain or STARTTLS): our own connection pool (see `digest::smtp`).
    Pool(Arc<Pool>),
    /// `smtps://` (implicit TLS): lettre's pooled transport.
    Smtps(AsyncSmtpTransport<Tokio1Executor>),
    /// `file://DIR`: each message written as DIR/<id>.eml.
    File(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn from_url(url: &str, base_dir: &Path) -> anyhow::Result<Mailer> {
        if let Some(dir) = url.strip_prefix("file://") {
            let dir = if Path::new(dir).is_absolute() {
                Path::new(dir).to_path_buf()
            } else {
                base_dir.join(dir)
            };
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            return Ok(Mailer::File(AsyncFileTransport::new(dir)));
        }
        if let Some(relay) = Relay::from_url(url, SMTP_TIMEOUT)? {
            return Ok(Mailer::Pool(Arc::new(Pool::new(relay, SEND_CONCURRENCY))));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .with_context(|| format!("smtp url {url:?}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(
                lettre::transport::smtp::PoolConfig::new().max_size(SEND_CONCURRENCY as u32),
            )
            .build();
        Ok(Mailer::Smtps(transport))
    }

    /// Sends one message.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        self.send_rendered(|_| Ok(Rendered::from_message(&message)))
            .await
            .map(drop)
    }

    /// Renders with `render(eight_bit)` (`eight_bit`: the server takes 8-bit bodies), then
    /// sends. For the pool, rendering happens before a connection is free, in the form the
    /// relay's connections have announced so far, and again only if the connection it gets
    /// says otherwise. A rendering error is transient: an operator's template fix lets the
    /// retry through. The connection stays this send's until the returned `Delivered` is
    /// dropped.
    pub async fn send_rendered(
        &self,
        render: impl Fn(bool) -> anyhow::Result<Rendered>,
    ) -> Result<Delivered<'_>, SendError> {
        let rendering = |e: anyhow::Error| SendError {
            transient: true,
            message: format!("rendering: {e:#}"),
        };
        match self {
            Mailer::Pool(pool) => {
                let early = pool.eight_bit_hint().map(|guess| (guess, render(guess)));
                let mut session = pool.session().await?;
                let eight_bit = session.eight_bit();
                let message = match early {
                    Some((guess, message)) if guess == eight_bit => message,
                    _ => render(eight_bit),
                }
                .map_err(rendering)?;
                session.send(&message.envelope, message.data).await?;
                Ok(Delivered(Some(session)))
            }
            Mailer::Smtps(t) => {
                let message = render(false).map_err(rendering)?;
                t.send_raw(&message.envelope, message.data.as_bytes())
                    .await
                    .map(|_| Delivered(None))
                    .map_err(|e| SendError::from(&e))
            }
            Mailer::File(t) => {
                // A file has no transport limits: UTF-8 bodies, readable in any text editor.
                let message = render(true).map_err(rendering)?;
                let sent = t.send_raw(&message.envelope, message.data.as_bytes()).await;
                sent.map(|_| Delivered(None)).map_err(|e| SendError {
                    transient: true,
                    message: chain(&e),
                })
            }
        }
    }

    /// Closes idle connections (QUIT), at the end of a run.
    pub async fn close(&self) {
        match self {
            Mailer::Pool(pool) => pool.close_idle().await,
            Mailer::Smtps(t) => t.shutdown().await,
            Mailer::File(_) => {}
        }
    }
}

/// A message the server accepted. For the pool, its connection takes no other message until
/// this is dropped: the outbox records the delivery first, so no more digests than the pool has
/// connections are ever delivered but not yet recorded (what a crash can resend).
pub struct Delivered<'a>(#[allow(dead_code)] Option<Session<'a>>);
