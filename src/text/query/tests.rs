//! Unit tests for `query`: the grammar and every malformed-query error.

use super::*;

fn err(query: &str) -> String {
    match Query::parse(query) {
        Ok(parsed) => panic!("{query:?} parsed as {parsed}"),
        Err(e) => e.to_string(),
    }
}

fn shape(query: &str) -> String {
    match Query::parse(query) {
        Ok(parsed) => parsed.to_string(),
        Err(e) => panic!("{query:?}: {e}"),
    }
}

#[test]
fn unbalanced_quote_is_reported_at_the_opening_quote() {
    assert_eq!(err(r#"lũ OR "Lào Cai"#), "column 7: unbalanced quote");
}

#[test]
fn dangling_or_is_reported_at_the_or() {
    assert_eq!(err("lũ OR"), "column 4: dangling OR");
    assert_eq!(err("OR lũ"), "column 1: dangling OR");
    assert_eq!(err("lũ OR OR lụt"), "column 4: dangling OR");
}

#[test]
fn empty_query_is_an_error() {
    assert_eq!(err(""), "column 1: empty query");
    assert_eq!(err("   "), "column 1: empty query");
    assert_eq!(err(" … & "), "column 1: empty query");
}

#[test]
fn a_query_of_only_exclusions_is_an_error() {
    assert_eq!(
        err("-lũ -\"Lào Cai\""),
        "column 1: only exclusions; name something to look for"
    );
}

#[test]
fn a_minus_needs_something_to_exclude() {
    assert_eq!(err("lũ -"), "column 4: nothing to exclude after '-'");
    assert_eq!(err("lũ - lụt"), "column 4: nothing to exclude after '-'");
    assert_eq!(err("lũ --lụt"), "column 4: nothing to exclude after '-'");
}

#[test]
fn empty_quotes_are_an_error() {
    assert_eq!(err(r#"lũ "…""#), "column 4: empty phrase");
}

#[test]
fn an_exclusion_cannot_be_an_or_alternative() {
    assert_eq!(
        err("lũ OR -lụt"),
        "column 7: an exclusion cannot be an OR alternative"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    assert_eq!(err("Đảng ủy \"x"), "column 9: unbalanced quote");
}

#[test]
fn capitalised_runs_are_phrases_and_other_words_are_terms() {
    assert_eq!(shape("lũ Lào Cai bão"), r#"lũ "lào cai" bão"#);
    assert_eq!(
        shape("Bát Xát OR Lào Cai -Hà Nội"),
        r#""bát xát" OR "lào cai" -"hà nội""#
    );
}

#[test]
fn punctuation_after_a_capitalised_word_ends_the_run() {
    assert_eq!(shape("Lào Cai, Yên Bái"), r#""lào cai" "yên bái""#);
    assert_eq!(shape("Lào Cai; Yên Bái."), r#""lào cai" "yên bái""#);
}

#[test]
fn a_minus_inside_a_capitalised_run_starts_a_new_unit() {
    assert_eq!(shape("Lào -Cai"), "lào -cai");
}

#[test]
fn or_binds_tighter_than_and() {
    let query = Query::parse("lũ OR lụt Yên Bái").expect("parses");
    assert_eq!(query.clauses().len(), 2);
    assert!(
        matches!(&query.clauses()[0], Clause::Require(alternatives) if alternatives.len() == 2)
    );
}

#[test]
fn lower_case_or_is_a_word() {
    assert_eq!(shape("lũ or lụt"), "lũ or lụt");
}

#[test]
fn a_word_joined_by_punctuation_is_a_phrase() {
    assert_eq!(shape("covid-19 OR h'mông"), r#""covid 19" OR "h mông""#);
    assert_eq!(shape("COVID-19 Lào Cai"), r#""covid 19 lào cai""#);
}

#[test]
fn curly_quotes_quote_a_phrase() {
    assert_eq!(shape("“sạt lở đất”"), r#""sạt lở đất""#);
}

#[test]
fn phrases_remember_their_column_and_kind() {
    let query = Query::parse(r#"bão -"áp thấp""#).expect("parses");
    let Clause::Exclude(phrase) = &query.clauses()[1] else {
        panic!("{query:?}")
    };
    assert_eq!((phrase.column, phrase.kind), (6, PhraseKind::Quoted));
}

#[test]
fn syllables_know_whether_they_were_written_bare() {
    let query = Query::parse("dang đảng").expect("parses");
    let unmarked: Vec<bool> = query
        .clauses()
        .iter()
        .flat_map(|c| match c {
            Clause::Require(alternatives) => alternatives.clone(),
            Clause::Exclude(phrase) => vec![phrase.clone()],
        })
        .map(|p| p.syllables[0].unmarked)
        .collect();
    assert_eq!(unmarked, [true, false]);
}

#[test]
fn display_reparses_to_the_same_clauses() {
    for source in [
        "Lào Cai lũ OR lụt -bão",
        r#""sạt lở" -"Hà Giang" or"#,
        "COVID-19 OR H5N1 dang",
    ] {
        let query = Query::parse(source).expect("parses");
        let again = Query::parse(&query.to_string()).expect("reparses");
        assert_eq!(again.to_string(), query.to_string(), "{source}");
    }
}
