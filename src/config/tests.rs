use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("feeds.toml"), &|_| None)
}

const GOOD: &str = r#"
[polling]
interval = "15m"
max_body = "10MiB"

[digest.schedules]
daily = "0 0 7 * * *"

[[category]]
slug = "thoi-su"
title = "Thời sự"

[[feed]]
id = "baolaocai-thoi-su"
url = "https://baolaocai.vn/rss/thoi-su.rss"
category = "thoi-su"
province = "lao-cai"
"#;

#[test]
fn a_valid_file_becomes_working_values() {
    let c = parse(GOOD).expect("valid");
    assert_eq!(c.polling.interval, Duration::from_secs(900));
    assert_eq!(c.polling.max_body, 10 << 20);
    assert_eq!(c.feeds[0].url.host_str(), Some("baolaocai.vn"));
    assert_eq!(c.feeds[0].province.as_deref(), Some("lao-cai"));
    assert!(c.digest.schedules.contains_key("daily"));
    assert_eq!(c.digest.timezone, chrono_tz::Asia::Ho_Chi_Minh);
    assert!(c.polling.user_agent.starts_with("tinbao/"));
}

#[test]
fn unknown_keys_are_refused_at_their_line_and_column() {
    let err = parse("[polling]\nintreval = \"15m\"\n").unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("feeds.toml:2:1: "), "{text}");
    assert!(text.contains("intreval"), "{text}");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let bad = GOOD
        .replace("\"15m\"", "\"15 minutes\"")
        .replace("category = \"thoi-su\"", "category = \"the-thao\"");
    let err = parse(&bad).unwrap_err();
    assert_eq!(err.problems.len(), 2, "{err}");
    let text = err.to_string();
    assert!(text.contains("feeds.toml:3:12: invalid duration"), "{text}");
    assert!(text.contains("which no [[category]] defines"), "{text}");
}

#[test]
fn duplicate_feed_ids_and_bad_slugs_are_refused() {
    let twice = format!(
        "{GOOD}\n[[feed]]\nid = \"baolaocai-thoi-su\"\nurl = \"https://x.vn/a.rss\"\ncategory = \"thoi-su\"\n"
    );
    assert!(
        parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("used twice")
    );
    let slug = GOOD.replace("slug = \"thoi-su\"", "slug = \"Thời sự\"");
    assert!(
        parse(&slug)
            .unwrap_err()
            .to_string()
            .contains("category slug")
    );
}

#[test]
fn a_five_field_cron_is_refused_with_a_hint() {
    let bad = GOOD.replace("0 0 7 * * *", "0 7 * * *");
    let text = parse(&bad).unwrap_err().to_string();
    assert!(text.contains("seconds first"), "{text}");
}

#[test]
fn a_syntax_error_points_at_the_broken_line() {
    let err = parse("[polling]\ninterval = \"15m\n").unwrap_err();
    assert_eq!(err.problems[0].line, Some(2), "{err}");
}

#[test]
fn environment_overrides_win_over_the_file() {
    let env = |name: &str| {
        (name == "TINBAO_DATABASE_URL").then(|| "postgres://u:p@127.0.0.1/x".to_string())
    };
    let c = Config::parse(GOOD, Path::new("feeds.toml"), &env).expect("valid");
    assert_eq!(c.database.url, "postgres://u:p@127.0.0.1/x");
}

#[test]
fn feed_urls_must_be_http() {
    let bad = GOOD.replace(
        "https://baolaocai.vn/rss/thoi-su.rss",
        "ftp://baolaocai.vn/x",
    );
    assert!(
        parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("http or https")
    );
}

#[test]
fn line_col_counts_characters_not_bytes() {
    assert_eq!(
        line_col("ấp\nđồng = 1", "ấp\n".len() + "đồng".len()),
        (2, 5)
    );
}

#[test]
fn full_text_is_set_per_category_and_overridden_per_feed() {
    let text = format!(
        "{GOOD}full_text = \"div.noi-dung\"\n\n\
         [[category]]\nslug = \"kinh-te\"\ntitle = \"Kinh tế\"\nfull_text = true\n\n\
         [[feed]]\nid = \"lc-kinh-te\"\nurl = \"https://baolaocai.vn/rss/kinh-te.rss\"\ncategory = \"kinh-te\"\n\n\
         [[feed]]\nid = \"lc-kinh-te-2\"\nurl = \"https://baolaocai.vn/rss/kt2.rss\"\ncategory = \"kinh-te\"\nfull_text = false\n"
    );
    let c = parse(&text).expect("valid");
    assert_eq!(
        c.full_text("baolaocai-thoi-su"),
        Some(&FullText::Selector("div.noi-dung".into()))
    );
    assert_eq!(c.full_text("lc-kinh-te"), Some(&FullText::Auto));
    assert_eq!(c.full_text("lc-kinh-te-2"), None);
    assert!(
        c.site_rule("vnexpress.net").is_some(),
        "the shipped rules are read"
    );
}

#[test]
fn a_broken_full_text_selector_is_refused_at_its_line() {
    let err = parse(&format!("{GOOD}full_text = \"div..x\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("feeds.toml:18:13: full_text selector \"div..x\": not a valid CSS selector"),
        "{err}"
    );
    let err = parse(&format!("{GOOD}full_text = \" \"\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty selector"), "{err}");
}

#[test]
fn topic_days_are_bounded() {
    let c = parse(&format!("{GOOD}\n[server]\ntopic_days = 30\n")).expect("valid");
    assert_eq!(c.server.topic_days, Duration::from_secs(30 * 86_400));
    let err = parse("[server]\ntopic_days = 0\n").unwrap_err().to_string();
    assert!(
        err.contains("feeds.toml:2:14: topic_days must be 1 to 366"),
        "{err}"
    );
}
