"""The audit's tallies: plain counters that add up in any order, so shards counted by different
processes (or Ray workers) merge into the same totals, and a killed run resumes from the shards it
had saved. Nothing here looks at text; analyse.py fills the counters."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# Label sources per message: each identifier alone, and the study's rule (both identifiers agree).
IDENTIFIERS = ("cld2", "py3langid")
AGREE = "agree"
# Distinct metadata values kept per field; the rest are counted under OTHER so a free-text field
# (a prompt id that slipped through, a per-row URL) cannot grow the tallies without bound.
MAX_METADATA_VALUES = 1000
OTHER = "(other)"


@dataclass
class AuditCounts:
    """Tallies over some messages. Keys of `languages`: (rule, role, language code), with rule one of
    IDENTIFIERS or AGREE ("und" counted too, so a role's total is the number of its messages). Keys
    of `dropped`: (identifier, role, language): messages that identifier labelled `language` which
    the agreement rule dropped (the other identifier said something else or nothing). `countries`:
    (role, alpha-3, country) -> messages mentioning the country (each message once per country).
    `metadata`: (field, value) -> records. Roles: "all", the message role, and for preference data
    its side ("prompt", "chosen", "rejected")."""

    records: int = 0
    messages: int = 0
    characters: int = 0
    empty_records: int = 0
    truncated_messages: int = 0  # messages longer than records.MAX_MESSAGE_CHARS, read up to it
    formats: Counter = field(default_factory=Counter)  # (file, format) -> records
    languages: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    countries: Counter = field(default_factory=Counter)
    metadata: Counter = field(default_factory=Counter)
    # distinct values kept per metadata field (derived from `metadata`; kept so a new value is checked
    # against the cap without scanning every (field, value) key)
    _values_per_field: Counter = field(default_factory=Counter, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._values_per_field.update(name for name, _ in self.metadata)

    def add(self, other: AuditCounts) -> None:
        self.records += other.records
        self.messages += other.messages
        self.characters += other.characters
        self.empty_records += other.empty_records
        self.truncated_messages += other.truncated_messages
        for name in ("formats", "languages", "dropped", "countries"):
            getattr(self, name).update(getattr(other, name))
        for (name, value), count in other.metadata.items():
            self.add_metadata(name, value, count)

    def add_metadata(self, name: str, value: str, count: int = 1) -> None:
        if (name, value) not in self.metadata and value != OTHER and self._values_per_field[name] >= MAX_METADATA_VALUES:
            value = OTHER
        if (name, value) not in self.metadata:
            self._values_per_field[name] += 1
        self.metadata[(name, value)] += count

    # JSON keeps counter keys as lists: the progress file and Ray results carry counts this way.
    def to_json(self) -> dict[str, Any]:
        def rows(counter: Counter) -> list[list[Any]]:
            return [[*key, count] for key, count in sorted(counter.items())]

        return {"records": self.records, "messages": self.messages, "characters": self.characters,
                "empty_records": self.empty_records, "truncated_messages": self.truncated_messages,
                "formats": rows(self.formats),
                "languages": rows(self.languages), "dropped": rows(self.dropped),
                "countries": rows(self.countries), "metadata": rows(self.metadata)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AuditCounts:
        def counter(rows: list[list[Any]]) -> Counter:
            return Counter({tuple(row[:-1]): int(row[-1]) for row in rows})

        return cls(int(data["records"]), int(data["messages"]), int(data["characters"]),
                   int(data["empty_records"]), int(data["truncated_messages"]), counter(data["formats"]),
                   counter(data["languages"]),
                   counter(data["dropped"]), counter(data["countries"]), counter(data["metadata"]))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
