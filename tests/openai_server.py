"""A small OpenAI-compatible server for the openai backend's tests: `/v1/models` and `/v1/completions`,
answered by a real transformers model (echoed prompt log-probabilities, greedy generations), that fails on
a schedule (429, 500, a dropped connection, an answer too slow for the client's timeout) and counts what
it answered, per distinct request body."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from globalign.models.hf import TransformersModel, _cut_at_stop

FAILURES = ("429", "500", "503", "drop", "slow")


class ModelServer:
    """Serves `model` as `served_name` on 127.0.0.1 (a free port) in a thread. `failures` maps the n-th
    POST to /v1/completions (1-based) to one of FAILURES; `logprobs=False` answers like a server without
    prompt log-probabilities (`"logprobs": null`); with `require_key`, a request without that bearer key
    gets a 401 that quotes the key it got (as some servers do). `model` may be None for tests that only
    list models."""

    def __init__(self, model: TransformersModel | None, served_name: str, *, failures: Mapping[int, str] = (),
                 logprobs: bool = True, slow_s: float = 0.0, require_key: str | None = None) -> None:
        self.model = model
        self.require_key = require_key
        self.served_name = served_name
        self.failures = dict(failures)
        self.logprobs = logprobs
        self.slow_s = slow_s
        self.posts = 0  # POSTs to /v1/completions, failed ones included
        self.failed: Counter[str] = Counter()  # by kind
        self.answered: Counter[str] = Counter()  # answers sent, by sha256 of the request body
        self.authorization: set[str] = set()  # Authorization headers seen
        self._lock = threading.Lock()  # one forward pass at a time; the HTTP side stays concurrent
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()

    # -- what the server computes -----------------------------------------------------------------
    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        prompts = body["prompt"]
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        ids = [self.model.encode(p) if isinstance(p, str) else list(p) for p in prompts]
        if body.get("echo") and body.get("max_tokens") == 0:
            echoes = self._echo(ids) if self.logprobs and body.get("logprobs") is not None else [None] * len(ids)
            texts = [p if isinstance(p, str) else self.model.tokenizer.decode(i) for p, i in zip(prompts, ids)]
        else:
            echoes = [None] * len(ids)
            texts = [_cut_at_stop(self._generate(i, body["max_tokens"]), body.get("stop") or ()) for i in ids]
        choices = [{"index": n, "text": text, "logprobs": echo, "finish_reason": "length"}
                   for n, (text, echo) in enumerate(zip(texts, echoes))]
        return {"id": "cmpl-test", "object": "text_completion", "model": self.served_name, "choices": choices}

    def _echo(self, sequences: list[list[int]]) -> list[dict[str, Any]]:
        """Each sequence's tokens and their log-probabilities, all in one right-padded pass (padding after a
        sequence cannot change its positions' logits in a causal model)."""
        import torch

        width = max(len(s) for s in sequences)
        ids = torch.zeros((len(sequences), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, sequence in enumerate(sequences):
            ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        with self._lock, torch.inference_mode():
            logprobs = torch.log_softmax(self.model.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        return [{"tokens": self.model.tokenizer.convert_ids_to_tokens(sequence),
                 "token_logprobs": [None] + [logprobs[row, i - 1, sequence[i]].item() for i in range(1, len(sequence))]}
                for row, sequence in enumerate(sequences)]

    def _generate(self, ids: list[int], max_tokens: int) -> str:
        import torch

        with self._lock, torch.inference_mode():
            prompt = torch.tensor([ids])
            out = self.model.model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                                            max_new_tokens=max_tokens, do_sample=False, num_beams=1,
                                            pad_token_id=self.model.pad_id)
        return self.model._decode_new(out[0, len(ids):].tolist())


def _handler(server: ModelServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # the test output stays readable
            pass

        def do_GET(self) -> None:
            if not self._authorized():
                return None
            if self.path.rstrip("/") != "/v1/models":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            self._send(200, {"object": "list", "data": [
                {"id": server.served_name, "object": "model", "owned_by": "test", "root": "smollm2-test",
                 "max_model_len": 8192}]})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not self._authorized():
                return None
            if self.path != "/v1/completions":
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            with server._lock:
                server.posts += 1
                failure = server.failures.get(server.posts)
            if failure:
                server.failed[failure] += 1
                if failure in ("429", "500", "503"):
                    return self._send(int(failure), {"error": {"message": f"scheduled {failure}"}},
                                      {"Retry-After": "0"} if failure == "429" else {})
                if failure == "slow":
                    time.sleep(server.slow_s)
                self.close_connection = True  # "drop" (and "slow", after the client gave up): no answer
                return None
            answer = server.complete(json.loads(raw))
            with server._lock:
                server.answered[hashlib.sha256(raw).hexdigest()] += 1
            return self._send(200, answer)

        def _authorized(self) -> bool:
            got = self.headers.get("Authorization", "")
            if got:
                server.authorization.add(got)
            if server.require_key and got != f"Bearer {server.require_key}":
                self._send(401, {"error": {"message": f"Incorrect API key provided: {got.removeprefix('Bearer ')}"}})
                return False
            return True

        def _send(self, status: int, body: dict[str, Any], headers: Mapping[str, str] = ()) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in dict(headers).items():
                self.send_header(key, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

    return Handler
