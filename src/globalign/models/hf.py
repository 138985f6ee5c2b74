"""The transformers backend: any causal LM folder, scored with KV-cache reuse across candidates."""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from globalign.errors import GlobalignError
from globalign.models.base import GENERATE, SCORE, ModelInfo
from globalign.models.checks import load_failure
from globalign.models.fingerprint import combine
from globalign.models.hf_scoring import PackedScorer, full_pass_nll, mask_plan
from globalign.models.packing import plan_rows
from globalign.models.tokenization import split_candidates
from globalign.requests import ContinuationScore, GenerateRequest, Prompt, ScoreRequest
from globalign.threads import cpu_threads

# Bumped whenever scoring code changes in a way that could change a number: it is part of the
# fingerprint, so cached answers from older code are never reused.
# Not bumped for padding-aware batched generation with per-row early stops: a cached generation is
# still the text of one-request-at-a-time greedy decoding (what the earlier batched code gave too;
# early stopping only skips tokens after the stop string, and cutting at EOS drops only pads), so
# cached generations stay valid, and bumping would also throw away every cached score.
SCORING_VERSION = "hf-2"  # hf-2: packed rows (models/packing.py); equal to hf-1 within float rounding
SCORE_PROMPTS_PER_CALL = 64


def _torch_dtype(name: str):
    import torch

    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise GlobalignError(f"unknown dtype '{name}'; use float32, bfloat16 or float16") from None


def tokenizer_adds_bos(tokenizer) -> bool:
    """Whether the tokenizer's own encode() prepends BOS (what the study's tokenizer.encode did)."""
    bos = getattr(tokenizer, "bos_token_id", None)
    with_special = tokenizer("a")["input_ids"]
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    return bool(bos is not None and len(with_special) > len(plain) and with_special[0] == bos)


class TransformersModel:
    """A causal LM loaded with transformers from a local folder."""

    def __init__(
        self,
        folder: Path,
        *,
        name: str,
        source: str,
        content_hash: str,
        dtype: str = "float32",
        add_bos: bool | None = None,
        family: str = "",
        device: str | None = None,
        threads: int | None = None,
        batch_size: int = 32,
        max_batch_tokens: int = 16384,
        score_rows: int = 64,
        max_batch_logits: int = 2**25,
        trust_remote_code: bool = False,
        adapter: Path | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.folder = folder
        self.threads = cpu_threads(threads)
        torch.set_num_threads(self.threads)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        # Padded tokens per generation or scoring batch: long prompts (a TyDi QA passage in Telugu is
        # thousands of byte-level tokens) go in smaller batches instead of one huge padded one. Scoring
        # batches also hold at most `score_rows` rows and `max_batch_logits` logits (models/packing.py).
        self.max_batch_tokens = max_batch_tokens
        torch_dtype = _torch_dtype(dtype)
        # Files were checked before (models/checks.py); what still fails here is worded, not a traceback.
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        except Exception as exc:  # transformers and tokenizers raise many types for bad files
            raise load_failure(name, "tokenizer", folder, exc) from exc
        try:
            self.model = AutoModelForCausalLM.from_pretrained(
                folder, dtype=torch_dtype, trust_remote_code=trust_remote_code, weights_only=True
            ).to(self.device)
        except Exception as exc:
            raise load_failure(name, "model", folder, exc) from exc
        architecture = type(self.model).__name__
        if adapter is not None:  # LoRA layers on the base, unmerged (models/adapter.py)
            from globalign.models.adapter import apply_adapter

            self.model = apply_adapter(self.model, adapter, name)
        self.model.eval()
        self.bos_id = self.tokenizer.bos_token_id
        if add_bos is None:
            add_bos = tokenizer_adds_bos(self.tokenizer)
        self.info = ModelInfo(
            name=name,
            backend="transformers",
            fingerprint=combine("transformers", SCORING_VERSION, content_hash, dtype, str(add_bos)),
            source=source,
            dtype=dtype,
            add_bos=add_bos,
            family=family,
            details={"architecture": architecture, "device": self.device,
                     **({"adapter": str(adapter.resolve())} if adapter is not None else {})},
        )
        self.has_chat_template = bool(getattr(self.tokenizer, "chat_template", None))
        # Prompts per scoring call (all packed together, so more prompts batch and sort better; a call
        # is one cache commit), and generation requests per call (batched `batch_size` at a time inside).
        self.requests_per_call = {SCORE: SCORE_PROMPTS_PER_CALL, GENERATE: batch_size}
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        masks, self._packing_unsupported = mask_plan(self.model.config)
        self.scorer = PackedScorer(self.model, pad_id=self.pad_id, device=self.device, max_rows=score_rows,
                                   max_tokens=max_batch_tokens, max_logits=max_batch_logits, masks=masks or {})
        self._packing_checked: bool | None = None  # checked on the first scoring call
        self.naive_tokens_fed = 0

    # -- tokenisation ---------------------------------------------------------------------------
    def render(self, prompt: Prompt) -> str:
        """The prompt's text: as is, or its user turn in the model's chat template followed by the start
        of the assistant's answer."""
        if not prompt.is_chat:
            return prompt.text
        return self.apply_chat_template(prompt.user) + prompt.text

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, with the model's BOS prepended when it expects one (and text lacks it)."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if self.info.add_bos and self.bos_id is not None and not (ids and ids[0] == self.bos_id):
            ids = [self.bos_id, *ids]
        return ids

    # -- scoring --------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """Scores of every candidate, in order: every prompt of the call and its candidates packed into
        rows (models/packing.py) and run in a few padded batches. Candidates whose prefix differs (a
        token merge across the boundary) get rows of their own prefix; one-token candidates are read
        at the prompt's last position; empty ones score n_tokens = 0 without the model."""
        splits = [split_candidates(self.encode, self.render(r.prompt), r.continuations) for r in requests]
        flat = [split for row in splits for split in row]
        results: list[ContinuationScore | None] = [None] * len(flat)
        groups: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]] = defaultdict(list)
        for owner, split in enumerate(flat):
            if not split.continuation_ids:
                results[owner] = ContinuationScore(0.0, 0, split.boundary_merge)
            elif not split.prefix_ids:
                raise GlobalignError("cannot score a continuation of an empty prompt for a model without BOS")
            else:
                groups[split.prefix_ids].append((owner, split.continuation_ids))
        if groups:
            nll = self._score_groups(groups)
            for owner, total in nll.items():
                split = flat[owner]
                results[owner] = ContinuationScore(total, len(split.continuation_ids), split.boundary_merge)
        out, index = [], 0
        for row in splits:
            out.append(results[index : index + len(row)])
            index += len(row)
        return out  # type: ignore[return-value]

    def _score_groups(self, groups) -> dict[int, float]:
        if self._packing_checked is None:
            self._packing_checked = self._check_packing()
        if not self._packing_checked:
            return {owner: self._full_pass(prefix, ids) for prefix, members in groups.items() for owner, ids in members}
        return self.scorer.score(plan_rows(groups.items(), self.scorer.max_tail))

    def _check_packing(self) -> bool:
        """Whether packed rows score like full passes on this model (once per model): an architecture
        that ignores a prepared attention mask would otherwise give wrong numbers, not an error.
        When not, scoring falls back to one full pass per candidate, with one line on stderr."""
        why = self._packing_unsupported or self.scorer.check(self.encode)
        if not why:
            return True
        print(f"globalign: model '{self.info.name}': {why}; scoring one full pass per candidate (slower)",
              file=sys.stderr)
        return False

    def _full_pass(self, prefix: Sequence[int], continuation: Sequence[int]) -> float:
        self.naive_tokens_fed += len(prefix) + len(continuation)
        return full_pass_nll(self.model, prefix, continuation, self.device)

    @property
    def tokens_fed(self) -> int:
        """Tokens run through the model by scoring so far (padding included), for benchmarks."""
        return self.scorer.tokens_fed + self.naive_tokens_fed

    def score_naive(self, requests: Sequence[ScoreRequest]) -> list[list[ContinuationScore]]:
        """Reference scoring: one full forward pass of prompt + candidate per candidate (the study's way)."""
        results = []
        for request in requests:
            row = []
            for split in split_candidates(self.encode, self.render(request.prompt), request.continuations):
                total = self._full_pass(split.prefix_ids, split.continuation_ids) if split.continuation_ids else 0.0
                row.append(ContinuationScore(total, len(split.continuation_ids), split.boundary_merge))
            results.append(row)
        return results

    # -- generation -----------------------------------------------------------------------------
    # Both generation paths below give the same strings: greedy decoding of one sequence is causal, so
    # neither left padding (masked out, position ids counted from each row's first real token by
    # transformers' generate) nor stopping a row early (only tokens after its stop string are skipped)
    # changes a row's text. tests/test_generation_batching.py checks this on the packaged models.
    def generate(self, requests: Sequence[GenerateRequest]) -> list[str]:
        """Batched greedy decoding with left padding, in request order.

        Requests are ordered by (max_new_tokens, stop, prompt tokens) and cut into batches of
        `batch_size`, so a batch mostly shares its settings and pads little. A batch may still mix
        settings: each row stops on its own (its EOS, its own `max_new_tokens`, or once its decoded
        continuation contains one of its own stop strings), and the batch ends when every row has.
        """
        import torch

        outputs: list[str] = [""] * len(requests)
        encoded = self._encode_for_generation(requests)
        order = sorted(
            (i for i, r in enumerate(requests) if r.max_new_tokens > 0),
            key=lambda i: (requests[i].max_new_tokens, requests[i].stop, len(encoded[i])),
        )
        with torch.inference_mode():
            for batch in _token_budget_batches(order, [len(e) for e in encoded], self.batch_size,
                                               self.max_batch_tokens):
                width = max(len(encoded[i]) for i in batch)
                ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long, device=self.device)
                mask = torch.zeros((len(batch), width), dtype=torch.long, device=self.device)
                for row, index in enumerate(batch):
                    n = len(encoded[index])
                    ids[row, width - n :] = torch.tensor(encoded[index], device=self.device)
                    mask[row, width - n :] = 1
                rows = _RowStops(
                    width,
                    [requests[i].max_new_tokens for i in batch],
                    [requests[i].stop for i in batch],
                    self._eos_ids(),
                    self._decode_new,
                )
                generated = self.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    max_new_tokens=max(rows.limits),
                    stopping_criteria=[rows],
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=self.pad_id,
                )
                for row, index in enumerate(batch):
                    new = generated[row, width : width + rows.kept(row)].tolist()
                    outputs[index] = _cut_at_stop(self._decode_new(new), requests[index].stop)
        return outputs

    def generate_unbatched(self, requests: Sequence[GenerateRequest]) -> list[str]:
        """Reference generation for tests and benchmarks: one request at a time, no padding, greedy, each
        run to EOS or its full `max_new_tokens` (no early stop at stop strings); same decode and cut."""
        import torch

        outputs: list[str] = []
        encoded = self._encode_for_generation(requests)
        with torch.inference_mode():
            for request, prompt_ids in zip(requests, encoded):
                if request.max_new_tokens <= 0:
                    outputs.append("")
                    continue
                ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.device)
                generated = self.model.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=request.max_new_tokens,
                    do_sample=False,
                    num_beams=1,
                    pad_token_id=self.pad_id,
                )
                new = generated[0, len(prompt_ids) :].tolist()
                outputs.append(_cut_at_stop(self._decode_new(new), request.stop))
        return outputs

    def _encode_for_generation(self, requests: Sequence[GenerateRequest]) -> list[list[int]]:
        encoded = [self.encode(self.render(r.prompt)) for r in requests]
        if any(not ids for ids, r in zip(encoded, requests) if r.max_new_tokens > 0):
            raise GlobalignError("cannot generate from an empty prompt for a model without BOS")
        return encoded

    def _eos_ids(self) -> frozenset[int]:
        """The token ids transformers' generate() ends a sequence at."""
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            return frozenset()
        return frozenset([eos] if isinstance(eos, int) else eos)

    def _decode_new(self, new_ids: list[int]) -> str:
        """Text of generated token ids: up to and including the first EOS (what an unpadded run returns;
        a batched row has pads after it), special tokens skipped."""
        eos = self._eos_ids()
        for position, token in enumerate(new_ids):
            if token in eos:
                new_ids = new_ids[: position + 1]
                break
        return self.tokenizer.decode(new_ids, skip_special_tokens=True)

    def apply_chat_template(self, user_message: str) -> str:
        if not getattr(self.tokenizer, "chat_template", None):
            raise GlobalignError(f"model '{self.info.name}' has no chat template; use --prompt-format raw")
        return self.tokenizer.apply_chat_template(
            [{"role": "user", "content": user_message}], tokenize=False, add_generation_prompt=True
        )

    def close(self) -> None:
        del self.model


def _token_budget_batches(order: Sequence[int], lengths: Sequence[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Consecutive runs of `order` with at most `max_rows` rows and rows x longest prompt <= `max_tokens`
    (a single longer prompt still gets a batch of its own)."""
    batches: list[list[int]] = []
    batch: list[int] = []
    width = 0
    for index in order:
        new_width = max(width, lengths[index])
        if batch and (len(batch) + 1 > max_rows or (len(batch) + 1) * new_width > max_tokens):
            batches.append(batch)
            batch, new_width = [], lengths[index]
        batch.append(index)
        width = new_width
    if batch:
        batches.append(batch)
    return batches


def _cut_at_stop(text: str, stops: Sequence[str]) -> str:
    cut = len(text)
    for stop in stops:
        position = text.find(stop)
        if position != -1:
            cut = min(cut, position)
    return text[:cut]


class _RowStops:
    """A transformers stopping criterion that ends each row of a left-padded batch on its own: once it
    has its own `max_new_tokens`, or once its decoded continuation (prompt excluded) contains one of its
    own stop strings. It remembers how many new tokens each row keeps.

    transformers' own `stop_strings=` is not used: it also matches a stop string that starts inside
    the prompt (prompt "Hi\n" + generated "\n" stops at "\n\n"), where `_cut_at_stop`, which looks at
    the continuation only, finds nothing, so a batched row would end before the unbatched one.
    """

    def __init__(self, width, limits, stops, eos_ids, decode) -> None:
        self.width = width
        self.limits = list(limits)
        self.stops = [tuple(s) for s in stops]
        self.eos_ids = eos_ids
        self.decode = decode
        self.ended: list[int | None] = [None] * len(self.limits)

    def kept(self, row: int) -> int:
        """New tokens that row keeps: up to its stop, else its max_new_tokens (EOS is cut when decoding)."""
        ended = self.ended[row]
        return self.limits[row] if ended is None else ended

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        n = input_ids.shape[1] - self.width
        done = []
        for row, limit in enumerate(self.limits):
            if self.ended[row] is None:
                new = input_ids[row, self.width :].tolist()
                if n >= limit:
                    self.ended[row] = limit
                elif any(token in self.eos_ids for token in new):
                    self.ended[row] = n  # transformers ends it too; the tokens after EOS are pads
                elif self.stops[row]:
                    text = self.decode(new)
                    if any(stop in text for stop in self.stops[row]):
                        self.ended[row] = n
            done.append(self.ended[row] is not None)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
