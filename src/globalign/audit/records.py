"""The typed values an audit passes between its modules: sources yield raw rows, formats turn a row
into an AuditRecord of Messages, the analysers label each Message, the counters add them up."""

from __future__ import annotations

from dataclasses import dataclass

# Roles after normalisation (ShareGPT's human/gpt, OpenAI's user/assistant, ... all map onto these).
ROLES = ("system", "user", "assistant")
# Sides of a preference pair. SFT messages have side "": they are neither prompt nor response of a pair.
SIDES = ("", "prompt", "chosen", "rejected")
# Characters of a message that the audit reads (language ID reads the first 2,000 of these, the
# gazetteer all of them); the rest is dropped when the record is read, so one huge message costs no
# more than this. Recorded in the manifest, with the number of messages cut.
MAX_MESSAGE_CHARS = 100_000


@dataclass(frozen=True)
class Message:
    """One turn's text (at most MAX_MESSAGE_CHARS characters: `truncated` when the turn had more).
    `role` is one of ROLES; `side` one of SIDES (preference data only)."""

    text: str
    role: str
    side: str = ""
    truncated: bool = False


@dataclass(frozen=True)
class AuditRecord:
    """One dataset record: where it came from (`path: row N`), its turns, and the metadata fields
    found on it as (field, value) pairs, e.g. ("annotator_country", "Kenya"), ("source", "flan_v2")."""

    locator: str
    messages: tuple[Message, ...]
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Shard:
    """A slice of one source file that one worker reads on its own: rows [start, stop) of `path`.

    `offset` is the byte offset of row `start` for line-based files (JSONL), and `first_line` its
    1-based line number, so a worker can seek there and still name lines in errors. For formats that
    cannot be split (a JSON array, CSV with quoted newlines) a shard covers the whole file
    (start 0, stop -1 meaning "to the end"). For Parquet, start/stop are row-group indices.
    """

    path: str
    kind: str  # "jsonl" | "json" | "csv" | "parquet"
    start: int
    stop: int
    offset: int = 0
    first_line: int = 1

    @property
    def key(self) -> str:
        """A stable id for resume bookkeeping."""
        return f"{self.path}#{self.kind}:{self.start}-{self.stop}"
