"""The `openai` backend: a model behind an OpenAI-compatible API (vLLM's `vllm serve`, llama.cpp's server,
a hosted API). The model name is the served model id; options are listed in models/backends.py.

- Scores come from `/completions` with the prompt's log-probabilities echoed back (`echo: true, logprobs,
  max_tokens: 0`, which vLLM's server answers without generating). With a local `tokenizer`, each candidate
  goes as token ids, split by the study's rule (models/tokenization.py) with the transformers backend's BOS
  rule, so the scored tokens are exactly those of the hf backend. Without one, the server tokenises: the
  prompt is sent alone and with each candidate, and a candidate's tokens are the joint tokens past the
  prompt's count (the same rule, with the server's tokenizer and its own BOS). A server that returns no
  prompt log-probabilities fails at the first scoring request; there is no fallback to made-up scores.
- Generations: greedy (temperature 0) through `/completions`, or `/chat/completions` with api=chat (a chat
  prompt's assistant prefix is sent as a final assistant message that vLLM continues), cut at the first
  stop string here too.
- Each request is one HTTP call, `max_concurrency` in flight; the engine hands over 4 x max_concurrency
  requests per call and commits them to the request cache, so a long run against a flaky server computes
  each request once and resumes where it stopped.
- A served model's weights cannot be hashed here: the fingerprint is the server's URL, the served model id,
  what the server's `/models` listing says about it (vLLM: `root`, `max_model_len`), the API and the local
  tokenizer. Restarting the server with other weights under the same id and URL reuses old cached answers:
  use another model id (`vllm serve --served-model-name`) or --no-cache then.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from globalign.errors import ConfigError, GlobalignError, unknown_name
from globalign.models.base import GENERATE, SCORE, ModelInfo
from globalign.models.fingerprint import combine
from globalign.models.hf import _cut_at_stop
from globalign.models.http_client import JsonClient, ServerError, check_base_url
from globalign.models.resolve import LocatedModel
from globalign.models.served_tokenizer import LocalTokenizer, load_local_tokenizer
from globalign.models.tokenization import split_candidates
from globalign.requests import ContinuationScore, GenerateRequest, Prompt, ScoreRequest

# Part of the fingerprint: bumped whenever this file changes how a score or a generation is asked for.
SCORING_VERSION = "openai-1"
APIS = ("completions", "chat")
LOGPROB_TASKS = "global_opinions, md3 (choice), belebele and the askreddit / where_from LM probes"
_METADATA_KEYS = ("root", "parent", "max_model_len", "owned_by")  # stable fields of a /models entry


def check_openai_options(options: dict[str, Any], where: str) -> dict[str, Any]:
    """The options with their defaults filled in; a ConfigError at `where` for a missing or bad value
    (the config checks them before any model loads; the loader again, for callers without a config)."""
    if not options.get("base_url"):
        raise ConfigError(f"{where}.base_url: is required for backend openai (the server's API root)")
    checked = {"api": "completions", "api_key_env": "OPENAI_API_KEY", "tokenizer": None, "max_concurrency": 8,
               "timeout": 120.0, "max_retries": 6, **options}
    checked["base_url"] = check_base_url(str(options["base_url"]), f"{where}.base_url")
    if checked["api"] not in APIS:
        raise ConfigError(f"{where}.api: must be one of {', '.join(APIS)}, got {checked['api']!r}")
    for option, least in (("max_concurrency", 1), ("timeout", 1e-3), ("max_retries", 0)):
        if checked[option] < least:
            raise ConfigError(f"{where}.{option}: must be at least {least:g}, got {checked[option]}")
    return checked


def load_openai(located: LocatedModel) -> ServedModel:
    """The `openai` backend's loader: checks the options, asks the server about the model, loads the local
    tokenizer when one is named."""
    spec = located.spec
    options = check_openai_options(dict(spec.backend_options), f"model '{spec.name}': backend_options")
    key_env = options["api_key_env"]
    key = os.environ.get(key_env) or None
    if key is None and spec.option("api_key_env") is not None:
        raise GlobalignError(f"model '{spec.name}': the environment variable {key_env} (backend option "
                             "api_key_env) is not set")
    client = JsonClient(options["base_url"], key, timeout_s=float(options["timeout"]),
                        max_retries=options["max_retries"], key_source=f"${key_env}")
    tokenizer = load_local_tokenizer(options["tokenizer"], spec.name) if options["tokenizer"] else None
    return ServedModel(client, spec.name, api=options["api"], tokenizer=tokenizer,
                       max_concurrency=options["max_concurrency"])


@dataclass(frozen=True)
class _Echo:
    """What the server said about one prompt it echoed: its tokens and each one's log-probability."""

    tokens: list[str]
    logprobs: list[float | None]


class ServedModel:
    """A LanguageModel whose forward passes run on a server."""

    def __init__(self, client: JsonClient, name: str, *, api: str = "completions",
                 tokenizer: LocalTokenizer | None = None, max_concurrency: int = 8) -> None:
        self.client = client
        self.api = api
        self.tokenizer = tokenizer
        self.name = name
        metadata = _served_metadata(client, name)
        tokenization = f"local: {tokenizer.source}" if tokenizer else "server"
        add_bos = tokenizer.add_bos if tokenizer else False
        self.info = ModelInfo(
            name=name,
            backend="openai",
            fingerprint=combine("openai", SCORING_VERSION, client.base_url, name, api,
                                json.dumps(metadata, sort_keys=True),
                                tokenizer.content_hash if tokenizer else "server-tokenizer", str(add_bos)),
            source=client.base_url,
            dtype="served",  # the server's choice; vLLM's /models does not say
            add_bos=add_bos,
            details={"api": api, "tokenization": tokenization, "max_concurrency": str(max_concurrency),
                     "timeout_s": f"{client.timeout_s:g}", "max_retries": str(client.max_retries),
                     **{f"server_{k}": v for k, v in metadata.items()}},
        )
        self.has_chat_template = api == "chat" or bool(tokenizer and tokenizer.has_chat_template)
        # Chunks of 4 x concurrency keep every connection busy and still commit to the cache often.
        self.requests_per_call = {SCORE: 4 * max_concurrency, GENERATE: 4 * max_concurrency}
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix=f"globalign-{name}")
        self._logprobs_seen = False  # set by the first answer with prompt log-probabilities

    # -- scoring --------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        pending = list(requests)
        done: list[list[ContinuationScore]] = []
        # Until one answer has shown prompt log-probabilities, requests go one at a time: a server without
        # them fails on the first request, not on a chunk of them.
        while pending and not self._logprobs_seen:
            done.append(self._score_one(pending.pop(0)))
        done += self._pool.map(self._score_one, pending)
        self._count_requests()
        return done

    def _score_one(self, request: ScoreRequest) -> list[ContinuationScore]:
        if self.tokenizer is not None:
            return self._score_token_ids(request)
        if request.prompt.is_chat:
            raise GlobalignError(self._needs_tokenizer("score a chat prompt"))
        return self._score_server_tokens(request)

    def _score_token_ids(self, request: ScoreRequest) -> list[ContinuationScore]:
        assert self.tokenizer is not None
        text = self.tokenizer.render(request.prompt, self.name)
        splits = split_candidates(self.tokenizer.encode, text, request.continuations)
        scores = [ContinuationScore(0.0, 0, s.boundary_merge) for s in splits]
        sent = [i for i, s in enumerate(splits) if s.continuation_ids]
        if not sent:
            return scores
        if any(not splits[i].prefix_ids for i in sent):
            raise GlobalignError("cannot score a continuation of an empty prompt for a model without BOS")
        sequences = [list(splits[i].prefix_ids + splits[i].continuation_ids) for i in sent]
        for i, sequence, echo in zip(sent, sequences, self._echo(sequences)):
            if len(echo.logprobs) < len(sequence):
                raise self._bad_answer(f"echoed {len(echo.logprobs)} log-probabilities for {len(sequence)} tokens")
            tail = echo.logprobs[len(splits[i].prefix_ids) : len(sequence)]
            scores[i] = ContinuationScore(self._nll_sum(tail), len(tail), splits[i].boundary_merge)
        return scores

    def _score_server_tokens(self, request: ScoreRequest) -> list[ContinuationScore]:
        prompt, continuations = request.prompt.text, request.continuations
        scores = [ContinuationScore(0.0, 0, False) for _ in continuations]
        sent = [i for i, c in enumerate(continuations) if c]
        if not sent:
            return scores
        alone, *joint = self._echo([prompt, *(prompt + continuations[i] for i in sent)])
        n = len(alone.tokens)
        for i, echo in zip(sent, joint):
            tail = echo.logprobs[n:]
            if tail and tail[0] is None:
                raise GlobalignError("cannot score a continuation of an empty prompt for a model without BOS")
            scores[i] = ContinuationScore(self._nll_sum(tail), len(tail), echo.tokens[:n] != alone.tokens)
        return scores

    def _echo(self, prompts: list[list[int]] | list[str]) -> list[_Echo]:
        """The server's tokens and prompt log-probabilities of each prompt (one request for all of them)."""
        body = {"model": self.name, "prompt": prompts, "echo": True, "max_tokens": 0, "logprobs": 1,
                "temperature": 0}
        try:
            answer = self.client.post("/completions", body)
        except ServerError as exc:
            if not self._logprobs_seen and exc.status is not None and 400 <= exc.status < 500:
                raise GlobalignError(self._no_logprobs(f"it refused the request: {exc.detail}")) from None
            raise
        choices = sorted((c for c in answer.get("choices") or [] if isinstance(c, dict)),
                         key=lambda c: c.get("index", 0))
        if len(choices) != len(prompts):
            raise self._bad_answer(f"{len(choices)} choices for {len(prompts)} prompts")
        echoes = []
        for choice, prompt in zip(choices, prompts):
            logprobs = choice.get("logprobs") if isinstance(choice.get("logprobs"), dict) else {}
            values, tokens = logprobs.get("token_logprobs"), logprobs.get("tokens")
            if not isinstance(values, list) or not values or all(v is None for v in values[1:]):
                raise GlobalignError(self._no_logprobs("its answer has no logprobs.token_logprobs"))
            if isinstance(prompt, str) and choice.get("text") != prompt:
                raise self._bad_answer("the echoed text is not the prompt (does it ignore max_tokens=0?)")
            echoes.append(_Echo(list(tokens) if isinstance(tokens, list) else [], values))
        self._logprobs_seen = True
        return echoes

    # -- generation -----------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerateRequest]) -> list[str]:
        texts = list(self._pool.map(self._generate_one, requests))
        self._count_requests()
        return texts

    def _count_requests(self) -> None:
        """Keep the HTTP counts in the model's details current after every call: a run records a model's
        info when each of its work units ends, before the model is closed."""
        self.info.details.update(http_requests=str(self.client.attempts),
                                 http_retries=str(sum(self.client.retries.values())))

    def _generate_one(self, request: GenerateRequest) -> str:
        if request.max_new_tokens <= 0:
            return ""
        body: dict[str, Any] = {"model": self.name, "max_tokens": request.max_new_tokens, "temperature": 0}
        if request.stop:
            body["stop"] = list(request.stop)
        if self.api == "chat":
            body.update(_chat_messages(request.prompt, self.name))
            choice = _first_choice(self.client.post("/chat/completions", body))
            text = (choice.get("message") or {}).get("content")
        else:
            body["prompt"] = self._completion_prompt(request.prompt)
            text = _first_choice(self.client.post("/completions", body)).get("text")
        if not isinstance(text, str | None):
            raise self._bad_answer("the generated text is not a string")
        return _cut_at_stop(text or "", request.stop)

    def _completion_prompt(self, prompt: Prompt) -> list[int] | str:
        """Token ids when there is a local tokenizer (the server then adds nothing: BOS is ours), else text."""
        if self.tokenizer is not None:
            ids = self.tokenizer.encode(self.tokenizer.render(prompt, self.name))
            if not ids:
                raise GlobalignError("cannot generate from an empty prompt for a model without BOS")
            return ids
        if prompt.is_chat:
            raise GlobalignError(self._needs_tokenizer("send a chat prompt to /completions"))
        return prompt.text

    # -- errors ---------------------------------------------------------------------------------
    def _needs_tokenizer(self, what: str) -> str:
        return (f"model '{self.name}': to {what} the backend needs the model's chat template: give the backend "
                "option tokenizer=<folder or packaged alias>, or use --prompt-format raw")

    def _no_logprobs(self, why: str) -> str:
        return (f"model '{self.name}': the server at {self.client.base_url} gives no prompt log-probabilities "
                f"(/completions with echo and logprobs; {why}); scoring needs them ({LOGPROB_TASKS}): serve the "
                "model with vLLM, or run only generation tasks")

    def _nll_sum(self, logprobs: list[float | None]) -> float:
        if any(v is None for v in logprobs):
            raise self._bad_answer("a continuation token without a log-probability")
        return -float(sum(logprobs))  # type: ignore[arg-type]

    def _bad_answer(self, what: str) -> GlobalignError:
        return GlobalignError(f"model '{self.name}': unexpected answer from {self.client.base_url}/completions: {what}")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._count_requests()
        retries = sum(self.client.retries.values())
        if retries:
            reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(self.client.retries.items()))
            print(f"model '{self.name}' at {self.client.base_url}: {self.client.attempts} HTTP requests, "
                  f"{retries} retried ({reasons})", file=sys.stderr)


def _chat_messages(prompt: Prompt, model: str) -> dict[str, Any]:
    """The request fields of a chat prompt: its user turn, and its assistant prefix as a final assistant
    message that vLLM continues (`continue_final_message`) instead of opening a new turn."""
    if not prompt.is_chat:
        raise GlobalignError(f"model '{model}': backend option api=chat sends chat messages, and this prompt is "
                             "raw text: use --prompt-format chat, or api=completions")
    fields: dict[str, Any] = {"messages": [{"role": "user", "content": prompt.user}]}
    if prompt.text:
        fields["messages"].append({"role": "assistant", "content": prompt.text})
        fields.update(continue_final_message=True, add_generation_prompt=False)
    return fields


def _first_choice(answer: dict[str, Any]) -> dict[str, Any]:
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise GlobalignError(f"unexpected answer from the server: no choices ({str(answer)[:120]!r})")
    return choices[0]


def _served_metadata(client: JsonClient, name: str) -> dict[str, str]:
    """What the server's `/models` listing says about `name` (vLLM: root, max_model_len): part of the
    fingerprint. A server without the listing gives {}; a listing without `name` is an error."""
    try:
        listing = client.get("/models")
    except ServerError as exc:
        if exc.status in (404, 405, 501):
            return {}
        raise GlobalignError(f"model '{name}': {exc}") from None
    entries = [e for e in listing.get("data") or [] if isinstance(e, dict) and "id" in e]
    ids = [str(e["id"]) for e in entries]
    if not entries:
        return {}
    if name not in ids:
        raise unknown_name(f"model at {client.base_url}", name, ids)
    entry = entries[ids.index(name)]
    return {key: str(entry[key]) for key in _METADATA_KEYS if entry.get(key) is not None}
