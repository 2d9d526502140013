//! Templates from the operator's folder: overrides, errors that name the file and line.

use super::*;

#[test]
fn a_template_in_the_operators_folder_overrides_the_builtin_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(SUBJECT_TEMPLATE),
        "Tin {{ place }}\n  hôm nay: {{ total }}\n",
    )
    .expect("write");
    let templates = Templates::load(dir.path()).expect("loads");
    assert_eq!(
        templates.overridden(),
        vec![dir.path().join(SUBJECT_TEMPLATE).as_path()]
    );
    let raw = formatted(&view(), &templates);
    let mail = parsed(&raw);
    assert_eq!(header(&mail, "Subject"), "Tin Lào Cai hôm nay: 7");
    let (text, _) = parts(&mail);
    assert!(
        text.contains("Nông dân Văn Bàn thu hoạch quế"),
        "built-in text part"
    );
}

#[test]
fn an_operators_story_template_shapes_every_story() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(STORY_HTML_TEMPLATE),
        "<p class=\"tin\">{{ story.source }}: {{ story.title }}</p>\n",
    )
    .expect("write");
    let templates = Templates::load(dir.path()).expect("loads");
    let story = &stories()[1][0];
    let prepared = templates
        .prepare(story, chrono_tz::Asia::Ho_Chi_Minh)
        .expect("prepares");
    let v = DigestView {
        sections: vec![Section {
            title: "Kinh tế".to_string(),
            stories: vec![prepared],
        }],
        ..view()
    };
    let (text, html) = parts(&parsed(&formatted(&v, &templates)));
    assert!(
        html.contains("<p class=\"tin\">Báo Yên Bái: Giá chè &amp; quế &lt;rẻ&gt;</p>"),
        "{html}"
    );
    assert!(
        !html.contains("font-weight:bold"),
        "the built-in story piece is not used"
    );
    assert!(
        text.contains("* Giá chè & quế <rẻ>"),
        "built-in text piece: {text}"
    );
}

#[test]
fn an_empty_folder_gives_the_builtin_templates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let templates = Templates::load(dir.path()).expect("loads");
    assert!(templates.overridden().is_empty());
    assert_eq!(
        subject(&view(), &templates).expect("subject"),
        "Bản tin Lào Cai 28/11: 4 tin mới"
    );
}

#[test]
fn a_missing_folder_is_an_error_naming_it() {
    let err = Templates::load(Path::new("/nonexistent/tinbao-templates")).expect_err("missing");
    assert!(format!("{err:#}").contains("/nonexistent/tinbao-templates"));
}

#[test]
fn a_template_syntax_error_names_the_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(HTML_TEMPLATE);
    std::fs::write(
        &path,
        "<p>{{ place }}</p>\n<p>{% for s in sections %}\n{{ s.title }</p>\n",
    )
    .expect("write");
    let err = Templates::load(dir.path()).expect_err("broken template");
    let message = format!("{err:#}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("syntax error"), "{message}");
    assert!(message.contains("digest.html:3"), "{message}");
}

#[test]
fn an_unknown_variable_fails_the_render_naming_the_template() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(TEXT_TEMPLATE), "Chào {{ plcae }}\n").expect("write");
    let templates = Templates::load(dir.path()).expect("syntax is fine");
    let err = render(&view(), &templates, &from()).expect_err("undefined variable");
    let message = format!("{err:#}");
    assert!(message.contains("digest.txt"), "{message}");
    assert!(message.contains("undefined"), "{message}");
}

#[test]
fn a_bad_recipient_or_message_id_is_an_error_not_a_panic() {
    let mut v = view();
    v.to = "not an address".to_string();
    let err = render(&v, &Templates::builtin(), &from()).expect_err("bad address");
    assert!(format!("{err:#}").contains("recipient address"));

    let mut v = view();
    v.message_id = "digest-12".to_string();
    let err = render(&v, &Templates::builtin(), &from()).expect_err("bad id");
    assert!(format!("{err:#}").contains("Message-ID"));
}

#[test]
fn subject_lines_are_one_line_even_with_odd_places() {
    let mut v = view();
    v.place = "Lào\r\nBcc: x@y.vn Cai".to_string();
    let mail_raw = formatted(&v, &Templates::builtin());
    let mail = parsed(&mail_raw);
    assert_eq!(
        header(&mail, "Subject"),
        "Bản tin Lào Bcc: x@y.vn Cai 28/11: 4 tin mới"
    );
    assert!(mail.headers.get_first_value("Bcc").is_none());
}

#[test]
fn templates_can_be_shared_between_tasks() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Templates>();
}
