"""JSON over HTTP to a model server, as a long run against a busy or flaky server needs it: a timeout per
request, retries with exponential backoff and jitter on 429, 5xx, timeouts and dropped connections (a
server's Retry-After is honoured), and one-line errors that name the URL and the last status.

The API key goes into the Authorization header and nowhere else: not into an error message, an exception's
arguments or the URL (a base URL with credentials in it is refused: `check_base_url`).
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from globalign import __version__
from globalign.errors import ConfigError, GlobalignError

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504}) | frozenset(range(520, 530))
MAX_RETRY_AFTER_S = 300.0  # a server asking for longer than this is treated as down, not busy
MAX_ERROR_CHARS = 300  # of a server's error text quoted in a one-line error


class ServerError(GlobalignError):
    """A request the server answered with an error that retrying cannot fix (4xx other than 408/425/429),
    or one that still failed after the last retry. `status` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail  # the server's own error text, one line


def check_base_url(url: str, where: str) -> str:
    """`url` without a trailing slash; a ConfigError at `where` unless it is http(s)://host[:port][/path]
    without credentials, query or fragment (a key belongs in the environment variable, not in a URL that
    the manifest records)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
    if parts.username or parts.password:
        raise ConfigError(f"{where}: must not hold credentials (user:password@); put the API key in the "
                          "environment variable named by the backend option api_key_env")
    if parts.query or parts.fragment:
        raise ConfigError(f"{where}: must not have a query or fragment (?…, #…): give the API root only")
    return url.rstrip("/")


class JsonClient:
    """POST/GET JSON to `base_url` + path, retried as the module says. Thread-safe: one client serves every
    worker thread of a backend; `attempts` and `retries` (by reason) count what happened."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout_s: float, max_retries: int,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, key_source: str = "") -> None:
        self.base_url = check_base_url(base_url, "base_url")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.key_source = key_source  # what to name when the server refuses the key (an env var, never the key)
        self._headers = {"Content-Type": "application/json", "Accept": "application/json",
                         "User-Agent": f"globalign/{__version__}"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._secret = api_key
        self._lock = threading.Lock()
        self.attempts = 0
        self.retries: Counter[str] = Counter()

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._request("POST", path, json.dumps(body).encode("utf-8"))

    def get(self, path: str) -> dict[str, Any]:
        return self._request("GET", path, None)

    def _request(self, method: str, path: str, data: bytes | None) -> dict[str, Any]:
        url = self.base_url + path
        last = ""
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.attempts += 1
            request = urllib.request.Request(url, data=data, method=method, headers=self._headers)
            retry_after: float | None = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    raw = response.read()
                return _decode_json(raw, url)
            except urllib.error.HTTPError as exc:
                detail = self._scrub(_error_text(exc))
                if exc.code in (401, 403):
                    who = f" (the key from {self.key_source})" if self.key_source else ""
                    raise ServerError(f"{method} {url}: HTTP {exc.code}: the server refused the request's "
                                      f"credentials{who}: {detail}", exc.code, detail) from None
                if exc.code not in RETRY_STATUSES:
                    raise ServerError(f"{method} {url}: HTTP {exc.code}: {detail}", exc.code, detail) from None
                last, status = f"HTTP {exc.code} {detail}".strip(), exc.code
                retry_after = _retry_after_s(exc.headers.get("Retry-After"))
                reason = str(exc.code)
            except TimeoutError:
                last, status, reason = f"no answer within {self.timeout_s:g} s", None, "timeout"
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:  # refused, reset, dropped
                cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                if isinstance(cause, TimeoutError):
                    last, status, reason = f"no answer within {self.timeout_s:g} s", None, "timeout"
                else:
                    last, status, reason = f"connection failed: {_one_line(cause)}", None, "connection"
            if attempt == self.max_retries:
                break
            with self._lock:
                self.retries[reason] += 1
            time.sleep(self._delay(attempt, retry_after))
        raise ServerError(f"{method} {url}: gave up after {self.max_retries} retries; last: {last}", status, last)

    def _scrub(self, text: str) -> str:
        """`text` without the API key (a server may quote the key it refused)."""
        return text.replace(self._secret, "<API key>") if self._secret else text

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry `attempt + 1`: the server's Retry-After when it gave one, else exponential
        backoff with jitter (half fixed, half random, so that many workers do not retry in step)."""
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _decode_json(raw: bytes, url: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ServerError(f"{url}: the answer is not JSON: {_one_line(raw[:80].decode('utf-8', 'replace'))!r}",
                          200) from None
    if not isinstance(value, dict):
        raise ServerError(f"{url}: the answer is not a JSON object", 200)
    return value


def _error_text(exc: urllib.error.HTTPError) -> str:
    """The server's error message, one line: OpenAI-style {"error": {"message": ...}}, vLLM's
    {"message": ...}, or the body's start."""
    try:
        raw = exc.read()
    except (OSError, http.client.HTTPException):
        raw = b""
    text = raw.decode("utf-8", "replace")
    try:
        value = json.loads(text)
        error = value.get("error", value) if isinstance(value, dict) else value
        text = str(error.get("message", error) if isinstance(error, dict) else error)
    except ValueError:
        pass
    return _one_line(text or exc.reason or "")


def _one_line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After in seconds (a number or an HTTP date), capped at MAX_RETRY_AFTER_S; None when absent."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
