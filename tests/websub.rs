//! tinbao as the WebSub hub of its merged feeds: `tinbao run` (the real binary) verifies a
//! subscriber's intent, delivers a changed feed to its callback signed with the subscriber's
//! secret, and stops after an unsubscription. The subscriber is a separate Python process on
//! loopback that echoes challenges and checks each delivery's signature itself.

use crate::support::db::each_database;
use crate::support::{FixtureServer, Route, TestApp, rss_doc};
use chrono::Utc;
use std::path::Path;
use std::time::{Duration, Instant};
use tinbao::storage::NewWebSub;
use tinbao::websub::{Delivered, deliver_due};
use tinbao::worker::publisher::Publisher;

/// A WebSub subscriber: answers `hub.challenge` (unless the path says `refuse`), checks
/// `X-Hub-Signature` against the secret in argv[2], and logs every request as a JSON line. A
/// delivery gets a 500 while a file `down` sits beside the log, a 410 on a path with `gone`.
const CALLBACK: &str = r#"
import hashlib, hmac, http.server, json, os, sys, urllib.parse
log_path, secret = sys.argv[1], sys.argv[2].encode()
down = os.path.join(os.path.dirname(log_path), "down")
def log(entry):
    with open(log_path, "a") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        log({"kind": "verify", "path": url.path, "mode": q.get("hub.mode"),
             "topic": q.get("hub.topic"), "lease": q.get("hub.lease_seconds")})
        body = b"no" if "refuse" in url.path else q.get("hub.challenge", "").encode()
        self.send_response(200 if "refuse" not in url.path else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        status = 500 if os.path.exists(down) else 410 if "gone" in self.path else 204
        log({"kind": "post", "path": self.path, "signed": self.headers.get("X-Hub-Signature") == want,
             "type": self.headers.get("Content-Type"), "link": self.headers.get("Link"),
             "status": status, "body": body.decode("utf-8", "replace")})
        self.send_response(status)
        self.end_headers()
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

struct Callback {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Callback {
    fn start(dir: &Path, secret: &str) -> Callback {
        use std::io::BufRead;
        let log = dir.join("callback.jsonl");
        let mut child = std::process::Command::new("python3")
            .args(["-c", CALLBACK, log.to_str().unwrap(), secret])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the Python callback");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the callback's port");
        Callback { child, port, log }
    }

    fn seen(&self, kind: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["kind"] == kind)
            .collect()
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn eventually(what: &str, log: &Path, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for: {what}\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn config(fixtures: &FixtureServer, feeds: &[&str]) -> String {
    let mut text = "[server]\nbase_url = \"https://tin.example.vn/\"\n[database]\nurl = \"sqlite://tinbao.db\"\n\
                    [[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n"
        .to_string();
    for f in feeds {
        text.push_str(&format!(
            "\n[[feed]]\nid = \"{f}\"\nurl = \"{}\"\ncategory = \"thoi-su\"\nprovince = \"lao-cai\"\n",
            fixtures.url(&format!("/{f}.rss"))
        ));
    }
    text
}

async fn hub(base: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}websub"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish(),
        )
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_subscriber_is_verified_gets_each_change_signed_and_can_leave() {
    if !crate::support::client_available("python3", &["-c", "import http.server"]) {
        return;
    }
    let fixtures = FixtureServer::start().await;
    fixtures.set("/mot.rss", Route::ok(rss_doc("Báo Lào Cai", "mot", 3)));
    fixtures.set(
        "/hai.rss",
        Route::ok(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Báo Yên Bái</title>\
             <link>https://baoyenbai.vn/</link><item><title>Sạt lở đất vùi lấp quốc lộ ở Văn Chấn</title>\
             <link>https://baoyenbai.vn/sat-lo.html</link><guid>yb-1</guid>\
             <description>Mưa lớn gây sạt lở trên quốc lộ 32.</description>\
             <pubDate>Sun, 29 Nov 2026 08:00:00 +0700</pubDate></item></channel></rss>",
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("feeds.toml"), config(&fixtures, &["mot"])).unwrap();
    let log = dir.path().join("daemon.log");
    let (mut daemon, base) = crate::support::spawn_daemon(dir.path(), &log);
    let callback = Callback::start(dir.path(), "bí mật");
    let topic = "https://tin.example.vn/feeds/all.atom";

    // Every merged feed names the hub.
    eventually("the first poll published", &log, async || {
        let r = reqwest::get(format!("{base}feeds/all.atom")).await.unwrap();
        r.text().await.unwrap().contains("Tin mot số 0")
    })
    .await;
    let atom = reqwest::get(format!("{base}feeds/all.atom"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        atom.contains("<link rel=\"hub\" href=\"https://tin.example.vn/websub\"/>"),
        "{atom}"
    );
    let rss = reqwest::get(format!("{base}feeds/thoi-su.xml"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        rss.contains("rel=\"hub\"") && rss.contains("https://tin.example.vn/websub"),
        "{rss}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!("{base}feeds/all.json"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["hubs"][0]["type"], "WebSub");
    assert_eq!(json["hubs"][0]["url"], "https://tin.example.vn/websub");

    // Bad requests are refused at once, saying which field is wrong.
    let own = format!("{base}cb");
    let callback_url = format!("http://127.0.0.1:{}/cb", callback.port);
    for (form, field) in [
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", topic),
                ("hub.callback", "ftp://x/"),
            ],
            "hub.callback",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "https://tin.example.vn/feeds/khong-co.atom"),
                ("hub.callback", callback_url.as_str()),
            ],
            "hub.topic",
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", topic),
                ("hub.callback", own.as_str()),
            ],
            "hub.callback",
        ),
        (
            vec![
                ("hub.mode", "publish"),
                ("hub.topic", topic),
                ("hub.callback", callback_url.as_str()),
            ],
            "hub.mode",
        ),
    ] {
        let (status, body) = hub(&base, &form).await;
        assert_eq!(status, 400, "{form:?}: {body}");
        assert!(body.contains(field), "{form:?}: {body}");
    }

    // A callback that does not echo the challenge is not subscribed.
    let refusing = format!("http://127.0.0.1:{}/refuse", callback.port);
    let (status, _) = hub(
        &base,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", topic),
            ("hub.callback", &refusing),
        ],
    )
    .await;
    assert_eq!(status, 202);

    let (status, body) = hub(
        &base,
        &[
            ("hub.mode", "subscribe"),
            ("hub.topic", topic),
            ("hub.callback", &callback_url),
            ("hub.secret", "bí mật"),
            ("hub.lease_seconds", "7200"),
        ],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let pool = crate::support::database(dir.path()).await;
    eventually("the subscription verified and stored", &log, async || {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM websub_subscriptions")
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
            == 1
            && callback.seen("verify").len() == 2
    })
    .await;
    let verifies = callback.seen("verify");
    let ours = verifies.iter().find(|v| v["path"] == "/cb").unwrap();
    assert_eq!(ours["mode"], "subscribe");
    assert_eq!(ours["topic"], topic);
    assert_eq!(ours["lease"], "7200");
    let stored: String = sqlx::query_scalar("SELECT callback FROM websub_subscriptions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, callback_url, "the refusing callback was not stored");
    assert!(callback.seen("post").is_empty(), "nothing changed yet");

    // A new source brings a story: the changed feed is pushed, signed, with its Link header.
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures, &["mot", "hai"]),
    )
    .unwrap();
    eventually("the changed feed delivered", &log, async || {
        callback.seen("post").iter().any(|p| {
            p["body"]
                .as_str()
                .unwrap_or("")
                .contains("Sạt lở đất vùi lấp")
        })
    })
    .await;
    let posts = callback.seen("post");
    for p in &posts {
        assert_eq!(p["path"], "/cb");
        assert_eq!(
            p["signed"], true,
            "signature checked by the subscriber: {p}"
        );
        assert!(
            p["type"]
                .as_str()
                .unwrap()
                .starts_with("application/atom+xml"),
            "{p}"
        );
        assert_eq!(
            p["link"],
            format!("<https://tin.example.vn/websub>; rel=\"hub\", <{topic}>; rel=\"self\"")
        );
    }
    let delivered = posts.len();

    // Unsubscribed (verified as well): no more deliveries.
    let (status, _) = hub(
        &base,
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", topic),
            ("hub.callback", &callback_url),
        ],
    )
    .await;
    assert_eq!(status, 202);
    eventually("the unsubscription verified", &log, async || {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM websub_subscriptions")
            .fetch_one(&pool)
            .await
            .unwrap_or(1)
            == 0
    })
    .await;
    assert!(
        callback
            .seen("verify")
            .iter()
            .any(|v| v["mode"] == "unsubscribe" && v["path"] == "/cb")
    );
    // The feed changes again after the unsubscription: it is published, and not pushed.
    fixtures.set(
        "/ba.rss",
        Route::ok(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Báo Hà Giang</title>\
             <link>https://baohagiang.vn/</link><item><title>Khánh thành cầu treo ở Xín Mần</title>\
             <link>https://baohagiang.vn/cau-treo.html</link><guid>hg-1</guid>\
             <description>Cây cầu nối hai bản vùng cao.</description>\
             <pubDate>Sun, 29 Nov 2026 09:00:00 +0700</pubDate></item></channel></rss>",
        ),
    );
    std::fs::write(
        dir.path().join("feeds.toml"),
        config(&fixtures, &["mot", "hai", "ba"]),
    )
    .unwrap();
    eventually("the third source published", &log, async || {
        let r = reqwest::get(format!("{base}feeds/all.atom")).await.unwrap();
        r.text().await.unwrap().contains("Khánh thành cầu treo")
    })
    .await;
    // Deliveries are claimed every second: two more give a push that was owed time to arrive.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(
        callback.seen("post").len(),
        delivered,
        "nothing pushed after the unsubscription"
    );
    let _ = daemon.kill();
}

/// The hub on the caller's clock (`deliver_due(now)`), against the same Python subscriber.
#[tokio::test]
async fn a_callback_down_for_a_while_gets_the_newest_feed_once_and_nothing_is_lost() {
    if !crate::support::client_available("python3", &["-c", "import http.server"]) {
        return;
    }
    each_database(async || {
        let fixtures = FixtureServer::start().await;
        fixtures.set("/mot.rss", Route::ok(rss_doc("Báo Lào Cai", "mot", 3)));
        let app = TestApp::start(&config(&fixtures, &["mot"])).await;
        app.poll_all().await;
        let publisher = Publisher::files_only(app.store.clone(), app.config.clone());
        publisher
            .regenerate(&publisher.all_filters())
            .await
            .unwrap();
        let callback = Callback::start(app.dir.path(), "khóa");
        let topic = "https://tin.example.vn/feeds/all.atom".to_string();
        let sub = |path: &str| NewWebSub {
            topic: topic.clone(),
            callback: format!("http://127.0.0.1:{}/{path}", callback.port),
            callback_host: "127.0.0.1".into(),
            secret: Some("khóa".into()),
            lease_secs: 3_600,
        };
        let store = &app.store;
        let config = &app.config;
        let t0 = Utc::now();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        let changed = async |s: i64| {
            store
                .websub_changed(std::slice::from_ref(&topic), at(s))
                .await
                .unwrap()
        };
        let deliver = async |s: i64| deliver_due(store, config, at(s)).await.unwrap();
        let sent = |n| Delivered {
            sent: n,
            ..Delivered::default()
        };
        store.websub_subscribe(&sub("cb"), t0).await.unwrap();
        assert_eq!(deliver(0).await, Delivered::default(), "nothing owed yet");

        // The callback is down: the delivery waits its backoff; a second change meanwhile
        // makes no second delivery.
        let down = app.dir.path().join("down");
        std::fs::write(&down, "").unwrap();
        assert_eq!(changed(0).await, 1);
        assert_eq!(
            deliver(0).await,
            Delivered {
                retried: 1,
                ..Delivered::default()
            }
        );
        assert_eq!(changed(5).await, 1);
        std::fs::remove_file(&down).unwrap();
        assert_eq!(
            deliver(10).await,
            Delivered::default(),
            "not due before its backoff"
        );
        assert_eq!(deliver(31).await, sent(1));
        assert_eq!(deliver(62).await, Delivered::default(), "delivered once");
        let statuses: Vec<i64> = callback
            .seen("post")
            .iter()
            .map(|p| p["status"].as_i64().unwrap())
            .collect();
        assert_eq!(statuses, [500, 204]);
        let last = callback.seen("post").pop().unwrap();
        assert_eq!(last["signed"], true);
        assert!(
            last["body"].as_str().unwrap().contains("Tin mot số 0"),
            "{last}"
        );

        // A process that claimed a delivery and died: taken up again once its lease ends.
        store.set_lease(std::time::Duration::from_secs(60));
        assert_eq!(changed(100).await, 1);
        assert_eq!(store.websub_claim(at(100), 10).await.unwrap().len(), 1);
        assert!(
            store.websub_claim(at(101), 10).await.unwrap().is_empty(),
            "claimed"
        );
        assert_eq!(deliver(161).await, sent(1));
        assert_eq!(callback.seen("post").len(), 3);

        // A callback that says it is gone is dropped; so is a lease that ran out.
        store.websub_subscribe(&sub("gone"), at(200)).await.unwrap();
        assert_eq!(changed(200).await, 2);
        let d = deliver(200).await;
        assert_eq!((d.sent, d.dropped), (1, 1));
        assert_eq!(store.websub_subscriptions().await.unwrap().len(), 1);
        assert_eq!(changed(200 + 3_600).await, 0, "the lease (from t0) is over");
        assert_eq!(deliver(200 + 3_600).await, Delivered::default());
        assert!(store.websub_subscriptions().await.unwrap().is_empty());
    })
    .await;
}
