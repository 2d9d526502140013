use super::*;
use crate::config::opml;

const FILE: &str = r#"# Nguồn tin của tỉnh: sửa tay, giữ chú thích.
[database]
url = "sqlite://tinbao.db"

# Chuyên mục
[[category]]
slug = "thoi-su"
title = "Thời sự"

[[feed]]
id = "lao-cai"   # báo tỉnh
url = "https://baolaocai.vn/rss/thoi-su.rss"
category = "thoi-su"
"#;

fn outlines(body: &str) -> Vec<Outline> {
    opml::parse(format!("<opml version=\"2.0\"><body>{body}</body></opml>").as_bytes()).unwrap()
}

/// Whether every line of `old` is in `new`, in order.
fn keeps(old: &str, new: &str) -> bool {
    let mut new = new.lines();
    old.lines().all(|line| new.any(|l| l == line))
}

#[test]
fn slugs_drop_diacritics_and_punctuation() {
    assert_eq!(slug("Thời sự – Chính trị"), "thoi-su-chinh-tri");
    assert_eq!(slug("Đời sống & Xã hội"), "doi-song-xa-hoi");
    assert_eq!(slug("Báo Lào Cai (RSS)"), "bao-lao-cai-rss");
    assert_eq!(slug("–"), "");
}

#[test]
fn outlines_are_appended_keeping_the_file_as_it_was() {
    let list = outlines(
        r#"<outline text="Thời sự">
             <outline text="Báo Lào Cai" xmlUrl="https://baolaocai.vn/rss/thoi-su.rss/"/>
             <outline text="Báo Yên Bái" xmlUrl="http://baoyenbai.com.vn/rss/thoi-su.rss"/>
           </outline>
           <outline text="Kinh tế">
             <outline text="Báo Yên Bái" xmlUrl="http://baoyenbai.com.vn/rss/kinh-te.rss"/>
             <outline text="Lặp lại" xmlUrl="http://baoyenbai.com.vn/rss/kinh-te.rss?utm_source=x"/>
           </outline>
           <outline text="VnExpress" xmlUrl="https://vnexpress.net/rss/tin-moi-nhat.rss"/>"#,
    );
    let plan = add_outlines(
        FILE,
        Path::new("feeds.toml"),
        &list,
        ("nhap", "Nhập từ OPML"),
    )
    .unwrap();
    assert!(
        keeps(FILE, &plan.text),
        "the file's own text is kept:\n{}",
        plan.text
    );
    assert!(plan.text.contains("id = \"lao-cai\"   # báo tỉnh"));
    assert_eq!(
        plan.categories,
        [
            ("kinh-te".to_string(), "Kinh tế".to_string()),
            ("nhap".to_string(), "Nhập từ OPML".to_string())
        ]
    );
    let ids: Vec<&str> = plan.feeds.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(ids, ["bao-yen-bai", "bao-yen-bai-2", "vnexpress"]);
    assert_eq!(
        plan.feeds[0].2, "thoi-su",
        "the folder's title finds the existing category"
    );
    assert_eq!(plan.skipped.len(), 2, "{:?}", plan.skipped);
    assert!(
        plan.skipped[0].contains("“Báo Lào Cai”"),
        "{:?}",
        plan.skipped
    );
    let config = Config::parse(&plan.text, Path::new("feeds.toml"), &|_| None).unwrap();
    assert_eq!(config.feeds.len(), 4);
    assert_eq!(config.feeds[3].title.as_deref(), Some("VnExpress"));
}

#[test]
fn an_import_that_would_break_the_file_is_refused() {
    // An invalid file is refused before anything is planned.
    let broken = format!("{FILE}\n[polling]\ninterval = \"soon\"\n");
    let list = outlines(r#"<outline text="A" xmlUrl="https://a.vn/rss"/>"#);
    let e = add_outlines(&broken, Path::new("feeds.toml"), &list, ("nhap", "Nhập")).unwrap_err();
    assert!(e.contains("feeds.toml:16:12: invalid duration"), "{e}");
}

#[test]
fn the_file_is_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("feeds.toml");
    std::fs::write(&path, FILE).unwrap();
    write_atomically(&path, "# mới\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# mới\n");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1, "no temporary file left behind");
}
