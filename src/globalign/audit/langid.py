"""Language identification of audit messages with two identifiers, and the study's agreement rule.

The study labelled every message with two identifiers and counted it only when both agreed. We use
two identifiers whose models ship in their wheels: CLD2 (pycld2 0.42) and py3langid 0.4.0.

Codes. Every code is normalised by `normalize_code` to a BCP 47 *base language* subtag:
langcodes' `standardize_tag(..., macro=True)` replaces deprecated and dominant-individual codes
(cld2's 'iw' -> 'he', 'jw' -> 'jv', 'in' -> 'id', 'tl' -> 'fil', 'arb' -> 'ar'), then script and
region subtags are dropped (cld2's 'zh-Hant' -> 'zh', 'sr-ME' -> 'sr'): the audit reports languages,
not scripts, so Traditional and Simplified Chinese are one 'zh'. Codes that name no language
(cld2's 'un', 'xxx', 'xx-Latn', the joke languages 'zzb', 'zze', 'zzh', 'zzp'; 'zxx', 'mis', 'mul',
'und'; anything not in the IANA registry) become UNKNOWN ('und').

Agreement (`LanguageCall.agreed`): both codes known and equal. py3langid also names individual
languages that CLD2 cannot say but whose macrolanguage it can (Egyptian/Moroccan Arabic 'arz'/'ary',
Cantonese and Wu 'yue'/'wuu', 'uzs', 'sdh', 'ltg'); for the comparison such a code stands for its
macrolanguage ('ar', 'zh', 'uz', 'ku', 'lv'), which is then the agreed code. Pairs that both
identifiers can tell apart stay distinct ('id' vs 'ms', 'nn' vs 'no', 'sr' vs 'hr' vs 'bs').

When a call is UNKNOWN: CLD2 when its `isReliable` flag is false (typical for short texts) or its top
language is 'un'; py3langid (which always names some language) when the text yields no features of
its model or it says 'zxx'; both when the text has no letter at all (digits, punctuation, emoji).

Robustness: CLD2 raises "input contains invalid UTF-8" on C0 controls other than tab, newline, form
feed and carriage return, on DEL and C1 controls, and on noncharacters (U+FDD0-FDEF, U+xFFFE/xFFFF);
Python refuses to encode lone surrogates. `prepare_text` replaces all of these by spaces (found by
trying every code point), so no message crashes the audit.

Long texts: only the first MAX_CHARS (2,000) characters are identified, by both identifiers. On the
labelled corpus (`globalign.audit.labelled_corpus`: 11,008 texts, 31 of them longer, up to 6,751
characters) this changed no label of either identifier (tested); it bounds the cost of a long message.

Coverage. CLD2 names 161 languages after normalisation (165 entries of `pycld2.DETECTED_LANGUAGES`),
py3langid 0.4.0 139 (140 labels with 'zxx'; this release is not the 97-language langid.py model).
Both can name every TyDi QA language (ar, bn, en, fi, id, ko, ru, sw, te) and Amharic, Hausa and
Yoruba, so what the agreement rule drops in those languages comes from disagreement and from CLD2's
unreliable flag, not from a missing label. CLD2 only: aa ab ak ay bho bi bo ceb chr co crs dv fj gv
haw hmn ia ie ik iu kha kl ks lif mfe mi na nr ny rm rn sco sd sg sm ss su syr ti tlh tn to ts ve war
wo yi za. py3langid only: ace an ary arz bik crh ext fuv gcf gcr gom grc guw hbo kab ki lij ltg pcm
sdh se uzs vec wa wuu yue. Measured accuracy per language: tests/test_audit_langid.py.

Speed, texts per CPU second in one process, 1,643 TyDi QA passages cut to 500 characters (758 UTF-8
bytes on average), best of 3 (`python -m globalign.audit.langid --bench`, a shared 2-core machine):
    pycld2.detect ~31,800 | py3langid.classify ~3,800 | py3langid as used here ~5,300 |
    identify 2,900-4,000 | identify_batch the same on distinct texts (runs vary by ~25% under load).
py3langid's pure-Python walk of its byte automaton is most of the cost; we score with a float32 copy
of its float16 feature table (bit-identical scores, tested; 57 MB per process). `identify_batch` also
identifies each distinct text of a batch once, which is what makes it faster on repetitive data.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

import langcodes
import numpy as np
import pycld2

UNKNOWN = "und"
MAX_CHARS = 2000
# Codes langcodes accepts that name no language (undetermined, no linguistic content, uncoded, multiple).
_NOT_LANGUAGES = frozenset({"und", "zxx", "mis", "mul"})
# py3langid's individual languages that CLD2 cannot name, compared at the macrolanguage CLD2 names
# (IANA registry; tests/test_audit_langid.py re-derives this table from both label sets).
MACROLANGUAGE_FOR_AGREEMENT = {"ary": "ar", "arz": "ar", "ltg": "lv", "sdh": "ku", "uzs": "uz",
                               "wuu": "zh", "yue": "zh"}
# What CLD2 rejects or Python cannot encode: C0 controls except \t \n \f \r, DEL and C1, surrogates,
# noncharacters.
_NONCHARACTERS = "".join(f"\\U{plane:04X}FFFE-\\U{plane:04X}FFFF" for plane in range(17))
_UNSAFE = re.compile(f"[\\x00-\\x08\\x0b\\x0e-\\x1f\\x7f-\\x9f\\ud800-\\udfff\\ufdd0-\\ufdef{_NONCHARACTERS}]")


@dataclass(frozen=True)
class LanguageCall:
    """Both identifiers' normalised codes for one text (UNKNOWN where an identifier gives none)."""

    cld2: str
    langid: str

    @property
    def agreed(self) -> str:
        """The language both identifiers name (the study's rule), else UNKNOWN."""
        if self.cld2 == UNKNOWN or self.langid == UNKNOWN:
            return UNKNOWN
        if self.cld2 == self.langid:
            return self.cld2
        if MACROLANGUAGE_FOR_AGREEMENT.get(self.langid) == self.cld2:
            return self.cld2
        return UNKNOWN


# ------------------------------------------------------------------------------------ codes
@functools.cache
def normalize_code(code: str) -> str:
    """An identifier's code -> the BCP 47 base-language code we report, or UNKNOWN (module docstring)."""
    code = code.strip().replace("_", "-")
    try:
        language = langcodes.Language.get(langcodes.standardize_tag(code, macro=True)).language
    except (langcodes.LanguageTagError, ValueError):
        return UNKNOWN
    if not language or language in _NOT_LANGUAGES or not langcodes.tag_is_valid(language):
        return UNKNOWN
    return language


@functools.cache
def language_name(code: str) -> str:
    """English name of a code ('sw' -> 'Swahili'); 'unknown' for UNKNOWN."""
    if code == UNKNOWN:
        return "unknown"
    try:
        return langcodes.Language.get(code).display_name("en")
    except (langcodes.LanguageTagError, ValueError):
        return code


def identifier_versions() -> dict[str, str]:
    """The installed identifier packages, for the run manifest."""
    return {name: metadata.version(name) for name in ("pycld2", "py3langid")}


# ------------------------------------------------------------------------------------ identifiers
def prepare_text(text: str) -> str:
    """The first MAX_CHARS characters, with what CLD2 rejects replaced by spaces."""
    return _UNSAFE.sub(" ", text[:MAX_CHARS])


def _has_letter(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def _cld2(text: str) -> str:
    try:
        reliable, _, details = pycld2.detect(text, isPlainText=True)
    except pycld2.error:  # prepare_text removes every input known to raise; never stop an audit
        return UNKNOWN
    return normalize_code(details[0][1]) if reliable else UNKNOWN


class _Py3LangId:
    """py3langid's model with raw scores, labelling exactly as `LanguageIdentifier.classify` (tested)
    but scoring with a float32 copy of the feature table (the wheel's is float16: same bits, ~3x faster)."""

    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, RAW_FLOOR, LanguageIdentifier, visit_counts

        model = LanguageIdentifier.from_model_file(MODEL_FILE)
        self.encode = LanguageIdentifier._encode  # lower-cases all-caps text, NFC, UTF-8
        self.visit_counts = visit_counts  # the byte automaton's feature counts, in order of first occurrence
        self.automaton = model.tk_nextmove, model._rowbase, model.tk_output
        self.codes = [normalize_code(label) for label in model.nb_classes]
        self.alias_pairs = list(model._alias_pairs)  # columns sharing one label (srl -> sr)
        self.floor = RAW_FLOOR
        self.table = model.nb_ptc.astype(np.float32)  # 57 MB
        self.prior = model.nb_pc

    def code(self, text: str) -> str:
        """The normalised code of a text with letters; UNKNOWN when it yields no feature."""
        visits = self.visit_counts(*self.automaton, self.encode(text))
        if not visits:
            return UNKNOWN
        features = np.fromiter(visits.keys(), dtype=np.intp, count=len(visits))
        counts = np.fromiter(visits.values(), dtype=np.float32, count=len(visits))
        scores = np.log1p(counts) @ self.table[features] + self.prior
        for first, dupe in self.alias_pairs:
            scores[first] = max(scores[first], scores[dupe])
            scores[dupe] = self.floor
        return self.codes[int(scores.argmax())]


@functools.cache
def _py3langid() -> _Py3LangId:
    return _Py3LangId()  # loads the model once per process (~0.6 s)


def identify(text: str) -> LanguageCall:
    """Both identifiers' languages for one text (see the module docstring for the rules)."""
    return _identify_prepared(prepare_text(text))


def _identify_prepared(text: str) -> LanguageCall:
    if not _has_letter(text):
        return LanguageCall(UNKNOWN, UNKNOWN)
    return LanguageCall(_cld2(text), _py3langid().code(text))


def identify_batch(texts: Sequence[str]) -> list[LanguageCall]:
    """`identify` of each text; a text that occurs several times (after `prepare_text`) is identified once."""
    calls: dict[str, LanguageCall] = {}
    results = []
    for text in texts:
        text = prepare_text(text)
        call = calls.get(text)
        if call is None:
            call = calls[text] = _identify_prepared(text)
        results.append(call)
    return results


# ------------------------------------------------------------------------------------ benchmark
def _bench(n_texts: int = 2000, chars: int = 500, repeats: int = 3) -> dict[str, float]:
    """Texts per CPU second (best of `repeats`) of each identifier on TyDi QA passages cut to `chars`
    characters, in this one process (CPU time, so other load on the machine matters less)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    from globalign.audit.labelled_corpus import labelled_texts
    from globalign.data.locate import resolve_data_dir

    data_dir = resolve_data_dir()
    if data_dir is None:
        raise SystemExit("the benchmark needs the evaluation data (--data-dir / $GLOBALIGN_DATA_DIR)")
    texts = [t.text[:chars] for t in labelled_texts(data_dir)
             if t.source == "tydiqa-context" and len(t.text) >= chars][:n_texts]
    reference = LanguageIdentifier.from_model_file(MODEL_FILE)
    ours = _py3langid()
    runs = {"pycld2.detect": lambda: [pycld2.detect(t, isPlainText=True) for t in texts],
            "py3langid.classify": lambda: [reference.classify(t) for t in texts],
            "py3langid (float32)": lambda: [ours.code(t) for t in texts],
            "identify": lambda: [identify(t) for t in texts],
            "identify_batch": lambda: identify_batch(texts)}
    rates = {}
    for name, run in runs.items():
        seconds = []
        for _ in range(repeats):
            start = time.process_time()
            run()
            seconds.append(time.process_time() - start)
        rates[name] = len(texts) / min(seconds)
    mean_bytes = sum(len(t.encode()) for t in texts) / len(texts)
    print(f"{len(texts)} texts of {chars} characters ({mean_bytes:.0f} UTF-8 bytes on average), one process:")
    for name, rate in rates.items():
        print(f"  {name:<20} {rate:>9,.0f} texts/s")
    return rates


if __name__ == "__main__" and "--bench" in sys.argv:
    _bench()
