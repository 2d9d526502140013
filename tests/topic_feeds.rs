//! Topic feeds (`/feeds/topic.{xml,atom,json}?q=…`) from tinbao's own router on loopback, over
//! the sample sources: the stories that match, each once, read by Python feedparser and
//! newsboat; ETag/304 and gzip; a malformed query explained in Vietnamese.

use crate::publish::published;
use crate::support::client_available;
use crate::support::samples::LAO_CAI;

async fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder().no_gzip().build().unwrap();
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request")
}

fn topic(base: &str, ext: &str, query: &str) -> String {
    let mut url = url::Url::parse(&format!("{base}feeds/topic.{ext}")).unwrap();
    url.set_query(Some(query));
    url.to_string()
}

#[tokio::test]
async fn a_topic_is_a_feed_of_the_stories_that_match() {
    let p = published().await;
    let url = topic(&p.base, "json", "q=Fansipan");
    let r = get(&url, &[]).await;
    assert_eq!(r.status(), 200);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("application/feed+json"),
        "{content_type}"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let feed: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(feed["title"], "Fansipan – tinbao");
    assert!(
        feed["feed_url"]
            .as_str()
            .unwrap()
            .ends_with("/feeds/topic.json?q=Fansipan"),
        "{feed}"
    );
    let titles: Vec<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert!(titles.len() >= 2, "{titles:?}");
    for item in feed["items"].as_array().unwrap() {
        let says = |k: &str| item[k].as_str().unwrap_or("").contains("Fansipan");
        assert!(
            says("title") || says("content_html") || says("summary"),
            "{item}"
        );
    }
    // An exclusion, and a category none of the matching stories is in.
    let fewer = get(
        &topic(&p.base, "json", "q=Fansipan -%22c%C3%A1p%20treo%22"),
        &[],
    )
    .await;
    let fewer: serde_json::Value = serde_json::from_str(&fewer.text().await.unwrap()).unwrap();
    let fewer: Vec<&str> = fewer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert!(
        fewer.len() < titles.len() && fewer.iter().all(|t| !t.contains("Cáp treo")),
        "{fewer:?}"
    );
    let other = get(&topic(&p.base, "json", "q=Fansipan&category=xa-hoi"), &[]).await;
    let other: serde_json::Value = serde_json::from_str(&other.text().await.unwrap()).unwrap();
    assert_eq!(other["items"].as_array().unwrap().len(), 0);

    // The same feed again: a 304 for the ETag it was served with; gzip when asked.
    let again = get(&url, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304);
    let gz = get(&url, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gz.headers()["content-encoding"], "gzip");

    // The paper edits a story: once the merged feeds are regenerated, the topic feed follows.
    let si_ma_cai = topic(&p.base, "atom", "q=%22Si%20Ma%20Cai%22");
    let before = get(&si_ma_cai, &[]).await.text().await.unwrap();
    assert!(
        before.contains("Si Ma Cai động thổ trường nội trú"),
        "{before}"
    );
    p.fixtures.set(
        "/lc.rss",
        crate::support::Route::ok(LAO_CAI.replace("Si Ma Cai động thổ", "Si Ma Cai khởi công")),
    );
    p.app.poll_all().await;
    assert_eq!(
        get(&si_ma_cai, &[]).await.text().await.unwrap(),
        before,
        "kept until a merged feed changes"
    );
    p.publisher
        .regenerate(&p.publisher.all_filters())
        .await
        .unwrap();
    let edited = get(&si_ma_cai, &[]).await.text().await.unwrap();
    assert!(
        edited.contains("Si Ma Cai khởi công trường nội trú"),
        "{edited}"
    );

    // Malformed or unknown: a 400 naming the column and the reason in Vietnamese, a 404.
    let bad = get(&topic(&p.base, "atom", "q=%22L%C3%A0o%20Cai"), &[]).await;
    assert_eq!(bad.status(), 400);
    let text = bad.text().await.unwrap();
    assert!(
        text.contains("cột 1") && text.contains("thiếu dấu ngoặc kép đóng"),
        "{text}"
    );
    assert_eq!(get(&topic(&p.base, "xml", ""), &[]).await.status(), 400);
    let long = format!("q={}", "a".repeat(300));
    assert_eq!(get(&topic(&p.base, "xml", &long), &[]).await.status(), 400);
    let nowhere = get(&topic(&p.base, "xml", "q=Fansipan&category=khong-co"), &[]).await;
    assert_eq!(nowhere.status(), 404);
    let twice = get(&topic(&p.base, "xml", "q=a&q=b"), &[]).await;
    assert_eq!(twice.status(), 400);
}

/// The items of a JSON topic feed: (title, category slug).
async fn items(url: &str) -> Vec<(String, String)> {
    let r = get(url, &[]).await;
    assert_eq!(r.status(), 200, "{url}");
    let feed: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let category = i["tags"][0].as_str().unwrap_or_default().to_string();
            (i["title"].as_str().unwrap().to_string(), category)
        })
        .collect()
}

#[tokio::test]
async fn a_subscribers_topic_of_several_categories_and_provinces_is_a_feed_too() {
    let p = published().await;
    // Several categories, repeated or comma-separated, in any order: one feed.
    let repeated = topic(&p.base, "json", "category=thoi-su&category=xa-hoi");
    let both = items(&repeated).await;
    assert_eq!(
        both,
        items(&topic(&p.base, "json", "category=xa-hoi,thoi-su")).await
    );
    let thoi_su = items(&topic(&p.base, "json", "category=thoi-su")).await;
    let xa_hoi = items(&topic(&p.base, "json", "category=xa-hoi")).await;
    assert!(!thoi_su.is_empty() && !xa_hoi.is_empty());
    assert!(both.len() >= thoi_su.len().max(xa_hoi.len()), "{both:?}");
    let tagged = |name: &str| both.iter().filter(|(_, c)| c == name).count();
    assert!(tagged("Thời sự") > 0 && tagged("Xã hội") > 0, "{both:?}");
    for (title, _) in &both {
        assert!(
            thoi_su.iter().chain(&xa_hoi).any(|(t, _)| t == title),
            "{title} is in neither category's feed"
        );
    }
    // A province without a query, and with one.
    let lao_cai = items(&topic(&p.base, "json", "province=lao-cai")).await;
    assert!(!lao_cai.is_empty());
    let floods = items(&topic(
        &p.base,
        "json",
        "province=lao-cai&province=yen-bai&q=m%C6%B0a",
    ))
    .await;
    let yen_bai = items(&topic(&p.base, "json", "province=yen-bai")).await;
    for (title, _) in &floods {
        assert!(
            lao_cai.iter().chain(&yen_bai).any(|(t, _)| t == title),
            "{title} is from neither province"
        );
    }
    assert_eq!(
        get(&topic(&p.base, "json", "province=khong-co"), &[])
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn feedparser_and_newsboat_read_topic_feeds() {
    if !client_available("python3", &["-c", "import feedparser"])
        || !client_available("newsboat", &["--version"])
    {
        return;
    }
    let p = published().await;
    // The JSON form is read as JSON in the test above; feedparser reads RSS and Atom.
    let urls: Vec<String> = ["xml", "atom"]
        .iter()
        .map(|ext| topic(&p.base, ext, "q=%22L%C3%A0o%20Cai%22&province=lao-cai"))
        .collect();
    let script = r#"
import feedparser, json, sys
out = []
for url in sys.argv[1:]:
    d = feedparser.parse(url)
    out.append({"url": url, "bozo": bool(d.bozo), "error": str(d.get("bozo_exception", "")),
                "title": d.feed.get("title"), "n": len(d.entries)})
print(json.dumps(out))
"#;
    let mut args = vec!["-c", script];
    args.extend(urls.iter().map(String::as_str));
    let out = tokio::process::Command::new("python3")
        .args(&args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    for r in &results {
        assert_eq!(r["bozo"], false, "{}: {}", r["url"], r["error"]);
        assert_eq!(r["title"], "Lào Cai · “Lào Cai” – tinbao", "{r}");
        assert!(r["n"].as_u64().unwrap() > 0, "{r}");
    }

    let dir = p.app.dir.path();
    let (pool, log) = crate::publish::newsboat_reload(dir, &urls).await;
    let items: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rss_item")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(items > 0, "{log}");
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM rss_feed")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(titles, ["Lào Cai · “Lào Cai” – tinbao"; 2]);
}
