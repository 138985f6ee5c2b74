"""Reading the delimited text files and Python-literal cells the datasets ship, with errors that say
which file, line and column is wrong. Nothing here ever executes data."""

from __future__ import annotations

import ast
import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from globalign.errors import DataError


def read_text(path: Path, encoding: str = "utf-8") -> str:
    """The file's text; DataError for an unreadable file or bytes that are not `encoding`."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or type(e).__name__})") from None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path}: not UTF-8 text (line {line}, byte {e.start})") from None


def parse_yaml(text: str, path: Path, error: type[Exception] = DataError) -> Any:
    """`yaml.safe_load(text)`; a syntax error is one line naming the file, the line and the problem
    (PyYAML's own message spans several lines with a drawing of the spot)."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{where}: invalid YAML ({problem})") from None


def parse_literal(text: str, what: str) -> object:
    """Parse a plain Python literal (no names, calls or operators beyond literal_eval's); never executes."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ValueError(f"{what}: not a well-formed literal ({type(e).__name__})") from None
    if isinstance(tree.body, ast.Dict):
        keys = [k.value for k in tree.body.keys if isinstance(k, ast.Constant)]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{what}: duplicate key")
    try:
        return ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise ValueError(f"{what}: only plain literals are allowed (no names or calls)") from None


def parse_string_list(text: str, what: str) -> tuple[str, ...]:
    """`"['Atom', 'Proton']"` -> `("Atom", "Proton")`; ValueError unless it is a non-empty list of strings."""
    value = parse_literal(text, what)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what}: expected a non-empty list of strings")
    return tuple(value)


def finite_number(text: str, where: str, column: str) -> float:
    """A table cell that must be a finite number; DataError naming the row and column otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: column '{column}' is not a number ({text[:30]!r})") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: column '{column}' is not finite ({text!r})")
    return value


def read_rows(
    path: Path, columns: Sequence[str], *, delimiter: str = ",", strict: bool = True
) -> list[tuple[str, dict[str, str]]]:
    """Rows of a delimited file with a header, as (`path: row N (line M)`, {column: text}) pairs.

    Every column in `columns` must be in the header; every row must have the header's field count.
    Blank lines are skipped. Quoting is the standard `"` quoting (fields may hold newlines). With
    `strict=False`, text after a closing quote is kept in the field (`"a, b". c` -> `a, b. c`), as
    pandas reads it; use it only for files known to contain such fields.
    """
    text = read_text(path, "utf-8-sig")
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=strict)
    rows: list[tuple[str, dict[str, str]]] = []
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty file, expected columns {', '.join(columns)}")
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(f"{path}: missing column '{missing[0]}' (found: {', '.join(header)})")
        while True:
            start = reader.line_num + 1
            row = next(reader, None)
            if row is None:
                break
            if not row:
                continue
            where = f"{path}: row {len(rows) + 1} (line {start})"
            if len(row) != len(header):
                raise DataError(f"{where}: {len(row)} fields, the header has {len(header)}")
            rows.append((where, dict(zip(header, row))))
    except csv.Error as e:
        raise DataError(f"{path}: line {reader.line_num}: malformed file ({e})") from None
    return rows


def jsonl_objects(path: Path, *, skip_blank: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`path:line`, object) for each line of a JSON-lines file; every line must be a JSON object.
    A final newline is fine; other blank lines are errors unless `skip_blank`."""
    lines = read_text(path).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        where = f"{path}:{lineno}"
        if skip_blank and not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{where}: malformed JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield where, row
