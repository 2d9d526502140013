//! A mutation fuzzer for the parsers, on stable Rust with no extra crates: each target takes seed
//! inputs (the bundled sample feeds, feed-rs's fixtures where cargo unpacked the crate, and
//! ../shared/corpus when it is beside the repository; provincial-style list and article pages;
//! the topic queries of the docs), mutates
//! them (byte flips, cuts, repeats, splices, inserted markup and Vietnamese text, and whole
//! elements deleted, repeated, nested or moved between documents), and runs the real entry point
//! on each. A panic, or an input slower than the limit, is a finding: the input is written to
//! `target/fuzz/<target>/` and the run exits 1.
//!
//!   cargo run --release --example fuzz -- parse 120     # the feed chain: bytes -> items
//!   cargo run --release --example fuzz -- remember 120  # entry memory against whole reads
//!   cargo run --release --example fuzz -- html 120      # section pages and article bodies
//!   cargo run --release --example fuzz -- opml 60       # OPML lists, and discovery on pages
//!   cargo run --release --example fuzz -- query 60      # the topic query parser and matcher
//!   cargo run --release --example fuzz -- all 60        # each target for 60 s
//!   cargo run --release --example fuzz -- replay html target/fuzz/html/slow-1   # a finding again
//!
//! Prints executions, findings, the feed-rs panics the parse chain contained (kept as
//! `contained-N`: each is a document whose items are lost) and the slowest input's time. Deterministic for a
//! given `FUZZ_SEED` (default 1), so a finding can be replayed.

mod seeds;

use seeds::seeds;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// An input slower than this is a finding (the fetch timeout is 20 s; a document must parse in a
/// small part of it).
const SLOW: Duration = Duration::from_secs(2);

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| "all".into());
    if target == "replay" {
        // `replay TARGET FILE…`: each saved input run again, with its time.
        let target = args.next().unwrap_or_default();
        for file in args {
            let input = std::fs::read(&file).unwrap_or_else(|e| panic!("{file}: {e}"));
            let started = Instant::now();
            exercise(&target, &input);
            println!("{file}: {:.1} ms", started.elapsed().as_secs_f64() * 1000.0);
        }
        return;
    }
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(30);
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let targets: Vec<&str> = match target.as_str() {
        "all" => vec!["parse", "remember", "html", "opml", "query"],
        "parse" | "remember" | "html" | "opml" | "query" => vec![target.as_str()],
        other => {
            eprintln!("fuzz: unknown target {other:?} (parse, remember, html, opml, query, all)");
            std::process::exit(2);
        }
    };
    // A panic is reported by the loop below with its input; the default message is enough.
    let mut found = 0;
    for t in targets {
        found += run(t, Duration::from_secs(seconds), seed);
    }
    std::process::exit(if found > 0 { 1 } else { 0 });
}

/// Runs `target` for `budget`; returns the number of findings.
fn run(target: &str, budget: Duration, seed: u64) -> usize {
    let seeds = seeds(target);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/fuzz")
        .join(target);
    let started = Instant::now();
    let (mut runs, mut findings) = (0u64, 0usize);
    let mut slowest = (Duration::ZERO, Vec::new());
    while started.elapsed() < budget {
        let base = &seeds[rng.below(seeds.len())];
        let input = mutate(base, &seeds, &mut rng);
        let one = Instant::now();
        let outcome = std::panic::catch_unwind(|| exercise(target, &input));
        let took = one.elapsed();
        runs += 1;
        if took > slowest.0 {
            slowest = (took, input.clone());
        }
        let problem = match outcome {
            Err(_) => Some("panic"),
            Ok(()) if took > SLOW => Some("slow"),
            Ok(()) => None,
        };
        if let Some(kind) = problem {
            findings += 1;
            let path = save(&dir, kind, runs, &input);
            eprintln!("fuzz {target}: {kind} ({took:?}) on {}", path.display());
        }
    }
    println!(
        "fuzz {target}: {runs} executions in {:.0} s, {findings} findings, {} parser panics contained, slowest input {:.1} ms ({} bytes)",
        started.elapsed().as_secs_f64(),
        CONTAINED.swap(0, std::sync::atomic::Ordering::Relaxed),
        slowest.0.as_secs_f64() * 1000.0,
        slowest.1.len()
    );
    // Kept for `replay`, found or not: the input to look at when a target slows down.
    if !slowest.1.is_empty() {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("slowest"), &slowest.1);
    }
    findings
}

/// Documents on which feed-rs panicked and the parse chain contained it (the document's error,
/// nothing printed): not findings, but counted and kept, since each is a document lost.
static CONTAINED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn context() -> tinbao::reader::parser::ParseContext {
    tinbao::reader::parser::ParseContext {
        base: url::Url::parse("https://baolaocai.vn/rss/thoi-su.rss").ok(),
        http_charset: None,
        timezone: chrono_tz::Asia::Ho_Chi_Minh,
        now: chrono::DateTime::from_timestamp(1_764_300_000, 0).unwrap_or_default(),
    }
}

/// The entry memory against a whole read: the document without its first entry is read and
/// remembered, then the document itself is read against that memory. Every item read must be
/// exactly what a whole read makes of the entry with the same identity.
fn remember(input: &[u8]) {
    use tinbao::reader::{parser, skim};
    let ctx = context();
    let (Ok(text), Ok(whole)) = (std::str::from_utf8(input), parser::parse(input, &ctx)) else {
        return;
    };
    let Some(spans) = skim::entry_spans(text) else {
        return;
    };
    let Some(first) = spans.first() else {
        return;
    };
    let before = skim::cut(text, std::slice::from_ref(first));
    let salt = parser::salt(&ctx, "");
    let Ok(earlier) = parser::parse_remembering(before.as_bytes(), &ctx, None, salt) else {
        return;
    };
    let Ok(read) = parser::parse_remembering(text.as_bytes(), &ctx, earlier.memory.as_ref(), salt)
    else {
        panic!("the whole document parses, but not against the memory of its older form");
    };
    for item in &read.parsed.items {
        if let Some(same) = whole.items.iter().find(|w| w.key == item.key) {
            assert_eq!(
                same, item,
                "an item read against the memory differs from a whole read"
            );
        }
    }
}

/// A page read both ways tinbao reads HTML: as a section page through list selectors, and as an
/// article through readability, a site rule and a selector.
fn html(input: &[u8]) {
    use tinbao::config::FullText;
    let ctx = context();
    let list = tinbao::config::HtmlSelectors {
        item: "article.story, li.tin".into(),
        title: "h3, a".into(),
        link: "a".into(),
        date: Some("time, .story__time".into()),
        summary: Some("p".into()),
    };
    let timed = std::env::var_os("FUZZ_STEPS").is_some();
    let step = |name: &str, started: Instant| {
        if timed {
            println!(
                "  {name}: {:.1} ms",
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
    };
    let t = Instant::now();
    let _ = tinbao::reader::html_source::extract(input, &ctx, &list);
    step("section page", t);
    let url = url::Url::parse("https://baolaocai.vn/bai-viet/1.html").expect("url");
    let rule = tinbao::config::sites::SiteRule {
        hosts: vec!["baolaocai.vn".into()],
        body: "p.sapo, article .noi-dung".into(),
        remove: vec![".lien-quan".into(), "figure + figure".into()],
    };
    use tinbao::reader::article::extract;
    let t = Instant::now();
    let _ = extract(input, Some("text/html"), &url, &FullText::Auto, None);
    step("readability", t);
    let t = Instant::now();
    let _ = extract(input, None, &url, &FullText::Auto, Some(&rule));
    step("site rule", t);
    let t = Instant::now();
    let selector = FullText::Selector("div.noi-dung p".into());
    let _ = extract(input, Some("text/html"), &url, &selector, None);
    step("selector", t);
}

/// An OPML list read as `tinbao import opml` reads it and added to a feeds.toml; the same bytes
/// as a page searched for feeds.
fn opml(input: &[u8]) {
    if let Ok(outlines) = tinbao::config::opml::parse(input) {
        let text = "[[category]]\nslug = \"thoi-su\"\ntitle = \"Thời sự\"\n";
        let path = Path::new("feeds.toml");
        let _ = tinbao::config::edit::add_outlines(text, path, &outlines, ("tong-hop", "Tổng hợp"));
    }
    let base = url::Url::parse("https://baolaocai.vn/").expect("url");
    let _ = tinbao::reader::discover::candidates(&String::from_utf8_lossy(input), &base);
}

fn exercise(target: &str, input: &[u8]) {
    match target {
        "remember" => remember(input),
        "parse" => {
            let ctx = context();
            if let Err(e) = tinbao::reader::parser::parse(input, &ctx)
                && e.to_string().contains("internal error")
            {
                // The first 20 are kept; the rest only counted.
                let n = CONTAINED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n < 20 {
                    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz/parse");
                    save(&dir, "contained", n as u64, input);
                }
            }
        }
        "html" => html(input),
        "opml" => opml(input),
        _ => {
            let text = String::from_utf8_lossy(input);
            let (query, line) = text.split_once('\n').unwrap_or((&text, "Lào Cai mưa lũ"));
            if let Ok(q) = tinbao::text::Query::parse(query) {
                let _ = q.matches(line);
            }
        }
    }
}

/// The span of a whole element in `doc` starting at a random `<name`, up to the end of its
/// first `</name>`; None when the chosen tag is not an opening tag with a closing one.
fn element(doc: &[u8], rng: &mut Rng) -> Option<std::ops::Range<usize>> {
    let opens: Vec<usize> = doc
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] == b'<' && w[1].is_ascii_alphabetic())
        .map(|(i, _)| i)
        .collect();
    let start = *opens.get(rng.below(opens.len()))?;
    let name_end = doc[start + 1..]
        .iter()
        .position(|b| matches!(b, b' ' | b'>' | b'/' | b'\n' | b'\t'))?
        + start
        + 1;
    let mut close = b"</".to_vec();
    close.extend_from_slice(&doc[start + 1..name_end]);
    let end = doc[name_end..]
        .windows(close.len())
        .position(|w| w == close.as_slice())?
        + name_end;
    let end = doc[end..].iter().position(|&b| b == b'>')? + end + 1;
    Some(start..end)
}

/// A random tag boundary (a `<`) in `doc`, or its end.
fn boundary(doc: &[u8], rng: &mut Rng) -> usize {
    let tags: Vec<usize> = doc
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'<')
        .map(|(i, _)| i)
        .collect();
    tags.get(rng.below(tags.len()))
        .copied()
        .unwrap_or(doc.len())
}

/// Pieces that trip parsers: markup, entities, declarations, Vietnamese in several forms.
const PIECES: [&str; 16] = [
    "<",
    ">",
    "&amp;",
    "&#x1F600;",
    "<![CDATA[",
    "]]>",
    "<?xml version=\"1.0\" encoding=\"utf-16\"?>",
    "<item>",
    "</entry>",
    "<media:content url=\"x\"/>",
    "<content src=\"y\"/>",
    "\"",
    "Lào Cai",
    "Lào Cai",
    "\u{feff}",
    "<!DOCTYPE x [<!ENTITY a \"aaaa\">]>",
];

fn mutate(base: &[u8], seeds: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    let mut out = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(9) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.truncate(at),
            2 => {
                let end = (at + rng.below(64)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(
                    at..at,
                    piece
                        .iter()
                        .cycle()
                        .take(piece.len() * (1 + rng.below(8)))
                        .copied(),
                );
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                let end = (from + rng.below(256)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            4 => {
                let piece = PIECES[rng.below(PIECES.len())].as_bytes();
                out.splice(at..at, piece.iter().copied());
            }
            5 => {
                let end = (at + rng.below(32)).min(out.len());
                out.drain(at..end);
            }
            // Structure: a whole element deleted, repeated, or moved into another document.
            6 => {
                if let Some(span) = element(&out, rng) {
                    out.drain(span);
                }
            }
            7 => {
                if let Some(span) = element(&out, rng) {
                    let piece = out[span.clone()].to_vec();
                    let most = if rng.below(8) == 0 { 200 } else { 3 };
                    let times = 1 + rng.below(most);
                    let at = if rng.below(2) == 0 {
                        span.end
                    } else {
                        span.start + 1 + rng.below(span.len().max(1))
                    };
                    let at = at.min(out.len());
                    out.splice(
                        at..at,
                        piece.iter().cycle().take(piece.len() * times).copied(),
                    );
                }
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                if let Some(span) = element(other, rng) {
                    let at = boundary(&out, rng);
                    out.splice(at..at, other[span].iter().copied());
                }
            }
        }
    }
    out
}

fn save(dir: &Path, kind: &str, run: u64, input: &[u8]) -> PathBuf {
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{kind}-{run}"));
    let _ = std::fs::write(&path, input);
    path
}

/// xorshift64*: enough for choosing mutations, and the same sequence for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}
