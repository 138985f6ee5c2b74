"""Text from data files and models, made safe for the places people open it.

- The terminal: names read from prediction files (model names, countries, groups) could carry ANSI
  escape sequences or other control characters that rewrite the screen; `printable` shows them as
  visible escapes (`\\x1b`) instead.
- Spreadsheets: a CSV cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a
  formula by Excel, LibreOffice and Google Sheets. `spreadsheet_safe` writes such a text cell with a
  leading apostrophe (the OWASP rule); `from_spreadsheet_safe` undoes it, so the value stays
  machine-readable (documented in docs/usage.md, "Output contract"). Numbers are never changed.
"""

from __future__ import annotations

import re

# C0 and C1 controls (but newline and tab, which are layout) and DEL; also the bidi overrides that
# can reorder what a terminal shows.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPE = "'"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with control characters (ANSI escapes, bell, backspace, bidi overrides) shown as escapes;
    newlines and tabs are kept."""
    return _UNPRINTABLE.sub(_escape, text)


def one_line(text: str) -> str:
    """`printable`, with newlines too shown as escapes: for values that must stay on one line."""
    return printable(text).replace("\n", "\\n")


def spreadsheet_safe(text: str) -> str:
    """A text cell a spreadsheet will show, not run: a leading `'` when it starts like a formula, or when it
    already starts with `'` (so that reading back is unambiguous)."""
    if text.startswith(FORMULA_STARTS) or text.startswith(_ESCAPE):
        return _ESCAPE + text
    return text


def from_spreadsheet_safe(cell: str) -> str:
    """The value `spreadsheet_safe` was given (readers of globalign's CSV text columns use this)."""
    return cell[1:] if cell.startswith(_ESCAPE) else cell
