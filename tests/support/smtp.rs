//! A real SMTP server on loopback for integration tests: Python's aiosmtpd (from PyPI) running a
//! small handler of ours that files every accepted message in a Maildir, exactly as received,
//! and can answer RCPT or DATA for chosen recipients with a chosen 4xx/5xx reply. Tests send to
//! `url()`, then read back what the server accepted with `messages()`, parsed by `mailparse`.
//!
//! Fault tests: `stop()` kills the server (SIGKILL, as a crash would), `start_again()` brings
//! it back on the same port with the same Maildir, so messages accepted before and after the
//! outage are counted together. The server is killed when the value is dropped.
//!
//! Needs `python3` with `aiosmtpd` importable (`python3 -m pip install aiosmtpd`); tests should
//! check `SmtpServer::available()` first, which skips or fails like the other external clients.

// Each test uses only part of the harness.
#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailparse::{MailHeaderMap, ParsedMail};

/// The handler, written next to the Maildir and imported by `python3 -m aiosmtpd -c`. It rereads
/// rules.json at every RCPT and DATA, so a test can change the refusals while the server runs.
/// It announces PIPELINING (RFC 2920; aiosmtpd reads commands in order from its buffer, so
/// pipelined commands work, it just does not say so) unless a file `no-pipelining` exists, and
/// notes in ehlo.log for each EHLO whether it did. While a file `delay` holds a number of
/// seconds, each DATA waits that long before its reply (a slow relay).
/// Accepted messages are stored byte for byte, after two envelope headers (aiosmtpd's own
/// `X-MailFrom` and `X-RcptTo` convention).
const HANDLER_PY: &str = r#"
import asyncio, fnmatch, json, os
from email.utils import COMMASPACE
from aiosmtpd.handlers import Mailbox

HERE = os.path.dirname(os.path.abspath(__file__))


class Handler(Mailbox):
    def __init__(self, mail_dir):
        super().__init__(mail_dir)
        self.refused = {}

    def refusal(self, stage, address):
        try:
            with open(os.path.join(HERE, "rules.json"), encoding="utf-8") as f:
                rules = json.load(f)
        except FileNotFoundError:
            return None
        for rule in rules:
            if rule["stage"] != stage:
                continue
            if not fnmatch.fnmatchcase(address.lower(), rule["pattern"].lower()):
                continue
            key = json.dumps(rule, sort_keys=True)
            done = self.refused.get(key, 0)
            if rule.get("times") is not None and done >= rule["times"]:
                continue
            self.refused[key] = done + 1
            return "%d %s" % (rule["code"], rule["text"])
        return None

    def log(self, stage, address, reply):
        with open(os.path.join(HERE, "events.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps({"stage": stage, "rcpt": address, "reply": reply}) + "\n")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        pipelining = not os.path.exists(os.path.join(HERE, "no-pipelining"))
        if pipelining:
            responses.insert(1, "250-PIPELINING")
        with open(os.path.join(HERE, "ehlo.log"), "a", encoding="utf-8") as f:
            f.write(("pipelining" if pipelining else "plain") + "\n")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.refusal("rcpt", address) or "250 OK"
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        self.log("rcpt", address, reply)
        return reply

    async def handle_DATA(self, server, session, envelope):
        try:
            with open(os.path.join(HERE, "delay"), encoding="utf-8") as f:
                await asyncio.sleep(float(f.read()))
        except FileNotFoundError:
            pass
        for address in envelope.rcpt_tos:
            reply = self.refusal("data", address)
            if reply:
                for each in envelope.rcpt_tos:
                    self.log("data", each, reply)
                return reply
        head = "X-MailFrom: %s\r\nX-RcptTo: %s\r\n" % (
            envelope.mail_from,
            COMMASPACE.join(envelope.rcpt_tos),
        )
        self.mailbox.add(head.encode("utf-8") + envelope.original_content)
        for each in envelope.rcpt_tos:
            self.log("data", each, "250 OK")
        return "250 OK"
"#;

const HANDLER_MODULE: &str = "tinbao_test_smtp";

/// When the server answers, in the SMTP dialogue, with a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// At `RCPT TO`: that recipient is refused, others in the same message may go through.
    Rcpt,
    /// At the end of `DATA`: the whole message is refused if any recipient matches.
    Data,
}

/// A scripted refusal: recipients matching `pattern` (a shell glob such as `*@bounce.vn`,
/// case-insensitive) get `code text` at `stage`, the first `times` times (always when `None`).
#[derive(Clone, Debug)]
pub struct Refusal {
    pub pattern: String,
    pub stage: Stage,
    pub code: u16,
    pub text: String,
    pub times: Option<u32>,
}

impl Refusal {
    pub fn rcpt(pattern: &str, code: u16) -> Refusal {
        Refusal::new(pattern, Stage::Rcpt, code)
    }

    pub fn data(pattern: &str, code: u16) -> Refusal {
        Refusal::new(pattern, Stage::Data, code)
    }

    fn new(pattern: &str, stage: Stage, code: u16) -> Refusal {
        assert!(
            (400..600).contains(&code),
            "a refusal is a 4xx or 5xx reply"
        );
        let text = if code < 500 {
            "4.3.0 Try again later (tinbao test server)"
        } else {
            "5.1.1 Mailbox unavailable (tinbao test server)"
        };
        Refusal {
            pattern: pattern.to_string(),
            stage,
            code,
            text: text.to_string(),
            times: None,
        }
    }

    /// Refuse only the first `n` matching attempts, then accept (a transient failure). The count
    /// starts again from zero when the server is restarted.
    pub fn times(mut self, n: u32) -> Refusal {
        self.times = Some(n);
        self
    }

    pub fn text(mut self, text: &str) -> Refusal {
        self.text = text.to_string();
        self
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "pattern": self.pattern,
            "stage": match self.stage { Stage::Rcpt => "rcpt", Stage::Data => "data" },
            "code": self.code,
            "text": self.text,
            "times": self.times,
        })
    }
}

/// One RCPT or DATA answer the server gave, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmtpEvent {
    pub stage: Stage,
    pub rcpt: String,
    pub code: u16,
    pub reply: String,
}

/// A message the server accepted, parsed.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    pub path: PathBuf,
    /// The bytes as received (after the two envelope headers the server adds).
    pub raw: Vec<u8>,
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    /// Addresses in the To header.
    pub to: Vec<String>,
    /// Decoded (RFC 2047) header values.
    pub from: String,
    pub subject: String,
    pub message_id: String,
    /// The top-level Content-Type, e.g. "multipart/alternative".
    pub content_type: String,
    /// The first text/plain and text/html parts that are not attachments, decoded to UTF-8.
    pub text: Option<String>,
    pub html: Option<String>,
    /// Every top-level header in order, values decoded, envelope headers included.
    pub headers: Vec<(String, String)>,
}

impl ReceivedMail {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header called `name`, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Parse a stored message (as written by this server, or any RFC 5322 file such as an .eml).
    pub fn parse(path: &Path) -> ReceivedMail {
        let file = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let mail = mailparse::parse_mail(&file)
            .unwrap_or_else(|e| panic!("parse {}: {e}", path.display()));
        let header = |name: &str| mail.headers.get_first_value(name).unwrap_or_default();
        let envelope_to = header("X-RcptTo")
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect();
        let to = mail
            .headers
            .get_first_header("To")
            .and_then(|h| mailparse::addrparse_header(h).ok())
            .map(|list| {
                list.iter()
                    .flat_map(|addr| match addr {
                        mailparse::MailAddr::Single(one) => vec![one.addr.clone()],
                        mailparse::MailAddr::Group(group) => {
                            group.addrs.iter().map(|a| a.addr.clone()).collect()
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let raw = strip_envelope_headers(&file);
        ReceivedMail {
            path: path.to_path_buf(),
            envelope_from: header("X-MailFrom"),
            envelope_to,
            to,
            from: header("From"),
            subject: header("Subject"),
            message_id: header("Message-ID"),
            content_type: mail.ctype.mimetype.clone(),
            text: first_part(&mail, "text/plain"),
            html: first_part(&mail, "text/html"),
            headers: mail
                .headers
                .iter()
                .map(|h| (h.get_key(), h.get_value()))
                .collect(),
            raw,
        }
    }
}

fn strip_envelope_headers(file: &[u8]) -> Vec<u8> {
    let mut rest = file;
    for prefix in [&b"X-MailFrom: "[..], &b"X-RcptTo: "[..]] {
        if rest.starts_with(prefix) {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            rest = &rest[end..];
        }
    }
    rest.to_vec()
}

fn first_part(mail: &ParsedMail<'_>, mimetype: &str) -> Option<String> {
    let attachment = mail
        .get_content_disposition()
        .disposition
        .eq(&mailparse::DispositionType::Attachment);
    if mail.subparts.is_empty() {
        return (mail.ctype.mimetype == mimetype && !attachment)
            .then(|| mail.get_body().expect("part body decodes"));
    }
    mail.subparts
        .iter()
        .find_map(|part| first_part(part, mimetype))
}

/// The running (or stopped) server and its folder: handler module, rules, event log, server
/// log and Maildir. The folder is removed when the value is dropped.
pub struct SmtpServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl SmtpServer {
    /// Whether aiosmtpd can run here. Where CI requires the real clients
    /// (TINBAO_REQUIRE_CLIENTS=1) a missing one fails the test instead of skipping it.
    pub fn available() -> bool {
        super::client_available("python3", &["-c", "import aiosmtpd"])
    }

    /// A server that accepts every message.
    pub fn start() -> SmtpServer {
        SmtpServer::start_rejecting(&[])
    }

    /// A server that answers as `refusals` say (first match wins) and accepts everything else.
    pub fn start_rejecting(refusals: &[Refusal]) -> SmtpServer {
        let dir = tempfile::tempdir().expect("temp dir for the SMTP server");
        fs::write(dir.path().join(format!("{HANDLER_MODULE}.py")), HANDLER_PY)
            .expect("write the SMTP handler");
        let mut server = SmtpServer {
            port: 0,
            dir,
            child: None,
        };
        server.set_refusals(refusals);
        // A free port is picked by binding port 0 and letting it go; another process may take
        // it in between, so try a few.
        let mut last_error = String::new();
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("the SMTP server did not start: {last_error}");
    }

    /// Replace the scripted refusals; the running server uses them from its next command on.
    pub fn set_refusals(&self, refusals: &[Refusal]) {
        let rules: Vec<serde_json::Value> = refusals.iter().map(Refusal::to_json).collect();
        let text = serde_json::to_string_pretty(&rules).expect("rules serialise");
        // Written aside and renamed, so the server never reads half a file.
        let tmp = self.dir.path().join("rules.json.tmp");
        fs::write(&tmp, text).expect("write rules");
        fs::rename(&tmp, self.dir.path().join("rules.json")).expect("install rules");
    }

    /// From the next EHLO on, the server does not announce PIPELINING.
    pub fn without_pipelining(&self) {
        fs::write(self.dir.path().join("no-pipelining"), "").expect("write the flag");
    }

    /// From the next message on, each DATA is answered `seconds` late (a slow relay), so a
    /// test can stop a sender part-way through a run.
    pub fn set_delay(&self, seconds: f64) {
        fs::write(self.dir.path().join("delay"), seconds.to_string()).expect("write the delay");
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, no TLS, no authentication.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn maildir(&self) -> PathBuf {
        self.dir.path().join("maildir")
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Every message accepted so far (across restarts), in the order they arrived.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let Ok(entries) = fs::read_dir(self.maildir().join(sub)) else {
                continue;
            };
            for entry in entries {
                let entry = entry.expect("maildir entry");
                let modified = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .expect("maildir file time");
                files.push((modified, entry.file_name(), entry.path()));
            }
        }
        files.sort();
        files
            .into_iter()
            .map(|(_, _, path)| ReceivedMail::parse(&path))
            .collect()
    }

    /// Messages accepted for `address` (envelope recipient, case-insensitive).
    pub fn messages_to(&self, address: &str) -> Vec<ReceivedMail> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m.envelope_to
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(address))
            })
            .collect()
    }

    /// For each EHLO so far, whether the server announced PIPELINING.
    pub fn ehlos(&self) -> Vec<bool> {
        let text = fs::read_to_string(self.dir.path().join("ehlo.log")).unwrap_or_default();
        text.lines().map(|line| line == "pipelining").collect()
    }

    /// Every RCPT and DATA answer given so far (across restarts), in order.
    pub fn events(&self) -> Vec<SmtpEvent> {
        let text = fs::read_to_string(self.dir.path().join("events.jsonl")).unwrap_or_default();
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("event line");
                let reply = v["reply"].as_str().unwrap_or_default().to_string();
                SmtpEvent {
                    stage: if v["stage"] == "data" {
                        Stage::Data
                    } else {
                        Stage::Rcpt
                    },
                    rcpt: v["rcpt"].as_str().unwrap_or_default().to_string(),
                    code: reply.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0),
                    reply,
                }
            })
            .collect()
    }

    /// The server's own output (aiosmtpd's log and any Python traceback), across restarts.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kill the server abruptly, as a crash would: connections in progress are cut and
    /// new ones are refused until `start_again`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the server again on the same port, with the same Maildir and refusals.
    pub fn start_again(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() > deadline => {
                    panic!(
                        "the SMTP server did not start again on port {}: {e}",
                        self.port
                    )
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// Start aiosmtpd on `self.port` and wait until it accepts connections.
    fn spawn(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("open server log: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("server log: {e}"))?;
        let python_path = match std::env::var_os("PYTHONPATH") {
            Some(old) if !old.is_empty() => {
                let mut paths = vec![self.dir.path().to_path_buf()];
                paths.extend(std::env::split_paths(&old));
                std::env::join_paths(paths).map_err(|e| format!("PYTHONPATH: {e}"))?
            }
            _ => self.dir.path().as_os_str().to_owned(),
        };
        let mut child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("-c")
            .arg(format!("{HANDLER_MODULE}.Handler"))
            .arg(self.maildir())
            .env("PYTHONPATH", python_path)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("run python3 -m aiosmtpd: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("aiosmtpd exited ({status}); log:\n{}", self.log()));
            }
            if TcpStream::connect_timeout(&self.addr(), Duration::from_millis(200)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "aiosmtpd did not listen within 15 s; log:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

#[cfg(test)]
mod self_tests {
    use super::*;
    use lettre::message::{Mailbox, MultiPart};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    fn message(to: &str, subject: &str) -> Message {
        let from: Mailbox = "Tin tỉnh <ban-tin@example.vn>".parse().expect("from");
        Message::builder()
            .from(from)
            .to(to.parse().expect("to"))
            .subject(subject)
            .message_id(Some(format!("<{}@test.tinbao>", subject.len())))
            .multipart(MultiPart::alternative_plain_html(
                format!("Chào bạn: {subject}"),
                format!("<p>Chào bạn: <b>{subject}</b></p>"),
            ))
            .expect("message")
    }

    /// A transport without a pool, so a restarted server is reached with a fresh connection.
    async fn send(
        server: &SmtpServer,
        message: Message,
    ) -> Result<(), lettre::transport::smtp::Error> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(server.port())
            .timeout(Some(Duration::from_secs(10)))
            .build();
        transport.send(message).await.map(|_| ())
    }

    #[tokio::test]
    async fn smtp_harness_receives_a_message_sent_with_lettre() {
        if !SmtpServer::available() {
            return;
        }
        let server = SmtpServer::start();
        assert!(server.url().starts_with("smtp://127.0.0.1:"));
        send(
            &server,
            message("Chị Hoa <hoa@example.vn>", "Bản tin Lào Cai 28/11"),
        )
        .await
        .expect("accepted");
        let got = server.messages();
        assert_eq!(got.len(), 1);
        let mail = &got[0];
        assert_eq!(mail.to, vec!["hoa@example.vn"]);
        assert_eq!(mail.envelope_to, vec!["hoa@example.vn"]);
        assert_eq!(mail.envelope_from, "ban-tin@example.vn");
        assert_eq!(mail.subject, "Bản tin Lào Cai 28/11");
        assert_eq!(mail.message_id, "<24@test.tinbao>");
        assert_eq!(mail.content_type, "multipart/alternative");
        assert_eq!(
            mail.text.as_deref(),
            Some("Chào bạn: Bản tin Lào Cai 28/11")
        );
        assert_eq!(
            mail.html.as_deref(),
            Some("<p>Chào bạn: <b>Bản tin Lào Cai 28/11</b></p>")
        );
        assert!(mail.header("From").is_some_and(|f| f.contains("Tin tỉnh")));
        assert!(
            mail.raw.starts_with(b"From: "),
            "envelope headers are not part of raw"
        );
    }

    #[tokio::test]
    async fn smtp_harness_refuses_chosen_recipients_with_scripted_replies() {
        if !SmtpServer::available() {
            return;
        }
        let server = SmtpServer::start_rejecting(&[
            Refusal::rcpt("*@bounce.example.vn", 550),
            Refusal::data("slow@example.vn", 451).times(1),
        ]);
        let bounced = send(&server, message("nobody@Bounce.example.vn", "một"))
            .await
            .expect_err("refused");
        assert!(bounced.is_permanent(), "{bounced}");
        let deferred = send(&server, message("slow@example.vn", "hai"))
            .await
            .expect_err("deferred once");
        assert!(deferred.is_transient(), "{deferred}");
        send(&server, message("slow@example.vn", "hai"))
            .await
            .expect("accepted the second time");
        send(&server, message("hoa@example.vn", "ba"))
            .await
            .expect("accepted");

        let got = server.messages();
        let subjects: Vec<&str> = got.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(subjects, vec!["hai", "ba"]);
        assert_eq!(server.messages_to("SLOW@example.vn").len(), 1);
        let codes: Vec<(Stage, u16)> = server
            .events()
            .into_iter()
            .filter(|e| e.rcpt.starts_with("slow@") || e.rcpt.starts_with("nobody@"))
            .map(|e| (e.stage, e.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                (Stage::Rcpt, 550),
                (Stage::Rcpt, 250),
                (Stage::Data, 451),
                (Stage::Rcpt, 250),
                (Stage::Data, 250),
            ]
        );

        server.set_refusals(&[]);
        send(&server, message("nobody@bounce.example.vn", "bốn"))
            .await
            .expect("rules changed while running");
    }

    #[tokio::test]
    async fn smtp_harness_stops_and_starts_again_on_the_same_port_and_maildir() {
        if !SmtpServer::available() {
            return;
        }
        let mut server = SmtpServer::start();
        let port = server.port();
        send(&server, message("hoa@example.vn", "trước"))
            .await
            .expect("accepted");
        server.stop();
        assert!(!server.is_running());
        send(&server, message("hoa@example.vn", "trong lúc dừng"))
            .await
            .expect_err("nobody listening");
        server.start_again();
        assert!(server.is_running());
        assert_eq!(server.port(), port);
        send(&server, message("hoa@example.vn", "sau"))
            .await
            .expect("accepted");
        let subjects: Vec<String> = server.messages().into_iter().map(|m| m.subject).collect();
        assert_eq!(subjects, vec!["trước", "sau"]);
    }
}
