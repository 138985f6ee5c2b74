"""Country mentions in free text, for the geographic-skew part of `globalign audit-data`.

Built from package data only (nothing is fetched): pycountry's ISO 3166-1 names, official and common
names; babel's CLDR country names in ``LOCALES``; the English demonyms, aliases, codes and blocking
phrases of gazetteer_terms.py.

Canonical names. A mention's ``country`` is the ISO 3166-1 short name as pycountry gives it (its
``common_name`` where it has one: "Bolivia", "Iran", "Taiwan"), rewritten where that name is an
inverted or formal form ("Korea, Republic of" -> "South Korea", "Russian Federation" -> "Russia",
``CANONICAL``). Every canonical name is one that ``report.maps.match_country`` resolves, so counts can
be drawn. Territories that Natural Earth draws inside another country's polygon are reported as that
country (``FOLDED``: Réunion, Guadeloupe, Martinique, French Guiana, Mayotte -> France; Svalbard, Bouvet
Island -> Norway; Christmas and Cocos Islands -> Australia; Tokelau -> New Zealand; Bonaire, Sint
Eustatius and Saba -> Netherlands); Kosovo (not in ISO 3166-1) is added with the code XKX. England,
Scotland, Wales and Northern Ireland are counted as the United Kingdom.

Matching. Text is split into word tokens (letters, digits, combining marks, "_", ZWJ/ZWNJ: a match can
never start or end inside a word, in any script); a term is a sequence of tokens whose separators
match the term's own ("Guinea-Bissau" = "Guinea - Bissau", "St. Lucia" = "St Lucia"). At each token the
longest term wins, left to right, without overlaps. Chinese and Japanese have no word boundaries:
Han/Kana text is searched for names as substrings (a katakana name must not touch another katakana
letter, so "インド" is not in "インドア"; a name followed by 語/语 is the language: "日本語"); a Han name
can still match inside a longer word ("美国" in "完美国家"), an accepted error. Korean particles
("미국은"), Arabic proclitics ("والهند", "بالهند", "للهند"), Amharic prepositions ("በኢትዮጵያ"), Bengali
and Telugu case suffixes ("ভারতের", "భారతదేశంలో"), Russian case forms of one-word names and of
adjective + noun names ("в России", "в Южной Корее"), Finnish case forms of one-word names
("Intiassa", "Iso-Britanniassa"), German "-s" genitives and Vietnamese "nước X" / "người X" are
generated into the term table, so lookups stay exact dictionary lookups. Demonyms are English only
(a Han name inside "中国人" still matches; "русский" or "nigériane" do not).

Case. English terms match as written (capital initial) or in capitals ("NIGERIA"): lowercase "china",
"turkey", "chad", "jordan", "guinea pig" never count. Capitals are not generated for "Turkey", "Chad",
"Jordan" and "Polish", and not for names under 4 letters. Text is expected in NFC.

Ambiguity rules (each tested in tests/test_audit_gazetteer.py):
- codes: bare ISO alpha-2/alpha-3 codes are English words or abbreviations ("IN", "IT", "NO", "AM",
  "CAN", "PER"), so only ``CODES`` count ("USA", "U.S.", "UK", "UAE", "DRC", "PRC", "DPRK", "KSA",
  ...). "US" counts unless the words within 100 characters are mostly capitals or the word before it is
  in capitals ("CONTACT US", "LET US"): there it is the pronoun.
- language names: a demonym that is also a language ("French", "Chinese", "Spanish"; marked ``*``) does
  not count after a speaking/translating verb ("speak French"), when followed by a language noun
  ("French language", "Chinese characters", "French-speaking"), or after "in"/"into"/"to"/"from" unless a
  content word follows ("in French." no, "in Chinese culture" yes); a list shares the verdict of its
  first member ("into French, Spanish and German"). "English" is never counted: in instruction data it
  is nearly always the language (the UK still counts through "British", "England", ...).
- "Chad", "Jordan" (first names, a river, a lake) count only with geographic context: a place
  preposition before ("in", "to", "from", "visit", ...), a place noun in the next four words ("capital",
  "government", "country", ...) or another country named in the same text; never next to a capitalised
  word ("Michael Jordan", "Jordan Peterson", "Lake Chad").
- "Georgia" does not count next to a capitalised word ("Georgia Tech", "Georgia O'Keeffe") or with a
  US cue within 80 characters ("Atlanta", "Florida", "USA", "U.S.", "state of"); "Georgian" follows the
  language rule, and "Georgian era/architecture/period/style" is blocked.
- blocking phrases (``BLOCKED``) consume their words and name no country: "Indian Ocean", "American
  Indian", "Latin/North/South/Central America(n)", "New Mexico", "New Jersey", "New England", "New South
  Wales", "New Guinea", "Guinea pig", "Panama hat", "French fries", "German shepherd", "Polish the/this/
  your ..." (the verb), "Niger River", ... Longest match keeps "South Sudan", "Papua New Guinea",
  "Equatorial Guinea", "Guinea-Bissau", "Dominican Republic", "Northern Ireland" (United Kingdom),
  "Republic of Ireland", "American Samoa", "South Georgia" whole.
- "Congo" and "Congolese" alone are not counted (either of two countries); "DR Congo", "DRC",
  "Congo-Kinshasa", "Zaire", "Republic of the Congo", "Congo-Brazzaville" are. "Korea"/"Korean" alone
  count as South Korea; "Dominican" as the Dominican Republic; "America"/"American" as the United States
  ("African American" too); "Macedonia" as North Macedonia; "Holland" as the Netherlands.
- localised names: only those of at least 4 letters (3 with a non-ASCII letter) in Latin script, 3
  code points in other alphabets, 2 in Hangul, Ethiopic, Han and Kana; a name that two countries share
  within the localised table is dropped ("刚果"); ``LOCALISED_STOP`` drops names that are common words
  in their own or another language (German "Island", Korean "수단" = means, Urdu "شام" = evening, ...).

Speed. Latin-script text takes a fast path: only its capitalised words are looked up (every Latin
term starts with a capital, or is in a short list: "eSwatini", "nước Anh"). Other text is fully
tokenised, and searched for Han/Kana names if it has any.

Size and speed (``python -m globalign.audit.gazetteer``; CPython 3.11, one core, CPU time, on a shared
2-core machine, so +-30%): the default table has ~39k surface forms (2.5k from English alone) of 239
countries; building it takes ~0.5 s (0.15 s of it the tokeniser, shared) and keeps ~18 MB (1 MB for
English alone). babel's 24 other locales cost no measurable speed on English text. Texts/s: English
~440 chars without a country 150-250k, with 7 mentions 14-22k; English with typographic quotes 70-130k;
Russian without a country 40-65k; Chinese (~210 chars) 30-55k.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

# CLDR locales whose country names are matched: the study languages, then major ones.
LOCALES = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te",
           "zh", "zh_Hant", "es", "fr", "de", "pt", "ja", "hi", "it", "tr", "vi", "fa", "ur", "am", "ha", "yo")
KINDS = ("name", "localised", "demonym", "alias", "code")

from globalign.audit.gazetteer_terms import (
    ALIASES,
    AM_PREFIXES,
    AR_PROCLITICS,
    BABEL_EXTRA,
    BLOCKED,
    BN_SUFFIXES,
    CANONICAL,
    CJK_BLOCKED,
    CODES,
    DEMONYMS,
    FI_EXCEPTIONS,
    FOLDED,
    FUNCTION_WORDS,
    GEO_NEAR,
    GEO_PREV,
    KO_PARTICLES,
    LANG_NOUNS,
    LANG_PREPS,
    LANG_VERBS,
    LOCALISED_ALIASES,
    LOCALISED_STOP,
    NO_UPPER,
    NOT_A_TERM,
    RU_EXCEPTIONS,
    RULES,
    TE_SUFFIXES,
    US_CUE,
    VI_PREFIXED,
)

# ----------------------------------------------------------------------------------------------------
# Tokens


def _in_cjk(cp: int) -> bool:
    return (0x3005 <= cp <= 0x3007 or 0x3040 <= cp <= 0x30FF or 0x31F0 <= cp <= 0x31FF
            or 0x3400 <= cp <= 0x4DBF or 0x4E00 <= cp <= 0x9FFF or 0xF900 <= cp <= 0xFAFF
            or 0xFF66 <= cp <= 0xFF9F or 0x20000 <= cp <= 0x3134F)


# Scripts the fast path handles: Latin letters and marks (anything else that is a word character sends
# a text down the general path: full tokenisation plus the CJK search).
_LATIN_RANGES = ((0x0000, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1EFF), (0x2C60, 0x2C7F), (0xA720, 0xA7FF),
                 (0xAB30, 0xAB6F), (0xFB00, 0xFB06), (0xFF21, 0xFF5A))


@dataclass(frozen=True)
class _Patterns:
    token: re.Pattern  # a word: letters, digits, combining marks, "_", ZWJ/ZWNJ; never Han or Kana
    cjk_run: re.Pattern  # a run of Han or Kana
    latin_caps: re.Pattern  # a word that starts with a capital Latin letter
    non_latin: re.Pattern  # a word character of another script
    word_class: str  # the character class of `token`, for lookarounds


def _class(ranges: list[tuple[int, int]]) -> str:
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)


def _ranges(cps: Iterable[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for cp in cps:
        if out and out[-1][1] == cp - 1:
            out[-1] = (out[-1][0], cp)
        else:
            out.append((cp, cp))
    return out


@lru_cache(maxsize=1)
def _patterns() -> _Patterns:
    """The tokeniser. Combining marks are word characters: Indic vowel signs are marks, so a plain \\w
    would split "जापान". Built from the Basic Multilingual Plane once per process (~0.15 s)."""
    word, latin_word, latin_upper = [], [], []
    for cp in range(0x10000):
        ch = chr(cp)
        if _in_cjk(cp) or not (ch.isalnum() or ch == "_" or cp in (0x200C, 0x200D)
                               or unicodedata.category(ch)[0] == "M"):
            continue
        word.append(cp)
        if any(a <= cp <= b for a, b in _LATIN_RANGES):
            latin_word.append(cp)
            if ch.isupper() or ch.istitle():
                latin_upper.append(cp)
    w, up = _class(_ranges(word)), _class(_ranges(latin_upper))
    non_latin = _class(_ranges(sorted(set(word) - set(latin_word))))
    cjk = r"[\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f" \
          r"\U00020000-\U0003134f]"
    return _Patterns(token=re.compile(f"[{w}]+"), cjk_run=re.compile(cjk + "+"),
                     latin_caps=re.compile(f"[{up}](?<![{w}][{up}])[{w}]*"),
                     non_latin=re.compile(f"[{non_latin}]|{cjk}"), word_class=w)


_GAP_CHARS = str.maketrans({"’": "'", "ʼ": "'", "‘": "'", "`": "'", "´": "'", "–": "-", "—": "-", "‐": "-",
                            "‑": "-", "\u00a0": " "})


def _gap(text: str) -> str:
    """The separator between two tokens, without whitespace: " " -> "", " - " -> "-", ". " -> "."."""
    return "".join(text.translate(_GAP_CHARS).split())


_ASCII_CAPS = re.compile(r"[A-Z](?<![A-Za-z0-9_][A-Z])[A-Za-z0-9_]*")  # capitalised ASCII words
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_LIST_GAP = re.compile(r"\s*(?:,|/|,?\s*and|,?\s*or)\s*")


def _is_kana(ch: str) -> bool:
    return ("\u30a0" <= ch <= "\u30ff" and ch != "\u30fb") or "\uff66" <= ch <= "\uff9f"


# ----------------------------------------------------------------------------------------------------
# The finder


@dataclass(frozen=True, slots=True)
class CountryMention:
    """One mention: `country` is the canonical name (see the module docstring), `text[start:end] ==
    surface`, and `kind` one of KINDS."""

    country: str
    alpha3: str
    start: int
    end: int
    surface: str
    kind: str


@dataclass(frozen=True, slots=True)
class _Term:
    alpha3: str | None  # None: a blocking phrase ("Indian Ocean")
    kind: str
    rule: str = ""  # "" | "language" | "person" | "georgia" | "us"
    dot_end: bool = False  # an abbreviation's final "." ("U.S.") joins the span when present


_CJK_LANGUAGE = _Term(None, "localised")  # a Han/Kana name followed by 語/语 names the language


class Gazetteer:
    """Finds country mentions in text. Build once (``default_gazetteer``); `find` is thread-safe."""

    def __init__(self, locales: Sequence[str] = LOCALES) -> None:
        import pycountry

        self.locales = tuple(locales)
        self.canonical: dict[str, str] = {}
        for c in pycountry.countries:
            if c.alpha_3 not in FOLDED:
                self.canonical[c.alpha_3] = CANONICAL.get(c.alpha_3) or getattr(c, "common_name", None) or c.name
        self.canonical["XKX"] = CANONICAL["XKX"]
        self._pat = _patterns()
        self._token, self._cjk_run = self._pat.token, self._pat.cjk_run
        # token key (str for one token, tuple for more) -> {separators: term}
        self._terms: dict[str | tuple[str, ...], dict[tuple[str, ...], _Term]] = {}
        self._first: dict[str, int] = {}  # first token -> most tokens of a term starting with it
        self._prefixes: set[str | tuple[str, ...]] = set()  # proper prefixes of multi-token keys
        self._cjk: dict[str, _Term] = {}
        self._cjk_first: dict[str, tuple[int, ...]] = {}  # first character -> name lengths, longest first
        self._cjk_start = re.compile("(?!)")  # any first character
        self._lower_first: re.Pattern | None = None  # Latin first tokens without a capital
        self._lower_words: tuple[str, ...] = ()
        # while building: surface key -> (alpha3, localised?), and the localised keys two countries share
        self._owner: dict[tuple, tuple[str | None, bool]] = {}
        self._ambiguous: set[tuple] = set()
        _Builder(self, pycountry).build()

    # -- building --------------------------------------------------------------------------------

    def _add(self, surface: str, alpha3: str | None, kind: str, rule: str = "", localised: bool = False) -> None:
        surface = surface.strip().strip("\u200c\u200d")
        if not surface:
            return
        if alpha3 is not None:
            alpha3 = FOLDED.get(alpha3, alpha3)
            if alpha3 not in self.canonical:
                raise RuntimeError(f"gazetteer table: {surface!r} -> {alpha3!r} is not a known alpha-3 code")
        if all(_in_cjk(ord(ch)) for ch in surface):
            key: tuple = ("cjk", surface)
            if self._claim(key, alpha3, localised):
                self._cjk.setdefault(surface, _Term(alpha3, kind))
            return
        tokens = tuple(self._token.findall(surface))
        if not tokens:
            return
        parts = self._token.split(surface)
        gaps = tuple(_gap(g) for g in parts[1:-1])
        dot_end = _gap(parts[-1]) == "."
        if _gap(parts[0]) or _gap(parts[-1]) not in ("", "."):
            return  # stray punctuation around the name: not a usable surface
        tkey: str | tuple[str, ...] = tokens[0] if len(tokens) == 1 else tokens
        if not self._claim(("tok", tkey, gaps), alpha3, localised):
            return
        self._terms.setdefault(tkey, {})[gaps] = _Term(alpha3, kind, rule, dot_end)

    def _claim(self, key: tuple, alpha3: str | None, localised: bool) -> bool:
        """First writer wins; a localised surface claimed by a second country is dropped for both."""
        if key not in self._owner:
            self._owner[key] = (alpha3, localised)
            return True
        owner, owner_localised = self._owner[key]
        if owner != alpha3 and localised and owner_localised:
            self._ambiguous.add(key)
        return False

    # -- matching --------------------------------------------------------------------------------

    def find(self, text: str) -> list[CountryMention]:
        """All country mentions in `text`, left to right, non-overlapping, the longest term first."""
        first = self._first
        if text.isascii():
            caps: re.Pattern | None = _ASCII_CAPS
        else:
            caps = None if self._pat.non_latin.search(text) else self._pat.latin_caps
        if caps is not None:  # Latin script only: every term starts with a capital, or is listed
            lower = any(w in text for w in self._lower_words)
            if first.keys().isdisjoint(caps.findall(text)) and not lower:
                return []
            starts = [(m.start(), w) for m in caps.finditer(text) if (w := m.group()) in first]
            if lower and self._lower_first is not None:
                starts = sorted(starts + [(m.start(), m.group()) for m in self._lower_first.finditer(text)])
            found = self._match(text, starts)
        else:
            found = []
            if not first.keys().isdisjoint(self._token.findall(text)):
                starts = [(m.start(), w) for m in self._token.finditer(text) if (w := m.group()) in first]
                found = self._match(text, starts)
            if self._cjk_run.search(text):
                found = sorted(found + self._find_cjk(text), key=lambda f: f[0])
        return [CountryMention(self.canonical[t.alpha3], t.alpha3, s, e, text[s:e], t.kind)
                for s, e, t in found]

    def countries(self, text: str) -> set[str]:
        """The distinct canonical names mentioned in `text`."""
        return {m.country for m in self.find(text)}

    def _match(self, text: str, starts: list[tuple[int, str]]) -> list[tuple[int, int, _Term]]:
        """Terms beginning at the candidate tokens `starts` ((offset, token), in text order)."""
        token, prefixes, terms = self._token, self._prefixes, self._terms
        out: list[tuple[int, int, _Term]] = []
        pending: list[tuple[int, int, _Term]] = []  # "person" matches waiting for another country
        consumed, language_end = 0, -1
        for start, word in starts:
            if start < consumed:
                continue
            candidates: list[tuple[int, _Term]] = []  # (end, term), longest first
            if word in prefixes:  # read on while the tokens so far begin a longer term
                words, spans = [word], [(start, start + len(word))]
                key: tuple[str, ...] | str = word
                while key in prefixes:
                    m = token.search(text, spans[-1][1])
                    if m is None or m.start() - spans[-1][1] > 8:
                        break
                    words.append(m.group())
                    spans.append(m.span())
                    key = tuple(words)
                for k in range(len(words), 1, -1):
                    slot = terms.get(tuple(words[:k]))
                    if slot is not None:
                        term = slot.get(tuple(_gap(text[spans[j][1]:spans[j + 1][0]]) for j in range(k - 1)))
                        if term is not None:
                            candidates.append((spans[k - 1][1], term))
            slot = terms.get(word)
            if slot is not None and () in slot:
                candidates.append((start + len(word), slot[()]))
            for end, term in candidates:
                verdict = self._accept(term, text, start, end) if term.rule else True
                if term.rule == "language":  # "into French, Spanish and German": the list shares the verdict
                    if verdict and 0 <= language_end and _LIST_GAP.fullmatch(text, language_end, start):
                        verdict = False
                    if not verdict:
                        language_end = end
                if verdict is False:
                    continue
                consumed = end
                if term.alpha3 is not None:
                    if term.dot_end and text[end:end + 1] == ".":
                        end += 1
                    (out if verdict else pending).append((start, end, term))
                break
        if pending and out:
            out = sorted(out + pending, key=lambda f: f[0])
        return out

    def _accept(self, term: _Term, text: str, start: int, end: int) -> bool | None:
        """True: a mention; False: not one; None: a mention only if another country is named too."""
        if term.alpha3 is None:
            return True
        before = text[max(0, start - 30):start]
        prev = before.split()[-1] if before[-1:] in (" ", "\t") and before.strip() else ""
        prev = prev if prev.isalnum() else ""  # "in French", not "in (French" or "text. French"
        m = self._token.match(text, end + 1) if text[end:end + 1] in (" ", "-") else None
        nxt = m.group() if m and m.start() == end + 1 else ""
        nxt_hyphen = text[end:end + 1] == "-"
        if term.rule == "language":
            if prev.lower() in LANG_VERBS or nxt.lower() in LANG_NOUNS:
                return False
            if prev.lower() in LANG_PREPS:
                return not nxt_hyphen and nxt.isalpha() and nxt.islower() and nxt not in FUNCTION_WORDS
            return True
        if term.rule == "us":
            if len(prev) > 1 and prev.isupper() and prev.isalpha() and prev not in self._first:
                return False  # "CONTACT US", "LET US"
            words = _LATIN_WORD.findall(text, max(0, start - 100), end + 100)  # capitals around it?
            return sum(map(str.isupper, words)) * 2 <= len(words)
        capitalised_next = not nxt_hyphen and nxt[:1].isupper() and not self._is_country_word(nxt)
        if term.rule == "georgia":
            return not capitalised_next and not US_CUE.search(text, max(0, start - 80), end + 80)
        # "person": Chad, Jordan
        if capitalised_next or (prev[:1].isupper() and prev.lower() not in GEO_PREV):
            return False
        if prev.lower() in GEO_PREV:
            return True
        after = {w.lower() for w in _LATIN_WORD.findall(text, end, end + 60)[:4]}
        return True if after & GEO_NEAR else None

    def _is_country_word(self, word: str) -> bool:
        return any(t.alpha3 for t in self._terms.get(word, {}).values())

    def _find_cjk(self, text: str) -> list[tuple[int, int, _Term]]:
        """Han/Kana names as substrings, longest first, left to right."""
        out, consumed, n = [], 0, len(text)
        for m in self._cjk_start.finditer(text):
            a = m.start()
            if a < consumed:
                continue
            for ln in self._cjk_first[text[a]]:
                b = a + ln
                term = self._cjk.get(text[a:b]) if b <= n else None
                if term is not None and text[b:b + 1] in ("語", "语"):  # 日本語, 韓国語
                    term = _CJK_LANGUAGE
                if term is None or (_is_kana(text[a]) and a > 0 and _is_kana(text[a - 1])) or (
                        _is_kana(text[b - 1]) and b < n and _is_kana(text[b])):
                    continue
                consumed = b
                if term.alpha3 is not None:
                    out.append((a, b, term))
                break
        return out

    # -- facts -----------------------------------------------------------------------------------

    def term_table(self) -> list[tuple[str, str, str, str]]:
        """Every matchable surface as (surface, alpha3 or "" for a blocking phrase, kind, rule), sorted."""
        rows = []
        for key, slot in self._terms.items():
            tokens = (key,) if isinstance(key, str) else key
            for gaps, t in slot.items():
                surface = tokens[0] + "".join((g or " ") + w for g, w in zip(gaps, tokens[1:], strict=True))
                rows.append((surface + ("." if t.dot_end else ""), t.alpha3 or "", t.kind, t.rule))
        rows.extend((s, t.alpha3 or "", t.kind, "") for s, t in self._cjk.items())
        return sorted(rows)


class _Builder:
    """Fills a Gazetteer's tables, highest priority first (the first writer of a surface keeps it):
    blocking phrases, pycountry names, aliases, codes, demonyms, then CLDR names and generated forms."""

    def __init__(self, gaz: Gazetteer, pycountry) -> None:
        self.g, self.pycountry = gaz, pycountry

    def build(self) -> None:
        g = self.g
        for surface in _split_list(BLOCKED):
            self.english(surface, None, "alias")
        for c in self.pycountry.countries:
            names = [getattr(c, "common_name", None), c.name, getattr(c, "official_name", None)]
            for name in names:
                if name and "," not in name:
                    self.english(re.sub(r"^the ", "", name), c.alpha_3, "name")
        for alpha3, surface in _table(ALIASES):
            self.english(surface, alpha3, "alias")
        for surface, alpha3 in CODES:
            g._add(surface, alpha3, "code", RULES.get(surface, ""))
        for alpha3, word in _table(DEMONYMS):
            language = word.endswith("*")
            word = word.rstrip("*")
            rule = RULES.get(word, "language" if language else "")
            self.english(word, alpha3, "demonym", rule)
            if word[-1] in "ni":
                self.english(word + "s", alpha3, "demonym")
        self.localised()
        for key in g._ambiguous:  # names two countries share in the localised table
            if key[0] == "cjk":
                g._cjk.pop(key[1], None)
            else:
                g._terms.get(key[1], {}).pop(key[2], None)
        g._terms = {k: v for k, v in g._terms.items() if v}
        g._first = {}
        for key in g._terms:
            first = key if isinstance(key, str) else key[0]
            g._first[first] = max(g._first.get(first, 0), 1 if isinstance(key, str) else len(key))
            if not isinstance(key, str):
                g._prefixes.add(first)
                g._prefixes.update(key[:j] for j in range(2, len(key)))
        by_first: dict[str, set[int]] = {}
        for surface in g._cjk:
            by_first.setdefault(surface[0], set()).add(len(surface))
        g._cjk_first = {ch: tuple(sorted(lens, reverse=True)) for ch, lens in by_first.items()}
        g._cjk_start = re.compile("[" + "".join(sorted(by_first)) + "]")
        # Latin first tokens without a capital ("eSwatini", "nước Anh"): the fast path looks for them by name
        lower = sorted(w for w in g._first if not w[0].isupper() and not g._pat.non_latin.match(w))
        g._lower_words = tuple(lower)
        if lower:
            w = g._pat.word_class
            g._lower_first = re.compile(f"(?<![{w}])(?:{'|'.join(map(re.escape, lower))})(?![{w}])")
        del g._owner, g._ambiguous

    def english(self, surface: str, alpha3: str | None, kind: str, rule: str = "") -> None:
        """A hand-written or pycountry English term with its spelling variants."""
        surface = re.sub(r"\s*\([^()]*\)", "", surface).strip()
        if surface in NOT_A_TERM:
            return
        rule = rule or RULES.get(surface, "")
        variants = [surface]
        if surface.startswith("Saint "):
            variants += ["St. " + surface[6:], "St " + surface[6:]]
        variants += [v.replace(" and ", " & ") for v in variants if " and " in v]
        plain = _strip_accents(surface)
        if plain != surface and plain not in NOT_A_TERM:
            variants.append(plain)
        if " " in surface:
            variants += [" ".join(w[:1].upper() + w[1:] for w in v.split(" ")) for v in list(variants)]
        if surface not in NO_UPPER and sum(ch.isalpha() for ch in surface) >= 4:
            variants += [v.upper() for v in list(variants)]
        for v in dict.fromkeys(variants):
            self.g._add(v, alpha3, kind, rule)

    def localised(self) -> None:
        import babel

        g = self.g
        for loc in g.locales:
            names = babel.Locale.parse(loc).territories
            stop = LOCALISED_STOP.get(loc, set())
            kind = "name" if loc == "en" else "localised"
            for surface, alpha3 in LOCALISED_ALIASES.get(loc, {}).items():
                for form in self.forms(loc, surface):
                    g._add(form, alpha3, "alias", localised=True)
            for code, name in names.items():
                alpha3 = BABEL_EXTRA.get(code) or self.alpha3(code)
                if alpha3 is None:
                    continue
                for part in _name_parts(name):
                    if loc == "vi" and part in VI_PREFIXED:
                        for prefix in ("nước ", "người "):
                            g._add(prefix + part, alpha3, kind, localised=True)
                        continue
                    if part in stop or part in NOT_A_TERM:
                        continue
                    if not _long_enough(part):
                        continue
                    if loc == "en":
                        self.english(part, alpha3, "name")
                        continue
                    for form in self.forms(loc, part):
                        g._add(form, alpha3, kind, RULES.get(form, ""), localised=True)
        for surface in CJK_BLOCKED:
            g._add(surface, None, "alias")

    def alpha3(self, code: str) -> str | None:
        if len(code) != 2 or not code.isalpha():
            return None
        country = self.pycountry.countries.get(alpha_2=code)
        return country.alpha_3 if country else None

    @staticmethod
    def forms(loc: str, name: str) -> list[str]:
        """A localised name, its capitals and diacritic-free spelling, and its generated case forms."""
        out = [name]
        if "ё" in name:
            out.append(name.replace("ё", "е"))
        if loc in ("ar", "fa", "ur"):
            out.append(re.sub("[\u064b-\u0652]", "", name))
        if "\u200c" in name:
            out.append(name.replace("\u200c", ""))
        base = list(dict.fromkeys(out))
        for form in base:
            out.extend(_inflect(loc, form))
        if name[:1].isupper() and sum(ch.isalpha() for ch in name) >= 4 and name not in NO_UPPER:
            out.extend(f.upper() for f in list(out) if f[:1].isupper())
        return list(dict.fromkeys(out))


def _inflect(loc: str, name: str) -> list[str]:
    words = name.split(" ")
    if loc == "ko":
        return [name + p for p in KO_PARTICLES]
    if loc == "ar":
        first, rest = words[0], name[len(words[0]):]
        out = []
        for p in AR_PROCLITICS:
            if p[-1] == "ل" and first.startswith("ال"):
                out.append(p + first[1:] + rest)  # l + al- -> lil-
            else:
                out.append(p + first + rest)
        return out
    if loc == "am":
        return [p + name for p in AM_PREFIXES]
    if loc == "bn":
        return [name + s for s in BN_SUFFIXES]
    if loc == "te":
        out = [name + s for s in TE_SUFFIXES]
        if name.endswith("ం"):
            out += [name[:-1] + "ా" + s for s in ("నికి", "న్ని", "నిది")]
        if name.endswith("్"):
            out += [name[:-1] + "ు" + s for s in TE_SUFFIXES]
        return out
    if loc == "de":
        return [name + "s"] if len(words) == 1 and name[-1] not in "sxzß" else []
    if loc == "ru":
        if name in RU_EXCEPTIONS:
            return list(RU_EXCEPTIONS[name])
        if len(words) == 1:
            return _ru_forms(name)
        if len(words) == 2 and words[0].endswith("ая"):
            adj = words[0][:-2]
            return [f"{adj}{a} {n}" for a in ("ой", "ую") for n in _ru_forms(words[1])]
        return []
    if loc == "fi":
        if name in FI_EXCEPTIONS:
            return list(FI_EXCEPTIONS[name])
        return _fi_forms(name) if len(words) == 1 else []
    return []


def _ru_forms(w: str) -> list[str]:
    """Genitive, dative, accusative, instrumental and prepositional of a one-word Russian name."""
    if w.endswith("ия"):
        b = w[:-1]
        return [b + "и", b + "ю", b + "ей"]
    if w.endswith("а"):
        b = w[:-1]
        return [b + ("и" if b[-1:] in "гкхжчшщ" else "ы"), b + "е", b + "у", b + "ой"]
    if w.endswith("я"):
        b = w[:-1]
        return [b + "и", b + "е", b + "ю", b + "ей"]
    if w.endswith(("й", "ь")):
        b = w[:-1]
        return [b + "я", b + "ю", b + "ем", b + "е"]
    if w[-1:] in "бвгджзклмнпрстфхцчшщ":
        return [w + "а", w + "у", w + "ом", w + "е"]
    return []  # Перу, Чили, Конго: indeclinable


def _fi_forms(w: str) -> list[str]:
    """Finnish local and grammatical cases of a one-word name (the last part of a hyphenated one)."""
    hyphen = w.rfind("-")
    prefix, w = w[: hyphen + 1], w[hyphen + 1:]
    if not w or not w[-1].isalpha():
        return []
    if w[-1].lower() not in "aeiouyäö":
        w += "i"  # Iran -> Iranissa
    back = any(ch in "aouAOU" for ch in w)
    a = "a" if back else "ä"
    weak = re.sub(r"(kk|pp|tt)([aeiouyäö])$", lambda m: m.group(1)[0] + m.group(2), w)
    forms = [weak + s for s in ("n", f"ss{a}", f"st{a}", f"ll{a}", "lle", f"lt{a}", "ksi")]
    forms += [w + f"n{a}", w + a, w + w[-1] + "n"]
    return [prefix + f for f in forms]


def _name_parts(name: str) -> list[str]:
    """A CLDR name without its parenthetical ("Myanmar (Burma)" -> "Myanmar"); none for a name with a
    comma ("St. Helena, Ascension & Tristan da Cunha": aliases cover its parts)."""
    bare = re.sub(r"\s*[(（][^()（）]*[)）]", "", name).strip()
    return [bare] if bare and "," not in bare and "，" not in bare else []


def _long_enough(name: str) -> bool:
    """The length floor for a one-word localised name (see the module docstring)."""
    letters = [ch for ch in name if ch.isalpha()]
    if not letters:
        return False
    if " " in name or "-" in name:
        return True
    script = unicodedata.name(letters[0], "")
    if script.startswith(("HANGUL", "ETHIOPIC", "CJK", "HIRAGANA", "KATAKANA")):
        return len(letters) >= 2
    if script.startswith("LATIN"):
        return len(letters) >= 4 or (len(letters) >= 3 and not name.isascii())
    return len(name) >= 3


def _strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def _split_list(block: str) -> list[str]:
    return [s.strip() for line in block.strip().splitlines() for s in line.split("|") if s.strip()]


def _table(block: str) -> Iterable[tuple[str, str]]:
    """("ABC", word) pairs from "ABC: word, word | DEF: word" lines."""
    for entry in _split_list(block):
        alpha3, _, words = entry.partition(":")
        for word in words.split(","):
            if word.strip():
                yield alpha3.strip(), word.strip()


@lru_cache(maxsize=1)
def default_gazetteer() -> Gazetteer:
    """The gazetteer over ``LOCALES``, built once per process (see the module docstring for its cost)."""
    return Gazetteer()


@lru_cache(maxsize=1)
def gazetteer_version() -> dict[str, str]:
    """What the default gazetteer was built from, for the run manifest: package versions, locales, sizes
    and a hash of the term table (changes whenever any term, code, kind or rule does)."""
    gaz = default_gazetteer()
    rows = gaz.term_table()
    digest = hashlib.sha256("\n".join("\t".join(r) for r in rows).encode()).hexdigest()[:16]
    return {"pycountry": importlib.metadata.version("pycountry"), "babel": importlib.metadata.version("babel"),
            "locales": ",".join(gaz.locales), "terms": str(len(rows)), "countries": str(len(gaz.canonical)),
            "table_sha256": digest}


def _benchmark() -> None:
    """Build cost and throughput on one core: ``python -m globalign.audit.gazetteer`` (CPU time, so other
    load on the machine does not count)."""
    import gc
    import time
    import tracemalloc

    import babel.localedata

    _patterns()  # the token pattern is shared by every gazetteer: timed on its own
    plain = ("The committee reviewed the proposal on Tuesday and asked for a revised budget. Please "
             "summarise the main arguments of the essay in three short bullet points, keeping the tone "
             "neutral and the wording simple. The model should explain each step of its reasoning, cite "
             "the relevant paragraph, and avoid repeating the question. Finally, add a short conclusion "
             "that a busy reader could skim in under a minute, with one concrete recommendation.")
    mentions = ("My cousin moved from Nigeria to the United Kingdom last year, and she says the food in "
                "London reminds her of Indian restaurants back home. Write a short travel guide comparing "
                "Kenya and Tanzania for a first-time visitor from the US, and mention whether a French "
                "speaker would manage without English. Keep it under three hundred words, friendly in "
                "tone, with one tip about visas for South Africa.")
    typographic = plain.replace("Please summarise", "“Please” summarise").replace("skim", "skim — ")
    russian = ("Комитет рассмотрел предложение во вторник и попросил пересмотреть бюджет. Кратко изложите "
               "основные аргументы эссе в трёх пунктах, сохраняя нейтральный тон и простые формулировки. "
               "Модель должна объяснять каждый шаг рассуждения, ссылаться на нужный абзац и не повторять "
               "вопрос. В конце добавьте короткий вывод с одной конкретной рекомендацией для читателя.")
    chinese = "委员会在星期二审议了这项提案，并要求提交修订后的预算。请用三个简短的要点总结文章的主要论点，语气保持中立。" * 4
    for locales in (("en",), LOCALES):
        babel.localedata._cache.clear()
        t0 = time.process_time()
        Gazetteer(locales)
        build_s = time.process_time() - t0
        babel.localedata._cache.clear()
        gc.collect()
        tracemalloc.start()
        gaz = Gazetteer(locales)
        babel.localedata._cache.clear()  # count what the gazetteer keeps, not babel's own cache
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        print(f"{len(locales)} locale(s): build {build_s:.2f} s CPU, {kept / 2**20:.0f} MB kept, "
              f"{len(gaz.term_table())} terms, {len(gaz.canonical)} countries")
        for label, text in (("English, no mention", plain), ("English, mentions", mentions),
                            ("English with “” and —, no mention", typographic), ("Russian, none", russian),
                            ("Chinese, none", chinese)):
            texts = [text + f" #{i}" for i in range(20000)]
            t0 = time.process_time()
            for t in texts:
                gaz.find(t)
            rate = len(texts) / (time.process_time() - t0)
            print(f"  {label}: {rate:,.0f} texts/s ({len(text)} chars, {len(gaz.find(text))} mentions)")


if __name__ == "__main__":
    _benchmark()
