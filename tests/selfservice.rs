//! Self-service subscription end to end: the pages served by tinbao's own router on loopback,
//! emails through a real SMTP server (aiosmtpd), and a real browser (headless Chromium through
//! chromedriver) filling the forms. Screenshots of every page land in target/screenshots/.

use crate::support::db::each_database;
use crate::support::smtp::{ReceivedMail, SmtpServer};
use crate::support::webdriver::{self, Driver};
use crate::support::{FixtureServer, Route, TestApp};
use base64::Engine;
use chrono::{Duration, Utc};
use sha2::Digest;
use std::path::PathBuf;
use std::time::Instant;
use tinbao::digest::links::{Links, Purpose};
use tinbao::http::AppState;

pub(crate) struct World {
    pub(crate) app: TestApp,
    smtp: SmtpServer,
    /// The site's base URL, "http://127.0.0.1:PORT/".
    pub(crate) base: String,
    state: AppState,
    fixtures: FixtureServer,
}

fn rss(title: &str, items: &[(&str, &str, i64)]) -> String {
    let now = Utc::now();
    let items: String = items
        .iter()
        .map(|(slug, title, hours_ago)| {
            format!(
                "<item><title>{title}</title><link>https://bao.example.vn/{slug}.html</link><guid>{slug}</guid>\
                 <description>{title}. Tin từ phóng viên địa phương.</description><pubDate>{}</pubDate></item>",
                (now - Duration::hours(*hours_ago)).to_rfc2822()
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>{title}</title>\
         <link>https://bao.example.vn/</link>{items}</channel></rss>"
    )
}

/// A site with two feeds polled (stories from the last hours, one older than a week), an SMTP
/// server, and the HTTP server on the port the config's base_url names. `None` if aiosmtpd is
/// missing (and not required).
pub(crate) async fn world() -> Option<World> {
    if !SmtpServer::available() {
        return None;
    }
    let smtp = SmtpServer::start();
    let fixtures = FixtureServer::start().await;
    fixtures.set(
        "/lc.rss",
        Route::ok(rss(
            "Báo Lào Cai",
            &[
                ("lc-1", "Lũ quét ở Bát Xát, Lào Cai", 2),
                ("lc-2", "Lào Cai khắc phục hậu quả mưa lũ", 5),
                ("lc-3", "Lễ hội hoa tam giác mạch ở Lào Cai", 30),
            ],
        )),
    );
    fixtures.set(
        "/yb.rss",
        Route::ok(rss(
            "Báo Yên Bái",
            &[
                ("yb-1", "Giá quế Yên Bái tăng mạnh", 3),
                ("yb-2", "Yên Bái: mưa lũ cuốn trôi cầu tạm", 24 * 10),
            ],
        )),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let base = format!("http://{}/", listener.local_addr().expect("addr"));
    let config = format!(
        "[server]\nbase_url = \"{base}\"\n\n[database]\nurl = \"sqlite://tinbao.db\"\n\n\
         [smtp]\nurl = \"{}\"\nfrom = \"tinbao <ban-tin@tin.example.vn>\"\n\n\
         [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n[[category]]\nslug = \"kinh-te\"\ntitle = \"Kinh tế\"\n\
         [[province]]\nslug = \"lao-cai\"\nname = \"Lào Cai\"\n[[province]]\nslug = \"yen-bai\"\nname = \"Yên Bái\"\n\
         [[feed]]\nid = \"baolaocai\"\nurl = \"{}\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n\
         [[feed]]\nid = \"baoyenbai\"\nurl = \"{}\"\ncategory = \"kinh-te\"\nprovince = \"yen-bai\"\n",
        smtp.url(),
        fixtures.url("/lc.rss"),
        fixtures.url("/yb.rss"),
    );
    let app = TestApp::start(&config).await;
    let polled = app.poll_all().await;
    assert_eq!(polled.failed, 0);
    let links = Links::new(
        app.store.link_secret().await.expect("secret"),
        app.config.server.base_url.clone(),
    );
    let state = AppState::fixed(
        app.config.clone(),
        tinbao::publish::site::Site::default(),
        app.store.clone(),
        links,
    );
    let router = tinbao::http::router(state.clone())
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Some(World {
        app,
        smtp,
        base,
        state,
        fixtures,
    })
}

impl World {
    /// Waits (up to 15 s) until `address` has received `n` messages; returns them.
    async fn mail(&self, address: &str, n: usize) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let got = self.smtp.messages_to(address);
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{address} got {} of {n} messages; server log:\n{}",
                got.len(),
                self.smtp.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to 15 s) for a message to `address` with this subject.
    pub(crate) async fn mail_titled(&self, address: &str, subject: &str) -> ReceivedMail {
        let deadline = Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if let Some(m) = self
                .smtp
                .messages_to(address)
                .into_iter()
                .find(|m| m.subject == subject)
            {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no {subject:?} for {address}; server log:\n{}",
                self.smtp.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn status(&self, email: &str) -> (String, String, Vec<String>) {
        let s = self
            .app
            .store
            .subscribers()
            .await
            .expect("subscribers")
            .into_iter()
            .find(|s| s.email == email)
            .expect("subscriber exists");
        (s.status, s.schedule, s.topics)
    }
}

/// The first link in `text` starting with `base` + `path`.
pub(crate) fn link(text: &str, base: &str, path: &str) -> String {
    let start = text
        .find(&format!("{base}{path}"))
        .unwrap_or_else(|| panic!("no {path} link in:\n{text}"));
    text[start..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// A plain HTTP client that keeps cookies like a browser would (one cookie: ours).
pub(crate) struct Client {
    http: reqwest::Client,
    cookie: std::sync::Mutex<Option<String>>,
    /// Sent as X-Forwarded-For, as a reverse proxy would.
    forwarded_for: std::sync::Mutex<Option<String>>,
}

impl Client {
    pub(crate) fn new() -> Client {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: Default::default(),
            forwarded_for: Default::default(),
        }
    }

    /// GETs a page with a form; returns (status, body, its csrf field).
    pub(crate) async fn get(&self, url: &str) -> (u16, String, String) {
        let mut request = self.http.get(url);
        if let Some(c) = self.cookie.lock().unwrap().clone() {
            request = request.header("cookie", c);
        }
        if let Some(ip) = self.forwarded_for.lock().unwrap().clone() {
            request = request.header("x-forwarded-for", format!("203.0.113.99, {ip}"));
        }
        let r = request.send().await.expect("GET");
        if let Some(set) = r.headers().get("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
            *self.cookie.lock().unwrap() = Some(pair);
        }
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        let csrf = body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        (status, body, csrf)
    }

    pub(crate) async fn post(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> (u16, String, Option<String>) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = self.cookie.lock().unwrap().clone() {
            request = request.header("cookie", c);
        }
        if let Some(ip) = self.forwarded_for.lock().unwrap().clone() {
            request = request.header("x-forwarded-for", format!("203.0.113.99, {ip}"));
        }
        let r = request.send().await.expect("POST");
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        (status, r.text().await.unwrap(), retry)
    }

    /// Fills in and sends the sign-up form.
    pub(crate) async fn sign_up(&self, base: &str, email: &str) -> (u16, String, Option<String>) {
        let (_, _, csrf) = self.get(&format!("{base}subscribe")).await;
        self.post(
            &format!("{base}subscribe"),
            &[
                ("csrf", &csrf),
                ("email", email),
                ("t0_province", "lao-cai"),
                ("t0_query", "lũ"),
                ("schedule", "daily"),
                ("action", "subscribe"),
            ],
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_subscribes_confirms_changes_topics_and_unsubscribes_in_a_real_browser() {
    if !webdriver::available() {
        return;
    }
    let Some(w) = world().await else { return };
    let shots = screenshots();
    let driver = Driver::start().await;
    let b = driver.session(1280, 2000).await;

    // The form, a validation error, a preview, then a sign-up.
    b.goto(&format!("{}subscribe", w.base)).await;
    assert_eq!(b.title().await, "Đăng ký nhận bản tin – tinbao");
    b.screenshot(&shots, "01-subscribe").await;
    b.fill("#email", "không-phải-email").await;
    b.click("input[name=t0_province][value=lao-cai]").await;
    b.fill("#t0_query", "lũ").await;
    b.submit("button[value=subscribe]").await;
    let errors = b.text("#errors").await;
    assert!(errors.contains("Địa chỉ email chưa đúng"), "{errors}");
    assert!(
        b.is_selected("input[name=t0_province][value=lao-cai]")
            .await,
        "choices survive an error"
    );
    assert_eq!(
        b.attribute("#email", "aria-invalid").await.as_deref(),
        Some("true")
    );
    b.screenshot(&shots, "02-subscribe-error").await;
    b.fill("#email", "Ban.Doc@Example.VN").await;
    b.submit("button[value=preview]").await;
    let preview = b.text("#preview").await;
    assert!(
        preview.contains("Xem trước: 2 tin trong 7 ngày qua"),
        "{preview}"
    );
    assert!(preview.contains("Lũ quét ở Bát Xát, Lào Cai"), "{preview}");
    assert!(
        !preview.contains("Yên Bái"),
        "other provinces stay out: {preview}"
    );
    // The topic, as it stands, is a feed too: its address is on the page.
    let feed = b.attribute("#t0_feed", "value").await.unwrap_or_default();
    assert_eq!(
        feed,
        format!("{}feeds/topic.atom?q=l%C5%A9&province=lao-cai", w.base)
    );
    b.screenshot(&shots, "03-subscribe-preview").await;
    b.click("input[name=schedule][value=immediate]").await;
    b.submit("button[value=subscribe]").await;
    let answer = b.text("main").await;
    assert!(answer.contains("Hãy kiểm tra hộp thư"), "{answer}");
    b.screenshot(&shots, "04-check-your-mail").await;
    assert_eq!(w.status("ban.doc@example.vn").await.0, "pending");

    // The confirmation email, the confirm page, the welcome email.
    let mail = w
        .mail_titled("ban.doc@example.vn", "Xác nhận đăng ký bản tin tinbao")
        .await;
    let confirm = link(
        mail.text.as_deref().unwrap_or_default(),
        &w.base,
        "confirm/",
    );
    b.goto(&confirm).await;
    assert_eq!(
        w.status("ban.doc@example.vn").await.0,
        "pending",
        "a GET confirms nothing"
    );
    b.screenshot(&shots, "05-confirm").await;
    b.submit("button[type=submit]").await;
    assert!(b.text("h1").await.contains("Đã xác nhận đăng ký"));
    b.screenshot(&shots, "06-confirmed").await;
    let (status, schedule, topics) = w.status("ban.doc@example.vn").await;
    assert_eq!(
        (status.as_str(), schedule.as_str()),
        ("active", "immediate")
    );
    assert_eq!(topics, ["province=lao-cai query=lũ"]);
    let welcome = &w
        .mail_titled("ban.doc@example.vn", "Chào mừng bạn đến với bản tin tinbao")
        .await;
    assert_eq!(
        welcome.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    let text = welcome.text.clone().unwrap_or_default();
    let manage = link(&text, &w.base, "manage/");
    let unsubscribe = link(&text, &w.base, "unsubscribe/");
    assert_eq!(
        welcome.header("List-Unsubscribe"),
        Some(format!("<{unsubscribe}>").as_str())
    );

    // Manage: add a second topic, change the schedule, pause and resume.
    b.goto(&manage).await;
    assert!(b.text("main").await.contains("ban.doc@example.vn"));
    let private = b
        .attribute("#private-feed-url", "value")
        .await
        .unwrap_or_default();
    assert!(
        private.starts_with(&format!("{}feeds/me/", w.base)),
        "{private}"
    );
    assert!(b.attribute("#t0_feed", "value").await.is_some());
    b.screenshot(&shots, "07-manage").await;
    b.click("input[name=t1_category][value=kinh-te]").await;
    b.click("input[name=schedule][value=weekly]").await;
    b.submit("button[value=save]").await;
    assert!(b.text(".ok").await.contains("Đã lưu thay đổi"));
    b.screenshot(&shots, "08-manage-saved").await;
    let (_, schedule, topics) = w.status("ban.doc@example.vn").await;
    assert_eq!(schedule, "weekly");
    assert_eq!(topics, ["province=lao-cai query=lũ", "category=kinh-te"]);
    b.submit("button[value=pause]").await;
    assert!(b.text(".status").await.contains("Đang tạm dừng"));
    b.screenshot(&shots, "09-manage-paused").await;
    assert_eq!(w.status("ban.doc@example.vn").await.0, "paused");
    b.submit("button[value=resume]").await;
    assert_eq!(w.status("ban.doc@example.vn").await.0, "active");

    // The same pages on a phone, while the subscription is active.
    let phone = driver.phone(390, 1800).await;
    phone.goto(&format!("{}subscribe", w.base)).await;
    phone.click("input[name=t0_category][value=thoi-su]").await;
    phone.submit("button[value=preview]").await;
    phone.screenshot(&shots, "10-phone-subscribe-preview").await;
    phone.goto(&manage).await;
    phone.screenshot(&shots, "11-phone-manage").await;
    phone.goto(&format!("{}subscribe", w.base)).await;
    phone.fill("#t0_query", "\"Lào Cai").await;
    phone.submit("button[value=subscribe]").await;
    assert!(
        phone
            .text("#errors")
            .await
            .contains("Hãy nhập địa chỉ email.")
    );
    phone.screenshot(&shots, "11b-phone-subscribe-errors").await;
    phone.goto(&format!("{}confirm/not-a-token", w.base)).await;
    phone.screenshot(&shots, "12-phone-invalid-link").await;
    phone.quit().await;

    // Unsubscribe through the welcome email's link.
    b.goto(&unsubscribe).await;
    b.screenshot(&shots, "13-unsubscribe").await;
    assert_eq!(
        w.status("ban.doc@example.vn").await.0,
        "active",
        "a GET unsubscribes no one"
    );
    b.submit("button[type=submit]").await;
    assert!(b.text("h1").await.contains("Đã hủy đăng ký"));
    b.screenshot(&shots, "14-unsubscribed").await;
    assert_eq!(w.status("ban.doc@example.vn").await.0, "unsubscribed");
    b.goto(&manage).await;
    assert!(b.text(".status").await.contains("Đã hủy đăng ký"));
    b.screenshot(&shots, "15-manage-after-unsubscribe").await;
    b.quit().await;
}

#[tokio::test]
async fn a_form_posted_without_its_csrf_cookie_is_refused() {
    let Some(w) = world().await else { return };
    let c = Client::new();
    let (_, _, csrf) = c.get(&format!("{}subscribe", w.base)).await;
    let stranger = Client::new();
    let (status, body, _) = stranger
        .post(
            &format!("{}subscribe", w.base),
            &[
                ("csrf", &csrf),
                ("email", "a@example.vn"),
                ("t0_query", "lũ"),
                ("schedule", "daily"),
            ],
        )
        .await;
    assert_eq!(status, 403);
    assert!(body.contains("Biểu mẫu đã hết hạn"), "{body}");
    assert!(w.app.store.subscribers().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_sign_up_page_never_tells_whether_an_address_is_subscribed() {
    each_database(async || {
        let Some(w) = world().await else {
            return;
        };
        // An active subscriber, added by the operator.
        w.app
            .store
            .add_subscriber(
                &tinbao::storage::NewSubscriber {
                    email: "da.co@example.vn".into(),
                    status: "active".into(),
                    schedule: "daily".into(),
                    timezone: "Asia/Ho_Chi_Minh".into(),
                    topics: vec!["category=thoi-su".into()],
                },
                Utc::now(),
            )
            .await
            .unwrap();
        let c = Client::new();
        let (s1, known, _) = c.sign_up(&w.base, "da.co@example.vn").await;
        let (s2, new, _) = c.sign_up(&w.base, "moi@example.vn").await;
        assert_eq!((s1, s2), (200, 200));
        assert_eq!(
            known.replace("da.co@example.vn", "X"),
            new.replace("moi@example.vn", "X")
        );
        // The known address is mailed its manage link and is left as it was.
        let mail = &w
            .mail_titled("da.co@example.vn", "Bạn đã đăng ký bản tin tinbao")
            .await;
        let manage = link(mail.text.as_deref().unwrap_or_default(), &w.base, "manage/");
        assert_eq!(c.get(&manage).await.0, 200);
        assert_eq!(w.status("da.co@example.vn").await.2, ["category=thoi-su"]);
        w.mail_titled("moi@example.vn", "Xác nhận đăng ký bản tin tinbao")
            .await;
    })
    .await;
}

#[tokio::test]
async fn sign_ups_are_rate_limited_per_address_and_per_ip() {
    let Some(w) = world().await else { return };
    let c = Client::new();
    for _ in 0..3 {
        assert_eq!(c.sign_up(&w.base, "lap.lai@example.vn").await.0, 200);
    }
    let (status, body, retry) = c.sign_up(&w.base, "lap.lai@example.vn").await;
    assert_eq!(status, 429);
    assert!(body.contains("Quá nhiều yêu cầu"), "{body}");
    assert!(retry.is_some_and(|r| r.parse::<u64>().unwrap() > 0));
    // Ten attempts from one IP an hour, the refused one included.
    for i in 0..6 {
        assert_eq!(
            c.sign_up(&w.base, &format!("nguoi{i}@example.vn")).await.0,
            200
        );
    }
    assert_eq!(
        c.sign_up(&w.base, "nguoi-cuoi@example.vn").await.0,
        429,
        "11th from one IP"
    );
    // Behind a reverse proxy on the same machine, clients are told apart by X-Forwarded-For.
    let proxied = Client::new();
    *proxied.forwarded_for.lock().unwrap() = Some("198.51.100.7".into());
    assert_eq!(
        proxied.sign_up(&w.base, "qua.proxy@example.vn").await.0,
        200,
        "another client behind the proxy"
    );
    // Three confirmation emails, not four.
    w.mail("lap.lai@example.vn", 3).await;
    assert_eq!(w.smtp.messages_to("lap.lai@example.vn").len(), 3);
}

#[tokio::test]
async fn bad_input_is_refused_with_messages_in_vietnamese() {
    let Some(w) = world().await else { return };
    let c = Client::new();
    let (_, _, csrf) = c.get(&format!("{}subscribe", w.base)).await;
    let (status, body, _) = c
        .post(
            &format!("{}subscribe", w.base),
            &[
                ("csrf", &csrf),
                ("email", ""),
                ("t0_category", "khong-co"),
                ("t0_query", "\"Lào Cai"),
                ("schedule", "hourly"),
            ],
        )
        .await;
    assert_eq!(status, 422);
    for message in [
        "Hãy nhập địa chỉ email.",
        "Không có chuyên mục “khong-co”.",
        "Từ khóa chưa đúng (ở ký tự thứ 1): thiếu dấu ngoặc kép đóng.",
        "Hãy chọn một lịch nhận bản tin.",
    ] {
        assert!(body.contains(message), "{message} missing from:\n{body}");
    }
    assert!(w.app.store.subscribers().await.unwrap().is_empty());
}

#[tokio::test]
async fn tokens_are_stored_hashed_single_use_and_expire() {
    each_database(async || {
        let Some(w) = world().await else {
            return;
        };
        let c = Client::new();
        c.sign_up(&w.base, "ban@example.vn").await;
        let mail = &w
            .mail_titled("ban@example.vn", "Xác nhận đăng ký bản tin tinbao")
            .await;
        let confirm = link(
            mail.text.as_deref().unwrap_or_default(),
            &w.base,
            "confirm/",
        );
        let token = confirm.rsplit('/').next().unwrap().to_string();
        assert!(token.len() >= 22, "at least 128 bits: {token}");
        // Only the SHA-256 of the token is stored, under its selector.
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token)
            .expect("base64url token");
        let hash: String = sha2::Sha256::digest(&raw)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let stored = format!("SELECT COUNT(*) FROM subscriber_tokens WHERE hash = '{hash}'");
        assert_eq!(w.app.scalar(&stored).await, 1);
        let leaked = format!(
            "SELECT COUNT(*) FROM subscriber_tokens WHERE hash LIKE '%{token}%' OR selector LIKE '%{token}%'"
        );
        assert_eq!(w.app.scalar(&leaked).await, 0);
        // A wrong secret with the right selector is refused.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(c.get(&format!("{}confirm/{forged}", w.base)).await.0, 404);
        // Used once, then gone.
        let (status, _, csrf) = c.get(&confirm).await;
        assert_eq!(status, 200);
        assert_eq!(c.post(&confirm, &[("csrf", &csrf)]).await.0, 200);
        assert_eq!(c.get(&confirm).await.0, 404);
        // A confirm link minted 49 hours ago has expired.
        let id = w.app.store.subscribers().await.unwrap()[0].id;
        let old = w
            .state
            .links
            .mint(
                &w.app.store,
                id,
                &[Purpose::Confirm],
                Utc::now() - Duration::hours(49),
            )
            .await
            .unwrap();
        assert_eq!(c.get(&old[0]).await.0, 404);
        // A manage link is not an unsubscribe link.
        let welcome = &w
            .mail_titled("ban@example.vn", "Chào mừng bạn đến với bản tin tinbao")
            .await;
        let manage = link(
            welcome.text.as_deref().unwrap_or_default(),
            &w.base,
            "manage/",
        );
        let wrong = manage.replace("/manage/", "/unsubscribe/");
        assert_eq!(c.get(&wrong).await.0, 404);
    })
    .await;
}

#[tokio::test]
async fn a_mail_clients_one_click_post_unsubscribes_with_no_cookie() {
    each_database(async || {
        let Some(w) = world().await else {
            return;
        };
        let c = Client::new();
        c.sign_up(&w.base, "mot.cham@example.vn").await;
        let mail = &w
            .mail_titled("mot.cham@example.vn", "Xác nhận đăng ký bản tin tinbao")
            .await;
        let confirm = link(
            mail.text.as_deref().unwrap_or_default(),
            &w.base,
            "confirm/",
        );
        let (_, _, csrf) = c.get(&confirm).await;
        c.post(&confirm, &[("csrf", &csrf)]).await;
        let welcome = &w
            .mail_titled(
                "mot.cham@example.vn",
                "Chào mừng bạn đến với bản tin tinbao",
            )
            .await;
        let header = welcome.header("List-Unsubscribe").unwrap();
        let url = header.trim_start_matches('<').trim_end_matches('>');
        let (status, _, _) = Client::new()
            .post(url, &[("List-Unsubscribe", "One-Click")])
            .await;
        assert_eq!(status, 200);
        assert_eq!(w.status("mot.cham@example.vn").await.0, "unsubscribed");
    })
    .await;
}

#[tokio::test]
async fn pages_carry_security_headers_and_no_store() {
    let Some(w) = world().await else { return };
    let r = reqwest::get(format!("{}subscribe", w.base)).await.unwrap();
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let body = r.text().await.unwrap();
    assert!(body.contains("<html lang=\"vi\">") && body.contains("name=\"viewport\""));
    assert!(
        !body.contains("http://") || !body.contains("src=\"http"),
        "no remote assets"
    );
}

#[tokio::test]
async fn a_digest_carries_fresh_manage_and_one_click_unsubscribe_links_that_work() {
    each_database(async || {
        let Some(w) = world().await else {
            return;
        };
        let c = Client::new();
        let (_, _, csrf) = c.get(&format!("{}subscribe", w.base)).await;
        c.post(
            &format!("{}subscribe", w.base),
            &[
                ("csrf", &csrf),
                ("email", "doc.gia@example.vn"),
                ("t0_province", "lao-cai"),
                ("schedule", "immediate"),
                ("action", "subscribe"),
            ],
        )
        .await;
        let mail = &w
            .mail_titled("doc.gia@example.vn", "Xác nhận đăng ký bản tin tinbao")
            .await;
        let confirm = link(
            mail.text.as_deref().unwrap_or_default(),
            &w.base,
            "confirm/",
        );
        let (_, _, csrf) = c.get(&confirm).await;
        c.post(&confirm, &[("csrf", &csrf)]).await;
        w.mail_titled("doc.gia@example.vn", "Chào mừng bạn đến với bản tin tinbao")
            .await;
        // News after confirming reaches the next digest.
        w.fixtures.set(
            "/lc.rss",
            Route::ok(rss(
                "Báo Lào Cai",
                &[("lc-9", "Lào Cai thông tuyến quốc lộ 4D", 0)],
            )),
        );
        w.app.poll_all().await;
        let digester =
            tinbao::digest::outbox::Digester::new(w.app.store.clone(), w.app.config.clone())
                .await
                .unwrap();
        let later = Utc::now() + Duration::minutes(6);
        assert_eq!(digester.build_due(later).await.unwrap().digests, 1);
        let mailer =
            tinbao::digest::outbox::Mailer::from_url(&w.smtp.url(), w.app.dir.path()).unwrap();
        assert_eq!(digester.send_due(&mailer, later).await.unwrap().sent, 1);
        let digests: Vec<ReceivedMail> = w
            .mail("doc.gia@example.vn", 3)
            .await
            .into_iter()
            .filter(|m| m.subject.starts_with("Bản tin"))
            .collect();
        assert_eq!(digests.len(), 1, "one digest");
        let digest = &digests[0];
        assert!(
            digest
                .text
                .as_deref()
                .unwrap_or_default()
                .contains("quốc lộ 4D")
        );
        let body = digest.text.clone().unwrap_or_default();
        let manage = link(&body, &w.base, "manage/");
        let (status, page, _) = c.get(&manage).await;
        assert_eq!(status, 200);
        assert!(page.contains("doc.gia@example.vn"));
        let header = digest.header("List-Unsubscribe").unwrap();
        let url = header.trim_start_matches('<').trim_end_matches('>');
        assert_eq!(
            Client::new()
                .post(url, &[("List-Unsubscribe", "One-Click")])
                .await
                .0,
            200
        );
        assert_eq!(w.status("doc.gia@example.vn").await.0, "unsubscribed");
    })
    .await;
}

/// `tinbao run` (the real binary) on port 0 in `dir`; its base URL and the child.
fn run_daemon(dir: &std::path::Path) -> (String, std::process::Child) {
    let (child, base) = crate::support::spawn_daemon(dir, &dir.join("daemon.log"));
    (base, child)
}

#[tokio::test]
async fn the_daemon_serves_sign_up_confirm_and_rate_limits_by_client_address() {
    if !SmtpServer::available() {
        return;
    }
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("feeds.toml"),
        format!(
            "[server]\nbase_url = \"https://tin.example.vn/\"\n[database]\nurl = \"sqlite://tinbao.db\"\n\
             [smtp]\nurl = \"{}\"\nfrom = \"tinbao <ban-tin@example.vn>\"\n\
             [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n\
             [[feed]]\nid = \"a\"\nurl = \"http://127.0.0.1:9/a.rss\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n",
            smtp.url()
        ),
    )
    .unwrap();
    let (base, mut child) = run_daemon(dir.path());
    let index = reqwest::get(&base).await.unwrap().text().await.unwrap();
    assert!(
        index.contains("subscribe\">Nhận bản tin qua email</a>"),
        "{index}"
    );
    let c = Client::new();
    for _ in 0..3 {
        assert_eq!(c.sign_up(&base, "qua.daemon@example.vn").await.0, 200);
    }
    let (status, _, retry) = c.sign_up(&base, "qua.daemon@example.vn").await;
    assert_eq!(status, 429, "the daemon's limits are in force");
    assert!(retry.is_some());
    let deadline = Instant::now() + std::time::Duration::from_secs(15);
    let mail = loop {
        if let Some(m) = smtp.messages_to("qua.daemon@example.vn").into_iter().next() {
            break m;
        }
        assert!(Instant::now() < deadline, "no confirmation mail");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // The link names the public base URL; follow it on the daemon's own address.
    let confirm = link(
        mail.text.as_deref().unwrap_or_default(),
        "https://tin.example.vn/",
        "confirm/",
    )
    .replace("https://tin.example.vn/", &base);
    let (status, _, csrf) = c.get(&confirm).await;
    assert_eq!(status, 200);
    let (status, body, _) = c.post(&confirm, &[("csrf", &csrf)]).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Đã xác nhận đăng ký"));
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn without_smtp_the_sign_up_page_says_it_cannot_take_sign_ups() {
    let app = TestApp::start(&crate::support::feeds_toml(&[], "")).await;
    let links = Links::new(
        app.store.link_secret().await.unwrap(),
        app.config.server.base_url.clone(),
    );
    let base = crate::support::spawn_http(AppState::fixed(
        app.config.clone(),
        tinbao::publish::site::Site::default(),
        app.store.clone(),
        links,
    ))
    .await;
    let r = reqwest::get(format!("{base}subscribe")).await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("chưa được cấu hình để gửi thư")
    );
    let index = reqwest::get(&base).await.unwrap().text().await.unwrap();
    assert!(
        !index.contains("/subscribe"),
        "no sign-up link without SMTP"
    );
}

#[tokio::test]
async fn an_address_that_never_confirmed_is_forgotten_once_its_link_expired() {
    each_database(async || {
        let Some(w) = world().await else {
            return;
        };
        let long_ago = Utc::now() - Duration::hours(49);
        let signed_up = w
            .app
            .store
            .request_subscription(
                "chua.xac.nhan@example.vn",
                "daily",
                "Asia/Ho_Chi_Minh",
                &["category=thoi-su".to_string()],
                long_ago,
            )
            .await
            .unwrap();
        let tinbao::storage::SignUp::Pending(id) = signed_up else {
            panic!("a new address is pending: {signed_up:?}");
        };
        w.state
            .links
            .mint(&w.app.store, id, &[Purpose::Confirm], long_ago)
            .await
            .unwrap();
        // The next sign-up (anyone's) clears it; its own pending row stays.
        Client::new().sign_up(&w.base, "moi.den@example.vn").await;
        let emails: Vec<String> = w
            .app
            .store
            .subscribers()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.email)
            .collect();
        assert_eq!(emails, ["moi.den@example.vn"]);
    })
    .await;
}
