"""Turning a raw dataset row into an AuditRecord: which record format a file uses, and its turns.

Formats, detected from a file's first row (`detect_format`), first match wins:
1. "preference": fields `chosen` and `rejected` (strings, HH-RLHF "\\n\\nHuman: ... \\n\\nAssistant: ..."
   transcripts, or message lists), with an optional prompt (a PROMPT_FIELDS field: string or messages).
2. "sharegpt" / "messages": a list of turns under one of MESSAGE_LIST_FIELDS; "sharegpt" when the
   turns are {from, value}, "messages" when they are {role, content} (Tulu, UltraChat, LMSYS).
3. "prompt_response": a user-text field (PROMPT_FIELDS) and a response field (RESPONSE_FIELDS), e.g.
   Alpaca's instruction(+input)/output, prompt/response, question/answer, query/response.
`--fields` (FieldNames) names the format and fields when the defaults do not match.

Roles map onto records.ROLES through ROLE_ALIASES (case-insensitive). An unknown role is an error
naming it (a tool or narrator turn is not obviously user or assistant text); `--fields role:tool=skip`
(or =user/assistant/system) decides. Empty or missing content skips that turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from globalign.audit.bounded_json import loads
from globalign.audit.records import MAX_MESSAGE_CHARS, ROLES, AuditRecord, Message
from globalign.errors import ConfigError, DataError, unknown_name

RECORD_FORMATS = ("messages", "sharegpt", "prompt_response", "preference")
# Keys of `--fields key=FIELD`; besides them, `format=FORMAT` and `role:NAME=user|assistant|system|skip`.
FIELD_KEYS = ("messages", "role", "content", "system", "prompt", "input", "response", "chosen", "rejected")

MESSAGE_LIST_FIELDS = ("messages", "conversation", "conversations", "dialog", "dialogue", "turns")
ROLE_FIELDS = ("role", "from", "speaker", "author")
CONTENT_FIELDS = ("content", "value", "text")
SHAREGPT_ROLE_FIELDS = ("from", "role", "speaker", "author")
SHAREGPT_CONTENT_FIELDS = ("value", "content", "text")
SYSTEM_FIELDS = ("system", "system_prompt")
PROMPT_FIELDS = ("prompt", "instruction", "question", "query", "inputs", "input")
INPUT_FIELDS = ("input", "context")  # appended to the prompt: Alpaca's input, Dolly's context
RESPONSE_FIELDS = ("response", "output", "answer", "completion", "targets")
ROLE_ALIASES = {
    "system": "system",
    **dict.fromkeys(("user", "human", "prompter", "customer"), "user"),
    **dict.fromkeys(("assistant", "gpt", "bot", "model", "chatgpt", "ai", "chatbot", "bard", "bing", "claude",
                     "gpt-4", "gpt4"), "assistant"),
}

# Fields tabulated as metadata, at the top level or one level down ("metadata.country"); any field
# under an annotator/worker/rater/labeler object counts too. Ids and hashes never do (one value a row).
METADATA_FIELDS = ("language", "lang", "languages", "locale", "country", "countries", "region", "nationality",
                   "source", "dataset", "subset", "category", "domain", "model")
METADATA_PREFIXES = ("annotator_", "worker_", "rater_", "labeler_")
PERSON_FIELDS = ("annotator", "worker", "rater", "labeler")
METADATA_VALUE_CHARS = 80

_HH_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):[ \t]?")
_FIELD_LIST_MAX = 20


@dataclass(frozen=True)
class FieldNames:
    """What the user named with `--fields`: the record format and/or field names, e.g.
    `fields=(("prompt", "question"), ("response", "best_answer"))`, and roles as ("role:tool", "skip")."""

    format: str | None = None
    fields: tuple[tuple[str, str], ...] = ()

    @cached_property
    def _lookup(self) -> dict[str, str]:  # built once: get() runs for every row and turn
        return dict(self.fields)

    def get(self, key: str) -> str | None:
        return self._lookup.get(key)

    def role(self, name: str) -> str | None:
        """The role (or "skip") the user mapped the raw role `name` to, else the built-in alias."""
        return self._lookup.get(f"role:{name}") or ROLE_ALIASES.get(name)


def parse_field_flag(text: str) -> FieldNames:
    """`"format=preference,prompt=instruction,chosen=good,rejected=bad"` -> FieldNames; ConfigError for
    bad syntax, an unknown key or format, a repeated key."""
    fmt: str | None = None
    fields: dict[str, str] = {}
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ConfigError("--fields: empty; expected key=FIELD pairs such as prompt=question,response=answer")
    for part in parts:
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or not key or not value:
            raise ConfigError(f"--fields: '{part}' is not key=FIELD (e.g. prompt=question)")
        if key in fields or (key == "format" and fmt):
            raise ConfigError(f"--fields: '{key}' given twice")
        if key == "format":
            if value not in RECORD_FORMATS:
                raise ConfigError(str(unknown_name("record format", value, RECORD_FORMATS)))
            fmt = value
        elif key.startswith("role:"):
            role = key.removeprefix("role:").strip().lower()
            if not role or value not in (*ROLES, "skip"):
                raise ConfigError(f"--fields: '{part}': expected role:NAME=user, assistant, system or skip")
            fields[f"role:{role}"] = value
        elif key in FIELD_KEYS:
            fields[key] = value
        else:
            raise ConfigError(str(unknown_name("--fields key", key, (*FIELD_KEYS, "format", "role:NAME"))))
    return FieldNames(fmt, tuple(fields.items()))


def detect_format(row: Mapping[str, Any], locator: str, names: FieldNames = FieldNames()) -> str:
    """The record format of `row` (one of RECORD_FORMATS; `names.format` when given), by the rules in
    this module's docstring. DataError naming the fields when nothing matches."""
    if names.format:
        return names.format
    if (names.get("chosen") or "chosen") in row and (names.get("rejected") or "rejected") in row:
        return "preference"
    list_field = names.get("messages") or _first_present(row, MESSAGE_LIST_FIELDS)
    if list_field is not None and list_field in row:
        turns = _maybe_json_list(row[list_field], f"{locator}: {list_field}")
        if isinstance(turns, list):
            first = next((t for t in turns if isinstance(t, Mapping)), None)
            if first is None:
                return "sharegpt" if list_field == "conversations" else "messages"
            sharegpt = ("from" in first or "value" in first) and not ("role" in first or "content" in first)
            return "sharegpt" if sharegpt else "messages"
    prompt = names.get("prompt") or _first_present(row, PROMPT_FIELDS)
    response = names.get("response") or _first_present(row, RESPONSE_FIELDS)
    if prompt in row and response in row:
        return "prompt_response"
    raise DataError(
        f"{locator}: unknown record format (fields: {_field_list(row)}); name the fields with --fields, "
        "e.g. --fields format=prompt_response,prompt=question,response=answer"
    )


def to_record(row: Mapping[str, Any], locator: str, fmt: str, names: FieldNames = FieldNames()) -> AuditRecord:
    """The AuditRecord of `row` read as format `fmt`. DataError (one line, with the locator) when the row
    lacks the format's fields or a field has the wrong type."""
    if fmt not in RECORD_FORMATS:
        raise ConfigError(str(unknown_name("record format", fmt, RECORD_FORMATS)))
    if not isinstance(row, Mapping):
        raise DataError(f"{locator}: expected a record with fields, got {type(row).__name__}")
    build = {"messages": _conversation, "sharegpt": _conversation, "prompt_response": _prompt_response,
             "preference": _preference}[fmt]
    messages, used = build(row, locator, fmt, names)
    return AuditRecord(locator, tuple(_capped(m) for m in messages), _metadata(row, used))


def _capped(message: Message) -> Message:
    if len(message.text) <= MAX_MESSAGE_CHARS:
        return message
    return Message(message.text[:MAX_MESSAGE_CHARS], message.role, message.side, truncated=True)


# --- the formats -----------------------------------------------------------------------------------

Turn = tuple[str, str]  # (role, text)
Built = tuple[list[Message], set[str]]  # a record's messages, and the fields they were read from


def _conversation(row: Mapping[str, Any], locator: str, fmt: str, names: FieldNames) -> Built:
    field = names.get("messages") or _first_present(row, MESSAGE_LIST_FIELDS)
    if field is None or field not in row:
        wanted = f"'{field}'" if field else f"messages (looked for {', '.join(MESSAGE_LIST_FIELDS)})"
        raise _missing(row, locator, fmt, wanted, "messages")
    system, used = _system_turns(row, locator, names)
    turns = _turns(row[field], f"{locator}: {field}", names, sharegpt=fmt == "sharegpt")
    return [Message(text, role) for role, text in system + turns], used | {field}


def _prompt_response(row: Mapping[str, Any], locator: str, fmt: str, names: FieldNames) -> Built:
    prompt = names.get("prompt") or _first_present(row, PROMPT_FIELDS)
    response = names.get("response") or _first_present(row, RESPONSE_FIELDS)
    if prompt is None or prompt not in row:
        wanted = f"'{prompt}'" if prompt else f"a prompt ({', '.join(PROMPT_FIELDS)})"
        raise _missing(row, locator, fmt, wanted, "prompt")
    if response is None or response not in row:
        wanted = f"'{response}'" if response else f"a response ({', '.join(RESPONSE_FIELDS)})"
        raise _missing(row, locator, fmt, wanted, "response")
    extra = names.get("input") or next((f for f in INPUT_FIELDS if f in row and f not in (prompt, response)), None)
    system, used = _system_turns(row, locator, names)
    user = [_text(row[prompt], f"{locator}: {prompt}")]
    if extra is not None and extra in row:
        user.append(_text(row[extra], f"{locator}: {extra}"))
        used.add(extra)
    user_text = "\n\n".join(t for t in user if t.strip())
    answer = _text(row[response], f"{locator}: {response}")
    turns = system + [("user", user_text), ("assistant", answer)]
    return [Message(text, role) for role, text in turns if text.strip()], used | {prompt, response}


def _preference(row: Mapping[str, Any], locator: str, fmt: str, names: FieldNames) -> Built:
    """Prompt turns once (side "prompt"), then each response's own turns: a chosen/rejected list that
    repeats the prompt, or the history both share (HH-RLHF), is counted under "prompt" once."""
    chosen_field, rejected_field = names.get("chosen") or "chosen", names.get("rejected") or "rejected"
    for key, field in (("chosen", chosen_field), ("rejected", rejected_field)):
        if field not in row:
            raise _missing(row, locator, fmt, f"'{field}'", key)
    prompt_field = names.get("prompt") or _first_present(row, PROMPT_FIELDS)
    prompt, used = _system_turns(row, locator, names)
    if prompt_field is not None and prompt_field in row:
        prompt += _side_turns(row[prompt_field], f"{locator}: {prompt_field}", names, "user")
        used.add(prompt_field)
    elif names.get("prompt"):
        raise _missing(row, locator, fmt, f"'{prompt_field}'", "prompt")
    chosen = _side_turns(row[chosen_field], f"{locator}: {chosen_field}", names, "assistant")
    rejected = _side_turns(row[rejected_field], f"{locator}: {rejected_field}", names, "assistant")
    chosen, rejected = _drop_prefix(chosen, prompt), _drop_prefix(rejected, prompt)
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and _same(chosen[shared], rejected[shared]):
        shared += 1
    sides = [(prompt + chosen[:shared], "prompt"), (chosen[shared:], "chosen"), (rejected[shared:], "rejected")]
    messages = [Message(text, role, side) for turns, side in sides for role, text in turns]
    return messages, used | {chosen_field, rejected_field}


def _side_turns(value: Any, where: str, names: FieldNames, default_role: str) -> list[Turn]:
    """A prompt or response: a string (an HH-RLHF transcript is split into turns), a message list, or
    one message."""
    if value is None:
        return []
    if isinstance(value, str):
        if _HH_TURN.search(value) and "\n\nAssistant:" in value:
            return _hh_turns(value)
        return [(default_role, value)] if value.strip() else []
    if isinstance(value, Mapping):
        return _turns([value], where, names)
    if isinstance(value, list):
        return _turns(value, where, names)
    raise DataError(f"{where}: expected text or a list of messages, got {_type(value)}")


def _hh_turns(text: str) -> list[Turn]:
    """ "\\n\\nHuman: hi\\n\\nAssistant: hello" -> [("user", "hi"), ("assistant", "hello")]."""
    marks = list(_HH_TURN.finditer(text))
    turns: list[Turn] = [("user", text[: marks[0].start()].strip())]
    for mark, following in zip(marks, [*marks[1:], None]):
        body = text[mark.end(): following.start() if following else len(text)].strip()
        turns.append(("user" if mark.group(1) == "Human" else "assistant", body))
    return [(role, body) for role, body in turns if body]


def _drop_prefix(turns: list[Turn], prompt: list[Turn]) -> list[Turn]:
    """`turns` without a leading repeat of the prompt turns (with or without their system turns)."""
    for prefix in (prompt, [t for t in prompt if t[0] != "system"]):
        if prefix and len(turns) >= len(prefix) and all(_same(a, b) for a, b in zip(turns, prefix)):
            return turns[len(prefix):]
    return turns


def _same(a: Turn, b: Turn) -> bool:
    return a[1].strip() == b[1].strip()


# --- turns and text --------------------------------------------------------------------------------


def _turns(value: Any, where: str, names: FieldNames, *, sharegpt: bool = False) -> list[Turn]:
    """(role, text) of each non-empty turn of a message list; DataError for a wrong type or role."""
    turns = _maybe_json_list(value, where)
    if not isinstance(turns, list):
        raise DataError(f"{where}: expected a list of messages, got {_type(value)}")
    role_fields = SHAREGPT_ROLE_FIELDS if sharegpt else ROLE_FIELDS
    content_fields = SHAREGPT_CONTENT_FIELDS if sharegpt else CONTENT_FIELDS
    role_fields = (names.get("role"),) if names.get("role") else role_fields
    content_fields = (names.get("content"),) if names.get("content") else content_fields
    out: list[Turn] = []
    for i, turn in enumerate(turns):
        at = f"{where}[{i}]"
        if not isinstance(turn, Mapping):
            raise DataError(f"{at}: expected a message object, got {_type(turn)}")
        role_field = next((f for f in role_fields if f in turn), None)
        content_field = next((f for f in content_fields if f in turn), None)
        if role_field is None:
            raise DataError(
                f"{at}: no role field (looked for {', '.join(role_fields)}); name it with --fields role=FIELD"
            )
        if content_field is None:
            raise DataError(
                f"{at}: no content field (looked for {', '.join(content_fields)}); "
                "name it with --fields content=FIELD"
            )
        raw_role = turn[role_field]
        if not isinstance(raw_role, str):
            raise DataError(f"{at}.{role_field}: expected a role name, got {_type(raw_role)}")
        role = names.role(raw_role.strip().lower())
        if role is None:
            raise DataError(
                f"{at}: unknown role '{raw_role}' (known: {', '.join(sorted(ROLE_ALIASES))}); "
                f"map it with --fields role:{raw_role.strip().lower()}=user|assistant|system|skip"
            )
        text = _text(turn[content_field], f"{at}.{content_field}")
        if role != "skip" and text.strip():
            out.append((role, text))
    return out


def _system_turns(row: Mapping[str, Any], locator: str, names: FieldNames) -> tuple[list[Turn], set[str]]:
    field = names.get("system") or _first_present(row, SYSTEM_FIELDS)
    if field is None or field not in row:
        return [], set()
    text = _text(row[field], f"{locator}: {field}")
    return ([("system", text)] if text.strip() else []), {field}


def _text(value: Any, where: str) -> str:
    """A content value as text: a string, or the text parts of an OpenAI-style part list joined by
    newlines (image and audio parts dropped); None is ""."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, Mapping):
        value = [value]
    if isinstance(value, list):
        parts = []
        for i, part in enumerate(value):
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type", "text") == "text":
                parts.append(_text(part.get("text"), f"{where}[{i}].text"))
            elif not isinstance(part, Mapping):
                raise DataError(f"{where}[{i}]: expected text or a content part, got {_type(part)}")
        return "\n".join(p for p in parts if p)
    raise DataError(f"{where}: expected text, got {_type(value)}")


def _maybe_json_list(value: Any, where: str) -> Any:
    """A message list stored as JSON text (CSV files) decoded; anything else unchanged. DataError for
    JSON text nested too deep (bounded_json.MAX_NESTING)."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            return loads(value, where)
        except json.JSONDecodeError:
            return value
    return value


# --- metadata --------------------------------------------------------------------------------------


def _metadata(row: Mapping[str, Any], used: set[str]) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for key, value in row.items():
        if key in used or not isinstance(key, str):
            continue
        if isinstance(value, Mapping):
            person = key.lower().startswith(PERSON_FIELDS)
            for sub, sub_value in value.items():
                if isinstance(sub, str) and not _is_id(sub) and (person or _is_metadata_name(sub)):
                    found.append((f"{key}.{sub}", _short(sub_value)))
        elif _is_metadata_name(key):
            found.append((key, _short(value)))
    return tuple((field, value) for field, value in found if value)


def _is_metadata_name(name: str) -> bool:
    lowered = name.lower()
    return not _is_id(lowered) and (lowered in METADATA_FIELDS or lowered.startswith(METADATA_PREFIXES))


def _is_id(name: str) -> bool:
    lowered = name.lower()
    return lowered in ("id", "uid", "uuid") or lowered.endswith(("_id", "_ids", "_hash", "_uuid"))


def _short(value: Any) -> str:
    """A metadata value as a short one-line string ("" to leave it out): lists of scalars joined by
    commas, objects left out, at most METADATA_VALUE_CHARS characters."""
    if value is None or isinstance(value, Mapping):
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        text = ",".join(_short(v) for v in value if not isinstance(v, (list, tuple, Mapping)) and v is not None)
    else:
        text = str(value)
    return " ".join(text.split())[:METADATA_VALUE_CHARS]


# --- helpers ---------------------------------------------------------------------------------------


def _first_present(row: Mapping[str, Any], fields: tuple[str, ...]) -> str | None:
    return next((f for f in fields if f in row), None)


def _field_list(row: Mapping[str, Any]) -> str:
    names = [str(k) for k in row]
    more = f", ... ({len(names) - _FIELD_LIST_MAX} more)" if len(names) > _FIELD_LIST_MAX else ""
    return ", ".join(names[:_FIELD_LIST_MAX]) + more


def _missing(row: Mapping[str, Any], locator: str, fmt: str, wanted: str, key: str) -> DataError:
    return DataError(
        f"{locator}: missing field {wanted} (the file's records are {fmt}; fields: {_field_list(row)}); "
        f"name it with --fields {key}=FIELD"
    )


def _type(value: Any) -> str:
    return {str: "text", list: "a list", dict: "an object", bool: "a boolean", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)
