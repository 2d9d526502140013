//! Digests against a real SMTP server on loopback (aiosmtpd): what arrives, that nothing arrives
//! twice or is skipped, and that a dead or refusing server delays mail without losing it.

use crate::support::samples::{HA_GIANG, LAO_CAI, VNEXPRESS};
use crate::support::smtp::{Refusal, SmtpServer};
use crate::support::{FixtureServer, Route, TestApp};
use chrono::{Duration, Utc};
use std::collections::BTreeSet;
use tinbao::digest::outbox::{Digester, Mailer};

struct World {
    app: TestApp,
    fixtures: FixtureServer,
    smtp: SmtpServer,
    digester: Digester,
    mailer: Mailer,
}

/// Sample sources, a real SMTP server, and `subscribers` (email, topic) on the immediate
/// schedule, added before the first poll so every sample item is new to them.
async fn world(smtp: SmtpServer, subscribers: &[(&str, &str)]) -> World {
    let fixtures = FixtureServer::start().await;
    fixtures.set("/lc.rss", Route::ok(LAO_CAI));
    fixtures.set("/vne.rss", Route::ok(VNEXPRESS));
    fixtures.set("/hg.rss", Route::ok(HA_GIANG));
    let feed = |id: &str, path: &str, cat: &str, prov: &str| {
        format!(
            "\n[[feed]]\nid = \"{id}\"\nurl = \"{}\"\ncategory = \"{cat}\"\nprovince = \"{prov}\"\n",
            fixtures.url(path)
        )
    };
    let config = format!(
        "[server]\nbase_url = \"https://tin.example.vn/\"\n[database]\nurl = \"sqlite://tinbao.db\"\n\
         [smtp]\nurl = \"{}\"\nfrom = \"Tin tỉnh <ban-tin@example.vn>\"\n\
         [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n[[category]]\nslug = \"xa-hoi\"\ntitle = \"Xã hội\"\n\
         [[province]]\nslug = \"lao-cai\"\nname = \"Lào Cai\"\n[[province]]\nslug = \"ca-nuoc\"\nname = \"Cả nước\"\n\
         [[province]]\nslug = \"ha-giang\"\nname = \"Hà Giang\"\n{}{}{}",
        smtp.url(),
        feed("baolaocai", "/lc.rss", "thoi-su", "lao-cai"),
        feed("vnexpress", "/vne.rss", "thoi-su", "ca-nuoc"),
        feed("baohagiang", "/hg.rss", "xa-hoi", "ha-giang"),
    );
    let app = TestApp::start(&config).await;
    for (email, topic) in subscribers {
        let new = tinbao::cli::validate_subscriber(
            &app.config,
            email,
            &[topic.to_string()],
            "immediate",
            None,
        )
        .expect("valid subscriber");
        app.store
            .add_subscriber(&new, Utc::now())
            .await
            .expect("add subscriber");
    }
    assert_eq!(app.poll_all().await.failed, 0);
    let digester = Digester::new(app.store.clone(), app.config.clone())
        .await
        .expect("digester");
    let mailer = Mailer::from_url(&smtp.url(), std::path::Path::new(".")).expect("mailer");
    World {
        app,
        fixtures,
        smtp,
        digester,
        mailer,
    }
}

/// Distinct Message-IDs received: a resend after a crash repeats one (recognisably).
fn distinct(smtp: &SmtpServer) -> BTreeSet<String> {
    smtp.messages()
        .into_iter()
        .map(|m| m.message_id)
        .filter(|id| !id.is_empty())
        .collect()
}

#[tokio::test]
async fn each_subscriber_gets_one_digest_with_both_parts_and_the_list_headers() {
    crate::support::db::each_database(async || {
        if !SmtpServer::available() {
            return;
        }
        let w = world(
            SmtpServer::start(),
            &[
                ("lu@example.vn", "province=lao-cai query=lũ"),
                ("hagiang@example.vn", "category=xa-hoi"),
            ],
        )
        .await;
        let tick = Utc::now() + Duration::minutes(10);
        let built = w.digester.build_due(tick).await.unwrap();
        assert_eq!((built.due, built.digests), (2, 2));
        let sent = w.digester.send_due(&w.mailer, tick).await.unwrap();
        assert_eq!((sent.sent, sent.retried, sent.failed), (2, 0, 0));

        let lu = w.smtp.messages_to("lu@example.vn");
        assert_eq!(lu.len(), 1);
        let m = &lu[0];
        let subject = m.subject.clone();
        assert!(
            subject.starts_with("Bản tin Lào Cai ") && subject.contains("tin mới"),
            "{subject}"
        );
        let text = m.text.clone().unwrap_or_default();
        let html = m.html.clone().unwrap_or_default();
        assert!(text.contains("Lũ quét") || text.contains("lũ"), "{text}");
        assert!(html.contains("<a href=\"https://baolaocai.vn/"), "{html}");
        let unsubscribe = m.header("List-Unsubscribe").unwrap_or_default();
        assert!(
            unsubscribe.starts_with("<https://tin.example.vn/unsubscribe/"),
            "{unsubscribe}"
        );
        assert_eq!(
            m.header("List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
        assert!(m.message_id.starts_with("<digest."), "{}", m.message_id);
        // The Hà Giang subscriber got only Xã hội items.
        let hg = w.smtp.messages_to("hagiang@example.vn");
        assert!(
            hg[0].subject.clone().starts_with("Bản tin Xã hội "),
            "{:?}",
            hg[0].subject
        );

        // The same tick again: nothing new is owed, nothing is sent.
        assert_eq!(w.digester.build_due(tick).await.unwrap().digests, 0);
        assert_eq!(w.digester.send_due(&w.mailer, tick).await.unwrap().sent, 0);
        // A later tick with no new items: no (empty) email.
        let later = tick + Duration::minutes(10);
        let b = w.digester.build_due(later).await.unwrap();
        assert_eq!((b.due, b.digests, b.empty), (2, 0, 2));
        assert_eq!(w.smtp.messages().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn a_new_item_is_delivered_once_and_old_ones_never_again() {
    crate::support::db::each_database(async || {
        if !SmtpServer::available() {
            return;
        }
        let w = world(SmtpServer::start(), &[("lu@example.vn", "query=lũ")]).await;
        let t1 = Utc::now() + Duration::minutes(10);
        w.digester.build_due(t1).await.unwrap();
        w.digester.send_due(&w.mailer, t1).await.unwrap();
        let fresh = LAO_CAI.replacen(
            "<item>",
            "<item><title>Lũ ống mới ở Mường Hum</title><link>https://baolaocai.vn/lu-ong-muong-hum.html</link><guid>lu-moi</guid><pubDate>Sat, 28 Nov 2026 08:00:00 +0700</pubDate></item><item>",
            1,
        );
        w.fixtures.set("/lc.rss", Route::ok(fresh));
        assert_eq!(w.app.poll_all().await.new, 1);
        let t2 = t1 + Duration::minutes(10);
        assert_eq!(w.digester.build_due(t2).await.unwrap().digests, 1);
        w.digester.send_due(&w.mailer, t2).await.unwrap();
        let mails = w.smtp.messages_to("lu@example.vn");
        assert_eq!(mails.len(), 2);
        let second = mails[1].text.clone().unwrap_or_default();
        assert!(second.contains("Lũ ống mới ở Mường Hum"), "{second}");
        assert!(
            mails[1].subject.clone().contains(": 1 tin mới"),
            "{:?}",
            mails[1].subject
        );
    })
    .await;
}

#[tokio::test]
async fn a_dead_smtp_server_delays_digests_and_loses_none() {
    crate::support::db::each_database(async || {
        if !SmtpServer::available() {
            return;
        }
        let mut w = world(
            SmtpServer::start(),
            &[
                ("a@example.vn", "query=Lào Cai"),
                ("b@example.vn", "category=thoi-su"),
            ],
        )
        .await;
        w.smtp.stop();
        let tick = Utc::now() + Duration::minutes(10);
        assert_eq!(w.digester.build_due(tick).await.unwrap().digests, 2);
        let first = w.digester.send_due(&w.mailer, tick).await.unwrap();
        assert_eq!((first.sent, first.retried), (0, 2));
        // Not due again before the backoff.
        assert_eq!(
            w.digester.send_due(&w.mailer, tick).await.unwrap().retried,
            0
        );
        w.smtp.start_again();
        let later = tick + Duration::hours(1);
        assert_eq!(w.digester.send_due(&w.mailer, later).await.unwrap().sent, 2);
        assert_eq!(w.smtp.messages().len(), 2);
        assert_eq!(
            w.app.store.digest_counts().await.unwrap(),
            vec![("sent".to_string(), 2)]
        );
    })
    .await;
}

#[tokio::test]
async fn a_4xx_is_retried_and_a_5xx_fails_only_that_digest_then_marks_bouncing() {
    crate::support::db::each_database(async || {
        if !SmtpServer::available() {
            return;
        }
        let smtp = SmtpServer::start_rejecting(&[
            Refusal::rcpt("*@bounce.vn", 550),
            Refusal::data("*@slow.vn", 451).times(1),
        ]);
        let w = world(
            smtp,
            &[
                ("ok@example.vn", "category=thoi-su"),
                ("gone@bounce.vn", "category=thoi-su"),
                ("busy@slow.vn", "category=thoi-su"),
            ],
        )
        .await;
        let tick = Utc::now() + Duration::minutes(10);
        w.digester.build_due(tick).await.unwrap();
        let s = w.digester.send_due(&w.mailer, tick).await.unwrap();
        assert_eq!((s.sent, s.retried, s.failed), (1, 1, 1));
        let s = w
            .digester
            .send_due(&w.mailer, tick + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(
            (s.sent, s.retried, s.failed),
            (1, 0, 0),
            "the 4xx recipient got it on the retry"
        );
        assert_eq!(w.smtp.messages_to("busy@slow.vn").len(), 1);
        assert!(w.smtp.messages_to("gone@bounce.vn").is_empty());
        // Two more refused digests for the same address: it is marked bouncing and gets no more.
        for n in 1..=2 {
            let t = tick + Duration::hours(2 * n);
            let fresh = LAO_CAI.replacen("<item>", &format!("<item><title>Tin {n}</title><guid>extra-{n}</guid><pubDate>Sat, 28 Nov 2026 08:00:00 +0700</pubDate></item><item>"), 1);
            w.fixtures.set("/lc.rss", Route::ok(fresh));
            w.app.poll_all().await;
            w.digester.build_due(t).await.unwrap();
            w.digester.send_due(&w.mailer, t).await.unwrap();
        }
        let subs = w.app.store.subscribers().await.unwrap();
        let gone = subs.iter().find(|s| s.email == "gone@bounce.vn").unwrap();
        assert_eq!(gone.status, "bouncing");
        assert_eq!(
            subs.iter()
                .find(|s| s.email == "ok@example.vn")
                .unwrap()
                .status,
            "active"
        );
    })
    .await;
}

#[tokio::test]
async fn a_delivered_digest_clears_the_count_of_refusals() {
    crate::support::db::each_database(async || {
        if !SmtpServer::available() {
            return;
        }
        let smtp = SmtpServer::start_rejecting(&[Refusal::rcpt("*@flaky.vn", 550).times(1)]);
        let w = world(
            smtp,
            &[
                ("once@flaky.vn", "category=thoi-su"),
                ("ok@example.vn", "category=thoi-su"),
            ],
        )
        .await;
        let failures =
            || w.app.scalar("SELECT failed_digests FROM subscribers WHERE email = 'once@flaky.vn'");
        let tick = Utc::now() + Duration::minutes(10);
        w.digester.build_due(tick).await.unwrap();
        let s = w.digester.send_due(&w.mailer, tick).await.unwrap();
        assert_eq!((s.sent, s.failed), (1, 1));
        assert_eq!(failures().await, 1);
        // A new item, a new digest, and this time the address takes it.
        let t = tick + Duration::hours(1);
        let fresh = LAO_CAI.replacen("<item>", "<item><title>Tin mới</title><guid>extra</guid><pubDate>Sat, 28 Nov 2026 08:00:00 +0700</pubDate></item><item>", 1);
        w.fixtures.set("/lc.rss", Route::ok(fresh));
        w.app.poll_all().await;
        w.digester.build_due(t).await.unwrap();
        let s = w.digester.send_due(&w.mailer, t).await.unwrap();
        assert_eq!((s.sent, s.failed), (2, 0));
        assert_eq!(w.smtp.messages_to("once@flaky.vn").len(), 1);
        assert_eq!(failures().await, 0, "a delivery resets the count");
    })
    .await;
}

#[tokio::test]
async fn the_smtp_server_dying_mid_run_loses_nothing_and_sends_nothing_twice() {
    crate::support::db::each_database(async || {
        if !SmtpServer::available() {
            return;
        }
        let people: Vec<(String, &str)> = (0..60)
            .map(|i| (format!("doc-gia-{i}@example.vn"), "category=thoi-su"))
            .collect();
        let refs: Vec<(&str, &str)> = people.iter().map(|(e, t)| (e.as_str(), *t)).collect();
        let mut w = world(SmtpServer::start(), &refs).await;
        let tick = Utc::now() + Duration::minutes(10);
        assert_eq!(w.digester.build_due(tick).await.unwrap().digests, 60);
        let digester = w.digester.clone();
        let mailer = w.mailer.clone();
        let run = tokio::spawn(async move { digester.send_due(&mailer, tick).await });
        // Stop the server once part of the run has arrived.
        for _ in 0..400 {
            if w.smtp.messages().len() >= 10 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        w.smtp.stop();
        let first = run.await.unwrap().unwrap();
        assert!(
            first.retried > 0,
            "some digests met a dead server: {first:?}"
        );
        // As the daemon, `run --once` and `digest` do after every run: no connection is held
        // open between runs (one left idle from before the stop would fail the next run's
        // first send, and defer that digest once more).
        w.mailer.close().await;
        w.smtp.start_again();
        let second = w
            .digester
            .send_due(&w.mailer, tick + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(first.sent + second.sent, 60, "{first:?} {second:?}");
        assert_eq!(distinct(&w.smtp).len(), 60, "every digest arrived");
        let received = w.smtp.messages().len();
        eprintln!(
            "server stopped mid-run: {received} messages received for 60 digests ({} resent)",
            received - 60
        );
        assert!(
            received <= 60 + 8,
            "at most the digests in flight when the server died are resent"
        );
    })
    .await;
}

/// `run_due` (what the daemon and `tinbao digest --now` run) sends while later groups of
/// digests are still being built: its first claims find an empty outbox and wait for the build.
/// Every digest of a build of several groups arrives once, and each is recorded as sent.
#[tokio::test]
async fn a_run_that_sends_while_it_builds_delivers_every_digest_once() {
    crate::support::db::each_database(async || {
        if !SmtpServer::available() {
            return;
        }
        let people: Vec<(String, &str)> = (0..600)
            .map(|i| (format!("doc-gia-{i}@example.vn"), "category=thoi-su"))
            .collect();
        let refs: Vec<(&str, &str)> = people.iter().map(|(e, t)| (e.as_str(), *t)).collect();
        let w = world(SmtpServer::start(), &refs).await;
        let tick = Utc::now() + Duration::minutes(10);
        let (built, sent) = w.digester.run_due(&w.mailer, tick, true, &|| true).await;
        let (built, sent) = (built.unwrap(), sent.unwrap());
        assert_eq!((built.due, built.digests), (600, 600));
        assert_eq!((sent.sent, sent.retried, sent.failed), (600, 0, 0));
        assert_eq!(distinct(&w.smtp).len(), 600);
        assert_eq!(w.smtp.messages().len(), 600, "none twice");
        let unsent = w
            .app
            .scalar("SELECT COUNT(*) FROM digests WHERE state <> 'sent'")
            .await;
        assert_eq!(unsent, 0);
    })
    .await;
}

#[tokio::test]
async fn a_sigkill_between_sends_loses_nothing_and_the_restart_finishes_the_run() {
    crate::support::db::each_database(async || {
        if !SmtpServer::available() {
            return;
        }
        let people: Vec<(String, &str)> = (0..120)
            .map(|i| (format!("ban-doc-{i}@example.vn"), "category=thoi-su"))
            .collect();
        let refs: Vec<(&str, &str)> = people.iter().map(|(e, t)| (e.as_str(), *t)).collect();
        let w = world(SmtpServer::start(), &refs).await;
        // The CLI decides due ticks by the clock: make the subscribers older than the current tick.
        w.app
            .execute("UPDATE subscribers SET created_at = created_at - 900")
            .await;
        let dir = w.app.dir.path().to_path_buf();
        let run = |dir: std::path::PathBuf| {
            std::process::Command::new(env!("CARGO_BIN_EXE_tinbao"))
                .args(["digest", "--now"])
                .current_dir(dir)
                .env("RUST_LOG", "error")
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("tinbao digest")
        };
        let mut child = run(dir.clone());
        for _ in 0..2000 {
            if w.smtp.messages().len() >= 30 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        let before = w.smtp.messages().len();
        assert!(before < 120, "killed mid-run ({before} sent)");
        let status = run(dir).wait().expect("second run");
        assert!(status.success());
        assert_eq!(distinct(&w.smtp).len(), 120, "every owed digest arrived");
        let received = w.smtp.messages().len();
        eprintln!("SIGKILL after {before} messages: {received} received for 120 digests");
        assert!(
            received <= 120 + 8,
            "only digests in flight at the kill can repeat (same Message-ID)"
        );
        let pending = w
            .app
            .scalar("SELECT COUNT(*) FROM digests WHERE state <> 'sent'")
            .await;
        assert_eq!(pending, 0);
    })
    .await;
}

/// Lines that start with a dot, and one that is only a dot (which would end the message early
/// unless doubled), arrive as they were sent, whether the server takes pipelined commands or
/// not.
#[tokio::test]
async fn pipelined_and_one_at_a_time_transactions_deliver_the_same_bytes() {
    if !SmtpServer::available() {
        return;
    }
    let body = ".mot dong bat dau bang dau cham\r\n..hai cham\r\nbinh thuong\r\n.\r\ncuoi\r\n";
    for pipelining in [true, false] {
        let smtp = SmtpServer::start();
        if !pipelining {
            smtp.without_pipelining();
        }
        let mailer = Mailer::from_url(&smtp.url(), std::path::Path::new(".")).unwrap();
        let message = lettre::Message::builder()
            .from("Tin tỉnh <ban-tin@tin.example.vn>".parse().unwrap())
            .to("doc-gia@example.vn".parse().unwrap())
            .subject("Thử dấu chấm")
            .body(body.to_string())
            .unwrap();
        let sent = message.formatted();
        mailer.send(message).await.unwrap();
        mailer.close().await;
        let got = smtp.messages_to("doc-gia@example.vn");
        assert_eq!(got.len(), 1, "pipelining {pipelining}");
        let trim = |b: &[u8]| {
            let mut b = b.to_vec();
            while b.ends_with(b"\r\n") {
                b.truncate(b.len() - 2);
            }
            b
        };
        assert_eq!(
            String::from_utf8_lossy(&trim(&got[0].raw)),
            String::from_utf8_lossy(&trim(&sent)),
            "pipelining {pipelining}"
        );
        assert_eq!(smtp.ehlos().last(), Some(&pipelining));
    }
}
