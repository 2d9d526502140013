//! `tinbao match QUERY`, run as the real binary: it reads lines on standard input and prints the
//! matching ones unchanged, like grep; exit 0 if any matched, 1 if none, 2 for a malformed query
//! with the column and reason on standard error.

use std::io::Write;
use std::process::{Command, Stdio};

struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8(self.stdout.clone()).expect("stdout is UTF-8")
    }
}

fn tinbao_match(query: &str, stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tinbao"))
        .args(["match", query])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tinbao starts");
    if let Some(mut input) = child.stdin.take() {
        // A malformed query exits before reading, so a broken pipe here is expected.
        let _ = input.write_all(stdin.as_bytes());
    }
    let output = child.wait_with_output().expect("tinbao finishes");
    Run {
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

const NEWS: &str = "\
Lũ quét ở Bát Xát, Lào Cai: 3 người mất tích
Giá vàng hôm nay tăng mạnh
Cai nghiện ma túy tại Lào
Mưa lũ gây sạt lở đất tại Yên Bái
Xây dựng Đảng trong sạch, vững mạnh
Nhà máy thuỷ điện Hoà Bình xả lũ
";

#[test]
fn match_prints_matching_lines_unchanged_and_exits_0() {
    let run = tinbao_match("lũ", NEWS);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout(),
        "Lũ quét ở Bát Xát, Lào Cai: 3 người mất tích\nMưa lũ gây sạt lở đất tại Yên Bái\nNhà máy thuỷ điện Hoà Bình xả lũ\n"
    );
}

#[test]
fn match_exits_1_and_prints_nothing_when_no_line_matches() {
    let run = tinbao_match("bão", NEWS);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(run.stdout(), "");
}

#[test]
fn capitalised_run_matches_only_the_name_not_its_syllables_apart() {
    let run = tinbao_match("Lào Cai", NEWS);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stdout(),
        "Lũ quét ở Bát Xát, Lào Cai: 3 người mất tích\n"
    );
    let run = tinbao_match("Lào Cai", "Cai nghiện ma túy tại Lào\n");
    assert_eq!(run.code, Some(1));
}

#[test]
fn bare_syllable_matches_any_diacritics_and_marked_one_only_itself() {
    let run = tinbao_match("dang", NEWS);
    assert_eq!(run.stdout(), "Xây dựng Đảng trong sạch, vững mạnh\n");
    let run = tinbao_match("lũ", "lu\nlú\nlữ\nLŨ\n");
    assert_eq!(run.stdout(), "LŨ\n");
    let run = tinbao_match("đang", "Đảng\n");
    assert_eq!(run.code, Some(1));
}

#[test]
fn old_tone_placement_in_the_query_finds_new_placement_in_the_text() {
    let run = tinbao_match("\"hòa bình\" thủy", NEWS);
    assert_eq!(run.stdout(), "Nhà máy thuỷ điện Hoà Bình xả lũ\n");
}

#[test]
fn decomposed_lines_match_and_are_printed_byte_for_byte() {
    let nfd = "Ba\u{301}o La\u{300}o Cai\r\nkhông liên quan\n";
    let run = tinbao_match("Lào Cai", nfd);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "Ba\u{301}o La\u{300}o Cai\r\n".as_bytes());
}

#[test]
fn or_and_exclusion_combine_with_and() {
    let run = tinbao_match("lũ OR \"sạt lở\" -\"Lào Cai\"", NEWS);
    assert_eq!(
        run.stdout(),
        "Mưa lũ gây sạt lở đất tại Yên Bái\nNhà máy thuỷ điện Hoà Bình xả lũ\n"
    );
}

#[test]
fn a_last_line_without_newline_is_printed_with_one() {
    let run = tinbao_match("lũ", "không\nlũ lớn");
    assert_eq!(run.stdout(), "lũ lớn\n");
}

fn assert_malformed(query: &str, message: &str) {
    let run = tinbao_match(query, NEWS);
    assert_eq!(run.code, Some(2), "{query:?}: {}", run.stderr);
    assert_eq!(run.stdout(), "", "{query:?}");
    assert!(
        run.stderr.contains(message),
        "{query:?}: stderr was {:?}",
        run.stderr
    );
}

#[test]
fn unbalanced_quote_exits_2_with_its_column() {
    assert_malformed("lũ OR \"Lào Cai", "column 7: unbalanced quote");
}

#[test]
fn dangling_or_exits_2_with_its_column() {
    assert_malformed("lũ OR", "column 4: dangling OR");
    assert_malformed("OR lũ", "column 1: dangling OR");
}

#[test]
fn empty_query_exits_2() {
    assert_malformed("", "column 1: empty query");
    assert_malformed("   ", "column 1: empty query");
}

#[test]
fn a_query_starting_with_an_exclusion_is_a_query_not_a_flag() {
    // Regression: clap took "-lũ …" for an option. A query of only exclusions is malformed,
    // so the answer must be the query's own error (exit 2), not a usage error.
    let run = tinbao_match("-lũ", "Mưa lũ ở Bát Xát\n");
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("column"), "{}", run.stderr);
    let run = tinbao_match(
        "-\"Hà Nội\" Lào Cai",
        "Tin Lào Cai hôm nay\nLào Cai và Hà Nội\n",
    );
    assert_eq!(
        (run.code, run.stdout()),
        (Some(0), "Tin Lào Cai hôm nay\n".to_string())
    );
}
