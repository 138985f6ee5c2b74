"""One shard in, its tallies out: read the rows, turn each into a record, label every message's
language with both identifiers and find the countries it mentions. Pure and picklable, so the same
function runs in a local process pool and in Ray workers (and gives the same counts in both)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from globalign.audit.counts import AGREE, AuditCounts
from globalign.audit.formats import FieldNames, to_record
from globalign.audit.gazetteer import default_gazetteer
from globalign.audit.langid import UNKNOWN, identify_batch
from globalign.audit.records import Message, Shard
from globalign.audit.sources import read_shard

# Messages labelled together: bounds the memory a worker holds whatever the shard's size.
_BATCH_MESSAGES = 512


@dataclass(frozen=True)
class ShardJob:
    """A shard and how to read its records (the format is detected once per file, on its first row)."""

    shard: Shard
    record_format: str
    fields: FieldNames = field(default_factory=FieldNames)
    countries: bool = True  # find country mentions (the gazetteer is the second-costliest step)


def message_roles(message: Message) -> tuple[str, ...]:
    """The `role` values a message is counted under: all, its role, and its side of a preference pair."""
    return ("all", message.role, message.side) if message.side else ("all", message.role)


@dataclass(frozen=True)
class RowsJob:
    """Rows of a file that cannot be split by offset (CSV, a JSON document, gzip), cut into chunks by
    the one process that reads the file, so that workers still share it and a killed audit resumes
    chunk by chunk. `key`: the file's shard key + "@" + the chunk's index."""

    key: str
    path: str
    record_format: str
    fields: FieldNames
    countries: bool
    rows: tuple[tuple[str, dict[str, Any]], ...]


def audit_shard(job: ShardJob) -> AuditCounts:
    return audit_rows(read_shard(job.shard), job.shard.path, job.record_format, job.fields, job.countries)


def audit_chunk(job: RowsJob) -> AuditCounts:
    return audit_rows(job.rows, job.path, job.record_format, job.fields, job.countries)


def audit_rows(rows: Iterable[tuple[str, dict[str, Any]]], path: str, record_format: str, fields: FieldNames,
               countries: bool) -> AuditCounts:
    counts = AuditCounts()
    pending: list[Message] = []
    file_key = (path, record_format)
    for locator, row in rows:
        record = to_record(row, locator, record_format, fields)
        counts.records += 1
        counts.formats[file_key] += 1
        if not record.messages:
            counts.empty_records += 1
        for name, value in record.metadata:
            counts.add_metadata(name, value)
        pending.extend(record.messages)
        if len(pending) >= _BATCH_MESSAGES:
            count_messages(pending, counts, countries=countries)
            pending = []
    count_messages(pending, counts, countries=countries)
    return counts


def count_messages(messages: Sequence[Message], counts: AuditCounts, *, countries: bool = True) -> None:
    gazetteer = default_gazetteer() if countries else None
    calls = identify_batch([m.text for m in messages])
    for message, call in zip(messages, calls):
        counts.messages += 1
        counts.characters += len(message.text)
        counts.truncated_messages += message.truncated
        agreed = call.agreed
        mentioned = ({(m.alpha3, m.country) for m in gazetteer.find(message.text)} if gazetteer else set())
        for role in message_roles(message):
            counts.languages[("cld2", role, call.cld2)] += 1
            counts.languages[("py3langid", role, call.langid)] += 1
            counts.languages[(AGREE, role, agreed)] += 1
            if agreed == UNKNOWN:
                # what the study's rule silently loses, per language as each identifier saw it
                for identifier, code in (("cld2", call.cld2), ("py3langid", call.langid)):
                    if code != UNKNOWN:
                        counts.dropped[(identifier, role, code)] += 1
            for alpha3, country in mentioned:
                counts.countries[(role, alpha3, country)] += 1
