//! The fuzzer's seed inputs per target.

use std::path::{Path, PathBuf};

pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    if target == "html" {
        return pages();
    }
    if target == "opml" {
        return lists();
    }
    if target == "parse" || target == "remember" {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x != "md"))
            .filter_map(|p| std::fs::read(p).ok())
            .collect();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut others = Vec::new();
        if let Some(home) = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        {
            for index in std::fs::read_dir(home.join("registry/src"))
                .into_iter()
                .flatten()
                .flatten()
            {
                for krate in std::fs::read_dir(index.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if krate.file_name().to_string_lossy().starts_with("feed-rs-") {
                        files_under(&krate.path().join("fixture"), &mut others);
                    }
                }
            }
        }
        files_under(&root.join("../shared/corpus"), &mut others);
        others.retain(|p| {
            let name = p.to_string_lossy();
            !(name.ends_with(".serde.json")
                || name.ends_with(".py")
                || name.ends_with(".md")
                || name.ends_with(".tsv")
                || name.ends_with(".jsonl")
                || name.ends_with(".txt"))
        });
        out.extend(
            others
                .iter()
                .filter_map(|p| std::fs::read(p).ok())
                .filter(|b| b.len() <= 256 * 1024),
        );
        eprintln!("fuzz parse: {} seed documents", out.len() + 3);
        out.push(b"<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry><title>A</title><content src=\"x\"/></entry></feed>".to_vec());
        out.push(b"<rdf:RDF><item><title>B</title></item></rdf:RDF>".to_vec());
        out.push(
            br#"{"version":"https://jsonfeed.org/version/1.1","items":[{"id":"1","title":"C"}]}"#
                .to_vec(),
        );
        return out;
    }
    [
        "\"Lào Cai\" lũ\nMưa lũ ở Lào Cai",
        "lao cai -\"Hà Nội\"\nLào Cai, Hà Nội",
        "Bát Xát OR Sa Pa\nSa Pa có băng giá",
        "-\"xổ số\" giá chè\nGiá chè tăng",
        "thuỷ điện hoà bình\nThủy điện Hòa Bình",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Provincial-style pages: a section list and articles with menus, related boxes and footers,
/// in UTF-8, in windows-1258 and decomposed; plus any HTML file in ../shared/corpus.
fn pages() -> Vec<Vec<u8>> {
    let story = |n: u32| {
        format!(
            "<article class=\"story\"><h3><a href=\"/tin/{n}.html\">Bát Xát khắc phục mưa lũ {n}</a></h3>\
             <time datetime=\"2026-12-05T07:30:00+07:00\">05/12/2026 - 07:30</time><p>Tóm tắt {n}.</p></article>"
        )
    };
    let list = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Thời sự</title></head><body>\
         <nav><a href=\"/\">Trang chủ</a></nav><div class=\"list\">{}</div>\
         <ul><li class=\"tin\"><a href=\"/b.html\">Tin cùng chuyên mục</a></li></ul></body></html>",
        (1..6).map(story).collect::<String>()
    );
    let para = "<p>Trận lũ quét đêm qua tại xã Trịnh Tường, huyện Bát Xát đã cuốn trôi nhiều hoa màu \
                và làm hư hỏng tuyến đường liên xã; lực lượng chức năng đang khắc phục hậu quả.</p>";
    let article = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Lũ quét</title></head><body>\
         <nav class=\"menu\"><a href=\"/\">Trang chủ</a></nav><article><h1>Lũ quét ở Bát Xát</h1>\
         <p class=\"sapo\">Mưa lớn kéo dài.</p><div class=\"noi-dung\">{}<figure><img src=\"/a.jpg\"></figure>\
         <figure><img src=\"/b.jpg\"></figure><table><tr><td>Bảng</td></tr></table></div>\
         <div class=\"lien-quan\"><a href=\"/c\">Tin khác</a></div></article>\
         <footer>Báo Lào Cai</footer><script>var x = \"<p>\";</script></body></html>",
        para.repeat(6)
    );
    let decomposed: String = {
        use unicode_normalization::UnicodeNormalization;
        article.nfd().collect()
    };
    let legacy = {
        let text = article.replace("charset=\"utf-8\"", "charset=\"windows-1258\"");
        encoding_rs::WINDOWS_1258.encode(&text).0.into_owned()
    };
    let mut out = vec![
        list.into_bytes(),
        article.into_bytes(),
        decomposed.into_bytes(),
        legacy,
        b"<html><body><div><div><div><p>x</p></div></div></div></body></html>".to_vec(),
    ];
    let mut files = Vec::new();
    files_under(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
        &mut files,
    );
    out.extend(
        files
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "html" || x == "htm"))
            .filter_map(|p| std::fs::read(p).ok())
            .filter(|b| b.len() <= 256 * 1024),
    );
    eprintln!("fuzz html: {} seed pages", out.len());
    out
}

/// OPML lists in the shapes readers export (folders, nesting, entities, a bare feed outline),
/// and a page advertising feeds.
fn lists() -> Vec<Vec<u8>> {
    let list = r#"<?xml version="1.0" encoding="utf-8"?>
<opml version="2.0"><head><title>Xuất &amp; nhập</title></head><body>
<outline text="Thời sự" title="Thời sự">
  <outline type="rss" text="Báo Lào Cai" xmlUrl="https://baolaocai.vn/rss/thoi-su.rss" htmlUrl="https://baolaocai.vn/"/>
  <outline text="Nhóm"><outline type="rss" text="Yên Bái &#8211; Kinh tế" xmlUrl="http://baoyenbai.com.vn/rss?a=1&amp;b=2"/></outline>
</outline>
<outline type="rss" text="VnExpress" xmlUrl="https://vnexpress.net/rss/tin-moi-nhat.rss"/>
</body></opml>"#;
    let page = r#"<html><head><link rel="alternate" type="application/rss+xml" title="Thời sự" href="/rss/thoi-su.rss">
<link rel="alternate" type="application/atom+xml" href="//cdn.baolaocai.vn/atom.xml"></head>
<body><a href="/rss.html">RSS</a><a href="feed/">Feed</a><a href="javascript:x()">RSS</a></body></html>"#;
    vec![
        list.as_bytes().to_vec(),
        page.as_bytes().to_vec(),
        b"<opml><body/></opml>".to_vec(),
    ]
}
