//! Our own pool of SMTP connections for `smtp://` relays (plain or STARTTLS), built on lettre's
//! `AsyncSmtpConnection`. It exists for two reasons lettre's pooled transport cannot serve:
//!
//! - TCP_NODELAY. lettre writes the message and then the terminating `CRLF.CRLF` as two writes;
//!   without NODELAY, Nagle holds the small second write until the server ACKs the first, and the
//!   server delays that ACK (it has nothing to say before the terminator): ~40 ms per message.
//!   Here we open the socket ourselves and hand it to lettre.
//! - The server's extensions are known before the message is rendered, so a digest is sent as
//!   8-bit UTF-8 (RFC 6152) when the server takes it, instead of quoted-printable, which inflates
//!   Vietnamese text by about half.
//!
//! - PIPELINING (RFC 2920). lettre waits for each reply before the next command: four round
//!   trips per message. When the server announces PIPELINING, MAIL, RCPT and DATA go in one
//!   write and the message with its terminator in another: two round trips. (lettre keeps no
//!   record of PIPELINING, so a connection asks with its own EHLO once, before AUTH; the replies
//!   are read with lettre's parser.)
//!
//! Connections are reused while healthy; one idle for a while is checked with NOOP first. A
//! connection that saw any error is dropped (lettre aborts it), never reused. `smtps://`
//! (implicit TLS) stays with lettre's own transport.

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A reused connection idle longer than this is checked with NOOP before it carries a message.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(10);
/// Idle connections older than this are closed rather than checked.
const MAX_IDLE: Duration = Duration::from_secs(60);

/// Where and how to connect, from an `smtp://` URL (the same form lettre takes:
/// `smtp://user:pass@host:port/ehlo-name?tls=required|opportunistic`).
#[derive(Clone)]
pub struct Relay {
    host: String,
    port: u16,
    tls: Tls,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the credentials.
        write!(f, "smtp://{}:{}", self.host, self.port)
    }
}

impl Relay {
    /// `None` when the URL is not for this pool (another scheme, or implicit TLS).
    pub fn from_url(url: &str, timeout: Duration) -> anyhow::Result<Option<Relay>> {
        let parsed = url::Url::parse(url).map_err(|e| anyhow::anyhow!("smtp url: {e}"))?;
        if parsed.scheme() != "smtp" {
            return Ok(None);
        }
        let host = parsed
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("smtp url {url:?} names no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let tls_mode = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let params = || TlsParameters::new(host.clone());
        let (tls, default_port) = match tls_mode.as_deref() {
            None => (Tls::None, 25),
            Some("required") => (Tls::Required(params()?), 587),
            Some("opportunistic") => (Tls::Opportunistic(params()?), 587),
            Some(other) => anyhow::bail!(
                "smtp url: tls must be \"required\" or \"opportunistic\", not {other:?}"
            ),
        };
        let decode = |s: &str| -> anyhow::Result<String> {
            percent_decode(s).ok_or_else(|| anyhow::anyhow!("smtp url: bad %-escape"))
        };
        let credentials = match parsed.password() {
            Some(password) => Some(Credentials::new(
                decode(parsed.username())?,
                decode(password)?,
            )),
            None => None,
        };
        let name = parsed.path().trim_matches('/');
        let hello = if name.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(name.to_string())
        };
        Ok(Some(Relay {
            port: parsed.port().unwrap_or(default_port),
            host,
            tls,
            credentials,
            hello,
            timeout,
        }))
    }

    async fn connect(&self) -> Result<Connection, SendError> {
        let address = (self.host.as_str(), self.port);
        let stream = tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(address))
            .await
            .map_err(|_| io_error("connecting timed out"))?
            .map_err(|e| io_error(format!("connecting to {self:?}: {e}")))?;
        // The reason this module exists (see the module comment).
        stream
            .set_nodelay(true)
            .map_err(|e| io_error(format!("connecting to {self:?}: {e}")))?;
        let mut conn = tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello),
        )
        .await
        .map_err(|_| io_error("greeting timed out"))??;
        match &self.tls {
            Tls::Required(params) => conn.starttls(params.clone(), &self.hello).await?,
            Tls::Opportunistic(params) if conn.can_starttls() => {
                conn.starttls(params.clone(), &self.hello).await?
            }
            _ => {}
        }
        // Our own EHLO for the one extension lettre does not record. Before AUTH: a server may
        // forget a login on a later EHLO.
        let pipelining =
            tokio::time::timeout(self.timeout, conn.command(Ehlo::new(self.hello.clone())))
                .await
                .map_err(|_| io_error("EHLO timed out"))??
                .message()
                .any(|line| line.eq_ignore_ascii_case("PIPELINING"));
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(Connection { conn, pipelining })
    }
}

/// A connection and what its server announced beyond what lettre records.
struct Connection {
    conn: AsyncSmtpConnection,
    pipelining: bool,
}

/// Text that lettre's `command` writes as it is: several pipelined commands at once, or a
/// message already dot-stuffed with its terminator.
struct Raw<'a>(&'a str);

impl std::fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// One mail transaction on `c`. With PIPELINING:
/// MAIL, RCPT and DATA in one write, then the message and its terminator in one write. The
/// first negative reply ends it (the caller drops the connection, so replies left unread do
/// not matter). Otherwise lettre's own one-command-at-a-time transaction.
async fn transact(
    c: &mut Connection,
    envelope: &Envelope,
    text: String,
) -> Result<(), lettre::transport::smtp::Error> {
    // An address outside ASCII needs SMTPUTF8, which lettre's transaction handles.
    let ascii_addresses = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .all(|a| AsRef::<str>::as_ref(a).is_ascii());
    if !c.pipelining || !ascii_addresses {
        return c.conn.send(envelope, text.as_bytes()).await.map(|_| ());
    }
    let mut options = Vec::new();
    if !text.is_ascii() {
        if !c
            .conn
            .server_info()
            .supports_feature(Extension::EightBitMime)
        {
            // lettre's transaction refuses it with the reason.
            return c.conn.send(envelope, text.as_bytes()).await.map(|_| ());
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mut commands = Mail::new(envelope.from().cloned(), options).to_string();
    for to in envelope.to() {
        commands.push_str(&Rcpt::new(to.clone(), Vec::new()).to_string());
    }
    commands.push_str(&Data.to_string());
    // MAIL's reply comes back from `command`; then each RCPT's, then DATA's 354.
    c.conn.command(Raw(&commands)).await?;
    for _ in envelope.to() {
        c.conn.read_response().await?;
    }
    c.conn.read_response().await?;
    c.conn.command(Raw(&data_block(text))).await?;
    Ok(())
}

/// A message as DATA carries it (RFC 5321 §4.5.2): a line starting with "." gets another, and
/// "." alone on a line ends it. `text` has CRLF line ends; without a line to double (the usual
/// case) it is only extended.
fn data_block(mut text: String) -> String {
    let doubled = text.starts_with('.') || memchr::memmem::find(text.as_bytes(), b"\n.").is_some();
    if doubled {
        let mut out = String::with_capacity(text.len() + text.len() / 256 + 8);
        let mut rest = text.as_str();
        if rest.starts_with('.') {
            out.push('.');
        }
        while let Some(at) = memchr::memmem::find(rest.as_bytes(), b"\n.") {
            out.push_str(&rest[..=at]);
            out.push('.');
            rest = &rest[at + 1..];
        }
        out.push_str(rest);
        text = out;
    }
    if !text.ends_with("\r\n") {
        text.push_str("\r\n");
    }
    text.push_str(".\r\n");
    text
}

/// Why a send failed, and whether trying again later may help.
#[derive(Debug)]
pub struct SendError {
    pub transient: bool,
    pub message: String,
}

impl From<&lettre::transport::smtp::Error> for SendError {
    fn from(e: &lettre::transport::smtp::Error) -> SendError {
        SendError {
            // 5xx is the recipient's (or message's) fault and will not change by waiting;
            // anything else (4xx, connection refused, timeout) may.
            transient: !e.is_permanent(),
            message: chain(e),
        }
    }
}

impl From<lettre::transport::smtp::Error> for SendError {
    fn from(e: lettre::transport::smtp::Error) -> SendError {
        SendError::from(&e)
    }
}

/// A failure of the connection itself (always worth retrying later).
fn io_error(message: impl Into<String>) -> SendError {
    SendError {
        transient: true,
        message: message.into(),
    }
}

/// An error with its sources, "a: b: c".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// At most `size` connections to one relay, reused while healthy.
pub struct Pool {
    relay: Relay,
    slots: std::sync::Arc<Semaphore>,
    idle: Mutex<Vec<(Connection, Instant)>>,
    /// Whether the relay's last new connection announced 8BITMIME: 0 none yet, 1 no, 2 yes.
    eight_bit: std::sync::atomic::AtomicU8,
}

impl Pool {
    pub fn new(relay: Relay, size: usize) -> Pool {
        Pool {
            relay,
            slots: std::sync::Arc::new(Semaphore::new(size.max(1))),
            idle: Mutex::new(Vec::new()),
            eight_bit: std::sync::atomic::AtomicU8::new(0),
        }
    }

    /// Whether messages for this relay are best rendered 8-bit, as far as its connections have
    /// told (`None` before the first one), so that rendering need not wait for a connection.
    pub fn eight_bit_hint(&self) -> Option<bool> {
        match self.eight_bit.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            known => Some(known == 2),
        }
    }

    /// A connection of one's own until the `Session` is dropped: a healthy idle one, else a new one.
    pub async fn session(&self) -> Result<Session<'_>, SendError> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io_error("smtp pool closed"))?;
        while let Some((mut conn, since)) = self.take_idle() {
            let idle = since.elapsed();
            if idle > MAX_IDLE {
                tokio::spawn(async move { conn.conn.abort().await });
                continue;
            }
            if idle <= CHECK_AFTER_IDLE || conn.conn.test_connected().await {
                return Ok(Session {
                    pool: self,
                    conn: Some(conn),
                    _permit: permit,
                });
            }
        }
        let conn = self.relay.connect().await?;
        let eight_bit = conn
            .conn
            .server_info()
            .supports_feature(Extension::EightBitMime);
        self.eight_bit.store(
            1 + u8::from(eight_bit),
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(Session {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }

    fn take_idle(&self) -> Option<(Connection, Instant)> {
        self.idle.lock().ok()?.pop()
    }

    /// Says QUIT on every idle connection (at the end of a run).
    pub async fn close_idle(&self) {
        let idle: Vec<_> = match self.idle.lock() {
            Ok(mut idle) => idle.drain(..).collect(),
            Err(_) => return,
        };
        for (mut conn, _) in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.conn.quit()).await;
        }
    }
}

/// One connection, held for one or more messages.
pub struct Session<'a> {
    pool: &'a Pool,
    conn: Option<Connection>,
    _permit: OwnedSemaphorePermit,
}

impl Session<'_> {
    /// Whether the server takes 8-bit message bodies (8BITMIME).
    pub fn eight_bit(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| {
            c.conn
                .server_info()
                .supports_feature(Extension::EightBitMime)
        })
    }

    /// One transaction: MAIL, RCPT, DATA. On any error the connection is not reused.
    pub async fn send(&mut self, envelope: &Envelope, message: String) -> Result<(), SendError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(io_error("no connection"));
        };
        // Generous for large messages on slow links; a stalled server must not hold a slot forever.
        let limit = self.pool.relay.timeout + Duration::from_millis(message.len() as u64 / 10);
        let result = match tokio::time::timeout(limit, transact(conn, envelope, message)).await {
            Ok(result) => result.map_err(SendError::from),
            Err(_) => Err(io_error("the server did not answer in time")),
        };
        if result.is_err() || conn.conn.has_broken() {
            // A failed transaction leaves the session in a state we do not track: drop it.
            if let Some(mut conn) = self.conn.take() {
                tokio::spawn(async move { conn.conn.abort().await });
            }
        }
        result
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.conn.has_broken()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push((conn, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests;
