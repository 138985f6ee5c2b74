"""Errors a user can hit. The CLI prints them as one line and exits with code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GlobalignError(Exception):
    """A problem with the user's input or environment, worded for the user (what, where, what to do)."""


class UnknownNameError(GlobalignError):
    """An unknown model alias, task, preset or config field."""


class DataError(GlobalignError):
    """A missing data file, a malformed row, a wrong column."""


class ConfigError(GlobalignError):
    """A bad run configuration field."""


def unknown_name(kind: str, name: str, known: Iterable[str]) -> UnknownNameError:
    """Build the error for an unknown name, with a near-miss suggestion ("did you mean ...?")."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:  # a truncated or partial name ("smolm2", "gemma") still deserves a suggestion
        lowered = name.lower()
        close = [k for k in known if k.lower().startswith(lowered[:4]) or lowered in k.lower()][:1]
    hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(known)}"
    return UnknownNameError(f"unknown {kind} '{name}'{hint}")


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (an OSError's strerror when it has one, else its type name):
    what a one-line error quotes from a library's multi-line exception."""
    text = (exc.strerror if isinstance(exc, OSError) else None) or str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
