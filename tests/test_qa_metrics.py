"""TyDiQA answer metrics: official SQuAD v1.1 normalisation / EM / F1, the script-aware variant, and answer
extraction, on hand-worked examples in the study's scripts. Each expected F1 shows its token counts:
same = shared tokens (multiset), P = same / prediction tokens, R = same / gold tokens, F1 = 2PR / (P + R)."""

from __future__ import annotations

import string

import pytest
import squad_official

from globalign.tasks.qa_metrics import (
    QA_METRICS,
    exact_match,
    extract_answer,
    script_aware_normalize,
    squad_normalize,
    token_f1,
)

S = script_aware_normalize


# --- normalisers: exact expected strings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  The  Eiffel\tTower! ", "eiffel tower"),
        ("The Cat, a dog & an owl", "cat dog owl"),
        ("Anaconda and Theatre", "anaconda and theatre"),  # articles only as whole words
        ("U.S.A.", "usa"),  # punctuation is deleted, not replaced by a space
        ("$5 + 3 = 8", "5 3 8"),
        ("«Москва»", "«москва»"),  # guillemets are not ASCII: kept
        ("القاهرة،", "القاهرة،"),  # Arabic comma U+060C kept
        ("ঢাকা।", "ঢাকা।"),  # Bengali danda U+0964 kept
        ("서울？", "서울？"),  # full-width question mark U+FF1F kept
        ("1914—1918", "1914—1918"),  # em dash kept
        ("Straße", "straße"),  # lower(), not casefold()
        ("", ""),
    ],
)
def test_squad_normalize(text, expected):
    assert squad_normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  The  Eiffel\tTower! ", "eiffel tower"),
        ("$5 + 3 = 8", "5 3 8"),
        ("«Война и мир»", "война и мир"),
        ("القاهرة،", "القاهرة"),
        ("لماذا؟", "لماذا"),  # Arabic question mark U+061F
        ("ঢাকা।", "ঢাকা"),
        ("서울？", "서울"),  # NFKC makes it "?", which is removed
        ("서울。", "서울"),  # ideographic full stop U+3002
        ("남·북", "남북"),  # middle dot U+00B7 (Po)
        ("1914—1918", "19141918"),
        ("Straße", "strasse"),  # casefold
        ("ÄÄNI", "ääni"),
        ("€5 °C ©", "€5 °c ©"),  # non-ASCII symbols (S*) are kept
        ("ｆｕｌｌ ｗｉｄｔｈ", "full width"),  # NFKC
        ("", ""),
    ],
)
def test_script_aware_normalize(text, expected):
    assert S(text) == expected


def test_script_aware_removes_every_official_character():
    for ch in string.punctuation:
        assert S(f"x{ch}y") == "xy", ch


@pytest.mark.parametrize(
    "word",
    [
        "తెలుగు భాష",  # Telugu: vowel signs U+0C46 (Mn), U+0C41 (Mc), U+0C3E (Mc)
        "హైదరాబాదు",  # Telugu: U+0C48, U+0C3E, U+0C41
        "বাংলা",  # Bengali: vowel sign aa U+09BE (Mc)
        "রবীন্দ্রনাথ",  # Bengali: vowel sign ii, virama U+09CD (Mn)
        "مُحَمَّد",  # Arabic with harakat (damma, fatha, shadda: Mn)
    ],
)
def test_combining_marks_survive(word):
    assert S(word) == word
    assert squad_normalize(word) == word
    assert exact_match(word + "।", [word], S) == 1.0


def test_decomposed_letter_after_a():
    # Official: "a" + U+0308 (NFD "ä"): U+0308 is not a word character, so `\b(a)\b` matches the bare "a"
    # and removes it as an article, leaving a dangling combining mark. NFKC first avoids it.
    nfd = "a\u0308iti"
    assert squad_normalize(nfd) == "\u0308iti"
    assert exact_match(nfd, ["äiti"]) == 0.0
    assert S(nfd) == "äiti"
    assert exact_match(nfd, ["äiti"], S) == 1.0


# --- English -------------------------------------------------------------------------------------------


def test_english():
    assert exact_match("The Eiffel Tower!", ["Eiffel Tower"]) == 1.0
    assert token_f1("The Eiffel Tower!", ["Eiffel Tower"]) == 1.0
    # "in 1889" vs "1889": pred [in, 1889] (2), gold [1889] (1), same 1: P 1/2, R 1, F1 = 1 / 1.5 = 2/3
    assert exact_match("in 1889", ["1889"]) == 0.0
    assert token_f1("in 1889", ["1889"]) == pytest.approx(2 / 3)


def test_max_over_golds():
    # "Gustave Eiffel" vs "Eiffel": pred 2, gold 1, same 1: P 1/2, R 1 -> 2/3
    # vs "Alexandre Gustave Eiffel": pred 2, gold 3, same 2: P 1, R 2/3 -> (4/3) / (5/3) = 0.8
    golds = ["Eiffel", "Alexandre Gustave Eiffel"]
    assert token_f1("Gustave Eiffel", golds) == pytest.approx(0.8)
    assert token_f1("Gustave Eiffel", golds[:1]) == pytest.approx(2 / 3)
    assert exact_match("Gustave Eiffel", golds) == 0.0
    assert exact_match("the Eiffel Tower", ["tower", "Eiffel Tower"]) == 1.0


def test_repeated_tokens_count_once_each():
    # pred [paris, paris] (2), gold [paris] (1): Counter overlap min(2, 1) = 1: P 1/2, R 1 -> 2/3
    assert token_f1("Paris Paris", ["Paris"]) == pytest.approx(2 / 3)


@pytest.mark.parametrize(("prediction", "golds", "by_hand"), [
    # [new, new, york] vs [new, york, new, york]: same = min(2, 2) + min(1, 2) = 3: P 3/3, R 3/4 -> 6/7
    # (a set overlap {new, york} would give same 2: P 2/3, R 2/4 -> 4/7)
    ("new new york", ["New York, New York"], 6 / 7),
    # [x, y, y, z] vs [y, y, y]: same = min(2, 3) = 2: P 2/4, R 2/3 -> (2/3) / (7/6) = 4/7
    ("x y y z", ["y y y"], 4 / 7),
    # "the cat and the cat" -> [cat, and, cat] vs [cat, cat, cat]: same 2: P 2/3, R 2/3 -> 2/3
    ("the cat and the cat", ["cat cat cat"], 2 / 3),
    # [paris, paris, paris] vs [paris]: same 1: P 1/3, R 1 -> (2/3) / (4/3) = 1/2
    ("Paris Paris Paris", ["Paris"], 1 / 2),
    # [y, y] vs "y" (same 1: P 1/2, R 1 -> 2/3) and vs [y, y, z] (same 2: P 1, R 2/3 -> 0.8): max 0.8
    ("y y", ["y", "y y z"], 0.8),
    # [a1, b1, a1] vs [b1, a1, a1]: a permutation, every repeat matched: 1
    ("a1 b1 a1", ["b1 a1 a1"], 1.0),
])
def test_f1_counts_repeated_tokens_as_a_multiset(prediction: str, golds: list[str], by_hand: float) -> None:
    official = squad_official.metric_max_over_ground_truths(squad_official.f1_score, prediction, golds)
    assert official == pytest.approx(by_hand)
    assert token_f1(prediction, golds) == pytest.approx(by_hand)


# --- Arabic, Bengali, Russian, Korean, Telugu ------------------------------------------------------------


def test_arabic():
    # "القاهرة،" (Cairo + Arabic comma) vs "القاهرة": official tokens [القاهرة،] vs [القاهرة]: same 0 -> EM 0, F1 0
    assert exact_match("القاهرة،", ["القاهرة"]) == 0.0
    assert token_f1("القاهرة،", ["القاهرة"]) == 0.0
    # script-aware: [القاهرة] vs [القاهرة]: same 1, P 1, R 1 -> EM 1, F1 1
    assert exact_match("القاهرة،", ["القاهرة"], S) == 1.0
    assert token_f1("القاهرة،", ["القاهرة"], S) == 1.0
    # "مدينة القاهرة،" (city of Cairo,) vs "القاهرة":
    # official [مدينة, القاهرة،] vs [القاهرة]: same 0 -> 0; script [مدينة, القاهرة] vs [القاهرة]: same 1,
    # P 1/2, R 1 -> 2/3
    assert token_f1("مدينة القاهرة،", ["القاهرة"]) == 0.0
    assert token_f1("مدينة القاهرة،", ["القاهرة"], S) == pytest.approx(2 / 3)


def test_bengali():
    # "ঢাকা।" vs "ঢাকা": official [ঢাকা।] vs [ঢাকা]: same 0; script: same 1 of 1
    assert exact_match("ঢাকা।", ["ঢাকা"]) == 0.0
    assert exact_match("ঢাকা।", ["ঢাকা"], S) == 1.0
    # "রবীন্দ্রনাথ ঠাকুর।" vs "ঠাকুর": official [রবীন্দ্রনাথ, ঠাকুর।] vs [ঠাকুর]: same 0 -> 0
    # script [রবীন্দ্রনাথ, ঠাকুর] vs [ঠাকুর]: same 1, P 1/2, R 1 -> 2/3
    assert token_f1("রবীন্দ্রনাথ ঠাকুর।", ["ঠাকুর"]) == 0.0
    assert token_f1("রবীন্দ্রনাথ ঠাকুর।", ["ঠাকুর"], S) == pytest.approx(2 / 3)


def test_russian():
    # «Война и мир» vs "Война и мир": official [«война, и, мир»] vs [война, и, мир]: same 1 (и),
    # P 1/3, R 1/3 -> F1 1/3, EM 0; script: 3 of 3 -> 1
    assert exact_match("«Война и мир»", ["Война и мир"]) == 0.0
    assert token_f1("«Война и мир»", ["Война и мир"]) == pytest.approx(1 / 3)
    assert exact_match("«Война и мир»", ["Война и мир"], S) == 1.0
    assert token_f1("«Война и мир»", ["Война и мир"], S) == 1.0
    assert exact_match("Москва", ["москва"]) == 1.0
    assert exact_match("Москва", ["москва"], S) == 1.0


def test_korean():
    # ASCII "?" is removed by both; full-width "？" only by the script-aware normaliser
    assert exact_match("서울?", ["서울"]) == 1.0
    assert exact_match("서울？", ["서울"]) == 0.0
    assert exact_match("서울？", ["서울"], S) == 1.0
    assert exact_match("서울。", ["서울"], S) == 1.0
    # "남·북 정상회담" vs "남북 정상회담": official [남·북, 정상회담] vs [남북, 정상회담]: same 1, P 1/2,
    # R 1/2 -> 1/2; script [남북, 정상회담] both: 1
    assert token_f1("남·북 정상회담", ["남북 정상회담"]) == pytest.approx(0.5)
    assert token_f1("남·북 정상회담", ["남북 정상회담"], S) == 1.0


def test_telugu():
    # "హైదరాబాదు నగరం." vs "హైదరాబాదు": ASCII full stop removed by both; [హైదరాబాదు, నగరం] vs [హైదరాబాదు]:
    # same 1, P 1/2, R 1 -> 2/3 under both
    pred, gold = "హైదరాబాదు నగరం.", "హైదరాబాదు"
    assert token_f1(pred, [gold]) == pytest.approx(2 / 3)
    assert token_f1(pred, [gold], S) == pytest.approx(2 / 3)
    assert exact_match("హైదరాబాదు.", [gold]) == 1.0


# --- Finnish, Swahili, Indonesian (Latin script) ---------------------------------------------------------


def test_latin_languages():
    # Finnish: lower() and casefold() both map "Ä" to "ä"
    assert exact_match("HELSINGISSÄ.", ["helsingissä"]) == 1.0
    assert exact_match("HELSINGISSÄ.", ["helsingissä"], S) == 1.0
    # Swahili: "Mlima Kilimanjaro" vs "Kilimanjaro": [mlima, kilimanjaro] vs [kilimanjaro]: same 1,
    # P 1/2, R 1 -> 2/3
    assert exact_match("Dar es Salaam.", ["dar es salaam"]) == 1.0
    assert token_f1("Mlima Kilimanjaro", ["Kilimanjaro"]) == pytest.approx(2 / 3)
    # Indonesian: "Jakarta, Indonesia" vs "Jakarta Pusat": [jakarta, indonesia] vs [jakarta, pusat]:
    # same 1, P 1/2, R 1/2 -> 1/2
    assert token_f1("Jakarta, Indonesia", ["Jakarta Pusat"]) == pytest.approx(0.5)
    assert token_f1("Jakarta, Indonesia", ["Jakarta Pusat"], S) == pytest.approx(0.5)


# --- empty answers and errors ----------------------------------------------------------------------------


def test_empty_answers_mirror_official():
    # Both empty after normalisation: EM 1 (equal strings) but F1 0 (official: num_same == 0 -> 0).
    assert exact_match("", [""]) == 1.0
    assert token_f1("", [""]) == 0.0
    assert exact_match("!!!", ["the"]) == 1.0
    assert token_f1("!!!", ["the"]) == 0.0
    # Empty prediction vs a non-empty gold: 0 / 0
    assert exact_match("", ["Paris"]) == 0.0
    assert token_f1("", ["Paris"]) == 0.0
    assert token_f1("Paris", [""]) == 0.0
    # Script-aware: "،" normalises to "" too
    assert exact_match("،", ["."], S) == 1.0
    assert token_f1("،", ["."], S) == 0.0


def test_no_golds():
    with pytest.raises(ValueError, match="^no gold answers to score against$"):
        exact_match("Paris", [])
    with pytest.raises(ValueError, match="^no gold answers to score against$"):
        token_f1("Paris", [])
    for fn in QA_METRICS.values():
        with pytest.raises(ValueError, match="^no gold answers to score against$"):
            fn("Paris", [])


def test_single_string_gold_is_rejected():
    with pytest.raises(TypeError, match="^golds must be a sequence of answers, not a single string$"):
        exact_match("P", "Paris")  # type: ignore[arg-type]


def test_qa_metrics_registry():
    assert set(QA_METRICS) == {"exact_match", "f1", "exact_match_script", "f1_script"}
    pred, golds = "مدينة القاهرة،", ["القاهرة", "مصر"]
    assert QA_METRICS["exact_match"](pred, golds) == 0.0
    assert QA_METRICS["f1"](pred, golds) == 0.0
    assert QA_METRICS["exact_match_script"](pred, golds) == 0.0
    assert QA_METRICS["f1_script"](pred, golds) == pytest.approx(2 / 3)
    assert QA_METRICS["exact_match_script"]("القاهرة،", golds) == 1.0


# --- answer extraction -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generation", "expected"),
    [
        ("Paris\n\nQuestion: What is ...", "Paris"),
        (" Paris\n\nContext: ...", "Paris"),
        ("  Paris  ", "Paris"),
        ("\n\nParis", ""),  # a blank line first: nothing comes before it
        ("   \n\nParis", ""),
        ("\nParis", "Paris"),  # one leading newline is not a blank line
        ("Paris\r\n\r\nQuestion", "Paris"),
        ("Paris\n   \nQuestion", "Paris"),  # a line of spaces is blank
        ("Paris\n\t\r\nQuestion", "Paris"),
        ("Eiffel\nTower\n\nQuestion", "Eiffel\nTower"),  # single newlines stay inside the answer
        ("Paris\n\nRome\n\nBerlin", "Paris"),
        ("Paris", "Paris"),
        ("", ""),
    ],
)
def test_extract_answer(generation, expected):
    assert extract_answer(generation) == expected
