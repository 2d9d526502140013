//! Unit tests for `fold`: one per spelling rule.

use super::*;

fn nfd(s: &str) -> String {
    s.nfd().collect()
}

#[test]
fn every_toned_vowel_decodes_to_its_own_base_and_tone() {
    for (base, vowel) in BASES[..12].iter().enumerate() {
        for (tone, mark) in TONE_MARKS.iter().enumerate() {
            let letter: String = [*vowel, *mark].into_iter().nfc().collect();
            let mut chars = letter.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                panic!("{letter:?}")
            };
            assert_eq!(decode(c), Some((base as u8, tone as u8 + 1)), "{letter}");
            let upper = c.to_uppercase().next().unwrap_or(c);
            assert_eq!(
                decode(upper),
                Some((base as u8, tone as u8 + 1)),
                "{letter}"
            );
        }
        assert_eq!(decode(*vowel), Some((base as u8, 0)));
    }
}

#[test]
fn syllables_are_lower_case_nfc_with_d_bar_folded() {
    assert_eq!(syllables("ĐẢNG bộ Đắk Lắk"), ["đảng", "bộ", "đắk", "lắk"]);
}

#[test]
fn old_and_new_tone_placement_fold_to_one_spelling() {
    assert_eq!(syllables("hoà hòa HOÀ Hoà"), ["hòa"; 4]);
    assert_eq!(syllables("thuỷ thủy THUỶ"), ["thủy"; 3]);
    assert_eq!(syllables("khoẻ khỏe KHOẺ"), ["khỏe"; 3]);
}

#[test]
fn decomposed_input_folds_like_composed_input() {
    let text = "Người dân Lào Cai khoẻ mạnh, Nguyễn Thị Thuỷ, ĐẢNG";
    assert_eq!(syllables(&nfd(text)), syllables(text));
}

#[test]
fn tone_goes_on_the_vowel_with_a_quality_mark() {
    assert_eq!(
        syllables("ngừơi thúê qúyên giưã"),
        ["người", "thuế", "quyến", "giữa"]
    );
}

#[test]
fn qu_and_gi_count_as_consonants() {
    assert_eq!(
        syllables("qúy gía gìn quạt giáo"),
        ["quý", "giá", "gìn", "quạt", "giáo"]
    );
}

#[test]
fn closed_syllables_put_the_tone_on_the_last_vowel() {
    assert_eq!(syllables("hòan húynh tóan"), ["hoàn", "huýnh", "toán"]);
}

#[test]
fn three_open_vowels_put_the_tone_on_the_middle_one() {
    assert_eq!(syllables("ngòai khủyu"), ["ngoài", "khuỷu"]);
}

#[test]
fn syllables_are_runs_of_letters_and_digits() {
    assert_eq!(
        syllables("COVID-19: F0 tại TP.HCM (ngày 3/4)"),
        ["covid", "19", "f0", "tại", "tp", "hcm", "ngày", "3", "4"]
    );
    assert!(syllables(" … — !").is_empty());
}

#[test]
fn soft_hyphen_inside_a_word_does_not_split_it() {
    assert_eq!(syllables("Nguy\u{AD}ễn"), ["nguyễn"]);
}

#[test]
fn eth_is_read_as_d_bar() {
    assert_eq!(syllables("Ðảng"), ["đảng"]);
}

#[test]
fn base_form_drops_every_diacritic() {
    assert_eq!(base_form("Đảng"), "dang");
    assert_eq!(base_form("người"), "nguoi");
    assert_eq!(base_form("café"), "cafe");
    assert_eq!(base_form("lao"), "lao");
}

#[test]
fn folded_text_gives_both_forms_per_syllable() {
    let text = FoldedText::new("Lào lao");
    assert_eq!(
        text.iter().collect::<Vec<_>>(),
        [("lào", "lao"), ("lao", "lao")]
    );
    assert!(!text.is_unmarked(0));
    assert!(text.is_unmarked(1));
}

#[test]
fn foreign_words_keep_their_marks() {
    assert_eq!(
        syllables("Señor Müller Pokémon"),
        ["señor", "müller", "pokémon"]
    );
    assert_eq!(base_form("Müller"), "muller");
}

#[test]
fn fold_syllable_is_idempotent() {
    for word in ["Thuỷ", "NGOÀI", "giữa", "Pokémon", "H5N1"] {
        let once = fold_syllable(word);
        assert_eq!(fold_syllable(&once), once);
    }
}
