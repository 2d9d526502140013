//! The emails of self-service subscription, besides digests: the double opt-in confirmation,
//! "you are already subscribed" (sent instead of a confirmation, so the sign-up page never
//! tells whether an address is known), and the welcome after confirming. Plain text from the
//! built-in templates `email_*.txt`; the welcome carries the one-click unsubscribe headers like
//! every digest. Pure: builds messages, never sends them.

use super::render::{ListUnsubscribe, ListUnsubscribePost};
use anyhow::Context;
use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior, context};
use std::sync::OnceLock;

const TEMPLATES: [(&str, &str); 3] = [
    (
        "email_confirm.txt",
        include_str!("../../templates/email_confirm.txt"),
    ),
    (
        "email_already.txt",
        include_str!("../../templates/email_already.txt"),
    ),
    (
        "email_welcome.txt",
        include_str!("../../templates/email_welcome.txt"),
    ),
];

/// What the notices say about a subscription.
#[derive(Debug, Clone)]
pub struct Notice {
    pub to: String,
    /// Each topic described for people ("Thời sự · Lào Cai").
    pub topics: Vec<String>,
    /// The schedule described for people ("Hằng ngày").
    pub schedule: String,
    pub base_url: String,
}

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        if let Ok(syntax) = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            // Fixed at build time; the unit tests render each one.
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("built-in template {name}: {e}"));
        }
        env
    })
}

fn body(name: &str, ctx: minijinja::Value) -> anyhow::Result<String> {
    env()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .with_context(|| format!("rendering built-in template {name}"))
}

fn builder(
    n: &Notice,
    from: &Mailbox,
    subject: &str,
) -> anyhow::Result<lettre::message::MessageBuilder> {
    let to: Mailbox =
        n.to.parse()
            .with_context(|| format!("recipient address {:?}", n.to))?;
    // A Message-ID on our own domain (lettre adds none): some providers mark mail without one.
    let host = url::Url::parse(&n.base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "localhost".into());
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    Ok(Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(format!("<notice.{nonce}@{host}>"))))
}

/// The double opt-in email: a link to confirm, valid 48 hours.
pub fn confirmation(n: &Notice, confirm_url: &str, from: &Mailbox) -> anyhow::Result<Message> {
    let text = body(
        "email_confirm.txt",
        context! { to => &n.to, topics => &n.topics, schedule => &n.schedule, base_url => &n.base_url, confirm_url },
    )?;
    builder(n, from, "Xác nhận đăng ký bản tin tinbao")?
        .header(ContentType::TEXT_PLAIN)
        .body(text)
        .context("building the confirmation email")
}

/// Sent to an active or paused subscriber who signs up again: their manage link, nothing changed.
pub fn already_subscribed(
    n: &Notice,
    manage_url: &str,
    unsubscribe_url: &str,
    from: &Mailbox,
) -> anyhow::Result<Message> {
    let text = body(
        "email_already.txt",
        context! { to => &n.to, base_url => &n.base_url, manage_url, unsubscribe_url },
    )?;
    builder(n, from, "Bạn đã đăng ký bản tin tinbao")?
        .header(ContentType::TEXT_PLAIN)
        .header(ListUnsubscribe::new(unsubscribe_url)?)
        .header(ListUnsubscribePost)
        .body(text)
        .context("building the already-subscribed email")
}

/// The welcome after confirming, with the manage and unsubscribe links and list headers.
pub fn welcome(
    n: &Notice,
    manage_url: &str,
    unsubscribe_url: &str,
    from: &Mailbox,
) -> anyhow::Result<Message> {
    let text = body(
        "email_welcome.txt",
        context! { to => &n.to, topics => &n.topics, schedule => &n.schedule, base_url => &n.base_url, manage_url, unsubscribe_url },
    )?;
    builder(n, from, "Chào mừng bạn đến với bản tin tinbao")?
        .header(ContentType::TEXT_PLAIN)
        .header(ListUnsubscribe::new(unsubscribe_url)?)
        .header(ListUnsubscribePost)
        .body(text)
        .context("building the welcome email")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            to: "ban.doc@example.vn".into(),
            topics: vec!["Thời sự · Lào Cai".into()],
            schedule: "Hằng ngày".into(),
            base_url: "https://tin.example.vn/".into(),
        }
    }

    fn from() -> Mailbox {
        "tinbao <tin@example.vn>".parse().unwrap()
    }

    #[test]
    fn each_notice_renders_with_its_links() {
        let c = confirmation(&notice(), "https://tin.example.vn/confirm/abc", &from()).unwrap();
        let raw = c.formatted();
        let body = mailparse::parse_mail(&raw)
            .unwrap()
            .get_body()
            .unwrap()
            .replace("\r\n", "\n");
        assert!(
            body.contains("https://tin.example.vn/confirm/abc"),
            "{body}"
        );
        assert!(
            body.contains("  - Thời sự · Lào Cai\nLịch nhận: Hằng ngày"),
            "{body}"
        );
        let w = welcome(
            &notice(),
            "https://tin.example.vn/manage/m",
            "https://tin.example.vn/unsubscribe/u",
            &from(),
        )
        .unwrap();
        let text = String::from_utf8(w.formatted()).unwrap();
        assert!(text.contains("List-Unsubscribe: <https://tin.example.vn/unsubscribe/u>"));
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"));
        assert!(text.contains("Message-ID: <notice."), "{text}");
        assert!(text.contains("@tin.example.vn>"), "{text}");
        let a = already_subscribed(
            &notice(),
            "https://tin.example.vn/manage/m",
            "https://tin.example.vn/unsubscribe/u",
            &from(),
        )
        .unwrap();
        assert!(
            String::from_utf8(a.formatted())
                .unwrap()
                .contains("List-Unsubscribe:")
        );
    }
}
