"""Reading an audit's source files in shards that workers read on their own (finding them: finding.py).

Files: JSON lines (.jsonl, .ndjson), JSON (.json: an array of records, or an object holding lists of
records; a .json file that is really JSON lines is read as JSON lines), CSV/TSV (.csv, .tsv, with a
header row) and Parquet (.parquet). The text kinds may be gzip-compressed (.jsonl.gz, .csv.gz, ...).

Everything streams; memory is bounded by one line (JSONL), one item (JSON), one record (CSV) or one
row group (Parquet). Plain JSONL is split into shards of `rows_per_shard` lines that a worker seeks to
by byte offset; Parquet into runs of row groups; JSON, CSV and any gzip file are one shard per file
(a JSON document or a CSV with quoted newlines cannot be cut without reading it; gzip cannot seek).

Locators name rows for errors and reports, counting from 1 and global within the file:
`train.jsonl: line 12`, `train.parquet: row 5031`, `train.csv: row 7 (line 9)`,
`train.json: item 3 (line 17)` (`train.json: 'data' item 3 (line 17)` for lists under a key).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import json
import os
import stat
import zlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from globalign.audit.bounded_json import check_depth, loads, read_line, too_deep
from globalign.audit.records import Shard
from globalign.errors import DataError, first_line

SOURCE_KINDS = ("jsonl", "json", "csv", "parquet")
EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet",
}
_CHUNK_BYTES = 1 << 20
_PARQUET_BATCH_ROWS = 1024
_SNIFF_LINE_BYTES = 16 << 20  # a .json file whose first line is a whole object within this is JSON lines
KNOWN_EXTENSIONS = ", ".join(EXTENSIONS)


def file_kind(path: Path) -> str:
    """One of SOURCE_KINDS, by extension (a .gz suffix is looked through); DataError otherwise."""
    kind = kind_or_none(path)
    if kind is None:
        suffix = _suffix(path) or path.name
        raise DataError(f"{path}: unknown file type '{suffix}' (expected {KNOWN_EXTENSIONS}, or .gz of a text kind)")
    return kind


def plan_shards(paths: Sequence[Path], *, rows_per_shard: int = 5000) -> list[Shard]:
    """Shards covering every row of `paths`, in order. Plain JSONL (also a .json file that holds JSON
    lines): `rows_per_shard` lines each, found in one pass over the bytes. Parquet: runs of whole row
    groups of about `rows_per_shard` rows, from the footer alone. Anything else: one shard per file.
    A file without rows (empty JSONL, Parquet without row groups) gives no shard."""
    if rows_per_shard < 1:
        raise ValueError(f"rows_per_shard must be >= 1, got {rows_per_shard}")
    shards: list[Shard] = []
    for path in paths:
        kind = file_kind(path)
        if kind == "json" and _json_is_lines(path):
            kind = "jsonl"
        if kind == "parquet":
            shards += _parquet_shards(path, rows_per_shard)
        elif kind == "jsonl" and not _gzipped(path):
            shards += _jsonl_shards(path, rows_per_shard)
        else:
            shards.append(Shard(str(path), kind, 0, -1))
    return shards


def read_shard(shard: Shard) -> Iterator[tuple[str, dict[str, Any]]]:
    """(locator, row) for each row of `shard`, streaming. Blank lines are skipped. DataError for bytes
    that are not UTF-8, malformed JSON, a row that is not an object, a ragged CSV row or an unreadable
    file, each naming the file and line (or row/item)."""
    readers = {"jsonl": _jsonl_rows, "json": _json_rows, "csv": _csv_rows, "parquet": _parquet_rows}
    if shard.kind not in readers:
        raise DataError(f"{shard.path}: unknown shard kind '{shard.kind}' (expected {', '.join(SOURCE_KINDS)})")
    return _not_too_deep(readers[shard.kind](shard))


def _not_too_deep(rows: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[tuple[str, dict[str, Any]]]:
    # Every reader's rows (Parquet's nested columns too) are checked before anything recurses into them.
    for where, row in rows:
        check_depth(row, where)
        yield where, row


# --- file kinds ----------------------------------------------------------------------------------


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return Path(name[:-3]).suffix if name.endswith(".gz") else Path(name).suffix


def _gzipped(path: Path | str) -> bool:
    return str(path).lower().endswith(".gz")


def kind_or_none(path: Path) -> str | None:
    kind = EXTENSIONS.get(_suffix(path))
    return None if kind == "parquet" and _gzipped(path) else kind


def not_regular(path: Path) -> str:
    """What `path` is, for a message about a path that is not a regular file."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return "a broken symbolic link" if path.is_symlink() else "unreadable"
    kinds = [(stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")]
    what = next((name for test, name in kinds if test(mode)), "not a regular file")
    return f"a symbolic link to {what}" if path.is_symlink() else what


# --- opening ---------------------------------------------------------------------------------------


@contextmanager
def _open_binary(path: Path) -> Iterator[IO[bytes]]:
    """The file's bytes (decompressed for .gz); DataError for an unreadable or corrupt file, or one
    that is not a regular file."""
    with ExitStack() as stack:
        raw = stack.enter_context(_open_regular(path))
        f: IO[bytes] = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb")) if _gzipped(path) else raw
        try:
            yield f
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise DataError(f"{path}: cannot read ({first_line(e)})") from None


def _open_regular(path: Path) -> IO[bytes]:
    # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer; fstat then refuses it
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise DataError(f"{path}: cannot read ({first_line(e)})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _not_regular_error(path)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _not_regular_error(path: Path) -> DataError:
    return DataError(f"{path}: {not_regular(path)}, not a regular file; move it out of the data folder")


def _utf8_error(path: Path) -> DataError:
    """The error for a file that is not UTF-8, naming the first bad line (a rescan, on error only)."""
    offset = 0
    with _open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                return DataError(f"{path}: line {lineno}: not UTF-8 text (byte offset {offset + e.start})")
            offset += len(raw)
    return DataError(f"{path}: not UTF-8 text")


def _lines(f: IO[bytes], path: Path, start_line: int = 1, offset: int = 0) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of `f`, decoded as UTF-8 (a leading BOM on line 1 dropped)."""
    for lineno, raw in enumerate(f, start_line):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: line {lineno}: not UTF-8 text (byte offset {offset + e.start})") from None
        offset += len(raw)
        yield lineno, text.removeprefix("\ufeff") if lineno == 1 else text


# --- JSON lines ------------------------------------------------------------------------------------


def _jsonl_shards(path: Path, rows_per_shard: int) -> list[Shard]:
    starts = [(0, 0)]  # (line index, byte offset) where each shard begins
    lines_since = 0  # complete lines since the last start
    size = 0
    last = b"\n"
    with _open_binary(path) as f:
        while chunk := f.read(_CHUNK_BYTES):
            remaining, pos = chunk.count(b"\n"), 0
            while remaining >= rows_per_shard - lines_since:
                for _ in range(rows_per_shard - lines_since):
                    pos = chunk.index(b"\n", pos) + 1
                remaining -= rows_per_shard - lines_since
                starts.append((starts[-1][0] + rows_per_shard, size + pos))
                lines_since = 0
            lines_since += remaining
            size += len(chunk)
            last = chunk[-1:]
    total = starts[-1][0] + lines_since + (last != b"\n")
    ends = [line for line, _ in starts[1:]] + [total]
    return [
        Shard(str(path), "jsonl", start, stop, offset=offset, first_line=start + 1)
        for (start, offset), stop in zip(starts, ends)
        if stop > start
    ]


def _jsonl_rows(shard: Shard) -> Iterator[tuple[str, dict[str, Any]]]:
    path = Path(shard.path)
    count = shard.stop - shard.start if shard.stop >= 0 else None
    with _open_binary(path) as f:
        if shard.offset:
            f.seek(shard.offset)
        lineno = shard.first_line - 1
        while count is None or lineno + 1 - shard.first_line < count:
            start = f.tell()
            raw = read_line(f)  # a long line comes back with its long strings cut (bounded_json)
            if not raw:
                break
            lineno += 1
            if raw.isspace():  # (strip would copy a long line)
                continue
            where = f"{path}: line {lineno}"
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                at = f" (byte offset {start + e.start})" if f.tell() - start == len(raw) else ""
                raise DataError(f"{where}: not UTF-8 text{at}") from None
            del raw  # one copy of a line at a time
            try:
                row = loads(text.removeprefix("\ufeff") if lineno == 1 else text, where)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: malformed JSON ({e.msg}, column {e.colno})") from None
            del text
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object, got {_json_type(row)}")
            yield where, row


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# --- JSON documents --------------------------------------------------------------------------------


def _json_is_lines(path: Path) -> bool:
    """Whether a .json file holds JSON lines: its first line is a whole object and either more lines
    follow or that object holds no list of records (then it is one record)."""
    with _open_binary(path) as f:
        first = f.readline(_SNIFF_LINE_BYTES)
        if not first.lstrip(codecs.BOM_UTF8 + b" \t\r\n").startswith(b"{"):
            return False
        try:
            row = json.loads(first.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return False
        except (RecursionError, ValueError):  # a whole line, too deep or with a huge number: read as
            return True  # JSON lines, whose reader names the line in its error
        if not isinstance(row, dict):
            return False
        for line in f:
            if line.strip():
                return True
    return not any(_is_record_list(v) for v in row.values())


def _is_record_list(value: object) -> bool:
    return isinstance(value, list) and (not value or isinstance(value[0], dict))


class _JsonText:
    """A JSON document read in chunks: `buf[pos:]` is unread text, `line` the line number of `buf[0]`."""

    def __init__(self, f: IO[bytes], path: Path) -> None:
        self.f, self.path = f, path
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.json = json.JSONDecoder()
        self.buf, self.pos, self.line, self.eof = "", 0, 1, False
        self._counted_pos, self._counted_line = 0, 1  # line_at's cache: it is called with rising positions

    def more(self, at_least: int = _CHUNK_BYTES) -> bool:
        """Append at least `at_least` bytes' worth of text, dropping what was read; False at the end."""
        if self.eof:
            return False
        data = self.f.read(at_least)
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError:
            raise _utf8_error(self.path) from None
        self.eof = not data
        self.line = self.line_at(self.pos)
        self.buf, self.pos = self.buf[self.pos:] + text, 0
        self._counted_pos, self._counted_line = 0, self.line
        return True

    def line_at(self, pos: int) -> int:
        if pos < self._counted_pos:
            return self.line + self.buf.count("\n", 0, pos)
        self._counted_line += self.buf.count("\n", self._counted_pos, pos)
        self._counted_pos = pos
        return self._counted_line

    def error(self, message: str, pos: int | None = None) -> DataError:
        return DataError(f"{self.path}: line {self.line_at(self.pos if pos is None else pos)}: {message}")

    def peek(self) -> str:
        """The next non-whitespace character, consuming the whitespace; "" at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, chars: str, what: str) -> str:
        """Consume the next non-whitespace character, which must be one of `chars`."""
        c = self.peek()
        if not c or c not in chars:
            found = f"found {c!r}" if c else "the file ended"
            raise self.error(f"malformed JSON (expected {what}, {found})")
        self.pos += 1
        return c

    def value(self) -> object:
        """The next JSON value, reading more text until it is whole."""
        self.peek()
        while True:
            try:
                value, end = self.json.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                truncated = e.pos >= len(self.buf) - 6 or e.msg.startswith("Unterminated string")
                if truncated and self.more(max(_CHUNK_BYTES, len(self.buf) - self.pos)):
                    continue
                raise self.error(f"malformed JSON ({e.msg})", e.pos) from None
            except RecursionError:
                raise too_deep(f"{self.path}: line {self.line_at(self.pos)}") from None
            except ValueError as e:  # an integer of more than 4,300 digits
                raise self.error(f"malformed JSON ({first_line(e)})") from None
            if end < len(self.buf) or not self.more():  # a number may go on in the next chunk
                self.pos = end
                return value


def _json_rows(shard: Shard) -> Iterator[tuple[str, dict[str, Any]]]:
    path = Path(shard.path)
    with _open_binary(path) as f:
        text = _JsonText(f, path)
        if text.expect("[{", "an array or object") == "[":
            yield from _json_items(text, f"{path}: item")
        else:
            found = False
            while text.peek() != "}":
                key = text.value()
                if not isinstance(key, str):
                    raise text.error("malformed JSON (expected a property name)")
                text.expect(":", "':'")
                if text.peek() == "[":
                    text.pos += 1
                    records = text.peek() in ("{", "]")  # a list of objects (or an empty list)
                    found = found or records
                    yield from _json_items(text, f"{path}: {key!r} item", keep=records)
                else:
                    text.value()
                if text.peek() != "}":
                    text.expect(",", "',' or '}'")
            text.pos += 1
            if not found:
                raise DataError(
                    f"{path}: a JSON object without a list of records (expected an array of objects, "
                    'or an object such as {"data": [...]}); JSON lines belong in a .jsonl file'
                )
        if text.peek():
            raise text.error("malformed JSON (extra data after the document)")


def _json_items(text: _JsonText, label: str, *, keep: bool = True) -> Iterator[tuple[str, dict[str, Any]]]:
    """The items of an array whose `[` was read, as (`label N (line M)`, object); skipped unless `keep`."""
    if text.peek() == "]":
        text.pos += 1
        return
    n = 0
    while True:
        n += 1
        text.peek()
        line = text.line_at(text.pos)
        item = text.value()
        if keep:
            where = f"{label} {n} (line {line})"
            if not isinstance(item, dict):
                raise DataError(f"{where}: expected a JSON object, got {_json_type(item)}")
            yield where, item
        if text.expect(",]", "',' or ']'") == "]":
            return


# --- CSV -------------------------------------------------------------------------------------------


def _csv_rows(shard: Shard) -> Iterator[tuple[str, dict[str, Any]]]:
    path = Path(shard.path)
    delimiter = "\t" if _suffix(path) == ".tsv" else ","
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    with _open_binary(path) as f:
        reader = csv.reader((text for _, text in _lines(f, path)), delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
            if not header:
                raise DataError(f"{path}: empty file (expected a header row)")
            header = [name or f"Unnamed: {i}" for i, name in enumerate(header)]  # pandas' index column
            dupes = sorted({name for name in header if header.count(name) > 1})
            if dupes:
                raise DataError(f"{path}: line 1: duplicate column '{dupes[0]}' in the header")
            n = 0
            while True:
                start = reader.line_num + 1
                row = next(reader, None)
                if row is None:
                    return
                if not row:
                    continue
                n += 1
                where = f"{path}: row {n} (line {start})"
                if len(row) != len(header):
                    raise DataError(f"{where}: {len(row)} fields, the header has {len(header)}")
                yield where, dict(zip(header, row))
        except csv.Error as e:
            raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({e})") from None


# --- Parquet ---------------------------------------------------------------------------------------


def _parquet_file(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():  # pyarrow would open a FIFO and wait
        raise _not_regular_error(path)
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: not a readable Parquet file ({first_line(e)})") from None


def _parquet_shards(path: Path, rows_per_shard: int) -> list[Shard]:
    meta = _parquet_file(path).metadata
    shards: list[Shard] = []
    start, rows = 0, 0
    for group in range(meta.num_row_groups):
        rows += meta.row_group(group).num_rows
        if rows >= rows_per_shard or group == meta.num_row_groups - 1:
            shards.append(Shard(str(path), "parquet", start, group + 1))
            start, rows = group + 1, 0
    return shards


def _parquet_rows(shard: Shard) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow as pa

    path = Path(shard.path)
    pf = _parquet_file(path)
    stop = pf.metadata.num_row_groups if shard.stop < 0 else shard.stop
    if shard.start >= stop:
        return
    row = sum(pf.metadata.row_group(g).num_rows for g in range(shard.start))
    batches = pf.iter_batches(batch_size=_PARQUET_BATCH_ROWS, row_groups=list(range(shard.start, stop)))
    while True:
        try:
            batch = next(batches, None)
            rows = [] if batch is None else batch.to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{path}: row {row + 1}: cannot read Parquet ({first_line(e)})") from None
        if batch is None:
            return
        for values in rows:
            row += 1
            yield f"{path}: row {row}", values
