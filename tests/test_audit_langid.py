"""Language identification for the data audit (globalign.audit.langid) and the labelled corpus it is
measured on (globalign.audit.labelled_corpus)."""

from __future__ import annotations

import json
from collections import defaultdict

import pycld2
import pytest
from py3langid.langid import MODEL_FILE, RAW_FLOOR, LanguageIdentifier

from globalign.audit.labelled_corpus import (
    SOURCES,
    LabelledText,
    labelled_texts,
    write_chat_jsonl,
    write_preference_jsonl,
)
from globalign.audit.langid import (
    MACROLANGUAGE_FOR_AGREEMENT,
    MAX_CHARS,
    UNKNOWN,
    LanguageCall,
    identifier_versions,
    identify,
    identify_batch,
    language_name,
    normalize_code,
    prepare_text,
)

TYDIQA_LANGUAGES = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")
PER_LANGUAGE = 200

# Measured on labelled_texts(data_dir, per_language=200, seed=0) (the table in the comment), asserted a
# few points lower: (cld2 correct, py3langid correct, agreed correct) at least, share dropped at most.
#          n   cld2  langid agreed dropped
# ar     200  0.965  0.965  0.965  0.035
# bn     200  0.990  1.000  0.990  0.010
# en     200  0.995  0.995  0.990  0.010
# fi     200  0.940  0.990  0.935  0.065
# id     200  0.845  0.830  0.730  0.245   (Indonesian vs Malay: each identifier says 'ms' at times)
# ko     200  0.990  1.000  0.990  0.010
# ru     200  0.670  0.980  0.660  0.340   (CLD2 calls a third of Russian texts unreliable)
# sw     200  0.885  0.990  0.880  0.120
# te     200  1.000  1.000  1.000  0.000
THRESHOLDS = {
    "ar": (0.92, 0.92, 0.92, 0.08),
    "bn": (0.95, 0.96, 0.95, 0.05),
    "en": (0.95, 0.95, 0.95, 0.05),
    "fi": (0.90, 0.95, 0.89, 0.11),
    "id": (0.80, 0.79, 0.69, 0.29),
    "ko": (0.95, 0.96, 0.95, 0.05),
    "ru": (0.63, 0.94, 0.62, 0.38),
    "sw": (0.84, 0.95, 0.84, 0.16),
    "te": (0.96, 0.96, 0.96, 0.04),
}

# Article 1 of the Universal Declaration of Human Rights: languages the agreement rule is said to drop.
UDHR_ARTICLE_1 = {
    "am": "የሰው ልጅ ሁሉ ሲወለድ ነጻና በክብርና በመብትም እኩልነት ያለው ነው። የተፈጥሮ ማስተዋልና ሕሊና ስላለው አንዱ ሌላውን "
          "በወንድማማችነት መንፈስ መመልከት ይገባዋል።",
    "ha": "Su dai ɗan-adam, ana haifuwarsu ne duka 'yantattu, kuma kowannensu na da mutunci da hakkoki daidai "
          "da na kowa. Suna da hankali da tunani, saboda haka duk abin da za su aikata wa juna, ya kamata su "
          "yi shi a cikin 'yan-uwanci.",
    "yo": "Gbogbo ènìyàn ni a bí ní òmìnira; iyì àti ẹ̀tọ́ kọ̀ọ̀kan sì dọ́gba. Wọ́n ní ẹ̀bùn ti làákàyè àti ti "
          "ẹ̀rí-ọkàn, ó sì yẹ kí wọn ó máa hùwà sí ara wọn gẹ́gẹ́ bí ọmọ ìyá.",
}
ENGLISH = "The committee will publish its annual report on public health spending next month."


@pytest.fixture(scope="module")
def reference() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE)


@pytest.fixture(scope="module")
def sample(data_dir) -> list[LabelledText]:
    return labelled_texts(data_dir, per_language=PER_LANGUAGE, seed=0)


@pytest.fixture(scope="module")
def sample_calls(sample) -> list[LanguageCall]:
    return identify_batch([t.text for t in sample])


# ------------------------------------------------------------------------------------ codes
@pytest.mark.parametrize(("code", "expected"), [
    ("iw", "he"), ("in", "id"), ("jw", "jv"), ("tl", "fil"), ("arb", "ar"), ("EN", "en"), ("pt_BR", "pt"),
    ("zh-Hant", "zh"), ("zh", "zh"), ("sr-ME", "sr"), ("arz", "arz"),
    ("un", UNKNOWN), ("xxx", UNKNOWN), ("xx-Latn", UNKNOWN), ("zzp", UNKNOWN), ("zxx", UNKNOWN),
    ("und", UNKNOWN), ("mul", UNKNOWN), ("", UNKNOWN), ("not a code", UNKNOWN),
])
def test_codes_normalise_to_bcp47_base_languages(code, expected):
    assert normalize_code(code) == expected


def test_every_cld2_code_normalises_to_a_language_or_unknown():
    codes = {normalize_code(code) for _, code in pycld2.LANGUAGES}
    assert "iw" not in codes and "jw" not in codes and "zh-Hant" not in codes
    assert {"he", "jv", "zh", "am", "ha", "yo", UNKNOWN} <= codes


def test_language_names_are_english():
    assert language_name("sw") == "Swahili"
    assert language_name(normalize_code("iw")) == "Hebrew"
    assert language_name(UNKNOWN) == "unknown"


def test_identifier_versions_are_the_pinned_ones():
    assert identifier_versions() == {"pycld2": "0.42", "py3langid": "0.4.0"}


# ------------------------------------------------------------------------------------ agreement
def test_agreement_needs_both_identifiers_to_name_the_same_language():
    assert LanguageCall("en", "en").agreed == "en"
    assert LanguageCall("en", "de").agreed == UNKNOWN
    assert LanguageCall("en", UNKNOWN).agreed == UNKNOWN
    assert LanguageCall(UNKNOWN, UNKNOWN).agreed == UNKNOWN


def test_cld2_traditional_chinese_agrees_with_py3langid_chinese():
    assert LanguageCall(normalize_code("zh-Hant"), normalize_code("zh")).agreed == "zh"


def test_individual_languages_only_py3langid_names_agree_at_their_macrolanguage():
    assert LanguageCall("ar", "arz").agreed == "ar"
    assert LanguageCall("zh", "yue").agreed == "zh"
    assert LanguageCall("arz", "ar").agreed == UNKNOWN  # CLD2 never says 'arz'; no symmetric rule needed


def test_languages_both_identifiers_tell_apart_do_not_agree():
    assert LanguageCall("id", "ms").agreed == UNKNOWN
    assert LanguageCall("no", "nn").agreed == UNKNOWN
    assert LanguageCall("sr", "hr").agreed == UNKNOWN


def test_macrolanguage_table_is_what_the_registry_and_both_label_sets_give(reference):
    from langcodes.registry_parser import parse_registry

    macro = {e["Subtag"]: e["Macrolanguage"] for e in parse_registry()
             if e["Type"] == "language" and "Macrolanguage" in e}
    cld2 = {normalize_code(code) for name, code in pycld2.LANGUAGES if name in pycld2.DETECTED_LANGUAGES}
    py3langid = {normalize_code(label) for label in reference.nb_classes}
    derived = {code: macro[code] for code in py3langid - cld2 if macro.get(code) in cld2}
    assert derived == MACROLANGUAGE_FOR_AGREEMENT
    assert not {code for code in cld2 - py3langid if macro.get(code) in py3langid}


def test_both_identifiers_can_name_the_tydiqa_languages_and_amharic_hausa_yoruba(reference):
    cld2 = {normalize_code(code) for name, code in pycld2.LANGUAGES if name in pycld2.DETECTED_LANGUAGES}
    py3langid = {normalize_code(label) for label in reference.nb_classes}
    wanted = set(TYDIQA_LANGUAGES) | {"am", "ha", "yo"}
    assert wanted <= cld2
    assert wanted <= py3langid


@pytest.mark.parametrize("language", sorted(UDHR_ARTICLE_1))
def test_udhr_article_1_is_agreed_in_amharic_hausa_and_yoruba(language):
    assert identify(UDHR_ARTICLE_1[language]) == LanguageCall(language, language)


# ------------------------------------------------------------------------------------ robustness
@pytest.mark.parametrize("text", ["", "   \n\t", "1234567890", "3.14 + 2.72 = 5.86", "😀🎉👍🏽", "-- ** !!"])
def test_text_without_letters_is_unknown_to_both(text):
    assert identify(text) == LanguageCall(UNKNOWN, UNKNOWN)


@pytest.mark.parametrize("bad", ["\x00", "\x01", "\x0b", "\x1f", "\x7f", "\x85", "\x9f", chr(0xD800), chr(0xDFFF),
                                 "\ufdd0", "\ufffe", "\uffff", "\U0010ffff"])
def test_characters_cld2_rejects_do_not_stop_identification(bad):
    with pytest.raises((pycld2.error, UnicodeEncodeError)):
        pycld2.detect(f"{ENGLISH}{bad}{ENGLISH}", isPlainText=True)  # why prepare_text exists
    assert identify(f"{ENGLISH}{bad}{ENGLISH}{bad}") == LanguageCall("en", "en")


def test_no_code_point_makes_cld2_raise_after_prepare_text():
    chunks = ["".join(map(chr, range(start, min(start + 1000, 0x110000)))) for start in range(0, 0x110000, 1000)]
    for chunk in chunks:
        pycld2.detect(prepare_text(chunk), isPlainText=True)
    assert len(identify_batch(chunks)) == len(chunks)


def test_long_text_is_identified_from_its_first_max_chars():
    text = (ENGLISH + " ") * (100_000 // len(ENGLISH))
    assert len(text) >= 99_000
    assert identify(text) == identify(text[:MAX_CHARS]) == LanguageCall("en", "en")


def test_truncation_changes_no_label_on_the_labelled_corpus(data_dir, reference):
    long_texts = [t.text for t in labelled_texts(data_dir) if len(t.text) > MAX_CHARS]
    assert long_texts
    for text in long_texts:
        reliable, _, details = pycld2.detect(text, isPlainText=True)
        whole = LanguageCall(normalize_code(details[0][1]) if reliable else UNKNOWN,
                             normalize_code(reference.classify(text)[0]))
        assert identify(text) == whole


# ------------------------------------------------------------------------------------ equivalences
def test_py3langid_labels_are_py3langids_own(sample, sample_calls, reference):
    for text, call in zip(sample, sample_calls, strict=True):
        label, score = reference.classify(prepare_text(text.text))
        assert call.langid == (normalize_code(label) if score > RAW_FLOOR else UNKNOWN), text.text[:80]


def test_identify_batch_equals_identify(sample, sample_calls):
    extra = ["", "😀", ENGLISH, ENGLISH, "a\x00b", sample[0].text]
    texts = [t.text for t in sample] + extra
    assert sample_calls + identify_batch(extra) == [identify(text) for text in texts]


# ------------------------------------------------------------------------------------ accuracy
def _shares(sample, calls) -> dict[str, tuple[float, float, float, float]]:
    by_language = defaultdict(list)
    for text, call in zip(sample, calls, strict=True):
        by_language[text.language].append((text.language, call))
    shares = {}
    for language, rows in by_language.items():
        n = len(rows)
        shares[language] = (sum(c.cld2 == truth for truth, c in rows) / n,
                            sum(c.langid == truth for truth, c in rows) / n,
                            sum(c.agreed == truth for truth, c in rows) / n,
                            sum(c.agreed == UNKNOWN for _, c in rows) / n)
    return shares


@pytest.mark.parametrize("language", TYDIQA_LANGUAGES)
def test_accuracy_per_language_stays_at_the_measured_level(language, sample, sample_calls):
    cld2, py3langid, agreed, dropped = _shares(sample, sample_calls)[language]
    min_cld2, min_langid, min_agreed, max_dropped = THRESHOLDS[language]
    measured = f"{language}: cld2 {cld2:.3f}, py3langid {py3langid:.3f}, agreed {agreed:.3f}, dropped {dropped:.3f}"
    assert cld2 >= min_cld2, measured
    assert py3langid >= min_langid, measured
    assert agreed >= min_agreed, measured
    assert dropped <= max_dropped, measured


# ------------------------------------------------------------------------------------ labelled corpus
def test_labelled_corpus_covers_every_source_and_tydiqa_language(data_dir):
    texts = labelled_texts(data_dir)
    assert {t.source for t in texts} == set(SOURCES)
    assert {t.language for t in texts} == set(TYDIQA_LANGUAGES)
    assert {t.language for t in texts if t.source in ("md3", "askreddit")} == {"en"}
    assert not any(t.text.startswith("Speaker") for t in texts if t.source == "md3")
    assert not any("{country}" in t.text for t in texts)
    assert len({(t.language, t.source, t.text) for t in texts}) == len(texts)


def test_labelled_sample_is_seeded_and_capped_per_language(data_dir, sample):
    counts = defaultdict(int)
    for text in sample:
        counts[text.language] += 1
    assert counts == {language: PER_LANGUAGE for language in TYDIQA_LANGUAGES}
    assert labelled_texts(data_dir, per_language=PER_LANGUAGE, seed=0) == sample
    assert labelled_texts(data_dir, per_language=PER_LANGUAGE, seed=1) != sample
    with pytest.raises(ValueError, match="per_language"):
        labelled_texts(data_dir, per_language=0)


def _read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_chat_jsonl_pairs_texts_of_one_language(tmp_path):
    texts = [LabelledText(f"en {i}", "en", "md3") for i in range(5)] + [LabelledText("sw 0", "sw", "md3")]
    write_chat_jsonl(texts, tmp_path / "chat.jsonl")
    records = _read_jsonl(tmp_path / "chat.jsonl")
    assert records == [
        {"id": "chat-en-00000", "language": "en", "messages": [{"role": "user", "content": "en 0"},
                                                              {"role": "assistant", "content": "en 1"}]},
        {"id": "chat-en-00001", "language": "en", "messages": [{"role": "user", "content": "en 2"},
                                                              {"role": "assistant", "content": "en 3"}]},
    ]


def test_preference_jsonl_takes_three_texts_of_one_language(tmp_path, sample):
    write_preference_jsonl(sample, tmp_path / "pref.jsonl")
    records = _read_jsonl(tmp_path / "pref.jsonl")
    assert len(records) == len(TYDIQA_LANGUAGES) * (PER_LANGUAGE // 3)
    language_of = {t.text: t.language for t in sample}
    for record in records:
        assert set(record) == {"id", "language", "prompt", "chosen", "rejected"}
        for side in ("chosen", "rejected"):
            assert [m["role"] for m in record[side]] == ["user", "assistant"]
            assert record[side][0]["content"] == record["prompt"]
            assert language_of[record[side][1]["content"]] == record["language"]
        assert language_of[record["prompt"]] == record["language"]
    assert len({r["id"] for r in records}) == len(records)
