"""From tallies to the audit folder's tables (DESIGN.md: `languages.csv` with `language, role,
count, share, rule`; `countries.csv` with `country, count, share`) and the printed summary.

Rules in languages.csv (docs/audit.md):
- `agree`: the study's rule. A message counts only when both identifiers name the same language;
  share = count / messages with an agreed label in that role (disagreements leave the denominator).
- `cld2`, `py3langid`: each identifier alone; share = count / all messages in that role (the
  identifier's `und`, no reliable label, is a row too).
- `dropped_cld2`, `dropped_py3langid`: messages that identifier labelled with the language but the
  agreement rule dropped; share = that count / the identifier's own count for the language, i.e. the
  part of the language the study's rule loses.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from globalign.audit.counts import AGREE, IDENTIFIERS, AuditCounts
from globalign.audit.langid import UNKNOWN, language_name

ROLE_ORDER = ("all", "system", "user", "assistant", "prompt", "chosen", "rejected")
RULE_ORDER = (AGREE, *IDENTIFIERS, *(f"dropped_{i}" for i in IDENTIFIERS))


@dataclass(frozen=True)
class LanguageRow:
    language: str
    role: str
    count: int
    share: float
    rule: str
    name: str


@dataclass(frozen=True)
class CountryRow:
    country: str
    count: int  # messages that mention it (a message counts once per country)
    share: float  # of all country mentions in the role
    alpha3: str
    per_1000_messages: float
    role: str = "all"


@dataclass(frozen=True)
class MetadataRow:
    field: str
    value: str
    count: int  # records
    share: float  # of the records that carry the field


def _role_key(role: str) -> tuple[int, str]:
    return (ROLE_ORDER.index(role), "") if role in ROLE_ORDER else (len(ROLE_ORDER), role)


def roles(counts: AuditCounts) -> list[str]:
    return sorted({role for _, role, _ in counts.languages}, key=_role_key)


def _by_rule_and_role(counter: Counter) -> dict[tuple[str, str], Counter]:
    grouped: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for (rule, role, language), count in counter.items():
        grouped[(rule, role)][language] += count
    return grouped


def language_rows(counts: AuditCounts) -> list[LanguageRow]:
    labelled = _by_rule_and_role(counts.languages)
    dropped = _by_rule_and_role(counts.dropped)
    rows: list[LanguageRow] = []
    for rule in RULE_ORDER:
        for role in roles(counts):
            if rule.startswith("dropped_"):
                identifier = rule.removeprefix("dropped_")
                own = labelled.get((identifier, role), Counter())
                table = {lang: (n, n / own[lang]) for lang, n in dropped.get((identifier, role), Counter()).items()}
            else:
                counter = labelled.get((rule, role), Counter())
                if rule == AGREE:
                    counter = Counter({k: v for k, v in counter.items() if k != UNKNOWN})
                total = sum(counter.values())
                table = {lang: (n, n / total) for lang, n in counter.items()}
            for lang, (n, share) in sorted(table.items(), key=lambda item: (-item[1][0], item[0])):
                rows.append(LanguageRow(lang, role, n, share, rule, language_name(lang)))
    return rows


def non_english_share(counts: AuditCounts, rule: str = AGREE, role: str = "all") -> float | None:
    """Share of messages labelled with a language other than English, among those `rule` labelled."""
    counter = Counter({lang: n for (r, ro, lang), n in counts.languages.items()
                       if r == rule and ro == role and lang != UNKNOWN})
    total = sum(counter.values())
    return None if total == 0 else 1 - counter.get("en", 0) / total


def country_rows(counts: AuditCounts) -> list[CountryRow]:
    """Every role's mentions, most mentioned first; `role == "all"` rows are countries.csv."""
    per_role: dict[str, Counter] = defaultdict(Counter)
    for (role, alpha3, country), n in counts.countries.items():
        per_role[role][(alpha3, country)] += n
    messages = {role: sum(n for (r, ro, _), n in counts.languages.items() if r == "cld2" and ro == role)
                for role in per_role}
    rows = []
    for role in sorted(per_role, key=_role_key):
        total = sum(per_role[role].values())
        for (alpha3, country), n in sorted(per_role[role].items(), key=lambda item: (-item[1], item[0][1])):
            rows.append(CountryRow(country, n, n / total, alpha3, 1000 * n / max(1, messages[role]), role))
    return rows


def metadata_rows(counts: AuditCounts) -> list[MetadataRow]:
    totals: Counter = Counter()
    for (name, _), n in counts.metadata.items():
        totals[name] += n
    return [MetadataRow(name, value, n, n / totals[name])
            for (name, value), n in sorted(counts.metadata.items(), key=lambda item: (item[0][0], -item[1], item[0][1]))]


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def summary_lines(counts: AuditCounts, *, top: int = 8) -> list[str]:
    """A short human-readable account of the audit (printed at the end of `audit-data`)."""
    formats = Counter()
    for (_, fmt), n in counts.formats.items():
        formats[fmt] += n
    by_format = ", ".join(f"{f}: {n:,}" for f, n in formats.most_common())
    lines = [f"{counts.records:,} records ({by_format}), {counts.messages:,} messages, {counts.characters:,} characters"]
    agreed_total = sum(n for (r, ro, lang), n in counts.languages.items() if r == AGREE and ro == "all" and lang != UNKNOWN)
    if counts.messages:
        lines.append(f"non-English share: {_percent(non_english_share(counts))} under the study's agreement rule "
                     f"({agreed_total:,} of {counts.messages:,} messages labelled, "
                     f"{_percent(1 - agreed_total / counts.messages)} dropped); "
                     + ", ".join(f"{i} alone {_percent(non_english_share(counts, i))}" for i in IDENTIFIERS))
    rows = language_rows(counts)
    agreed = [r for r in rows if r.rule == AGREE and r.role == "all"][:top]
    if agreed:
        lines.append("languages (agreement rule): " + ", ".join(f"{r.name} {_percent(r.share)}" for r in agreed))
    lost = sorted((r for r in rows if r.rule == "dropped_cld2" and r.role == "all" and r.count >= 10),
                  key=lambda r: -r.share)[:top]
    if lost:
        lines.append("dropped by the agreement rule (share of cld2's label): "
                     + ", ".join(f"{r.name} {_percent(r.share)} of {round(r.count / r.share):,}" for r in lost))
    for role_a, role_b in (("user", "assistant"), ("chosen", "rejected")):
        a, b = non_english_share(counts, AGREE, role_a), non_english_share(counts, AGREE, role_b)
        if a is not None and b is not None:
            lines.append(f"non-English share, {role_a} {_percent(a)} vs {role_b} {_percent(b)}")
    countries = [r for r in country_rows(counts) if r.role == "all"]
    if countries:
        lines.append(f"countries mentioned ({sum(r.count for r in countries):,} mentions, {len(countries)} countries): "
                     + ", ".join(f"{r.country} {_percent(r.share)}" for r in countries[:top]))
    fields = sorted({name for name, _ in counts.metadata})
    lines.append(f"metadata fields found: {', '.join(fields)}" if fields else "metadata fields found: none")
    return lines
