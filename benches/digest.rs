//! Digest benchmark: building and sending at SMTP speed. 10,000 subscribers with 3 topics each (a
//! deterministic mix of category, province and Vietnamese query topics) and 2,000 new items (40
//! generated feeds over 20 categories and 10 provinces, served on loopback, polled and
//! clustered), then in the same run:
//!  1. tinbao: `Digester::run_due`, as the daemon runs it (every digest built into the outbox and
//!     sent over SMTP to Postfix's `smtp-sink` on loopback, the sends starting with the first
//!     group built; `SEQUENTIAL=1`: `build_due`, then `send_due`, each timed), run in a child
//!     process (this bench re-executed as a worker) so its wall time, CPU time and peak RSS
//!     (VmHWM) are its own;
//!  2. the same `smtp-sink` fed by Postfix's load generator `smtp-source` with the same number of
//!     messages, the same concurrency (8, tinbao's pool size) and one real tinbao digest of about
//!     the average size as the message; its rate is the server's limit.
//!
//! Prints a table and tinbao's rate as a fraction of smtp-source's (the target: >= 0.5).
//!
//! Run: `cargo bench --bench digest` (options: SUBSCRIBERS=10000 ITEMS=2000 FEEDS=40 SESSIONS=8;
//! `WRAP="perf record -g -o /tmp/perf.data"` runs the worker under a profiler; KEEP=1 keeps the
//! folder with the database). Needs Postfix's smtp-sink and smtp-source (Debian package
//! `postfix`); without them it says how to install them and exits.

mod common;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use common::sink::{Sink, find_tool};
use common::{WORDS, serve_feeds};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;
use tinbao::config::Config;
use tinbao::digest::outbox::{Digester, Mailer};
use tinbao::reader::refresh::Refresher;
use tinbao::storage::Store;

/// Set (to the bench folder) when this binary runs as the build-and-send worker.
const WORKER_ENV: &str = "TINBAO_DIGEST_BENCH_WORKER";
/// The digest clock, in Unix seconds, handed to the worker.
const NOW_ENV: &str = "TINBAO_DIGEST_BENCH_NOW";

/// (slug, name, districts and towns mentioned in its news).
const PROVINCES: [(&str, &str, [&str; 4]); 10] = [
    (
        "lao-cai",
        "Lào Cai",
        ["Bát Xát", "Sa Pa", "Bắc Hà", "Mường Khương"],
    ),
    (
        "yen-bai",
        "Yên Bái",
        ["Mù Cang Chải", "Trạm Tấu", "Lục Yên", "Văn Chấn"],
    ),
    (
        "ha-giang",
        "Hà Giang",
        ["Đồng Văn", "Mèo Vạc", "Quản Bạ", "Hoàng Su Phì"],
    ),
    (
        "dien-bien",
        "Điện Biên",
        ["Mường Nhé", "Tủa Chùa", "Mường Chà", "Mường Ảng"],
    ),
    (
        "son-la",
        "Sơn La",
        ["Mộc Châu", "Thuận Châu", "Sông Mã", "Bắc Yên"],
    ),
    (
        "lai-chau",
        "Lai Châu",
        ["Sìn Hồ", "Phong Thổ", "Tam Đường", "Than Uyên"],
    ),
    (
        "quang-ninh",
        "Quảng Ninh",
        ["Hạ Long", "Móng Cái", "Cô Tô", "Vân Đồn"],
    ),
    (
        "nghe-an",
        "Nghệ An",
        ["Kỳ Sơn", "Tương Dương", "Quỳ Châu", "Diễn Châu"],
    ),
    (
        "dak-lak",
        "Đắk Lắk",
        ["Buôn Ma Thuột", "Krông Pắc", "Ea Súp", "Buôn Đôn"],
    ),
    (
        "can-tho",
        "Cần Thơ",
        ["Ninh Kiều", "Cái Răng", "Phong Điền", "Thốt Nốt"],
    ),
];

/// (slug, title, words typical of its stories).
const CATEGORIES: [(&str, &str, [&str; 5]); 20] = [
    (
        "thoi-su",
        "Thời sự",
        [
            "chỉ đạo",
            "kiểm tra",
            "tổng kết",
            "triển khai",
            "tiếp xúc cử tri",
        ],
    ),
    (
        "kinh-te",
        "Kinh tế",
        [
            "tăng trưởng",
            "xuất khẩu",
            "lãi suất",
            "giá vàng",
            "thu ngân sách",
        ],
    ),
    (
        "xa-hoi",
        "Xã hội",
        ["hộ nghèo", "an sinh", "nhà ở", "việc làm", "người cao tuổi"],
    ),
    (
        "giao-duc",
        "Giáo dục",
        [
            "tuyển sinh",
            "học sinh giỏi",
            "giáo viên",
            "học bổng",
            "thi tốt nghiệp",
        ],
    ),
    (
        "y-te",
        "Y tế",
        [
            "sốt xuất huyết",
            "tiêm chủng",
            "bác sĩ",
            "bảo hiểm y tế",
            "ngộ độc",
        ],
    ),
    (
        "phap-luat",
        "Pháp luật",
        ["khởi tố", "ma túy", "lừa đảo", "xét xử", "buôn lậu"],
    ),
    (
        "the-thao",
        "Thể thao",
        [
            "bóng đá",
            "huy chương",
            "giải đấu",
            "vận động viên",
            "việt dã",
        ],
    ),
    (
        "van-hoa",
        "Văn hóa",
        ["lễ hội", "di sản", "nghệ nhân", "dân ca", "thổ cẩm"],
    ),
    (
        "du-lich",
        "Du lịch",
        [
            "du khách",
            "homestay",
            "ruộng bậc thang",
            "lưu trú",
            "điểm đến",
        ],
    ),
    (
        "nong-nghiep",
        "Nông nghiệp",
        ["lúa", "cà phê", "chăn nuôi", "thu hoạch", "giống mới"],
    ),
    (
        "moi-truong",
        "Môi trường",
        [
            "rác thải",
            "ô nhiễm",
            "cháy rừng",
            "trồng rừng",
            "nước sạch",
        ],
    ),
    (
        "giao-thong",
        "Giao thông",
        ["cao tốc", "tai nạn", "quốc lộ", "sửa chữa cầu", "xe khách"],
    ),
    (
        "quoc-phong",
        "Quốc phòng",
        [
            "biên phòng",
            "dân quân",
            "huấn luyện",
            "cột mốc",
            "tuần tra",
        ],
    ),
    (
        "cong-nghe",
        "Công nghệ",
        [
            "chuyển đổi số",
            "dịch vụ công",
            "trí tuệ nhân tạo",
            "cáp quang",
            "ứng dụng",
        ],
    ),
    (
        "bat-dong-san",
        "Bất động sản",
        [
            "đất đai",
            "quy hoạch",
            "giải phóng mặt bằng",
            "đấu giá",
            "tái định cư",
        ],
    ),
    (
        "doanh-nghiep",
        "Doanh nghiệp",
        [
            "doanh nghiệp",
            "hợp đồng",
            "vốn điều lệ",
            "khởi nghiệp",
            "nhà máy",
        ],
    ),
    (
        "dan-toc",
        "Dân tộc",
        [
            "đồng bào",
            "người Mông",
            "người Dao",
            "người Thái",
            "già làng",
        ],
    ),
    (
        "xay-dung-dang",
        "Xây dựng Đảng",
        ["kết nạp", "đại hội", "kiểm điểm", "nghị quyết", "bí thư"],
    ),
    (
        "giai-tri",
        "Giải trí",
        ["ca sĩ", "phim", "âm nhạc", "sân khấu", "cuộc thi"],
    ),
    (
        "doi-song",
        "Đời sống",
        ["chợ phiên", "ẩm thực", "gia đình", "thời tiết", "mưa rét"],
    ),
];

/// Rarer subjects any story may be about: what most query topics ask for.
const EVENTS: &[&str] = &[
    "lũ quét",
    "sạt lở đất",
    "mưa đá",
    "rét đậm rét hại",
    "động đất",
    "bão số 3",
    "dịch tả lợn châu Phi",
    "giá phân bón",
    "điện mặt trời",
    "thủy điện nhỏ",
    "khai thác cát",
    "khai thác vàng trái phép",
    "tàu du lịch",
    "cáp treo",
    "sân bay",
    "đường sắt",
    "hầm đường bộ",
    "cầu treo",
    "trường bán trú",
    "bếp ăn tập thể",
    "nước sinh hoạt",
    "điện lưới quốc gia",
    "sóng di động",
    "ngân hàng chính sách",
    "vay vốn ưu đãi",
    "hợp tác xã chè",
    "quế hữu cơ",
    "mận tam hoa",
    "cá hồi",
    "sâm Ngọc Linh",
    "thảo quả",
    "dược liệu",
    "cao su",
    "hồ tiêu",
    "sầu riêng",
    "thanh long",
    "lúa gạo xuất khẩu",
    "tôm hùm",
    "nuôi cá lồng",
    "mật ong bạc hà",
    "bò sữa",
    "chợ biên giới",
    "cửa khẩu Kim Thành",
    "xuất nhập khẩu tiểu ngạch",
    "hàng giả",
    "pháo nổ",
    "cờ bạc",
    "tín dụng đen",
    "mua bán người",
    "xe quá tải",
    "nồng độ cồn",
    "đuối nước",
    "cứu hộ cứu nạn",
    "tìm kiếm người mất tích",
    "hiến máu",
    "phẫu thuật",
    "bệnh sởi",
    "bạch hầu",
    "cúm gia cầm",
    "ngộ độc nấm",
    "bệnh dại",
    "tảo hôn",
    "xóa nhà tạm",
    "nhà đại đoàn kết",
    "kiên cố hóa kênh mương",
    "nông thôn mới nâng cao",
    "sáp nhập xã",
    "tinh gọn bộ máy",
    "chính quyền hai cấp",
    "cải cách hành chính",
    "thu hút đầu tư",
    "khu công nghiệp",
    "giải ngân vốn đầu tư công",
    "chợ đêm",
    "lễ hội hoa ban",
    "Tết Nguyên đán",
    "mùa lúa chín",
    "chạy marathon",
    "giải bóng chuyền",
    "Hội khỏe Phù Đổng",
    "Sea Games",
    "đua thuyền",
    "ẩm thực đường phố",
    "làng nghề",
    "gốm Bát Tràng",
    "chữ Nôm",
    "khảo cổ",
    "bảo tàng",
    "thư viện số",
    "vệ tinh",
    "robot",
    "thanh toán không dùng tiền mặt",
    "căn cước",
    "định danh điện tử",
    "lừa đảo qua mạng",
    "tin giả",
    "an toàn thực phẩm",
    "giá xăng dầu",
    "lương tối thiểu",
    "bảo hiểm xã hội",
];

/// Everyday words of provincial news: lower-case entries of the shared list (its place names
/// would make place queries match nearly every story).
fn fillers() -> Vec<&'static str> {
    WORDS
        .iter()
        .copied()
        .filter(|w| w.chars().next().is_some_and(char::is_lowercase))
        .collect()
}

/// A small deterministic generator (xorshift64*), seeded per feed, item or subscriber.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        r.next();
        r
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, list: &'a [T]) -> &'a T {
        &list[self.below(list.len())]
    }
    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The category and province (indices) of generated feed `f`: every category has two feeds in
/// two provinces, every province four feeds.
fn feed_place(f: usize) -> (usize, usize) {
    (
        f % CATEGORIES.len(),
        (f + f / CATEGORIES.len()) % PROVINCES.len(),
    )
}

/// One feed of `items` stories of its category and province, published over the last day.
fn feed_doc(f: usize, items: usize, now: DateTime<Utc>) -> String {
    let (c, p) = feed_place(f);
    let (_, cat_title, cat_words) = CATEGORIES[c];
    let (_, province, places) = PROVINCES[p];
    let fillers = fillers();
    let vn = FixedOffset::east_opt(7 * 3600).expect("offset");
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>\
         <title>Báo {province} – {cat_title} ({f})</title><link>https://bao{f}.vn/</link>"
    );
    for i in 0..items {
        let g = (f * items + i) as u64;
        let mut rng = Rng::new(g + 1);
        let mut words: Vec<String> = Vec::new();
        for _ in 0..18 {
            words.push(rng.pick(&fillers).to_string());
        }
        let first = rng.below(5);
        let second = (first + 1 + rng.below(4)) % 5;
        words.push(cat_words[first].into());
        words.push(cat_words[second].into());
        let event_count = match rng.below(20) {
            0..=13 => 0,
            14..=18 => 1,
            _ => 2,
        };
        let events: Vec<&str> = (0..event_count).map(|_| *rng.pick(EVENTS)).collect();
        words.extend(events.iter().map(|e| e.to_string()));
        let named = rng.chance(60);
        if named {
            words.push(province.into());
        }
        let place = rng.chance(15).then(|| *rng.pick(&places));
        words.extend(place.map(String::from));
        // Numbers of this story only (dates, money, people), as real reports have.
        words.push(format!("ngày {}/{}", 1 + g % 28, 1 + (g / 28) % 12));
        words.push(format!("{} tỷ đồng", 3 + (g * 37) % 997));
        words.push(format!("{} hộ dân", 11 + (g * 53) % 1999));
        for k in (1..words.len()).rev() {
            words.swap(k, rng.below(k + 1));
        }
        let body: Vec<String> = words
            .chunks(7)
            .map(|s| {
                let mut s = s.join(" ");
                if let Some(first) = s.chars().next() {
                    s.replace_range(..first.len_utf8(), &first.to_uppercase().to_string());
                }
                s + "."
            })
            .collect();
        let mut title = vec![cat_words[first].to_string()];
        title.extend(events.first().map(|e| e.to_string()));
        title.push(match place {
            Some(p) => p.to_string(),
            None if named => province.to_string(),
            None => rng.pick(&fillers).to_string(),
        });
        title.push(rng.pick(&fillers).to_string());
        title.push(format!("{} hộ dân", 11 + (g * 53) % 1999));
        let title = title.join(" ");
        let published = (now - Duration::seconds(60 + 41 * g as i64)).with_timezone(&vn);
        out.push_str(&format!(
            "<item><title>{title}</title><link>https://bao{f}.vn/tin/{i}.html</link><guid>bao{f}-{i}</guid>\
             <description><![CDATA[<p><img src=\"/anh/{i}.jpg\" width=\"200\"> {}</p><p><a href=\"/tin/{i}.html\">Xem tiếp</a></p>]]></description>\
             <pubDate>{}</pubDate></item>",
            body.join(" "),
            published.to_rfc2822()
        ));
    }
    out.push_str("</channel></rss>");
    out
}

/// Subscriber `n`'s three topics: a deterministic mix of the kinds people ask for.
fn topics(n: usize, feeds: usize) -> Vec<String> {
    let mut rng = Rng::new(0x5EED_0000 + n as u64);
    let fillers = fillers();
    let mut out: Vec<String> = Vec::new();
    while out.len() < 3 {
        let (c, p) = feed_place(rng.below(feeds));
        let (cat, _, cat_words) = CATEGORIES[c];
        let (province, province_name, places) = PROVINCES[p];
        let event = *rng.pick(EVENTS);
        let topic = match rng.below(100) {
            // A subject anywhere, written as words or as a phrase.
            0..=11 => format!("query={event}"),
            12..=23 => format!("query=\"{event}\""),
            // The usual shape: a category in a province, about the province and a subject.
            24..=39 => format!(
                "category={cat} province={province} query=\"{province_name}\" {}",
                rng.pick(&cat_words)
            ),
            // A subject in one province.
            40..=53 => format!("province={province} query={event}"),
            // A district or town by name (a capitalised run is a phrase).
            54..=61 => format!("query={}", rng.pick(&places)),
            62..=67 => format!("query=\"{}\"", rng.pick(&places)),
            // Two subjects of a category.
            68..=81 => {
                let a = rng.below(5);
                let b = (a + 1 + rng.below(4)) % 5;
                format!(
                    "category={cat} query=\"{}\" \"{}\"",
                    cat_words[a], cat_words[b]
                )
            }
            // Either of two subjects, without an everyday word.
            82..=96 => format!(
                "query=\"{event}\" OR \"{}\" -\"{}\"",
                rng.pick(EVENTS),
                rng.pick(&fillers)
            ),
            // A category in one province.
            97 | 98 => format!("category={cat} province={province}"),
            // A whole category.
            _ => format!("category={cat}"),
        };
        if !out.contains(&topic) {
            out.push(topic);
        }
    }
    out
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Ok(dir) = std::env::var(WORKER_ENV) {
        worker(Path::new(&dir));
        return;
    }
    if let Ok(dir) = std::env::var("REPLAY") {
        replay(Path::new(&dir));
        return;
    }
    let subscribers = env_usize("SUBSCRIBERS", 10_000);
    let items = env_usize("ITEMS", 2_000);
    let feeds = env_usize("FEEDS", 40).max(1);
    let sessions = env_usize("SESSIONS", 8);
    let per_feed = items.div_ceil(feeds);

    let (Some(sink_bin), Some(source_bin)) = (find_tool("smtp-sink"), find_tool("smtp-source"))
    else {
        println!(
            "digest benchmark skipped: Postfix's smtp-sink and smtp-source are not installed."
        );
        println!("Install them (Debian; no mail system gets configured or started) with:");
        println!(
            "  echo \"postfix postfix/main_mailer_type select No configuration\" | debconf-set-selections"
        );
        println!(
            "  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix"
        );
        return;
    };

    let dir = tempfile::tempdir().expect("temp dir");
    let sink = Sink::start(&sink_bin, dir.path());
    let smtp_url = format!("smtp://127.0.0.1:{}", sink.port);

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let started = Utc::now();
    let docs: Arc<Vec<String>> =
        Arc::new((0..feeds).map(|f| feed_doc(f, per_feed, started)).collect());
    let ports = runtime.block_on(serve_feeds(&["127.0.0.1".to_string()], docs));
    let (ip, port) = &ports[0];

    let mut config = format!(
        "[server]\nbase_url = \"https://tinbao.example.vn/\"\n\n[database]\nurl = \"sqlite://bench.db\"\n\n\
         [polling]\nconcurrency = 16\nper_host = 16\n\n\
         [smtp]\nurl = \"{smtp_url}\"\nfrom = \"Tin tỉnh <ban-tin@tinbao.example.vn>\"\n\n\
         [digest]\ntimezone = \"Asia/Ho_Chi_Minh\"\n"
    );
    for (slug, title, _) in CATEGORIES {
        config.push_str(&format!(
            "\n[[category]]\nslug = \"{slug}\"\ntitle = \"{title}\"\n"
        ));
    }
    for (slug, name, _) in PROVINCES {
        config.push_str(&format!(
            "\n[[province]]\nslug = \"{slug}\"\nname = \"{name}\"\n"
        ));
    }
    for f in 0..feeds {
        let (c, p) = feed_place(f);
        config.push_str(&format!(
            "\n[[feed]]\nid = \"bao-{f}\"\nurl = \"http://{ip}:{port}/feed/{f}\"\ncategory = \"{}\"\nprovince = \"{}\"\n",
            CATEGORIES[c].0, PROVINCES[p].0
        ));
    }
    let config_path = dir.path().join("feeds.toml");
    std::fs::write(&config_path, &config).expect("write config");
    let config = Arc::new(Config::load(&config_path).expect("config"));

    // The digest clock: ten minutes ahead, so every `immediate` subscriber's tick is due.
    let now = Utc::now() + Duration::minutes(10);
    let dry_dir = dir.path().join("dry-run");
    let setup = runtime.block_on(async {
        let store = Store::open(&config.database.url, &config.base_dir())
            .await
            .expect("store");
        store
            .sync_feeds(&config.feeds, Utc::now())
            .await
            .expect("sync");
        // Subscribers first, so every item polled afterwards is new to them.
        let t = Instant::now();
        for n in 0..subscribers {
            let email = format!(
                "ban-doc-{n:05}@{}",
                ["gmail.com", "yahoo.com.vn", "vnpt.vn", "fpt.vn"][n % 4]
            );
            let new = tinbao::cli::validate_subscriber(
                &config,
                &email,
                &topics(n, feeds),
                "immediate",
                None,
            )
            .unwrap_or_else(|e| panic!("subscriber {n}: {e}"));
            store
                .add_subscriber(&new, Utc::now())
                .await
                .expect("add subscriber");
        }
        let add = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let refresher = Refresher::new(store.clone(), config.clone()).expect("refresher");
        let polled = refresher.poll_round(true).await.expect("poll");
        assert_eq!(polled.new, feeds * per_feed, "every generated item is new");
        // The daemon's next stage: items join the stories other sources already carry.
        refresher.cluster_new_items().await.expect("clustering");
        let poll = t.elapsed().as_secs_f64();
        // The dry run renders every digest owed (recording nothing): their real sizes.
        let digester = Digester::new(store.clone(), config.clone())
            .await
            .expect("digester");
        let t = Instant::now();
        let rendered = digester.dry_run(now, &dry_dir).await.expect("dry run");
        let dry = t.elapsed().as_secs_f64();
        store.close().await;
        (add, poll, rendered, dry)
    });
    let (add_secs, poll_secs, rendered, dry_secs) = setup;
    let (avg_size, sample) = sample_message(&dry_dir, dir.path());
    let _ = std::fs::remove_dir_all(&dry_dir);

    println!(
        "digest benchmark: {subscribers} subscribers x 3 topics, {} new items ({feeds} feeds, {} categories, {} provinces), schedule immediate",
        feeds * per_feed,
        CATEGORIES.len(),
        PROVINCES.len()
    );
    println!(
        "setup: subscribers added in {add_secs:.1} s, items polled and clustered in {poll_secs:.1} s; dry run rendered {rendered} digests in {dry_secs:.1} s, average {avg_size} bytes"
    );

    // tinbao: build and send in a child process.
    let wrap: Vec<String> = std::env::var("WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    if std::env::var_os("KEEP").is_some() {
        // For REPLAY: the outbox as it was before the worker ran, and the digest clock.
        std::fs::copy(
            dir.path().join("bench.db"),
            dir.path().join("bench.pristine.db"),
        )
        .expect("copy the database");
        std::fs::write(dir.path().join("now"), now.timestamp().to_string()).expect("write clock");
    }
    let received_before = sink.received();
    let sink_cpu = sink.cpu();
    let run = run_worker(dir.path(), now, &wrap);
    let sink_cpu_tinbao = sink.cpu() - sink_cpu;
    let received_tinbao = sink.received() - received_before;
    let spread = runtime.block_on(deliveries(&dir.path().join("bench.db"), subscribers));
    if run.sent != rendered || received_tinbao != run.sent {
        println!(
            "WARNING: dry run owed {rendered} digests, tinbao sent {}, smtp-sink received {received_tinbao}",
            run.sent
        );
    }
    println!("{spread}");

    // smtp-source: the same number of messages, of the sampled digest, at the same concurrency.
    let count = run.sent.max(1);
    let received_before = sink.received();
    let sink_cpu = sink.cpu();
    let source = run_source(&source_bin, sink.port, &sample, count, sessions);
    let sink_cpu_source = sink.cpu() - sink_cpu;
    let received_source = sink.received() - received_before;
    if received_source != count {
        println!("WARNING: smtp-source sent {count}, smtp-sink received {received_source}");
    }
    drop(sink);
    drop(runtime);

    let rate = |n: usize, secs: f64| n as f64 / secs.max(1e-9);
    let build_send = run.secs;
    let tinbao_rate = rate(run.sent, build_send);
    let source_rate = rate(count, source.wall);
    println!();
    println!(
        "{:<38} {:>9} {:>8} {:>9} {:>14} {:>13}",
        "phase", "wall (s)", "CPU (s)", "msgs/s", "peak RSS (MB)", "sink CPU (s)"
    );
    let mb = |kb: i64| format!("{:.1}", kb as f64 / 1024.0);
    if sequential() {
        let send_secs = run.secs - run.build_secs;
        println!(
            "{:<38} {:>9.3} {:>8.2} {:>9.0} {:>14} {:>13}",
            format!("tinbao build_due ({} digests)", run.digests),
            run.build_secs,
            run.build_cpu,
            rate(run.digests, run.build_secs),
            mb(run.build_rss_kb),
            "-"
        );
        println!(
            "{:<38} {:>9.3} {:>8.2} {:>9.0} {:>14} {:>13}",
            format!("tinbao send_due ({} sent)", run.sent),
            send_secs,
            run.cpu - run.build_cpu,
            rate(run.sent, send_secs),
            mb(run.peak_rss_kb),
            "-"
        );
    }
    println!(
        "{:<38} {:>9.3} {:>8.2} {:>9.0} {:>14} {:>13.2}",
        if sequential() {
            "tinbao build, then send".to_string()
        } else {
            format!("tinbao run_due ({} built and sent)", run.sent)
        },
        build_send,
        run.cpu,
        tinbao_rate,
        mb(run.peak_rss_kb),
        sink_cpu_tinbao
    );
    println!(
        "{:<38} {:>9.3} {:>8.2} {:>9.0} {:>14} {:>13.2}",
        format!(
            "smtp-source -s {sessions} -d ({count} x {} B)",
            sample_len(&sample)
        ),
        source.wall,
        source.cpu,
        source_rate,
        "-",
        sink_cpu_source
    );
    println!();
    println!(
        "tinbao / smtp-source, build + send: {:.2}   (target >= 0.50)",
        tinbao_rate / source_rate
    );
    common::result(
        "digest_build_send",
        &[
            ("wall_s", format!("{build_send:.3}")),
            ("cpu_s", format!("{:.2}", run.cpu)),
            ("throughput", format!("{tinbao_rate:.0}")),
            ("unit", "msgs/s".into()),
            ("rss_mb", format!("{:.1}", run.peak_rss_kb as f64 / 1024.0)),
            ("count", run.sent.to_string()),
            (
                "mode",
                if sequential() {
                    "sequential"
                } else {
                    "overlapped"
                }
                .into(),
            ),
        ],
    );
    common::result(
        "smtp_source",
        &[
            ("wall_s", format!("{:.3}", source.wall)),
            ("cpu_s", format!("{:.2}", source.cpu)),
            ("throughput", format!("{source_rate:.0}")),
            ("unit", "msgs/s".into()),
            ("count", count.to_string()),
        ],
    );
    println!(
        "tinbao ran in a child process (this bench re-executed as the worker{}); its peak RSS is its own VmHWM \
         (after build, then overall); CPU = user + system of building and sending; the whole child took {:.2} s CPU. \
         wait4's ru_maxrss for it, {:.1} MB, also counts the bench parent's RSS at spawn.",
        if wrap.is_empty() { "" } else { ", wrapped" },
        run.total_cpu,
        run.maxrss_kb as f64 / 1024.0
    );
    if std::env::var_os("KEEP").is_some() {
        println!(
            "kept {} (bench.db, feeds.toml, sample.eml)",
            dir.keep().display()
        );
    }
}

/// REPLAY=DIR (a folder kept by KEEP=1): the worker alone, again, on the outbox as it was before
/// the kept run's worker, against a fresh smtp-sink. For profiling and quick comparisons; the
/// full bench (with smtp-source in the same run) is the measurement of record.
fn replay(dir: &Path) {
    let sink = Sink::start(&find_tool("smtp-sink").expect("smtp-sink"), dir);
    std::fs::copy(dir.join("bench.pristine.db"), dir.join("bench.db")).expect("restore database");
    for wal in ["bench.db-wal", "bench.db-shm"] {
        let _ = std::fs::remove_file(dir.join(wal));
    }
    let config = std::fs::read_to_string(dir.join("feeds.toml")).expect("config");
    let old = config
        .lines()
        .find_map(|l| l.strip_prefix("url = \"smtp://"))
        .expect("smtp url")
        .trim_end_matches('"')
        .to_string();
    let config = config.replace(&old, &format!("127.0.0.1:{}", sink.port));
    std::fs::write(dir.join("feeds.toml"), config).expect("write config");
    let now = std::fs::read_to_string(dir.join("now"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .expect("clock");
    let wrap: Vec<String> = std::env::var("WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let run = run_worker(dir, now, &wrap);
    println!(
        "replay: {} digests built and {} sent in {:.3} s ({:.2} s CPU{}), {:.0} msgs/s, peak {:.1} MB; smtp-sink received {}",
        run.digests,
        run.sent,
        run.secs,
        run.cpu,
        if sequential() {
            format!(
                "; the build alone {:.3} s, {:.2} s CPU",
                run.build_secs, run.build_cpu
            )
        } else {
            String::new()
        },
        run.sent as f64 / run.secs,
        run.peak_rss_kb as f64 / 1024.0,
        sink.received()
    );
}

/// SEQUENTIAL=1: build every digest, then send them (`build_due`, `send_due`), each timed on its
/// own; by default `run_due`, where sending starts with the first group built.
fn sequential() -> bool {
    std::env::var_os("SEQUENTIAL").is_some()
}

/// The average size of the dry run's messages, and one of them (about that size) with LF line
/// ends, for smtp-source -F (which appends CRLF to every line).
fn sample_message(dry_dir: &Path, dir: &Path) -> (usize, PathBuf) {
    let mut sizes: Vec<(usize, PathBuf)> = std::fs::read_dir(dry_dir)
        .expect("dry run folder")
        .filter_map(|e| {
            let e = e.ok()?;
            Some((e.metadata().ok()?.len() as usize, e.path()))
        })
        .collect();
    assert!(!sizes.is_empty(), "the dry run rendered no digest");
    sizes.sort();
    let average = sizes.iter().map(|(s, _)| s).sum::<usize>() / sizes.len();
    let closest = sizes
        .iter()
        .min_by_key(|(s, _)| s.abs_diff(average))
        .expect("a digest");
    let text = std::fs::read_to_string(&closest.1).expect("read digest");
    let sample = dir.join("sample.eml");
    std::fs::write(&sample, text.replace("\r\n", "\n")).expect("write sample");
    (average, sample)
}

fn sample_len(sample: &Path) -> usize {
    // As sent: each LF becomes CRLF again.
    let text = std::fs::read_to_string(sample).unwrap_or_default();
    text.len() + text.matches('\n').count()
}

/// How many items each subscriber was owed (from the outbox's ledger).
async fn deliveries(db: &Path, subscribers: usize) -> String {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let Ok(pool) = sqlx::SqlitePool::connect_with(options).await else {
        return "items per digest: (database not readable)".into();
    };
    let mut counts: Vec<i64> =
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries GROUP BY digest_id ORDER BY COUNT(*)")
            .fetch_all(&pool)
            .await
            .unwrap_or_default();
    let stories: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT COALESCE(s.cluster_id, i.id)) FROM items i \
             LEFT JOIN story_index s ON s.item_id = i.id",
    )
    .fetch_one(&pool)
    .await
    .unwrap_or(0);
    pool.close().await;
    if counts.is_empty() {
        return "items per digest: none".into();
    }
    counts.sort_unstable();
    let at = |q: f64| counts[((counts.len() - 1) as f64 * q).round() as usize];
    let total: i64 = counts.iter().sum();
    format!(
        "items owed per digest: min {} / p10 {} / median {} / p90 {} / max {} (mean {:.1}, {} deliveries); {} of {subscribers} subscribers owed nothing; the items are {stories} stories",
        counts[0],
        at(0.1),
        at(0.5),
        at(0.9),
        counts[counts.len() - 1],
        total as f64 / counts.len() as f64,
        total,
        subscribers.saturating_sub(counts.len())
    )
}

/// What the worker reported, plus its own resource usage.
struct WorkerRun {
    digests: usize,
    sent: usize,
    /// Building and sending every digest.
    secs: f64,
    cpu: f64,
    /// With SEQUENTIAL=1: the build alone, before any send (else 0).
    build_secs: f64,
    build_cpu: f64,
    build_rss_kb: i64,
    peak_rss_kb: i64,
    /// wait4's figure: inflated by the parent's RSS at spawn.
    maxrss_kb: i64,
    /// The whole child, start-up included.
    total_cpu: f64,
}

/// Re-executes this bench as the worker and reaps it with wait4 for its peak RSS.
// The child is reaped with wait4 (not Child::wait) to read its own resource usage.
#[allow(clippy::zombie_processes)]
fn run_worker(dir: &Path, now: DateTime<Utc>, wrap: &[String]) -> WorkerRun {
    let mut argv: Vec<String> = wrap.to_vec();
    argv.push(
        std::env::current_exe()
            .expect("own path")
            .to_string_lossy()
            .into_owned(),
    );
    let child = Command::new(&argv[0])
        .args(&argv[1..])
        .env(WORKER_ENV, dir)
        .env(NOW_ENV, now.timestamp().to_string())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start worker");
    let pid = child.id() as libc::pid_t;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout {
        let _ = stdout.read_to_string(&mut out);
    }
    let (status, usage) = reap(pid);
    assert_eq!(status, 0, "worker failed: {out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("worker "))
        .unwrap_or_else(|| panic!("no worker report in {out:?}"));
    let field = |key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} missing from {line:?}"))
    };
    WorkerRun {
        digests: field("digests") as usize,
        sent: field("sent") as usize,
        secs: field("secs"),
        cpu: field("cpu"),
        build_secs: field("build_secs"),
        build_cpu: field("build_cpu"),
        build_rss_kb: field("build_rss_kb") as i64,
        peak_rss_kb: field("peak_rss_kb") as i64,
        maxrss_kb: usage.ru_maxrss,
        total_cpu: cpu_secs(&usage),
    }
}

/// A finished child: its wall time, CPU seconds and peak RSS.
struct Measured {
    wall: f64,
    cpu: f64,
}

#[allow(clippy::zombie_processes)]
fn run_source(bin: &Path, port: u16, sample: &Path, count: usize, sessions: usize) -> Measured {
    let started = Instant::now();
    let child = Command::new(bin)
        .args(["-d", "-s", &sessions.to_string(), "-m", &count.to_string()])
        .args([
            "-f",
            "ban-tin@tinbao.example.vn",
            "-t",
            "ban-doc@example.vn",
        ])
        .arg("-F")
        .arg(sample)
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start smtp-source");
    let (status, usage) = reap(child.id() as libc::pid_t);
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(status, 0, "smtp-source failed");
    Measured {
        wall,
        cpu: cpu_secs(&usage),
    }
}

fn reap(pid: libc::pid_t) -> (i32, libc::rusage) {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid with valid pointers.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4 failed");
    (status, usage)
}

fn cpu_secs(usage: &libc::rusage) -> f64 {
    let t = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

/// This process's peak resident set (VmHWM, KiB). Unlike `ru_maxrss`, it belongs to the
/// address space made at exec, so it leaves out the parent's RSS that a spawned child inherits
/// in its accounting (the bench parent holds the feed server and the dry run).
fn vm_hwm_kb() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn self_usage() -> libc::rusage {
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage of this process into a valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage
}

/// The measured part: build every digest owed at the parent's clock, then send them all.
fn worker(dir: &Path) {
    let now = std::env::var(NOW_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .expect("digest clock");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = Arc::new(Config::load(&dir.join("feeds.toml")).expect("config"));
        let store = Store::open(&config.database.url, &config.base_dir())
            .await
            .expect("store");
        let smtp = config.smtp.as_ref().expect("smtp configured");
        let mailer = Mailer::from_url(&smtp.url, &config.base_dir()).expect("mailer");
        let digester = Digester::new(store.clone(), config.clone())
            .await
            .expect("digester");
        let cpu0 = cpu_secs(&self_usage());
        let t = Instant::now();
        let (built, sent, build_secs, build_cpu, build_hwm) = if sequential() {
            let built = digester.build_due(now).await.expect("build");
            let (secs, cpu, hwm) = (t.elapsed().as_secs_f64(), cpu_secs(&self_usage()), vm_hwm_kb());
            let sent = digester.send_due(&mailer, now).await.expect("send");
            (built, sent, secs, cpu - cpu0, hwm)
        } else {
            // What the daemon and `tinbao digest --now` run: sends start with the first group built.
            let (built, sent) = digester.run_due(&mailer, now, true, &|| true).await;
            (built.expect("build"), sent.expect("send"), 0.0, 0.0, 0)
        };
        let secs = t.elapsed().as_secs_f64();
        let cpu = cpu_secs(&self_usage()) - cpu0;
        assert_eq!(sent.retried + sent.failed, 0, "every digest accepted");
        store.close().await;
        println!(
            "worker digests={} sent={} secs={secs} cpu={cpu} build_secs={build_secs} build_cpu={build_cpu} build_rss_kb={build_hwm} peak_rss_kb={}",
            built.digests,
            sent.sent,
            vm_hwm_kb()
        );
    });
}
