"""Limits on what one record may cost to read: how deep its JSON nests, and how much of a long line is
kept in memory.

Nesting. No chat or preference record nests more than a handful of levels (a message list, a message,
a list of content parts), but Python's JSON parser, pickling to workers and the format walkers all
recurse, so a record nested 100,000 levels deep raised RecursionError. Every row is checked here
(`check_depth`, without recursion) before anything walks it, and every JSON parse goes through
`loads`, so a record nested deeper than MAX_NESTING is one DataError naming its file and line.

Long lines. `read_line` reads a JSON line in chunks; a line longer than LONG_LINE_BYTES is passed
through `_shorten`, which keeps at most `_keep_bytes()` of every string literal (enough bytes for more
than MAX_MESSAGE_CHARS characters, whatever the escapes and UTF-8 widths) and skips the rest, so a
50 MB message is never held whole: memory is bounded by the cap, not by the line. Every message is
cut to MAX_MESSAGE_CHARS afterwards (formats.to_record), so both paths give the same records.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

from globalign.audit.records import MAX_MESSAGE_CHARS
from globalign.errors import DataError, first_line

MAX_NESTING = 100
LONG_LINE_BYTES = 4 << 20
_READ_BYTES = 1 << 20

# Inside a string literal: one token (a run of plain bytes, or one escape); and a whole run to skip.
_STRING_TOKEN = re.compile(rb'[^"\\]+|\\u[0-9a-fA-F]{4}|\\[^u]')
_STRING_SKIP = re.compile(rb'(?:[^"\\]+|\\.)*')


def too_deep(where: str) -> DataError:
    return DataError(f"{where}: JSON nested more than {MAX_NESTING} levels deep (a chat record needs a few); "
                     "fix or remove this record")


def loads(text: str | bytes, where: str) -> Any:
    """json.loads, with DataError for nesting too deep and for what json raises besides
    JSONDecodeError (an integer of more than 4,300 digits); JSONDecodeError is left to the caller."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise too_deep(where) from None
    except json.JSONDecodeError:
        raise
    except ValueError as e:
        raise DataError(f"{where}: malformed JSON ({first_line(e)})") from None
    check_depth(value, where)
    return value


def check_depth(value: Any, where: str) -> None:
    """DataError when lists and objects in `value` nest more than MAX_NESTING levels."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, (list, tuple)) else None
        if children is None:
            continue
        if depth > MAX_NESTING:
            raise too_deep(where)
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list, tuple)))


def read_line(f: IO[bytes]) -> bytes:
    """The next line of `f` (b"" at the end), with long string literals shortened when the line is
    longer than LONG_LINE_BYTES."""
    line = f.readline(LONG_LINE_BYTES)
    if len(line) < LONG_LINE_BYTES or line.endswith(b"\n"):
        return line
    return b"".join(_shorten(_rest_of_line(f, line), _keep_bytes()))


def _keep_bytes() -> int:
    # a character is at most 12 bytes of JSON (an escaped surrogate pair), so this many bytes of a
    # string literal always decode to more than MAX_MESSAGE_CHARS characters
    return 12 * (MAX_MESSAGE_CHARS + 1)


def _rest_of_line(f: IO[bytes], first: bytes) -> Iterator[bytes]:
    yield first
    while True:
        chunk = f.readline(_READ_BYTES)
        if not chunk:
            return
        yield chunk
        if chunk.endswith(b"\n"):
            return


def _whole_characters(buf: bytes, start: int, end: int) -> int:
    """`end`, or the start of the UTF-8 sequence that `buf[start:end]` ends in the middle of."""
    lead = end - 1
    while lead > start and 0x80 <= buf[lead] < 0xC0:
        lead -= 1
    first = buf[lead]
    size = 1 if first < 0x80 else 2 if first < 0xE0 else 3 if first < 0xF0 else 4
    return end if lead + size <= end else lead


def _shorten(chunks: Iterator[bytes], keep: int) -> Iterator[bytes]:
    """The bytes of `chunks` with each JSON string literal cut to at most `keep` bytes (at a token and
    UTF-8 boundary). Bytes that are not valid JSON pass through for the parser to report."""
    buf, pos = b"", 0
    in_string, kept, skipping = False, 0, False
    for chunk in chunks:
        buf, pos = buf[pos:] + chunk, 0
        while pos < len(buf):
            if not in_string:
                quote = buf.find(b'"', pos)
                if quote < 0:
                    yield buf[pos:]
                    pos = len(buf)
                    break
                yield buf[pos:quote + 1]
                pos, in_string, kept, skipping = quote + 1, True, 0, False
            elif buf[pos] == 0x22:  # the closing quote
                yield b'"'
                pos, in_string = pos + 1, False
            elif skipping:
                end = _STRING_SKIP.match(buf, pos).end()
                if end == pos:  # a lone backslash at the end of the chunk: wait for the next one
                    break
                pos = end
            else:
                token = _STRING_TOKEN.match(buf, pos)
                if token is None:
                    if len(buf) - pos < 6:  # an escape cut by the chunk boundary: wait for the next chunk
                        break
                    yield buf[pos:]  # not a valid escape: leave it to the parser
                    pos, in_string = len(buf), False
                    break
                end = token.end()
                if end == len(buf):  # the run may go on in the next chunk: stop at a whole character
                    end = _whole_characters(buf, pos, end)
                    if end == pos:
                        break
                if kept + end - pos > keep:
                    end = pos + max(0, keep - kept) if buf[pos] != 0x5C else pos
                    while end > pos and 0x80 <= buf[end] < 0xC0:  # not inside a UTF-8 sequence
                        end -= 1
                    skipping = True
                yield buf[pos:end]
                kept += end - pos
                pos = end
    if pos < len(buf):
        yield buf[pos:]
