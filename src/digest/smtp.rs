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
//! Connections are reused while healthy; one idle for a while is checked with NOOP first. A
//! connection that saw any error is dropped (lettre aborts it), never reused. `smtps://`
//! (implicit TLS) stays with lettre's own transport.

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Tls, TlsParameters};
use lettre::transport::smtp::extension::{ClientId, Extension};
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

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
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
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await?;
        }
        Ok(conn)
    }
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
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl Pool {
    pub fn new(relay: Relay, size: usize) -> Pool {
        Pool {
            relay,
            slots: std::sync::Arc::new(Semaphore::new(size.max(1))),
            idle: Mutex::new(Vec::new()),
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
                tokio::spawn(async move { conn.abort().await });
                continue;
            }
            if idle <= CHECK_AFTER_IDLE || conn.test_connected().await {
                return Ok(Session {
                    pool: self,
                    conn: Some(conn),
                    _permit: permit,
                });
            }
        }
        let conn = self.relay.connect().await?;
        Ok(Session {
            pool: self,
            conn: Some(conn),
            _permit: permit,
        })
    }

    fn take_idle(&self) -> Option<(AsyncSmtpConnection, Instant)> {
        self.idle.lock().ok()?.pop()
    }

    /// Says QUIT on every idle connection (at the end of a run).
    pub async fn close_idle(&self) {
        let idle: Vec<_> = match self.idle.lock() {
            Ok(mut idle) => idle.drain(..).collect(),
            Err(_) => return,
        };
        for (mut conn, _) in idle {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.quit()).await;
        }
    }
}

/// One connection, held for one or more messages.
pub struct Session<'a> {
    pool: &'a Pool,
    conn: Option<AsyncSmtpConnection>,
    _permit: OwnedSemaphorePermit,
}

impl Session<'_> {
    /// Whether the server takes 8-bit message bodies (8BITMIME).
    pub fn eight_bit(&self) -> bool {
        self.conn
            .as_ref()
            .is_some_and(|c| c.server_info().supports_feature(Extension::EightBitMime))
    }

    /// One transaction: MAIL, RCPT, DATA. On any error the connection is not reused.
    pub async fn send(
        &mut self,
        envelope: &lettre::address::Envelope,
        message: &[u8],
    ) -> Result<(), SendError> {
        let Some(conn) = self.conn.as_mut() else {
            return Err(io_error("no connection"));
        };
        // Generous for large messages on slow links; a stalled server must not hold a slot forever.
        let limit = self.pool.relay.timeout + Duration::from_millis(message.len() as u64 / 10);
        let result = match tokio::time::timeout(limit, conn.send(envelope, message)).await {
            Ok(result) => result.map(|_| ()).map_err(SendError::from),
            Err(_) => Err(io_error("the server did not answer in time")),
        };
        if result.is_err() || conn.has_broken() {
            // A failed transaction leaves the session in a state we do not track: drop it.
            if let Some(mut conn) = self.conn.take() {
                tokio::spawn(async move { conn.abort().await });
            }
        }
        result
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && !conn.has_broken()
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push((conn, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_take_lettres_form() {
        let t = Duration::from_secs(5);
        let r = Relay::from_url("smtp://127.0.0.1:2525", t)
            .unwrap()
            .unwrap();
        assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 2525));
        assert!(matches!(r.tls, Tls::None));
        assert!(r.credentials.is_none());
        let r = Relay::from_url(
            "smtp://ban%2Dtin:m%E1%BA%ADt@mail.example.vn/tinbao.example.vn?tls=required",
            t,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.port, 587);
        assert!(matches!(r.tls, Tls::Required(_)));
        assert!(r.credentials.is_some());
        assert_eq!(r.hello, ClientId::Domain("tinbao.example.vn".into()));
        assert_eq!(format!("{r:?}"), "smtp://mail.example.vn:587");
        assert!(
            Relay::from_url("smtps://mail.example.vn", t)
                .unwrap()
                .is_none()
        );
        let err = Relay::from_url("smtp://mail.example.vn?tls=maybe", t).unwrap_err();
        assert!(err.to_string().contains("maybe"), "{err}");
    }

    #[test]
    fn percent_escapes_decode_to_utf8() {
        assert_eq!(percent_decode("m%E1%BA%ADt").as_deref(), Some("mật"));
        assert_eq!(percent_decode("a%2"), None);
    }
}
