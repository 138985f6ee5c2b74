"""TyDiQA GoldP answer scoring (PROTOCOL Axis 2): SQuAD exact match / token F1 and answer extraction.

Primary metrics are the official SQuAD v1.1 ones (`squad_normalize`, `exact_match`, `token_f1`), as the
study reports them. `script_aware_normalize` is a Unicode-aware variant reported next to them: the official
normaliser only strips ASCII punctuation, so an Arabic comma, a Bengali danda or Russian guillemets make an
otherwise exact answer count as wrong. See docs/tydiqa.md, "Metrics".
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence

Normalizer = Callable[[str], str]

# The official SQuAD v1.1 evaluation script (evaluate-v1.1.py, `normalize_answer`, `f1_score`,
# `exact_match_score`, `metric_max_over_ground_truths`) is mirrored below, re-implemented here. Regexes
# follow Python 3 semantics (`\b` is Unicode-aware), as in every Python 3 port of the script.
_ASCII_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
# A blank line: a newline, optional whitespace other than a newline, another newline.
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")


def _remove_articles(text: str) -> str:
    return _ARTICLES.sub(" ", text)


def _white_space_fix(text: str) -> str:
    return " ".join(text.split())


def squad_normalize(text: str) -> str:
    """The official SQuAD v1.1 `normalize_answer`: lower -> remove ASCII punctuation -> remove the
    articles a/an/the (whole words) -> collapse whitespace.

    Only characters in `string.punctuation` are removed: non-ASCII punctuation ("،", "।", "«", "。") stays.
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _ASCII_PUNCTUATION)
    return _white_space_fix(_remove_articles(text))


def _is_stripped(ch: str) -> bool:
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def script_aware_normalize(text: str) -> str:
    """Unicode-aware variant of `squad_normalize`: NFKC -> casefold -> remove punctuation -> remove the
    articles a/an/the -> collapse whitespace.

    Removed: every character of a Unicode punctuation category (P*: Pc Pd Ps Pe Pi Pf Po) plus the ASCII
    characters the official script removes ($ + < = > ^ ` | ~ are symbols, category S*), so the removed set
    is a strict superset of the official one. Other symbols (S* outside ASCII: €, °, ©) and combining marks
    (Mn/Mc: Indic vowel signs, viramas, Arabic harakat) are kept: they are part of words. The English
    articles are removed only to stay consistent with the official normaliser; no other language's
    articles are touched.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch for ch in text if not _is_stripped(ch))
    return _white_space_fix(_remove_articles(text))


def _golds(golds: Sequence[str]) -> Sequence[str]:
    if isinstance(golds, str):
        raise TypeError("golds must be a sequence of answers, not a single string")
    if len(golds) == 0:
        raise ValueError("no gold answers to score against")
    return golds


def _exact_one(prediction: str, gold: str, normalize: Normalizer) -> float:
    return 1.0 if normalize(prediction) == normalize(gold) else 0.0


def _f1_one(prediction: str, gold: str, normalize: Normalizer) -> float:
    pred_tokens = normalize(prediction).split()
    gold_tokens = normalize(gold).split()
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    # As the official script: no shared token -> 0. That includes an empty side, and also both sides
    # empty after normalisation (F1 0 although exact match is 1).
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, golds: Sequence[str], normalize: Normalizer = squad_normalize) -> float:
    """1.0 when the normalised prediction equals some normalised gold answer, else 0.0.

    Both normalising to "" counts as a match (as the official script). ValueError for no golds.
    """
    return max(_exact_one(prediction, g, normalize) for g in _golds(golds))


def token_f1(prediction: str, golds: Sequence[str], normalize: Normalizer = squad_normalize) -> float:
    """Official SQuAD token F1 (whitespace tokens of the normalised strings, multiset overlap), the max over
    gold answers. 0.0 whenever no token is shared, even when both sides normalise to "" (official
    behaviour; `exact_match` gives 1.0 there). ValueError for no golds.
    """
    return max(_f1_one(prediction, g, normalize) for g in _golds(golds))


def extract_answer(generation: str) -> str:
    """The study's post-processing: the text before the first blank line, stripped.

    "\\r\\n" is read as "\\n". A blank line is a line that is empty or holds only whitespace, between two
    newlines (regex `\\n[^\\S\\n]*\\n`), so "Paris\\n  \\nQuestion" -> "Paris". A single leading newline is
    not a blank line ("\\nParis" -> "Paris"), but a generation that starts with a blank line has an empty
    answer ("\\n\\nParis" -> ""): the answer is what comes before the first blank line, and nothing does.
    """
    text = generation.replace("\r\n", "\n")
    return _BLANK_LINE.split(text, maxsplit=1)[0].strip()


QA_METRICS: dict[str, Callable[[str, Sequence[str]], float]] = {
    "exact_match": lambda prediction, golds: exact_match(prediction, golds),
    "f1": lambda prediction, golds: token_f1(prediction, golds),
    "exact_match_script": lambda prediction, golds: exact_match(prediction, golds, script_aware_normalize),
    "f1_script": lambda prediction, golds: token_f1(prediction, golds, script_aware_normalize),
}
