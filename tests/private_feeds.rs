//! Every subscriber's private feed (`/feeds/me/{token}.atom`) and each topic's own feed, as the
//! manage page lists them: served by tinbao's router on loopback to a subscriber who signed up
//! and confirmed through real email (aiosmtpd), read by Python feedparser; the address stays
//! the same until revoked from the page, follows topic changes, and goes with unsubscribing.

use crate::selfservice::{Client, link, world};
use crate::support::client_available;
use crate::support::db::each_database;

/// The value of the `<input>` with this id in a page.
fn input_value(page: &str, id: &str) -> Option<String> {
    let at = page.find(&format!("id=\"{id}\""))?;
    let tag_end = at + page[at..].find('>')?;
    let tag = &page[at..tag_end];
    let value = tag.split("value=\"").nth(1)?.split('"').next()?;
    Some(value.replace("&amp;", "&").replace("&#x2f;", "/"))
}

async fn fetch(url: &str) -> (u16, String, String, String) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (kind, cache) = (header("content-type"), header("cache-control"));
    (status, kind, cache, r.text().await.unwrap())
}

#[tokio::test]
async fn a_subscriber_has_a_private_feed_of_their_topics_listed_and_revoked_on_their_page() {
    each_database(async || {
        let Some(w) = world().await else {
            return;
        };
        // Signed up for `province=lao-cai query=lũ`, confirmed.
        let c = Client::new();
        c.sign_up(&w.base, "ban.doc@example.vn").await;
        let mail = w
            .mail_titled("ban.doc@example.vn", "Xác nhận đăng ký bản tin tinbao")
            .await;
        let confirm = link(
            mail.text.as_deref().unwrap_or_default(),
            &w.base,
            "confirm/",
        );
        let (_, _, csrf) = c.get(&confirm).await;
        assert_eq!(c.post(&confirm, &[("csrf", &csrf)]).await.0, 200);
        let welcome = w
            .mail_titled("ban.doc@example.vn", "Chào mừng bạn đến với bản tin tinbao")
            .await;
        let manage = link(
            welcome.text.as_deref().unwrap_or_default(),
            &w.base,
            "manage/",
        );

        // The page lists the private feed, the same address every time it is shown.
        let (status, page, csrf) = c.get(&manage).await;
        assert_eq!(status, 200);
        let private = input_value(&page, "private-feed-url").expect("private feed listed");
        assert!(private.starts_with(&format!("{}feeds/me/", w.base)) && private.ends_with(".atom"));
        assert_eq!(
            input_value(&c.get(&manage).await.1, "private-feed-url").as_deref(),
            Some(private.as_str())
        );
        let (status, kind, cache, body) = fetch(&private).await;
        assert_eq!(status, 200);
        assert!(kind.starts_with("application/atom+xml"), "{kind}");
        assert!(
            cache.starts_with("private"),
            "not for shared caches: {cache}"
        );
        assert!(body.contains("Lũ quét ở Bát Xát, Lào Cai"), "{body}");
        assert!(body.contains("Lào Cai khắc phục hậu quả mưa lũ"), "{body}");
        assert!(
            !body.contains("Giá quế Yên Bái"),
            "not a topic of theirs: {body}"
        );
        assert!(!body.contains("hoa tam giác mạch"), "no “lũ”: {body}");
        assert!(
            body.contains(&format!(
                "rel=\"self\" type=\"application/atom+xml\" href=\"{private}\""
            )),
            "{body}"
        );
        // The topic's own feed is listed beside it, and brings the same stories.
        let own = input_value(&page, "t0_feed").expect("the topic's feed listed");
        assert!(
            own.starts_with(&format!("{}feeds/topic.atom?", w.base)),
            "{own}"
        );
        let (status, _, _, topic_body) = fetch(&own).await;
        assert_eq!(status, 200);
        assert!(topic_body.contains("Lũ quét ở Bát Xát, Lào Cai"));
        assert!(!topic_body.contains("Giá quế Yên Bái"));
        for other in ["xml", "json"] {
            let url = private.replace(".atom", &format!(".{other}"));
            let (status, _, _, body) = fetch(&url).await;
            assert_eq!(status, 200, "{url}");
            assert!(body.contains("Lũ quét ở Bát Xát, Lào Cai"));
        }
        if client_available("python3", &["-c", "import feedparser"]) {
            let out = tokio::process::Command::new("python3")
                .args([
                    "-c",
                    "import feedparser,sys; d=feedparser.parse(sys.argv[1]); \
                     print(int(d.bozo), len(d.entries), d.feed.title)",
                    &private,
                ])
                .output()
                .await
                .unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            assert_eq!(
                said.trim(),
                "0 2 Tin theo chủ đề của bạn – tinbao",
                "{out:?}"
            );
        }

        // A topic added on the page is in the same feed at once.
        let (status, _, _) = c
            .post(
                &manage,
                &[
                    ("csrf", &csrf),
                    ("t0_province", "lao-cai"),
                    ("t0_query", "lũ"),
                    ("t1_category", "kinh-te"),
                    ("schedule", "daily"),
                    ("action", "save"),
                ],
            )
            .await;
        assert_eq!(status, 200);
        let body = fetch(&private).await.3;
        assert!(
            body.contains("Giá quế Yên Bái") && body.contains("Lũ quét ở Bát Xát"),
            "{body}"
        );

        // Revoked: the old address is gone, a new one is listed and works.
        let (status, page, _) = c
            .post(&manage, &[("csrf", &csrf), ("action", "feed")])
            .await;
        assert_eq!(status, 200);
        assert!(page.contains("Đã đổi địa chỉ nguồn tin riêng"), "{page}");
        let renewed = input_value(&page, "private-feed-url").expect("a new address");
        assert_ne!(renewed, private);
        assert_eq!(fetch(&private).await.0, 404);
        assert_eq!(fetch(&renewed).await.0, 200);
        let forged = format!("{}feeds/me/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.atom", w.base);
        assert_eq!(fetch(&forged).await.0, 404);
        assert_eq!(fetch(&renewed.replace(".atom", ".html")).await.0, 404);

        // Unsubscribed: the feed says it is gone, and the page lists none.
        let (status, page, _) = c
            .post(&manage, &[("csrf", &csrf), ("action", "unsubscribe")])
            .await;
        assert_eq!(status, 200);
        assert!(input_value(&page, "private-feed-url").is_none());
        assert_eq!(fetch(&renewed).await.0, 410);
    })
    .await;
}
